-- Renewals through the desktop agent: one row per certificate to renew, holding the
-- coupon it reserved, the CSR, and once issued the new certificate until the agent
-- confirms it installed it (only then does it enter `certificates` as active).

-- SHA-256 (hex) of the certificate's SubjectPublicKeyInfo, so a renewal can refuse the
-- old key. Unknown (NULL) for certificates registered without their key.
ALTER TABLE certificates ADD COLUMN public_key_sha256 TEXT;

-- When the renewal that used the coupon was installed.
ALTER TABLE coupons ADD COLUMN redeemed_at TIMESTAMP;

CREATE TABLE renewals (
    id TEXT PRIMARY KEY NOT NULL,
    brand_id TEXT NOT NULL REFERENCES brands (id),
    device_id TEXT NOT NULL REFERENCES devices (id),
    -- The certificate being renewed, and its kind (the profile of the new one).
    certificate_id TEXT NOT NULL REFERENCES certificates (id),
    kind TEXT NOT NULL CHECK (kind IN ('signature', 'authentication')),
    coupon_id TEXT NOT NULL REFERENCES coupons (id),
    status TEXT NOT NULL CHECK (status IN ('queued', 'issuing', 'issued', 'installed', 'rejected', 'failed')),
    csr_pem TEXT NOT NULL,
    -- base64 of the DER SubjectPublicKeyInfo taken from the CSR, and its SHA-256 (hex).
    public_key TEXT NOT NULL,
    public_key_sha256 TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- The lease of the worker issuing it: past it, another worker may take over; only
    -- the holder of `claim_token` may store the result.
    claimed_until TIMESTAMP,
    claim_token TEXT,
    last_error TEXT,
    -- The new certificate, once issued.
    certificate_pem TEXT,
    issued_serial_number TEXT,
    issued_issuer TEXT,
    issued_not_before TIMESTAMP,
    issued_not_after TIMESTAMP,
    -- Its row in `certificates`, once installed.
    new_certificate_id TEXT REFERENCES certificates (id),
    created_at TIMESTAMP NOT NULL,
    issued_at TIMESTAMP,
    installed_at TIMESTAMP,
    closed_at TIMESTAMP
);
-- At most one renewal in progress per certificate, whatever the concurrency.
CREATE UNIQUE INDEX renewals_one_open_per_certificate ON renewals (certificate_id)
    WHERE status IN ('queued', 'issuing', 'issued');
CREATE INDEX renewals_queue ON renewals (status, next_attempt_at, id);
CREATE INDEX renewals_by_device ON renewals (device_id, kind);
CREATE INDEX renewals_by_coupon ON renewals (coupon_id);
