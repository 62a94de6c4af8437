-- The exchange with the SdI: credit notes (TD04) beside the invoices (TD01), the files
-- sent (the transmission outbox) and the SdI's receipts.

-- Invoices and credit notes share one table: both are documents that the SdI numbers,
-- receives and answers about in the same way. An order has one invoice (TD01) and any
-- number of credit notes (TD04), each referring to the invoice it corrects. Rebuilt,
-- since an order may now have several documents.
CREATE TABLE invoices_new (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    -- TD01 invoice, TD04 credit note (nota di credito).
    kind TEXT NOT NULL CHECK (kind IN ('TD01', 'TD04')),
    -- The invoice a credit note corrects (DatiFattureCollegate); NULL for an invoice.
    credited_invoice_id TEXT REFERENCES invoices_new (id),
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
    -- The current file (a rejected document corrected and sent again gets a new one; the
    -- earlier files stay in sdi_transmissions).
    progressivo_invio TEXT NOT NULL,
    file_name TEXT NOT NULL UNIQUE,
    xml TEXT NOT NULL,
    -- issued: waiting to be transmitted; transmitted: sent, no receipt yet; delivered
    -- (ricevuta di consegna); rejected (notifica di scarto: legally not issued until sent
    -- again); not_delivered (mancata consegna: issued, the buyer finds it in their
    -- cassetto fiscale).
    status TEXT NOT NULL CHECK (status IN ('issued', 'transmitted', 'delivered', 'rejected', 'not_delivered')),
    -- The SdI's identifier of the current file, from its first receipt.
    identificativo_sdi TEXT,
    created_at TIMESTAMP NOT NULL,
    status_changed_at TIMESTAMP NOT NULL,
    CHECK ((kind = 'TD01') = (credited_invoice_id IS NULL)),
    UNIQUE (brand_id, kind, year, seq),
    UNIQUE (transmitter_codice, progressivo_invio)
);
INSERT INTO invoices_new (
    id, brand_id, order_id, kind, credited_invoice_id, number, year, seq, issue_date,
    buyer, seller, net_cents, vat_cents, gross_cents, transmitter_codice,
    progressivo_invio, file_name, xml, status, identificativo_sdi, created_at,
    status_changed_at)
SELECT id, brand_id, order_id, 'TD01', NULL, number, year, seq, issue_date,
    buyer, seller, net_cents, vat_cents, gross_cents, transmitter_codice,
    progressivo_invio, file_name, xml, status, NULL, created_at, created_at
FROM invoices;
DROP TABLE invoices;
ALTER TABLE invoices_new RENAME TO invoices;
CREATE UNIQUE INDEX invoices_one_per_order ON invoices (order_id) WHERE kind = 'TD01';
CREATE INDEX invoices_by_order ON invoices (order_id);
CREATE INDEX invoices_by_brand ON invoices (brand_id, issue_date);
CREATE INDEX invoices_by_status ON invoices (brand_id, status, issue_date);

-- The credit notes' own series: gap-free per brand and year, like invoice_counters.
CREATE TABLE credit_note_counters (
    brand_id TEXT NOT NULL REFERENCES brands (id),
    year INTEGER NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (brand_id, year)
);

-- The transmission outbox: one row per file to send to the SdI, written in the
-- transaction that issues (or corrects) the document, sent by the worker with the same
-- lease, retries and dead letters as the email outbox.
CREATE TABLE sdi_transmissions (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    file_name TEXT NOT NULL UNIQUE,
    xml TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    last_error TEXT,
    -- Which channel took it (file, pec) and what it said (the PEC Message-ID, the path).
    channel TEXT,
    channel_reference TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX sdi_transmissions_due ON sdi_transmissions (status, next_attempt_at);
CREATE INDEX sdi_transmissions_by_invoice ON sdi_transmissions (invoice_id);

-- The SdI's notifications (ricevuta di consegna RC, notifica di scarto NS, mancata
-- consegna MC, esito EC/NE, decorrenza termini DT, attestazione AT...), as imported. A
-- notification is stored once, by its own file name; a re-import changes nothing.
CREATE TABLE sdi_receipts (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    -- NULL when no document of the brand has the file it is about (kept, and shown).
    invoice_id TEXT REFERENCES invoices (id),
    kind TEXT NOT NULL,
    file_name TEXT NOT NULL,
    -- The document file it is about (NomeFile) and the SdI's identifier of it.
    invoice_file_name TEXT NOT NULL,
    identificativo_sdi TEXT NOT NULL,
    message_id TEXT NOT NULL,
    -- JSON list of {code, description, hint} (ListaErrori of a notifica di scarto).
    errors TEXT NOT NULL,
    xml TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    imported_by TEXT REFERENCES users (id),
    imported_at TIMESTAMP NOT NULL,
    UNIQUE (brand_id, file_name)
);
CREATE INDEX sdi_receipts_by_invoice ON sdi_receipts (invoice_id);
