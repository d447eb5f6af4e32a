-- Message tracking (contract §9): the queue is the read model. attempts
-- counts hand-outs; refund = 1 marks a cancelled message whose quota is
-- still to be given back to billing.
ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;

--bun:split

ALTER TABLE messages ADD COLUMN refund INTEGER NOT NULL DEFAULT 0;

--bun:split

-- How each message ended: written once (reports, cancels), never updated.
-- Appending to a narrow table costs a report less than rewriting the pages
-- of the message rows.
CREATE TABLE outcomes (
    pos         INTEGER PRIMARY KEY,
    status      INTEGER NOT NULL,
    device      TEXT,
    finished_at TIMESTAMP NOT NULL
);

--bun:split

-- History, newest first per account (the claim index covers only new messages).
CREATE INDEX IF NOT EXISTS messages_account_idx ON messages (account_id, pos);

--bun:split

-- Cancelled messages whose quota is still to be given back (few, short-lived).
CREATE INDEX IF NOT EXISTS messages_refund_idx ON messages (pos) WHERE refund = 1;
