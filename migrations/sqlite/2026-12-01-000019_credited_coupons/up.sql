-- The coupons each credit note (TD04) credits. A coupon is credited once at most (its
-- key), and what an invoice's credit notes have credited so far is known coupon by
-- coupon: no credit note can credit more units of a product, or more money, than the
-- invoice it corrects.
CREATE TABLE credited_coupons (
    coupon_id TEXT PRIMARY KEY NOT NULL REFERENCES coupons (id),
    credit_note_id TEXT NOT NULL REFERENCES invoices (id),
    -- The invoice the credit note corrects (its credited_invoice_id), kept here so that
    -- what an invoice has had credited is one indexed read.
    invoice_id TEXT NOT NULL REFERENCES invoices (id)
);
CREATE INDEX credited_coupons_by_invoice ON credited_coupons (invoice_id);
