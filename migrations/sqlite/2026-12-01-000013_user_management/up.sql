-- User management by the back-office: a disabled user cannot sign in, and the
-- registration-officer role is granted on an application a customer makes.

-- When and why an operator disabled the user; NULL while the user is active.
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMP;
ALTER TABLE users ADD COLUMN disabled_reason TEXT;

-- A customer's application for the registration-officer role, with the company's data.
-- One pending application per user; a decided one stays as it was decided.
CREATE TABLE officer_applications (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    company_name TEXT NOT NULL,
    -- 11 digits, check digit verified.
    vat_number TEXT NOT NULL,
    -- The company's PEC or email address.
    contact_email TEXT NOT NULL,
    phone TEXT,
    note TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused')),
    created_at TIMESTAMP NOT NULL,
    decided_at TIMESTAMP,
    decided_by TEXT REFERENCES users (id),
    refusal_reason TEXT
);
CREATE UNIQUE INDEX officer_applications_one_pending ON officer_applications (user_id)
    WHERE status = 'pending';
CREATE INDEX officer_applications_by_brand ON officer_applications (brand_id, status, created_at);
CREATE INDEX officer_applications_by_user ON officer_applications (user_id, created_at);
