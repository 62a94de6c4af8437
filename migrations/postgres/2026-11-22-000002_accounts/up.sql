-- Accounts, sessions, the prepaid ledger and the audit log. Same tables on both backends.

ALTER TABLE brands ADD COLUMN sender_address TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN iban TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN postal_account TEXT NOT NULL DEFAULT '';
ALTER TABLE brands ADD COLUMN invoice_series TEXT NOT NULL DEFAULT '';

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    -- Stored lowercased: the same address typed with other capitals is the same user.
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('customer', 'registration_officer', 'back_office')),
    codice_fiscale TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (brand_id, email)
);

-- Refresh tokens are stored only as SHA-256 hashes. Each login starts a family; each
-- refresh uses one token and adds the next; a used token presented again revokes the family.
CREATE TABLE refresh_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

-- Login attempts that count against the throttle, shared by every service process.
CREATE TABLE login_attempts (
    id TEXT PRIMARY KEY NOT NULL,
    account_key TEXT NOT NULL,
    client_address TEXT NOT NULL,
    attempted_at TIMESTAMP NOT NULL
);
CREATE INDEX login_attempts_by_account ON login_attempts (account_key, attempted_at);
CREATE INDEX login_attempts_by_address ON login_attempts (client_address, attempted_at);

CREATE TABLE prepaid_accounts (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    owner_id TEXT NOT NULL UNIQUE REFERENCES users (id),
    -- Changed only together with a ledger entry, by one conditional UPDATE.
    balance_cents BIGINT NOT NULL CHECK (balance_cents >= 0),
    entry_count BIGINT NOT NULL CHECK (entry_count >= 0),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE prepaid_entries (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES prepaid_accounts (id),
    -- 1, 2, 3... per account, in the order the balance changed.
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('top_up', 'order_debit', 'refund', 'overpayment_credit', 'adjustment')),
    amount_cents BIGINT NOT NULL CHECK (amount_cents <> 0),
    balance_after_cents BIGINT NOT NULL CHECK (balance_after_cents >= 0),
    description TEXT NOT NULL,
    reference TEXT,
    actor_id TEXT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (account_id, seq)
);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT,
    -- "user:<id>", "cli" or "system"
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    -- JSON object
    details TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_by_subject ON audit_log (subject_type, subject_id, created_at);

-- The ledger and the audit log are append-only, whatever the code does.
CREATE FUNCTION rinnovo_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER prepaid_entries_append_only BEFORE UPDATE OR DELETE ON prepaid_entries
    FOR EACH ROW EXECUTE FUNCTION rinnovo_append_only();
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION rinnovo_append_only();
