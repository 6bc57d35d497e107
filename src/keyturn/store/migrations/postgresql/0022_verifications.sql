-- The verification log (keyturn.verifications): one row per decision, written in batches,
-- deleted after the retention.
CREATE TABLE verifications (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    request_id text NOT NULL,
    key_id     text,
    masked     text,
    outcome    text NOT NULL,
    client     text,
    method     text NOT NULL,
    path       text NOT NULL,
    user_agent text NOT NULL
);
CREATE INDEX verifications_at ON verifications (at);
CREATE INDEX verifications_key ON verifications (key_id, id);
CREATE INDEX verifications_request ON verifications (request_id);
