-- Customer portal links (keyturn.portal): single-use, stored by the SHA-256 of the token.
CREATE TABLE portal_links (
    link_hash  text PRIMARY KEY,
    owner      text NOT NULL,
    policy     jsonb NOT NULL,  -- scopes, max_keys, max_lifetime, require_expiry
    return_url text,
    created_by text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX portal_links_expiry ON portal_links (expires_at);
