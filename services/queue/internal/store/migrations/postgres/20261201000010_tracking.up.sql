-- Message tracking (contract §9): the queue's messages table is the read
-- model. A report now records the final status, the phone's name and when
-- (finished_at); attempts counts hand-outs; refund = 1 marks a cancelled
-- message whose quota is still to be given back to billing.
ALTER TABLE messages ADD COLUMN device text;

--bun:split

ALTER TABLE messages ADD COLUMN finished_at timestamptz;

--bun:split

ALTER TABLE messages ADD COLUMN attempts integer NOT NULL DEFAULT 0;

--bun:split

ALTER TABLE messages ADD COLUMN refund smallint NOT NULL DEFAULT 0;

--bun:split

-- History, newest first per account (the claim index covers only new messages).
CREATE INDEX messages_account_idx ON messages (account_id, pos);

--bun:split

-- Cancelled messages whose quota is still to be given back (few, short-lived).
CREATE INDEX messages_refund_idx ON messages (pos) WHERE refund = 1;
