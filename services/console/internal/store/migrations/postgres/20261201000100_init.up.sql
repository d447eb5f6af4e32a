-- The console's merchant credentials, invites and sealed API tokens. Times
-- are Unix milliseconds.
CREATE TABLE IF NOT EXISTS console_credentials (
    account_id    bigint NOT NULL PRIMARY KEY,
    email         text   NOT NULL,
    password_hash text   NOT NULL,
    updated_ms    bigint NOT NULL
);

--bun:split

CREATE UNIQUE INDEX IF NOT EXISTS console_credentials_email ON console_credentials (email);

--bun:split

-- One-time invite links: only the SHA-256 of the code is kept.
CREATE TABLE IF NOT EXISTS console_invites (
    code_hash  text   NOT NULL PRIMARY KEY,
    account_id bigint NOT NULL,
    email      text   NOT NULL,
    expires_ms bigint NOT NULL,
    used_ms    bigint NOT NULL DEFAULT 0,
    created_ms bigint NOT NULL
);

--bun:split

CREATE INDEX IF NOT EXISTS console_invites_account ON console_invites (account_id);

--bun:split

-- API tokens the console issued (rotation), sealed with AES-256-GCM under a
-- key in the deployment's keys bucket, so the merchant can reveal them.
CREATE TABLE IF NOT EXISTS console_tokens (
    account_id bigint NOT NULL PRIMARY KEY,
    sealed     text   NOT NULL,
    updated_ms bigint NOT NULL
);
