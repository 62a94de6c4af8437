DROP TABLE sdi_receipts;
DROP TABLE sdi_transmissions;
DROP TABLE credit_note_counters;
DELETE FROM invoices WHERE kind = 'TD04';
CREATE TABLE invoices_old (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL UNIQUE REFERENCES orders (id),
    number TEXT NOT NULL,
    year INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    issue_date DATE NOT NULL,
    buyer TEXT NOT NULL,
    seller TEXT NOT NULL,
    net_cents BIGINT NOT NULL,
    vat_cents BIGINT NOT NULL,
    gross_cents BIGINT NOT NULL,
    transmitter_codice TEXT NOT NULL,
    progressivo_invio TEXT NOT NULL,
    file_name TEXT NOT NULL UNIQUE,
    xml TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('issued', 'transmitted', 'delivered', 'rejected')),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (brand_id, year, seq),
    UNIQUE (transmitter_codice, progressivo_invio)
);
INSERT INTO invoices_old
SELECT id, brand_id, order_id, number, year, seq, issue_date, buyer, seller, net_cents,
    vat_cents, gross_cents, transmitter_codice, progressivo_invio, file_name, xml,
    CASE status WHEN 'not_delivered' THEN 'transmitted' ELSE status END, created_at
FROM invoices;
DROP TABLE invoices;
ALTER TABLE invoices_old RENAME TO invoices;
CREATE INDEX invoices_by_brand ON invoices (brand_id, issue_date);
