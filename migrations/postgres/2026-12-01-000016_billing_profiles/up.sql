-- What an invoice needs to know about its buyer (the CessionarioCommittente of the
-- FatturaPA): one row per user, kept by `billing`. A `person` has nome, cognome and
-- codice fiscale; a `business` a denominazione (or nome and cognome), a partita IVA and,
-- where it has one, a codice fiscale. The SdI reaches the buyer through a codice
-- destinatario or a PEC address; with neither, the invoice goes to `0000000`.
CREATE TABLE billing_profiles (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    kind TEXT NOT NULL CHECK (kind IN ('person', 'business')),
    denominazione TEXT,
    nome TEXT,
    cognome TEXT,
    codice_fiscale TEXT,
    partita_iva TEXT,
    indirizzo TEXT NOT NULL,
    cap TEXT,
    comune TEXT NOT NULL,
    provincia TEXT NOT NULL,
    nazione TEXT NOT NULL,
    codice_destinatario TEXT,
    pec TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
