-- Entries are append-only: besides updates, deleting one is refused too. Deleting its whole
-- thread (or house) still removes it: by then the thread row is gone.
CREATE TRIGGER entries_never_deleted BEFORE DELETE ON entries
WHEN EXISTS (SELECT 1 FROM threads WHERE id = OLD.thread_id)
BEGIN
    SELECT RAISE(ABORT, 'entries are append-only');
END;
