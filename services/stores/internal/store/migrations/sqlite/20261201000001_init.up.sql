-- Store connections (contract §13). Times are Unix milliseconds. Secrets are
-- sealed (AES-256-GCM under a key from the deployment's keys bucket).
CREATE TABLE IF NOT EXISTS stores (
    id              text    NOT NULL PRIMARY KEY,
    account_id      bigint  NOT NULL,
    platform        text    NOT NULL,
    name            text    NOT NULL,
    secret          text    NOT NULL,
    default_country text    NOT NULL,
    admin_phones    text    NOT NULL DEFAULT '[]',
    templates       text    NOT NULL DEFAULT '{}',
    phone_from      text    NOT NULL DEFAULT 'billing,shipping',
    created_ms      bigint  NOT NULL,
    updated_ms      bigint  NOT NULL
);

--bun:split

CREATE INDEX IF NOT EXISTS stores_account ON stores (account_id, created_ms);

--bun:split

-- Opt-outs per account (token), E.164.
CREATE TABLE IF NOT EXISTS store_opt_outs (
    account_id bigint NOT NULL,
    phone      text   NOT NULL,
    created_ms bigint NOT NULL,
    PRIMARY KEY (account_id, phone)
);

--bun:split

-- Platform deliveries seen (dedupe by the platform's delivery id, 24 h).
-- done: its decisions are logged; a delivery not done is resumed.
CREATE TABLE IF NOT EXISTS store_deliveries (
    store_id    text    NOT NULL,
    delivery_id text    NOT NULL,
    received_ms bigint  NOT NULL,
    done        BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (store_id, delivery_id)
);

--bun:split

-- One row per SMS an order and event may cause (send_key: order, template
-- key, recipient): the at-most-once record. state: pending (month set once
-- quota is reserved; grp/idx/account_id/phone/body then name the stream
-- message and place it is published in, so a retry republishes exactly
-- it), queued (hash set), skipped.
CREATE TABLE IF NOT EXISTS store_sends (
    store_id    text    NOT NULL,
    send_key    text    NOT NULL,
    delivery_id text    NOT NULL,
    state       text    NOT NULL,
    month       text    NOT NULL DEFAULT '',
    grp         text    NOT NULL DEFAULT '',
    idx         integer NOT NULL DEFAULT 0,
    account_id  bigint  NOT NULL DEFAULT 0,
    phone       text    NOT NULL DEFAULT '',
    body        text    NOT NULL DEFAULT '',
    hash        text    NOT NULL DEFAULT '',
    created_ms  bigint  NOT NULL,
    PRIMARY KEY (store_id, send_key)
);

--bun:split

CREATE INDEX IF NOT EXISTS store_sends_grp ON store_sends (grp);

--bun:split

-- What is known of an order from earlier events (refunds and fulfillments
-- carry no customer), JSON.
CREATE TABLE IF NOT EXISTS store_orders (
    store_id   text   NOT NULL,
    order_id   text   NOT NULL,
    data       text   NOT NULL,
    updated_ms bigint NOT NULL,
    PRIMARY KEY (store_id, order_id)
);

--bun:split

-- The decisions log, newest first by id.
CREATE TABLE IF NOT EXISTS store_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    store_id     text    NOT NULL,
    delivery_id  text    NOT NULL,
    topic        text    NOT NULL,
    event        text    NOT NULL DEFAULT '',
    order_number text    NOT NULL DEFAULT '',
    recipient    text    NOT NULL DEFAULT '',
    decision     text    NOT NULL,
    reason       text    NOT NULL DEFAULT '',
    hash         text    NOT NULL DEFAULT '',
    at_ms        bigint  NOT NULL
);

--bun:split

CREATE INDEX IF NOT EXISTS store_log_store ON store_log (store_id, id);

--bun:split

CREATE INDEX IF NOT EXISTS store_log_at ON store_log (at_ms);
