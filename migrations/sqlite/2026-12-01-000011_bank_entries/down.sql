DROP INDEX payments_by_bank_entry;
ALTER TABLE payments DROP COLUMN bank_entry_part;
ALTER TABLE payments DROP COLUMN bank_entry;
