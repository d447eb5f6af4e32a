-- The outbox of ReportedBatch events: written in the transaction that
-- changes the statuses, deleted once the reported stream acknowledged the
-- event (internal/apply). An identity is never reused: it is the event's
-- Nats-Msg-Id.
CREATE TABLE IF NOT EXISTS reported_outbox (
	id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	payload BYTEA NOT NULL,
	created_ms BIGINT NOT NULL
);
