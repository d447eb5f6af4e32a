-- Payloads in a table of their own, one row per webhook_deliveries row (same
-- id), so that a claim (the lease and the attempt count) and a reschedule
-- update a small row instead of rewriting a chunk's payload of up to 500
-- events. Written with its delivery row, read when claimed, removed with it
-- (ON DELETE CASCADE).
CREATE TABLE IF NOT EXISTS webhook_payloads (
    id      INTEGER PRIMARY KEY REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    payload text   NOT NULL
);

--bun:split

INSERT INTO webhook_payloads (id, payload) SELECT id, payload FROM webhook_deliveries;

--bun:split

ALTER TABLE webhook_deliveries DROP COLUMN payload;
