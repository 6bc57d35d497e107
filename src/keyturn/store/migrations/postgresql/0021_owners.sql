-- Owners as identities: limits shared by all of an owner's keys (rate limits counted per
-- owner, credits spent from one balance), and metadata.
CREATE TABLE owners (
    owner         text PRIMARY KEY,
    rate_limits   text NOT NULL DEFAULT '',
    credits       bigint,
    refill        text CHECK (refill IN ('daily', 'monthly')),
    refill_amount bigint,
    refilled_at   timestamptz,
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
