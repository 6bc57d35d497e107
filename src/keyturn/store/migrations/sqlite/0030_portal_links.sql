-- Customer portal links (keyturn.portal): single-use, stored by the SHA-256 of the token.
CREATE TABLE portal_links (
    link_hash  TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    policy     TEXT NOT NULL,  -- JSON: scopes, max_keys, max_lifetime, require_expiry
    return_url TEXT,
    created_by TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used_at    REAL
);
CREATE INDEX portal_links_expiry ON portal_links (expires_at);
