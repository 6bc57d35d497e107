-- Usage-aware rotation (keyturn.admin.KeyAdmin.rotate with a quiet period): the old key's
-- grace ends once it has gone unused for grace_quiet_seconds, and at grace_max at the
-- latest. grace_until stays the end as things stand; each flush of last-used times moves
-- it later for a key still in use (store.sql.EXTEND_QUIET_GRACE). Times are Unix seconds.
ALTER TABLE keys ADD COLUMN grace_quiet_seconds INTEGER;
ALTER TABLE keys ADD COLUMN grace_max REAL;
CREATE INDEX keys_quiet_grace ON keys (grace_until) WHERE grace_quiet_seconds IS NOT NULL;
