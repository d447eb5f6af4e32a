-- Message tracking (contract §9): the queue is the read model. attempts
-- counts hand-outs; refund = 1 marks a cancelled message whose quota is
-- still to be given back to billing.
ALTER TABLE messages ADD COLUMN attempts integer NOT NULL DEFAULT 0;

--bun:split

ALTER TABLE messages ADD COLUMN refund smallint NOT NULL DEFAULT 0;

--bun:split

-- How each message ended: written once (reports, cancels), never updated.
-- A narrow insert-only table costs a report far less than rewriting the
-- message row (on PostgreSQL a new version of the whole row, text included,
-- and an entry in each of its indexes).
CREATE TABLE outcomes (
    pos         bigint      PRIMARY KEY,
    status      smallint    NOT NULL,
    device      text,
    finished_at timestamptz NOT NULL
);

--bun:split

-- History, newest first per account (the claim index covers only new messages).
-- On a large table, create it beforehand without blocking writes:
-- CREATE INDEX CONCURRENTLY messages_account_idx ON messages (account_id, pos);
CREATE INDEX IF NOT EXISTS messages_account_idx ON messages (account_id, pos);

--bun:split

-- Cancelled messages whose quota is still to be given back (few, short-lived).
CREATE INDEX IF NOT EXISTS messages_refund_idx ON messages (pos) WHERE refund = 1;
