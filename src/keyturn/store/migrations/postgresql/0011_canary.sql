-- Canary keys: real-looking keys that are always refused as unknown, and whose every use
-- is an event (key.canary_used).
ALTER TABLE keys ADD COLUMN canary boolean NOT NULL DEFAULT false;
