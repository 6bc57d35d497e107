-- Keys are stored by hash only. The same tables as SQLite's, in PostgreSQL's own types.
CREATE TABLE keys (
    id           text PRIMARY KEY,
    key_hash     text NOT NULL UNIQUE,
    prefix       text NOT NULL,
    start        text NOT NULL,
    "end"        text NOT NULL,
    name         text NOT NULL,
    owner        text,
    scopes       text NOT NULL DEFAULT '',  -- space-separated scope tokens
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    disabled     boolean NOT NULL DEFAULT false,
    last_used_at timestamptz,
    replaced_by  text,
    replaces     text,
    grace_until  timestamptz
);
CREATE INDEX keys_owner ON keys (owner);
CREATE INDEX keys_created ON keys (created_at, id);

CREATE TABLE audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    key_id  text,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_key ON audit (key_id, id);
