-- Delivery outcome of every accepted message. Keyed by the public hash; pos
-- is the FIFO position (stream sequence << 10 | item index) of the accepted
-- event, which makes ingest idempotent.
CREATE TABLE IF NOT EXISTS deliveries (
    hash        text        NOT NULL PRIMARY KEY,
    pos         bigint      NOT NULL UNIQUE,
    account_id  bigint      NOT NULL,
    status      smallint    NOT NULL DEFAULT 0,
    device      text,
    reported_at timestamptz
);
