-- Payment by transfer (bank transfer, postal slip, cheque) with an ISO 11649 RF code,
-- top-ups of the prepaid account by transfer, and the statements that bring the money.

-- An order paid by transfer waits with an RF code until its reservation deadline.
-- received_cents adds up the payments matched to it (partial payments add up).
ALTER TABLE orders ADD COLUMN payment_reference TEXT;
ALTER TABLE orders ADD COLUMN reserved_until TIMESTAMP;
ALTER TABLE orders ADD COLUMN received_cents BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN closed_at TIMESTAMP;
CREATE UNIQUE INDEX orders_by_payment_reference ON orders (payment_reference);
CREATE INDEX orders_by_reservation ON orders (status, reserved_until);

-- A top-up of the prepaid account by transfer: what the customer said they would pay.
-- Whatever arrives with its RF code is credited to the account.
CREATE TABLE top_ups (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    account_id TEXT NOT NULL REFERENCES prepaid_accounts (id),
    status TEXT NOT NULL CHECK (status IN ('awaiting_payment', 'paid', 'expired')),
    payment_method TEXT NOT NULL CHECK (payment_method IN ('bank_transfer', 'postal_slip', 'cheque')),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    received_cents BIGINT NOT NULL DEFAULT 0,
    payment_reference TEXT NOT NULL,
    reserved_until TIMESTAMP NOT NULL,
    email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    paid_at TIMESTAMP,
    closed_at TIMESTAMP
);
CREATE UNIQUE INDEX top_ups_by_payment_reference ON top_ups (payment_reference);
CREATE INDEX top_ups_by_user ON top_ups (user_id, created_at);
CREATE INDEX top_ups_by_reservation ON top_ups (status, reserved_until);

-- Every RF code ever given, and the one order or top-up it belongs to. The primary key
-- makes a code unique across orders and top-ups; the CHECK, that it names exactly one.
CREATE TABLE payment_references (
    reference TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT UNIQUE REFERENCES orders (id),
    top_up_id TEXT UNIQUE REFERENCES top_ups (id),
    created_at TIMESTAMP NOT NULL,
    CHECK ((order_id IS NULL AND top_up_id IS NOT NULL) OR (order_id IS NOT NULL AND top_up_id IS NULL))
);

-- An imported file (camt.053, camt.054, CBI camt.053, postal CSV).
CREATE TABLE statements (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    format TEXT NOT NULL,
    version TEXT NOT NULL,
    message_id TEXT,
    file_name TEXT,
    file_sha256 TEXT NOT NULL,
    entries INTEGER NOT NULL,
    new_entries INTEGER NOT NULL,
    ignored_entries INTEGER NOT NULL,
    imported_by TEXT NOT NULL REFERENCES users (id),
    imported_at TIMESTAMP NOT NULL,
    -- The target of payments' (statement_id, brand_id) key.
    UNIQUE (id, brand_id)
);
CREATE INDEX statements_by_brand ON statements (brand_id, imported_at);

-- One money movement from a statement: a credit, or a reversal of one. dedup_key makes
-- re-importing a file, or an overlapping one, change nothing. One key to the statement
-- checks both columns (and that they agree) with one lookup per row: a statement import
-- writes 100,000 rows, and every foreign key check costs (benches/reconcile.sh).
CREATE TABLE payments (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL,
    statement_id TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('credit', 'reversal')),
    account TEXT NOT NULL,
    bank_reference TEXT,
    booking_date DATE NOT NULL,
    value_date DATE,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    payer_name TEXT,
    remittance TEXT NOT NULL,
    -- The valid RF code found in it, if any.
    reference TEXT,
    status TEXT NOT NULL CHECK (status IN ('matched', 'partial', 'overpaid', 'duplicate', 'unmatched', 'refunded', 'reversed', 'reversal')),
    -- Why it is unmatched (or what a reversal could not undo); '' otherwise.
    reason TEXT NOT NULL,
    order_id TEXT REFERENCES orders (id),
    top_up_id TEXT REFERENCES top_ups (id),
    account_id TEXT REFERENCES prepaid_accounts (id),
    -- How much went to the order, and how much to the prepaid account.
    applied_cents BIGINT NOT NULL,
    credited_cents BIGINT NOT NULL,
    reverses_payment_id TEXT REFERENCES payments (id),
    resolved_by TEXT REFERENCES users (id),
    resolved_at TIMESTAMP,
    resolution_note TEXT,
    created_at TIMESTAMP NOT NULL,
    FOREIGN KEY (statement_id, brand_id) REFERENCES statements (id, brand_id),
    UNIQUE (brand_id, dedup_key)
);
CREATE INDEX payments_by_status ON payments (brand_id, status, booking_date);
CREATE INDEX payments_by_booking_date ON payments (brand_id, booking_date);
CREATE INDEX payments_by_order ON payments (order_id);
CREATE INDEX payments_by_reference ON payments (brand_id, reference);
