-- A thread's dispatches run one at a time: at most one running job per thread. A claim that
-- races another for the same thread fails this index and claims nothing.
CREATE UNIQUE INDEX dispatch_jobs_one_running_per_thread ON dispatch_jobs (thread_id) WHERE state = 'running';
