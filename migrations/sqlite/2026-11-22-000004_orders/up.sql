-- Orders, invoice numbering, coupons, idempotent requests and the email outbox.

CREATE TABLE orders (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    status TEXT NOT NULL CHECK (status IN ('awaiting_payment', 'paid', 'fulfilled', 'expired', 'cancelled')),
    payment_method TEXT NOT NULL CHECK (payment_method IN ('prepaid', 'bank_transfer', 'postal_slip', 'cheque')),
    net_cents BIGINT NOT NULL,
    vat_cents BIGINT NOT NULL,
    gross_cents BIGINT NOT NULL,
    -- Set when paid: "<series><year>-<seq>", progressive per brand and year.
    invoice_number TEXT UNIQUE,
    invoice_year INTEGER,
    invoice_seq BIGINT,
    email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    paid_at TIMESTAMP,
    fulfilled_at TIMESTAMP,
    UNIQUE (brand_id, invoice_year, invoice_seq)
);
CREATE INDEX orders_by_user ON orders (user_id, created_at);
CREATE INDEX orders_by_brand ON orders (brand_id, created_at);

CREATE TABLE order_lines (
    id TEXT PRIMARY KEY NOT NULL,
    order_id TEXT NOT NULL REFERENCES orders (id),
    line_number INTEGER NOT NULL,
    product_id TEXT NOT NULL REFERENCES products (id),
    -- What the product was called and cost when ordered: the catalog may change later.
    product_code TEXT NOT NULL,
    product_name TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    net_unit_cents BIGINT NOT NULL,
    vat_rate_basis_points INTEGER NOT NULL,
    net_cents BIGINT NOT NULL,
    UNIQUE (order_id, line_number)
);

-- The last invoice number given per brand and year. Incremented in the transaction that
-- pays the order, so a rollback gives the number back: no gaps, no repeats.
CREATE TABLE invoice_counters (
    brand_id TEXT NOT NULL REFERENCES brands (id),
    year INTEGER NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (brand_id, year)
);

CREATE TABLE coupons (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    order_id TEXT NOT NULL REFERENCES orders (id),
    owner_id TEXT NOT NULL REFERENCES users (id),
    product_id TEXT NOT NULL REFERENCES products (id),
    -- HMAC-SHA256 of the code under the installation's coupon key: a leaked table holds
    -- no redeemable code.
    code_hash TEXT NOT NULL UNIQUE,
    -- The last characters, to tell coupons apart in lists ("****-****-****-7KQ2-M").
    code_hint TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'redeemed', 'voided')),
    net_unit_cents BIGINT NOT NULL,
    vat_rate_basis_points INTEGER NOT NULL,
    valid_until TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    voided_at TIMESTAMP
);
CREATE INDEX coupons_by_owner ON coupons (owner_id, created_at);
CREATE INDEX coupons_by_order ON coupons (order_id);

-- The first answer to a request sent with an Idempotency-Key, per user.
CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL REFERENCES users (id),
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, idempotency_key)
);

-- The outbox: written in the transaction of the change that causes the email, sent by
-- the dispatcher. It holds the template's name (kind) and its values (context, JSON);
-- subject and bodies are rendered when sent, which keeps the paying transaction short.
-- The context and attachment are cleared once sent (they may carry coupon codes).
CREATE TABLE emails (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    kind TEXT NOT NULL,
    reference TEXT,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    context TEXT NOT NULL,
    -- Rendered at sending, kept for the record ('' until then).
    subject TEXT NOT NULL,
    attachment_name TEXT,
    attachment_content TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    -- A dispatcher working on it until then; another may take it over after.
    claimed_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX emails_due ON emails (status, next_attempt_at);

-- Requests counted against a rate limit (e.g. coupon status checks per client address),
-- shared by every service process.
CREATE TABLE rate_limit_hits (
    id TEXT PRIMARY KEY NOT NULL,
    bucket TEXT NOT NULL,
    subject TEXT NOT NULL,
    hit_at TIMESTAMP NOT NULL
);
CREATE INDEX rate_limit_hits_by_subject ON rate_limit_hits (bucket, subject, hit_at);
