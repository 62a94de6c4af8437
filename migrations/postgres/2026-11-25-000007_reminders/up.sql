-- Renewal reminders: one row per certificate and threshold (90, 30, 7 days before
-- expiry) once it is handled, so each reminder goes out once, whatever the workers.
CREATE TABLE renewal_reminders (
    certificate_id TEXT NOT NULL REFERENCES certificates (id),
    threshold_days INTEGER NOT NULL CHECK (threshold_days IN (90, 30, 7)),
    sent_at TIMESTAMP NOT NULL,
    PRIMARY KEY (certificate_id, threshold_days)
);
