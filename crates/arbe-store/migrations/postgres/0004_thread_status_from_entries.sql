-- A thread's status is its latest status entry's: set in the same statement as the append.
CREATE FUNCTION arbe_thread_status_from_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE threads SET status = NEW.body->>'status', updated_at = NEW.created_at WHERE id = NEW.thread_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER entries_thread_status AFTER INSERT ON entries
FOR EACH ROW WHEN (NEW.kind = 'signal.thread.status') EXECUTE FUNCTION arbe_thread_status_from_entry();
