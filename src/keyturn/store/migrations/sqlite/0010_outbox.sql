-- Webhooks and the transactional outbox: an event row is written in the transaction of
-- the change it describes; a worker fans it out to one delivery per subscribed webhook.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,  -- space-separated event types, or '*'
    description TEXT,
    secret      TEXT NOT NULL,  -- whsec_...: signing needs it, so it is kept
    created_at  REAL NOT NULL
);

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT NOT NULL UNIQUE,  -- the webhook-id of every delivery of the event
    type       TEXT NOT NULL,
    at         REAL NOT NULL,
    key_id     TEXT,
    body       TEXT NOT NULL,         -- the exact bytes signed and sent, on every attempt
    once       TEXT UNIQUE,           -- time-driven events are recorded once per occasion
    dispatched INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_pending ON outbox (dispatched, id);

CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',  -- pending, delivered, failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    next_at      REAL NOT NULL,
    locked_until REAL,
    last_at      REAL,
    last_status  INTEGER,
    last_error   TEXT,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_at);
CREATE INDEX deliveries_log ON deliveries (webhook_id, id);
