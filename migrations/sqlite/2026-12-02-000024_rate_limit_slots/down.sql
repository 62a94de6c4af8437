DROP TABLE rate_limit_slots;
CREATE TABLE rate_limit_hits (
    id TEXT PRIMARY KEY NOT NULL,
    bucket TEXT NOT NULL,
    subject TEXT NOT NULL,
    hit_at TIMESTAMP NOT NULL
);
CREATE INDEX rate_limit_hits_by_subject ON rate_limit_hits (bucket, subject, hit_at);
