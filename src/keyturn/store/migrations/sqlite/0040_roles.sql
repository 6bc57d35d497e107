-- Roles: a named set of scopes that keys hold by name. A key's effective scopes are its own
-- and those of its roles; the roles it holds are their names separated by spaces (empty:
-- none), read with the scopes they grant when the key is read. Times are Unix seconds.
CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    scopes      TEXT NOT NULL DEFAULT '',
    description TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
ALTER TABLE keys ADD COLUMN roles TEXT NOT NULL DEFAULT '';
