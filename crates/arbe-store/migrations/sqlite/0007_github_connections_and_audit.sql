-- GitHub App installations a house connected through a verified flow: an owner of the house
-- proved, with their GitHub user token, that they can reach the installation. Only these may
-- be named on the house's environments.
CREATE TABLE github_connections (
    house_id         BLOB NOT NULL REFERENCES houses (id) ON DELETE CASCADE,
    installation_id  INTEGER NOT NULL CHECK (installation_id > 0),
    account_login    TEXT NOT NULL,
    github_login     TEXT NOT NULL,
    connected_by     BLOB REFERENCES users (id) ON DELETE SET NULL,
    connected_at     TEXT NOT NULL,
    PRIMARY KEY (house_id, installation_id)
);

-- The audit trail: who changed what and when, never a value. House events carry the house;
-- a user's own API keys act in every house, so their events carry the user instead.
CREATE TABLE audit_events (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    house_id         BLOB REFERENCES houses (id) ON DELETE CASCADE,
    subject_user_id  BLOB,
    actor_user_id    BLOB,
    actor_name       TEXT NOT NULL,
    action           TEXT NOT NULL,
    target           TEXT NOT NULL,
    at               TEXT NOT NULL,
    CHECK (house_id IS NOT NULL OR subject_user_id IS NOT NULL)
);
CREATE INDEX audit_events_by_house ON audit_events (house_id, seq);
CREATE INDEX audit_events_by_subject ON audit_events (subject_user_id, seq);

CREATE TRIGGER audit_events_never_updated BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;

-- Deleting a whole house still removes its events: by then the house row is gone.
CREATE TRIGGER audit_events_never_deleted BEFORE DELETE ON audit_events
WHEN OLD.house_id IS NULL OR EXISTS (SELECT 1 FROM houses WHERE id = OLD.house_id)
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
