-- Per-house data keys (DEKs) for arbe-vault, stored only wrapped by a master key (KEK).
-- kek_id names the master key that wrapped the row, so a master-key rotation that stops
-- halfway leaves every row openable with one of the two keys, and running it again finishes.
CREATE TABLE house_keys (
    house_id     UUID NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    version      BIGINT NOT NULL CHECK (version >= 1),
    wrapped_key  BYTEA NOT NULL,
    nonce        BYTEA NOT NULL,
    kek_id       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (house_id, version)
);
CREATE INDEX house_keys_kek ON house_keys (kek_id);
CREATE INDEX secret_versions_key ON secret_versions (key_version);
