-- Entries are append-only: besides updates, deleting one is refused too. Deleting its whole
-- thread (or house) still removes it: by then the thread row is gone.
CREATE FUNCTION arbe_entries_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM threads WHERE id = OLD.thread_id) THEN
        RAISE EXCEPTION 'entries are append-only';
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER entries_never_deleted BEFORE DELETE ON entries
FOR EACH ROW EXECUTE FUNCTION arbe_entries_never_deleted();
