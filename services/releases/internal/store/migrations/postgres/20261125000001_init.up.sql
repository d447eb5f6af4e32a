CREATE TABLE release_versions (
    version_code  BIGINT      PRIMARY KEY,
    version       TEXT        NOT NULL,
    release_notes TEXT        NOT NULL DEFAULT '',
    file_size     BIGINT      NOT NULL,
    sha256        TEXT        NOT NULL,
    object_name   TEXT        NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL,
    downloads     BIGINT      NOT NULL DEFAULT 0
);
--bun:split
CREATE TABLE release_active (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    version_code BIGINT  NOT NULL REFERENCES release_versions (version_code) ON DELETE CASCADE
);
