-- Webhook endpoints (contract §10). Times are Unix milliseconds. Secrets are
-- sealed (AES-256-GCM under a key from the deployment's keys bucket).
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id                  text    NOT NULL PRIMARY KEY,
    account_id          bigint  NOT NULL,
    url                 text    NOT NULL,
    events              text    NOT NULL DEFAULT '',
    batch               BOOLEAN NOT NULL DEFAULT false,
    enabled             BOOLEAN NOT NULL DEFAULT true,
    description         text    NOT NULL DEFAULT '',
    secret              text    NOT NULL,
    old_secret          text    NOT NULL DEFAULT '',
    old_secret_until_ms bigint  NOT NULL DEFAULT 0,
    failing_since_ms    bigint  NOT NULL DEFAULT 0,
    disabled_reason     text    NOT NULL DEFAULT '',
    created_ms          bigint  NOT NULL,
    updated_ms          bigint  NOT NULL
);

--bun:split

CREATE INDEX IF NOT EXISTS webhook_endpoints_account ON webhook_endpoints (account_id, created_ms);

--bun:split

-- Undelivered events, one row per (endpoint, event); a row is deleted once
-- delivered. next_attempt_ms is also the lease of a claimed row: a claim
-- pushes it past the attempt's timeout, so a crashed worker's rows come due
-- again by themselves. Only two indexes: the unique key (idempotent fan-out)
-- and the per-endpoint due order (claims, and which endpoints have work).
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id              INTEGER   PRIMARY KEY,
    endpoint_id     text      NOT NULL,
    event_id        text      NOT NULL,
    type            text      NOT NULL,
    event_ms        bigint    NOT NULL,
    payload         text      NOT NULL,
    attempts        integer   NOT NULL DEFAULT 0,
    next_attempt_ms bigint    NOT NULL,
    UNIQUE (endpoint_id, event_id)
);

--bun:split

CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, next_attempt_ms, id);

--bun:split

-- The deliveries log: one row per POST.
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id              INTEGER   PRIMARY KEY AUTOINCREMENT,
    endpoint_id     text      NOT NULL,
    webhook_id      text      NOT NULL,
    type            text      NOT NULL,
    events          integer   NOT NULL,
    attempt         integer   NOT NULL,
    delivered       BOOLEAN   NOT NULL,
    response_status integer,
    duration_ms     bigint    NOT NULL,
    error           text,
    at_ms           bigint    NOT NULL
);

--bun:split

CREATE INDEX IF NOT EXISTS webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);

--bun:split

CREATE INDEX IF NOT EXISTS webhook_attempts_at ON webhook_attempts (at_ms);
