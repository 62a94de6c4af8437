ALTER TABLE payments DROP COLUMN same_reference_as;
