-- Queue extras and the hand-out lease (contract §12).
-- send_at, valid_until: Unix milliseconds (NULL: at once, forever).
-- status -1 is "scheduled": new, but send_at is still ahead; such rows stay
-- out of the claim index until the sweeper promotes them to 0 when due, so
-- a backlog of future messages costs a claim nothing. Tracking shows -1 as new.
ALTER TABLE messages ADD COLUMN send_at bigint;

--bun:split

ALTER TABLE messages ADD COLUMN valid_until bigint;

--bun:split

-- lane: 0 high priority, 1 normal (the default). The claim index orders by
-- (lane, pos), so one index scan hands out high before normal, FIFO in each.
ALTER TABLE messages ADD COLUMN lane integer NOT NULL DEFAULT 1;

--bun:split

-- The claim index is rebuilt with the lane (and valid_until) in it. It reads
-- only waiting messages, but holds writes to messages while it builds: run
-- this migration in a quiet moment (docs/queue-extras.md, "Upgrading").
DROP INDEX IF EXISTS messages_claim_idx;

--bun:split

-- valid_until rides along so the claim need not read a row to skip an expired one.
CREATE INDEX messages_claim_idx ON messages (account_id, lane, pos, valid_until) WHERE status = 0;

--bun:split

-- Scheduled messages by due time (the sweeper promotes the due ones).
CREATE INDEX messages_scheduled_idx ON messages (send_at) WHERE status = -1;

--bun:split

-- Waiting messages with a lifetime, by its end (the sweeper expires them).
CREATE INDEX messages_valid_idx ON messages (valid_until) WHERE status <= 0 AND valid_until IS NOT NULL;

--bun:split

-- A claim's lease: 0 none (closed by its ack), 1 requeue, 2 expire when it
-- ends unreported; max_attempts: hand-outs before a requeue becomes expiry.
ALTER TABLE claims ADD COLUMN lease integer NOT NULL DEFAULT 0;

--bun:split

ALTER TABLE claims ADD COLUMN max_attempts integer NOT NULL DEFAULT 0;

--bun:split

-- Per-account lease settings (GET/PATCH /api/{token}/settings); no row: the
-- defaults (no lease).
CREATE TABLE account_settings (
    account_id    bigint PRIMARY KEY,
    lease_seconds integer NOT NULL,
    on_expiry     integer NOT NULL,
    max_attempts  integer NOT NULL
);
