-- The bank entry a payment comes from, when the bank names it (its AcctSvcrRef): one entry
-- may reach us twice, as one sum in the day's camt.053 and transaction by transaction in
-- a camt.054, and must be counted once. bank_entry identifies the entry (account,
-- direction, reference, booking date, amount); bank_entry_part says whether the payment
-- is the whole entry ('whole') or one transaction of its detail ('detail').
ALTER TABLE payments ADD COLUMN bank_entry TEXT;
ALTER TABLE payments ADD COLUMN bank_entry_part TEXT;
CREATE INDEX payments_by_bank_entry ON payments (brand_id, bank_entry);
