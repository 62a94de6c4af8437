-- Rate limits counted in slots (a sixtieth of the window each) instead of one row per
-- hit: counting a subject's hits reads at most 61 rows, however many there were. With one
-- row per hit, a busy subject's every request counted all its hits of the day.
-- The hits counted so far are not carried over: the windows start afresh.
DROP TABLE rate_limit_hits;
CREATE TABLE rate_limit_slots (
    bucket TEXT NOT NULL,
    subject TEXT NOT NULL,
    slot_start TIMESTAMP NOT NULL,
    hits BIGINT NOT NULL,
    PRIMARY KEY (bucket, subject, slot_start)
);
