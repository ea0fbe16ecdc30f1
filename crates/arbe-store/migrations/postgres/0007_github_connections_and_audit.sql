-- GitHub App installations a house connected through a verified flow: an owner of the house
-- proved, with their GitHub user token, that they can reach the installation. Only these may
-- be named on the house's environments.
CREATE TABLE github_connections (
    house_id         UUID NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    installation_id  BIGINT NOT NULL CHECK (installation_id > 0),
    account_login    TEXT NOT NULL,
    github_login     TEXT NOT NULL,
    connected_by     UUID REFERENCES users (id) ON DELETE SET NULL,
    connected_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (house_id, installation_id)
);

-- The audit trail: who changed what and when, never a value. House events carry the house;
-- a user's own API keys act in every house, so their events carry the user instead.
CREATE TABLE audit_events (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    house_id         UUID REFERENCES houses (id) ON DELETE CASCADE,
    subject_user_id  UUID,
    actor_user_id    UUID,
    actor_name       TEXT NOT NULL,
    action           TEXT NOT NULL,
    target           TEXT NOT NULL,
    at               TIMESTAMPTZ NOT NULL,
    CHECK (house_id IS NOT NULL OR subject_user_id IS NOT NULL)
);
CREATE INDEX audit_events_by_house ON audit_events (house_id, seq);
CREATE INDEX audit_events_by_subject ON audit_events (subject_user_id, seq);

CREATE FUNCTION arbe_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Deleting a whole house still removes its events: by then the house row is gone.
    IF TG_OP = 'DELETE' AND OLD.house_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM houses WHERE id = OLD.house_id) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only';
END
$$;

CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION arbe_audit_append_only();
