-- A user's address is confirmed when they opened a link sent to it. Accounts made before
-- confirmation existed are taken as confirmed (grandfathered): their addresses have
-- received coupon emails already, and locking them out of buying would be worse.
ALTER TABLE users ADD COLUMN email_confirmed_at TIMESTAMP;
UPDATE users SET email_confirmed_at = created_at;

-- Single-use confirmation links: the one sent at sign-up (`sign_up`, for the account's
-- own address) and the one sent to a new address (`change`, which becomes the account's
-- address only when confirmed). The link holds a random token; only its SHA-256 is kept.
CREATE TABLE email_confirmations (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    brand_id TEXT NOT NULL REFERENCES brands (id),
    purpose TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX email_confirmations_by_user ON email_confirmations (user_id);
