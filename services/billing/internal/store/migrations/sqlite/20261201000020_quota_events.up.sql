-- Quota events (contract §10): which of quota.warning (1) and
-- quota.exhausted (2) fired this month (never reset, so each fires once),
-- and which of those are not published yet (the outbox the relay reads).
ALTER TABLE usage ADD COLUMN events_fired INTEGER NOT NULL DEFAULT 0;
--bun:split
ALTER TABLE usage ADD COLUMN events_due INTEGER NOT NULL DEFAULT 0;
