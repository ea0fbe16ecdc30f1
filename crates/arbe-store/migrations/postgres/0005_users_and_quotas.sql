-- Users (a person or a service account) with memberships in one or more houses; API keys
-- belong to users; per-house quota overrides. Keep in step with sqlite/0005.
--
-- Each member of an earlier release becomes a user with the member's id and name (suffixed
-- with part of its id where two houses had members of one name) and that user's membership
-- in its house; each API key moves to the user of the member it acted as.

CREATE TABLE users (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL
);

INSERT INTO users (id, name, created_at)
SELECT id,
       CASE WHEN count(*) OVER (PARTITION BY name) = 1 THEN name
            ELSE left(name, 54) || '-' || substr(replace(id::text, '-', ''), 25, 8) END,
       created_at
FROM members;

ALTER TABLE members ADD COLUMN user_id UUID REFERENCES users (id) ON DELETE CASCADE;
UPDATE members SET user_id = id;
ALTER TABLE members ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE members DROP COLUMN name;
ALTER TABLE members ADD CONSTRAINT members_house_user UNIQUE (house_id, user_id);
CREATE INDEX members_user ON members (user_id);

ALTER TABLE api_keys ADD COLUMN user_id UUID REFERENCES users (id) ON DELETE CASCADE;
UPDATE api_keys SET user_id = member_id;
ALTER TABLE api_keys ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE api_keys DROP COLUMN member_id;
ALTER TABLE api_keys DROP COLUMN house_id;
ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMPTZ;
CREATE INDEX api_keys_user ON api_keys (user_id);

-- The operator's per-house overrides of the default quotas; NULL takes the default.
ALTER TABLE houses ADD COLUMN quota_sandboxes BIGINT;
ALTER TABLE houses ADD COLUMN quota_concurrent_dispatches BIGINT;
ALTER TABLE houses ADD COLUMN quota_workspace_bytes BIGINT;
