-- arbe schema, PostgreSQL flavour. Keep in step with migrations/sqlite/0001_init.sql:
-- the same tables, columns and rules, in native types.

CREATE TABLE houses (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE members (
    id          UUID PRIMARY KEY,
    house_id    UUID NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'writer', 'reader')),
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (house_id, name)
);

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    member_id    UUID NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    house_id     UUID NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_member ON api_keys (member_id);

-- Secret metadata. There is no plaintext column anywhere: values live only as ciphertext in
-- secret_versions, sealed by arbe-vault.
CREATE TABLE secrets (
    id          UUID PRIMARY KEY,
    house_id    UUID NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    audience    TEXT NOT NULL CHECK (audience IN ('environment', 'capability')),
    shared      BOOLEAN NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 1),
    author_id   UUID NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    rotated_at  TIMESTAMPTZ,
    UNIQUE (house_id, name)
);

CREATE TABLE secret_versions (
    secret_id    UUID NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    ciphertext   BYTEA NOT NULL,
    nonce        BYTEA NOT NULL,
    key_version  BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (secret_id, version)
);

CREATE TABLE sandboxes (
    id              UUID PRIMARY KEY,
    house_id        UUID NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    runtime         TEXT NOT NULL,
    external_id     TEXT,
    name            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('provisioning', 'started', 'stopped', 'destroyed', 'error')),
    image           TEXT,
    resources       JSONB NOT NULL,
    labels          JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    last_active_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (house_id, name)
);
CREATE INDEX sandboxes_runtime_state ON sandboxes (runtime, state, last_active_at);

CREATE TABLE environments (
    id                      UUID PRIMARY KEY,
    house_id                UUID NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    author_id               UUID NOT NULL,
    name                    TEXT NOT NULL,
    runtime                 TEXT NOT NULL,
    sandbox_id              UUID NOT NULL REFERENCES sandboxes (id),
    default_repo            TEXT,
    allowed_repos           JSONB NOT NULL,
    github_installation_id  BIGINT,
    secret_bindings         JSONB NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL,
    deleted_at              TIMESTAMPTZ
);
-- Names are unique per house without regard to case, among live (not soft-deleted) rows.
CREATE UNIQUE INDEX environments_live_name ON environments (house_id, lower(name)) WHERE deleted_at IS NULL;

CREATE TABLE agents (
    id             UUID PRIMARY KEY,
    house_id       UUID NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    model          TEXT NOT NULL,
    system_prompt  TEXT NOT NULL,
    is_default     BOOLEAN NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (house_id, name)
);
CREATE UNIQUE INDEX agents_one_default ON agents (house_id) WHERE is_default;

CREATE TABLE threads (
    id                    UUID PRIMARY KEY,
    house_id              UUID NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    parent_ref            TEXT NOT NULL,
    author_id             UUID NOT NULL,
    environment_id        UUID REFERENCES environments (id) ON DELETE SET NULL,
    environment_snapshot  JSONB,
    model_override        TEXT,
    agent_ids             JSONB NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('idle', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
    last_seq              BIGINT NOT NULL DEFAULT 0,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX threads_house ON threads (house_id, id);

-- Append-only. seq is 1, 2, 3, … per thread: an append moves threads.last_seq on and inserts
-- with the new value in one statement; the row lock on the thread orders concurrent appends,
-- and the unique key is the backstop.
CREATE TABLE entries (
    id          UUID PRIMARY KEY,
    thread_id   UUID NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    body        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (thread_id, seq)
);

CREATE FUNCTION entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'entries are append-only';
END;
$$;
CREATE TRIGGER entries_append_only BEFORE UPDATE ON entries
    FOR EACH ROW EXECUTE FUNCTION entries_append_only();

CREATE TABLE dispatch_jobs (
    id                UUID PRIMARY KEY,
    house_id          UUID NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    thread_id         UUID NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    trigger_seq       BIGINT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts          BIGINT NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  TIMESTAMPTZ,
    cancel_requested  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX dispatch_jobs_state ON dispatch_jobs (state, id);
CREATE INDEX dispatch_jobs_thread ON dispatch_jobs (thread_id);
