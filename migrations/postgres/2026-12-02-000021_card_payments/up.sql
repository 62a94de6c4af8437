-- Card payments through a provider's hosted page (Stripe Checkout first): orders and
-- top-ups may be paid by `card`, and a top-up paid by card has no RF code.
ALTER TABLE orders DROP CONSTRAINT orders_payment_method_check;
ALTER TABLE orders ADD CONSTRAINT orders_payment_method_check
    CHECK (payment_method IN ('prepaid', 'bank_transfer', 'postal_slip', 'cheque', 'card'));
ALTER TABLE top_ups DROP CONSTRAINT top_ups_payment_method_check;
ALTER TABLE top_ups ADD CONSTRAINT top_ups_payment_method_check
    CHECK (payment_method IN ('bank_transfer', 'postal_slip', 'cheque', 'card'));
-- The RF code of a top-up by transfer; none for a top-up by card.
ALTER TABLE top_ups ALTER COLUMN payment_reference DROP NOT NULL;
ALTER TABLE top_ups ADD CONSTRAINT top_ups_reference_for_transfers
    CHECK ((payment_method = 'card') = (payment_reference IS NULL));

-- A payment by card through the provider's hosted page: one per order or top-up paid by
-- card. The provider's session is opened (and its URL kept) once, with this row's id as
-- the idempotency key; `status` follows what the provider says of it.
--   opening: stored, the session not yet created at the provider;
--   open: the buyer can pay on the provider's page;
--   paid: the provider says it is paid, and the order or top-up was settled;
--   held: paid, but not as asked (amount or currency), or for an order that could no
--         longer take it: kept for the back-office, never settled silently;
--   expired / failed: the session ended unpaid, and so did the order or top-up.
CREATE TABLE card_payments (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    order_id TEXT UNIQUE REFERENCES orders (id),
    top_up_id TEXT UNIQUE REFERENCES top_ups (id),
    provider TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('opening', 'open', 'paid', 'held', 'expired', 'failed')),
    session_id TEXT UNIQUE,
    checkout_url TEXT,
    -- The provider's payment (Stripe: the PaymentIntent), what refunds refer to.
    provider_payment_id TEXT,
    -- What the provider says was paid, once paid.
    paid_cents BIGINT,
    paid_currency TEXT,
    -- What refunds asked of the provider so far.
    refunded_cents BIGINT NOT NULL DEFAULT 0,
    -- Why it is held.
    note TEXT,
    expires_at TIMESTAMP NOT NULL,
    -- When the worker next asks the provider about a session still open.
    next_check_at TIMESTAMP NOT NULL,
    checks INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK ((order_id IS NULL) <> (top_up_id IS NULL))
);
CREATE INDEX card_payments_to_check ON card_payments (status, next_check_at);
CREATE INDEX card_payments_by_brand ON card_payments (brand_id, created_at);

-- Every notification the provider sent, by its event id: an event is applied once, however
-- many times it is delivered. `outcome` says what it did (settled, held, ended, refund,
-- already_applied, unknown_session, ignored).
CREATE TABLE card_events (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    card_payment_id TEXT REFERENCES card_payments (id),
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (provider, event_id)
);

-- A refund asked of the provider, an outbox row: written with the coupons it voids and
-- the credit note, sent by the worker (its id is the idempotency key, so a retry never
-- refunds twice). `provider_status` is what the provider says of it (pending, succeeded,
-- failed, canceled).
CREATE TABLE card_refunds (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    card_payment_id TEXT NOT NULL REFERENCES card_payments (id),
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    coupons INTEGER NOT NULL,
    credit_note_id TEXT REFERENCES invoices (id),
    reason TEXT NOT NULL,
    operator_id TEXT NOT NULL REFERENCES users (id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    provider_refund_id TEXT UNIQUE,
    provider_status TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX card_refunds_due ON card_refunds (status, next_attempt_at);
CREATE INDEX card_refunds_by_payment ON card_refunds (card_payment_id);
