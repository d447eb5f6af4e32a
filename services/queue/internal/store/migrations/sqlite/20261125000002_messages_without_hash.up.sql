-- A message's hash is its position encrypted (libs/hashid), so the table no
-- longer stores hashes nor keeps the random hash index, whose inserts and
-- lookups touched one page per message. Messages stored before this keep
-- their rows; from now on they are handed out under their position's hash.
CREATE TABLE messages_by_pos (
    pos         INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL,
    phone       TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    accepted_at TIMESTAMP NOT NULL,
    claimed_at  TIMESTAMP
);

--bun:split

INSERT INTO messages_by_pos (pos, account_id, phone, text, status, accepted_at, claimed_at)
    SELECT pos, account_id, phone, text, status, accepted_at, claimed_at FROM messages;

--bun:split

DROP TABLE messages;

--bun:split

ALTER TABLE messages_by_pos RENAME TO messages;

--bun:split

CREATE INDEX messages_claim_idx ON messages (account_id, pos) WHERE status = 0;
