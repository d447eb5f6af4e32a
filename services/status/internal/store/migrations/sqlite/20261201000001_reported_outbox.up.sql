-- The outbox of ReportedBatch events: written in the transaction that
-- changes the statuses, deleted once the reported stream acknowledged the
-- event (internal/apply). AUTOINCREMENT: an id is never reused, since it is
-- the event's Nats-Msg-Id.
CREATE TABLE IF NOT EXISTS reported_outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	payload BLOB NOT NULL,
	created_ms INTEGER NOT NULL
);
