-- A row of webhook_deliveries may carry several events of one producer
-- message for a "batch": true endpoint (a chunk): events is how many, ids
-- their event ids (comma list, in order; '' for a single event, whose id is
-- event_id), payload their batch items. One row per chunk instead of one per
-- event: fan-out, claim and delete cost a row write per chunk.
ALTER TABLE webhook_deliveries ADD COLUMN events integer NOT NULL DEFAULT 1;

--bun:split

ALTER TABLE webhook_deliveries ADD COLUMN ids text NOT NULL DEFAULT '';
