-- Rows keyed by FIFO position (the rowid) instead of by hash. Messages handed
-- out together sit side by side, so settling a phone's report rewrites a few
-- pages instead of one random page per message (hashes are random). The
-- hash index only serves lookups and never changes after ingest.
CREATE TABLE deliveries_by_pos (
    pos         INTEGER  PRIMARY KEY,
    hash        TEXT     NOT NULL UNIQUE,
    account_id  BIGINT   NOT NULL,
    status      SMALLINT NOT NULL DEFAULT 0,
    device      TEXT,
    reported_at TIMESTAMP
);

--bun:split

INSERT INTO deliveries_by_pos (pos, hash, account_id, status, device, reported_at)
    SELECT pos, hash, account_id, status, device, reported_at FROM deliveries;

--bun:split

DROP TABLE deliveries;

--bun:split

ALTER TABLE deliveries_by_pos RENAME TO deliveries;
