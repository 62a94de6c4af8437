-- A bank reference seen again on the same account for a different amount, booking date or
-- direction: the new payment is imported (never taken for the old one) and points at the
-- earlier payment, so that the back-office sees that the bank reused the reference.
ALTER TABLE payments ADD COLUMN same_reference_as TEXT REFERENCES payments (id);
