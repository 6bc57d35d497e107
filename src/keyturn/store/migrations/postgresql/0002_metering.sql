-- Rate limits ("100/second;10000/day"), usage credits with an optional refill, and
-- per-key request counts by outcome (batched, one row per key, UTC day and outcome).
ALTER TABLE keys ADD COLUMN rate_limits text NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN credits bigint;
ALTER TABLE keys ADD COLUMN refill text CHECK (refill IN ('daily', 'monthly'));
ALTER TABLE keys ADD COLUMN refill_amount bigint;
ALTER TABLE keys ADD COLUMN refilled_at timestamptz;

CREATE TABLE usage (
    key_id  text NOT NULL,
    day     text NOT NULL,  -- YYYY-MM-DD, UTC
    outcome text NOT NULL,
    count   bigint NOT NULL,
    PRIMARY KEY (key_id, day, outcome)
);
