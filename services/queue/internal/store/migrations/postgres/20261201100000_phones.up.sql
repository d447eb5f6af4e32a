-- Phones (contract §11): one row per account and device name. Times are
-- Unix milliseconds, 0 = never. last_seen_ms is the later of the two.
-- day (UTC, 2026-12-01) is the day sent_today / failed_today count.
-- offline: 1 once phone.offline fired (until phone.online); event_due: the
-- transition whose event is still to be published (1 offline, 2 online),
-- event_seq numbers the transitions (the events' ids).
CREATE TABLE phones (
    account_id     BIGINT  NOT NULL,
    device         TEXT    NOT NULL,
    last_pull_ms   BIGINT  NOT NULL DEFAULT 0,
    last_report_ms BIGINT  NOT NULL DEFAULT 0,
    last_seen_ms   BIGINT  NOT NULL DEFAULT 0,
    day            TEXT    NOT NULL DEFAULT '',
    sent_today     BIGINT  NOT NULL DEFAULT 0,
    failed_today   BIGINT  NOT NULL DEFAULT 0,
    offline        INTEGER NOT NULL DEFAULT 0,
    event_due      INTEGER NOT NULL DEFAULT 0,
    event_seq      BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, device)
);
