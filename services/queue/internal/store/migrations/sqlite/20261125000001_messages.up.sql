-- pos is the FIFO position (stream sequence << 10 | item index); as an
-- INTEGER PRIMARY KEY it is the rowid (64-bit).
CREATE TABLE messages (
    pos         INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    hash        TEXT    NOT NULL UNIQUE,
    phone       TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    accepted_at TIMESTAMP NOT NULL,
    claimed_at  TIMESTAMP
);

--bun:split

-- Claims read the oldest new messages of one account.
CREATE INDEX messages_claim_idx ON messages (account_id, pos) WHERE status = 0;
