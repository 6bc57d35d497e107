-- Owners as identities: limits shared by all of an owner's keys (rate limits counted per
-- owner, credits spent from one balance), and metadata. Times are Unix seconds (REAL).
CREATE TABLE owners (
    owner         TEXT PRIMARY KEY,
    rate_limits   TEXT NOT NULL DEFAULT '',
    credits       INTEGER,
    refill        TEXT,
    refill_amount INTEGER,
    refilled_at   REAL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
