-- The backlog gauges' counts, kept up to date by every transaction that
-- moves a message into or out of waiting (status 0 in messages) or
-- initiated (status 1 without an outcome): the gauges read the sum of
-- these rows instead of counting the backlog (store/gauges.go). A
-- transaction adds to one shard row, picked at random, as its last
-- statement, so replicas rarely wait for each other. Set from a full count
-- here, in the transaction that creates it; stop every queue replica of
-- an older version first (they would not count).
CREATE TABLE backlog_counts (
    shard     integer PRIMARY KEY,
    waiting   bigint  NOT NULL,
    initiated bigint  NOT NULL
);

--bun:split

INSERT INTO backlog_counts (shard, waiting, initiated) SELECT 0,
    (SELECT COUNT(*) FROM messages WHERE status = 0),
    (SELECT COUNT(*) FROM messages m WHERE m.status = 1 AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.pos = m.pos));

--bun:split

-- Shards 1 to 15 (store.backlogShards).
INSERT INTO backlog_counts (shard, waiting, initiated) SELECT g, 0, 0 FROM generate_series(1, 15) g;
