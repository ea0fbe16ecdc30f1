-- Users (a person or a service account) with memberships in one or more houses; API keys
-- belong to users; per-house quota overrides. Keep in step with postgres/0005.
--
-- Each member of an earlier release becomes a user with the member's id and name (suffixed
-- with part of its id where two houses had members of one name) and that user's membership
-- in its house; each API key moves to the user of the member it acted as.

CREATE TABLE users (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

INSERT INTO users (id, name, created_at)
SELECT m.id,
       CASE WHEN (SELECT count(*) FROM members o WHERE o.name = m.name) = 1 THEN m.name
            ELSE substr(m.name, 1, 54) || '-' || lower(substr(hex(m.id), 25, 8)) END,
       m.created_at
FROM members m;

CREATE TABLE members_new (
    id          BLOB PRIMARY KEY NOT NULL,
    house_id    BLOB NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'writer', 'reader')),
    created_at  TEXT NOT NULL,
    UNIQUE (house_id, user_id)
);
INSERT INTO members_new (id, house_id, user_id, role, created_at)
SELECT id, house_id, id, role, created_at FROM members;

CREATE TABLE api_keys_new (
    id            BLOB PRIMARY KEY NOT NULL,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label         TEXT NOT NULL,
    secret_hash   BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
INSERT INTO api_keys_new (id, user_id, label, secret_hash, created_at, revoked_at)
SELECT id, member_id, label, secret_hash, created_at, revoked_at FROM api_keys;

-- api_keys referred to members: drop it first, so dropping members deletes nothing else.
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;
CREATE INDEX api_keys_user ON api_keys (user_id);
DROP TABLE members;
ALTER TABLE members_new RENAME TO members;
CREATE INDEX members_user ON members (user_id);

-- The operator's per-house overrides of the default quotas; NULL takes the default.
ALTER TABLE houses ADD COLUMN quota_sandboxes INTEGER;
ALTER TABLE houses ADD COLUMN quota_concurrent_dispatches INTEGER;
ALTER TABLE houses ADD COLUMN quota_workspace_bytes INTEGER;
