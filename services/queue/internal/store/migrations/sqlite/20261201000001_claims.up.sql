-- A claim handed out to an ingress that promised to confirm it (ClaimAck)
-- once its answer was written. Until then it is recorded here, in the same
-- transaction that marked its messages initiated; an ack deletes the row;
-- a claim still here after expires_ms (Unix milliseconds) is swept: its
-- messages still initiated under it go back to new at their FIFO place.
-- positions: the claimed positions, ascending, as unsigned varint deltas.
CREATE TABLE claims (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    positions  BLOB    NOT NULL
);

--bun:split

CREATE INDEX claims_expires_idx ON claims (expires_ms);

--bun:split

-- The claim a message was last handed out under (NULL: never, or handed out
-- without confirmation). Set by the claim's own UPDATE, so it costs no write.
ALTER TABLE messages ADD COLUMN claim_id INTEGER;
