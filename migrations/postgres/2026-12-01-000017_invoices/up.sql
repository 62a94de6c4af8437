-- Electronic invoices (FatturaPA): the seller's data per brand, the invoices issued with
-- each fulfilment, and the ProgressivoInvio counter of each SdI transmitter.

ALTER TABLE brands ADD COLUMN seller_name TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN seller_partita_iva TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN seller_codice_fiscale TEXT NOT NULL DEFAULT '';
-- RF01: regime ordinario.
ALTER TABLE brands ADD COLUMN seller_regime_fiscale TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN seller_indirizzo TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN seller_cap TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN seller_comune TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN seller_provincia TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN seller_nazione TEXT NOT NULL DEFAULT '';
-- Iscrizione REA (ufficio: provincia; numero), empty where it does not apply.
ALTER TABLE brands ADD COLUMN seller_rea_ufficio TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN seller_rea_numero TEXT NOT NULL DEFAULT '';
-- IdCodice of the SdI transmitter (its codice fiscale; IdPaese IT).
ALTER TABLE brands ADD COLUMN transmitter_codice TEXT NOT NULL DEFAULT '';

CREATE TABLE invoices (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL UNIQUE REFERENCES orders (id),
    number TEXT NOT NULL,
    year INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    issue_date DATE NOT NULL,
    -- The buyer and the seller as they were when the invoice was issued.
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
CREATE INDEX invoices_by_brand ON invoices (brand_id, issue_date);

-- The last ProgressivoInvio given per transmitter: taken in the fulfilling transaction,
-- as the invoice numbers are, so no two files of a transmitter share one.
CREATE TABLE sdi_transmission_counters (
    transmitter_codice TEXT PRIMARY KEY NOT NULL,
    last_seq BIGINT NOT NULL
);

