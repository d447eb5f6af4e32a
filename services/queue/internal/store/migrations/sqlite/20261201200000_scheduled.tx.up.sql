-- Scheduled messages (sendAt ahead) live apart from messages until due, so
-- that a backlog of future messages does not sit between the due rows a
-- claim, a report and a status update touch (pos order): those rows stay
-- on as few pages as without it. Same columns as messages; status is -1.
-- The sweeper (Promote) moves due rows into messages at their own pos
-- (their FIFO place); a cancel or an expiry moves a row out as final.
-- Tracking reads both tables. Run in one transaction with the move below.
CREATE TABLE scheduled (
    pos         INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    phone       TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    status      INTEGER NOT NULL DEFAULT -1,
    accepted_at TIMESTAMP NOT NULL,
    claimed_at  TIMESTAMP,
    claim_id    INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    refund      INTEGER NOT NULL DEFAULT 0,
    send_at     INTEGER NOT NULL,
    valid_until INTEGER,
    lane        INTEGER NOT NULL DEFAULT 1
);

--bun:split

-- Due ones first (Promote).
CREATE INDEX scheduled_send_idx ON scheduled (send_at);

--bun:split

-- Those with a lifetime, by its end (ExpireDue).
CREATE INDEX scheduled_valid_idx ON scheduled (valid_until) WHERE valid_until IS NOT NULL;

--bun:split

-- History, newest first per account.
CREATE INDEX scheduled_account_idx ON scheduled (account_id, pos);

--bun:split

INSERT INTO scheduled (pos, account_id, phone, text, status, accepted_at, claimed_at, claim_id, attempts, refund, send_at, valid_until, lane)
    SELECT pos, account_id, phone, text, -1, accepted_at, claimed_at, claim_id, attempts, refund, COALESCE(send_at, 0), valid_until, lane
    FROM messages WHERE status = -1;

--bun:split

DELETE FROM messages WHERE status = -1;

--bun:split

DROP INDEX IF EXISTS messages_scheduled_idx;
