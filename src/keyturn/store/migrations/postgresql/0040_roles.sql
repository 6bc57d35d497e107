-- Roles: a named set of scopes that keys hold by name. A key's effective scopes are its own
-- and those of its roles; the roles it holds are their names separated by spaces (empty:
-- none), read with the scopes they grant when the key is read.
CREATE TABLE roles (
    name        text PRIMARY KEY,
    scopes      text NOT NULL DEFAULT '',
    description text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
ALTER TABLE keys ADD COLUMN roles text NOT NULL DEFAULT '';
