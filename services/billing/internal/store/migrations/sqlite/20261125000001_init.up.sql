CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    token_digest TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
--bun:split
CREATE UNIQUE INDEX IF NOT EXISTS accounts_token_digest_idx ON accounts (token_digest);
--bun:split
CREATE TABLE IF NOT EXISTS subscriptions (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    plan TEXT NOT NULL,
    monthly_limit INTEGER NOT NULL,
    rate_limit_per_minute INTEGER NOT NULL,
    expires_at TIMESTAMP,
    started_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
--bun:split
CREATE TABLE IF NOT EXISTS usage (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    month TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, month)
);
