-- Messages accepted with a sendAt later than their acceptance keep their
-- row here rather than in deliveries, so that a backlog of future messages
-- does not sit between the rows that reports of due messages settle (pos
-- order): those stay on as few pages as without it. Same columns as
-- deliveries; MarkFinal and Statuses read both. Rows stored before this
-- stay in deliveries.
CREATE TABLE deliveries_later (
    pos         INTEGER  PRIMARY KEY,
    account_id  BIGINT   NOT NULL,
    status      SMALLINT NOT NULL DEFAULT 0,
    device      TEXT,
    reported_at TIMESTAMP
);
