-- Webhooks and the transactional outbox: an event row is written in the transaction of
-- the change it describes; a worker fans it out to one delivery per subscribed webhook.
CREATE TABLE webhooks (
    id          text PRIMARY KEY,
    url         text NOT NULL,
    events      text NOT NULL,  -- space-separated event types, or '*'
    description text,
    secret      text NOT NULL,  -- whsec_...: signing needs it, so it is kept
    created_at  timestamptz NOT NULL
);

CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   text NOT NULL UNIQUE,  -- the webhook-id of every delivery of the event
    type       text NOT NULL,
    at         timestamptz NOT NULL,
    key_id     text,
    body       text NOT NULL,         -- the exact bytes signed and sent, on every attempt
    once       text UNIQUE,           -- time-driven events are recorded once per occasion
    dispatched boolean NOT NULL DEFAULT false
);
CREATE INDEX outbox_pending ON outbox (dispatched, id);

CREATE TABLE deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id   text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id     text NOT NULL,
    type         text NOT NULL,
    status       text NOT NULL DEFAULT 'pending',  -- pending, delivered, failed
    attempts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    next_at      timestamptz NOT NULL,
    locked_until timestamptz,
    last_at      timestamptz,
    last_status  integer,
    last_error   text,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX deliveries_due ON deliveries (status, next_at);
CREATE INDEX deliveries_log ON deliveries (webhook_id, id);
