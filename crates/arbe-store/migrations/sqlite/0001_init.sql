-- arbe schema, SQLite flavour. Ids are 16-byte UUID blobs, times RFC 3339 text, JSON text.
-- Keep in step with migrations/postgres/0001_init.sql: the same tables, columns and rules.

CREATE TABLE houses (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE members (
    id          BLOB PRIMARY KEY NOT NULL,
    house_id    BLOB NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'writer', 'reader')),
    created_at  TEXT NOT NULL,
    UNIQUE (house_id, name)
);

CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY NOT NULL,
    member_id    BLOB NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    house_id     BLOB NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    secret_hash  BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX api_keys_member ON api_keys (member_id);

-- Secret metadata. There is no plaintext column anywhere: values live only as ciphertext in
-- secret_versions, sealed by arbe-vault.
CREATE TABLE secrets (
    id          BLOB PRIMARY KEY NOT NULL,
    house_id    BLOB NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    audience    TEXT NOT NULL CHECK (audience IN ('environment', 'capability')),
    shared      INTEGER NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    author_id   BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    rotated_at  TEXT,
    UNIQUE (house_id, name)
);

CREATE TABLE secret_versions (
    secret_id    BLOB NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    ciphertext   BLOB NOT NULL,
    nonce        BLOB NOT NULL,
    key_version  INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (secret_id, version)
);

CREATE TABLE sandboxes (
    id              BLOB PRIMARY KEY NOT NULL,
    house_id        BLOB NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    runtime         TEXT NOT NULL,
    external_id     TEXT,
    name            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('provisioning', 'started', 'stopped', 'destroyed', 'error')),
    image           TEXT,
    resources       TEXT NOT NULL,
    labels          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    last_active_at  TEXT NOT NULL,
    UNIQUE (house_id, name)
);
CREATE INDEX sandboxes_runtime_state ON sandboxes (runtime, state, last_active_at);

CREATE TABLE environments (
    id                      BLOB PRIMARY KEY NOT NULL,
    house_id                BLOB NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    author_id               BLOB NOT NULL,
    name                    TEXT NOT NULL,
    runtime                 TEXT NOT NULL,
    sandbox_id              BLOB NOT NULL REFERENCES sandboxes (id),
    default_repo            TEXT,
    allowed_repos           TEXT NOT NULL,
    github_installation_id  INTEGER,
    secret_bindings         TEXT NOT NULL,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    deleted_at              TEXT
);
-- Names are unique per house without regard to case, among live (not soft-deleted) rows.
CREATE UNIQUE INDEX environments_live_name ON environments (house_id, lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE agents (
    id             BLOB PRIMARY KEY NOT NULL,
    house_id       BLOB NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    model          TEXT NOT NULL,
    system_prompt  TEXT NOT NULL,
    is_default     INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (house_id, name)
);
CREATE UNIQUE INDEX agents_one_default ON agents (house_id) WHERE is_default;

CREATE TABLE threads (
    id                    BLOB PRIMARY KEY NOT NULL,
    house_id              BLOB NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    parent_ref            TEXT NOT NULL,
    author_id             BLOB NOT NULL,
    environment_id        BLOB REFERENCES environments (id) ON DELETE SET NULL,
    environment_snapshot  TEXT,
    model_override        TEXT,
    agent_ids             TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('idle', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    last_seq              INTEGER NOT NULL DEFAULT 0,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX threads_house ON threads (house_id, id);

-- Append-only. seq is 1, 2, 3, … per thread: an insert takes threads.last_seq + 1 in the same
-- statement, and the trigger below moves last_seq on, so concurrent appends never share or skip
-- a number (SQLite runs one writer at a time; the unique key is the backstop).
CREATE TABLE entries (
    id          BLOB PRIMARY KEY NOT NULL,
    thread_id   BLOB NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (thread_id, seq)
);

CREATE TRIGGER entries_advance_seq AFTER INSERT ON entries
BEGIN
    UPDATE threads SET last_seq = NEW.seq WHERE id = NEW.thread_id;
END;

CREATE TRIGGER entries_append_only BEFORE UPDATE ON entries
BEGIN
    SELECT RAISE(ABORT, 'entries are append-only');
END;

CREATE TABLE dispatch_jobs (
    id                BLOB PRIMARY KEY NOT NULL,
    house_id          BLOB NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    thread_id         BLOB NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    trigger_seq       INTEGER NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  TEXT,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX dispatch_jobs_state ON dispatch_jobs (state, id);
CREATE INDEX dispatch_jobs_thread ON dispatch_jobs (thread_id);
