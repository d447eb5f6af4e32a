-- A message's hash is its position encrypted (libs/hashid): ingress decodes
-- it, so the table no longer stores hashes nor keeps their random index.
CREATE TABLE deliveries_v3 (
    pos         INTEGER  PRIMARY KEY,
    account_id  BIGINT   NOT NULL,
    status      SMALLINT NOT NULL DEFAULT 0,
    device      TEXT,
    reported_at TIMESTAMP
);

--bun:split

INSERT INTO deliveries_v3 (pos, account_id, status, device, reported_at)
    SELECT pos, account_id, status, device, reported_at FROM deliveries;

--bun:split

DROP TABLE deliveries;

--bun:split

ALTER TABLE deliveries_v3 RENAME TO deliveries;
