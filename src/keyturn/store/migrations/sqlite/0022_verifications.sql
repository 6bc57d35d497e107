-- The verification log (keyturn.verifications): one row per decision, written in batches,
-- deleted after the retention. Times are Unix seconds (REAL).
CREATE TABLE verifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         REAL NOT NULL,
    request_id TEXT NOT NULL,
    key_id     TEXT,
    masked     TEXT,
    outcome    TEXT NOT NULL,
    client     TEXT,
    method     TEXT NOT NULL,
    path       TEXT NOT NULL,
    user_agent TEXT NOT NULL
);
CREATE INDEX verifications_at ON verifications (at);
CREATE INDEX verifications_key ON verifications (key_id, id);
CREATE INDEX verifications_request ON verifications (request_id);
