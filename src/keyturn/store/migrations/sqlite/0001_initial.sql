-- Keys are stored by hash only; times are Unix seconds (REAL) in UTC.
CREATE TABLE keys (
    id           TEXT PRIMARY KEY,
    key_hash     TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    start        TEXT NOT NULL,
    "end"        TEXT NOT NULL,
    name         TEXT NOT NULL,
    owner        TEXT,
    scopes       TEXT NOT NULL DEFAULT '',  -- space-separated scope tokens
    metadata     TEXT NOT NULL DEFAULT '{}',
    created_at   REAL NOT NULL,
    expires_at   REAL,
    revoked_at   REAL,
    disabled     INTEGER NOT NULL DEFAULT 0,
    last_used_at REAL,
    replaced_by  TEXT,
    replaces     TEXT,
    grace_until  REAL
);
CREATE INDEX keys_owner ON keys (owner);
CREATE INDEX keys_created ON keys (created_at, id);

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    key_id  TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_key ON audit (key_id, id);
