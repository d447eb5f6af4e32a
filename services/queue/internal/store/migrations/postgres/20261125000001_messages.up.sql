-- pos is the FIFO position (stream sequence << 10 | item index).
CREATE TABLE messages (
    pos         bigint      PRIMARY KEY,
    account_id  bigint      NOT NULL,
    hash        text        NOT NULL UNIQUE,
    phone       text        NOT NULL,
    text        text        NOT NULL,
    status      smallint    NOT NULL DEFAULT 0,
    accepted_at timestamptz NOT NULL,
    claimed_at  timestamptz
);

--bun:split

-- Claims read the oldest new messages of one account.
CREATE INDEX messages_claim_idx ON messages (account_id, pos) WHERE status = 0;
