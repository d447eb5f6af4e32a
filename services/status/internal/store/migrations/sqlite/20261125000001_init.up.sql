-- Delivery outcome of every accepted message. Keyed by the public hash; pos
-- is the FIFO position (stream sequence << 10 | item index) of the accepted
-- event, which makes ingest idempotent. WITHOUT ROWID keeps one B-tree for
-- the rows plus one for pos, instead of three.
CREATE TABLE deliveries (
    hash        TEXT     NOT NULL PRIMARY KEY,
    pos         BIGINT   NOT NULL UNIQUE,
    account_id  BIGINT   NOT NULL,
    status      SMALLINT NOT NULL DEFAULT 0,
    device      TEXT,
    reported_at TIMESTAMP
) WITHOUT ROWID;
