-- Desktop agent authentication: single-use challenges the agent signs with the key of
-- the certificate on the device.
CREATE TABLE agent_challenges (
    nonce TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX agent_challenges_by_expiry ON agent_challenges (expires_at);
