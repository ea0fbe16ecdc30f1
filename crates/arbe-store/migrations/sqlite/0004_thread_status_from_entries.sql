-- A thread's status is its latest status entry's: set in the same statement as the append.
CREATE TRIGGER entries_thread_status AFTER INSERT ON entries
WHEN NEW.kind = 'signal.thread.status'
BEGIN
    UPDATE threads SET status = json_extract(NEW.body, '$.status'), updated_at = NEW.created_at
    WHERE id = NEW.thread_id;
END;
