-- The backlog gauges' counts, kept up to date by every transaction that
-- moves a message into or out of waiting (status 0 in messages) or
-- initiated (status 1 without an outcome): the gauges read this one row
-- instead of counting the backlog (store/gauges.go). Set from a full count
-- here, in the transaction that creates it.
CREATE TABLE backlog_counts (
    shard     INTEGER PRIMARY KEY,
    waiting   INTEGER NOT NULL,
    initiated INTEGER NOT NULL
);

--bun:split

INSERT INTO backlog_counts (shard, waiting, initiated) SELECT 0,
    (SELECT COUNT(*) FROM messages WHERE status = 0),
    (SELECT COUNT(*) FROM messages m WHERE m.status = 1 AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.pos = m.pos));
