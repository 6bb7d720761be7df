-- Delivery of the outbox to webhooks, leases for the tasks one server runs at a time, and the
-- answers of requests sent with an Idempotency-Key.

-- A task that runs on one server at a time (the webhook relay, the overdue scan) is held by a
-- lease: taken when free or expired, renewed by its holder. `token` grows by one at each change
-- of holder: a write that checks it (the fence) refuses a holder that lost the lease.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    acquired_at BIGINT NOT NULL
);

-- Receivers of the outbox's events (Standard Webhooks). `secret` signs (shown once when made
-- or rotated); after a rotation `previous_secret` signs too until `previous_until`.
-- `start_after`: the outbox id when it was made; it receives the events after it.
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_until BIGINT,
    start_after BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    rotated_at BIGINT,
    disabled_at BIGINT
);

-- One row per (webhook, event): retried with back-off until the receiver answers 2xx.
-- `claim` names the relay pass that is sending it (until `next_attempt_at`).
CREATE TABLE webhook_deliveries (
    webhook_id BIGINT NOT NULL REFERENCES webhooks (id),
    outbox_id BIGINT NOT NULL REFERENCES outbox (id),
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claim TEXT,
    delivered_at BIGINT,
    last_status INTEGER,
    last_error TEXT,
    PRIMARY KEY (webhook_id, outbox_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX webhook_deliveries_claim ON webhook_deliveries (claim);

-- How far the relay has fanned the outbox out to the webhooks.
CREATE TABLE webhook_relay (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    fanned_out BIGINT NOT NULL
);
INSERT INTO webhook_relay (one, fanned_out) VALUES (1, 0);

-- The first answer to a request sent with an Idempotency-Key, per token; `status` is NULL while
-- the first request runs. Kept 24 hours.
CREATE TABLE idempotency_keys (
    token_id TEXT NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    status INTEGER,
    content_type TEXT,
    response TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
