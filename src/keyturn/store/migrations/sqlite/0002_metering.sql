-- Rate limits ("100/second;10000/day"), usage credits with an optional refill, and
-- per-key request counts by outcome (batched, one row per key, UTC day and outcome).
ALTER TABLE keys ADD COLUMN rate_limits TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN credits INTEGER;
ALTER TABLE keys ADD COLUMN refill TEXT;
ALTER TABLE keys ADD COLUMN refill_amount INTEGER;
ALTER TABLE keys ADD COLUMN refilled_at REAL;

CREATE TABLE usage (
    key_id  TEXT NOT NULL,
    day     TEXT NOT NULL,  -- YYYY-MM-DD, UTC
    outcome TEXT NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (key_id, day, outcome)
);
