//! The durable dispatch queue: jobs claimed under a lease that the worker renews; a job whose
//! lease runs out goes back to the queue for another worker.

use std::time::Duration;

use arbe_core::{
    DispatchJob, Entry, EntryBody, HouseId, JobId, JobState, Ledger, QuotaExceeded, QuotaKind, ThreadId, ThreadStatus,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    Pool, Result, Store, StoreError, column,
    identity::lock_house,
    now, on,
    threads::{POSTGRES_APPEND, SQLITE_APPEND, append_one},
};

/// A job this worker holds under a lease. Only [`Store::claim_job`] makes one, so whoever has
/// a `Claim` is running that job: writing the job's entries, renewing and finishing it, and
/// reading secret values for it (arbe-vault, arbe-env) all take it, and act in its house only.
#[derive(Clone, Debug)]
pub struct Claim {
    job: DispatchJob,
    owner: String,
}

impl Claim {
    /// The job as it was claimed.
    pub fn job(&self) -> &DispatchJob {
        &self.job
    }

    /// The worker holding the lease.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The job's house.
    pub fn house_id(&self) -> HouseId {
        self.job.house_id
    }
}

impl Store {
    /// The member who posted the entry the claimed job answers, when it is a user message:
    /// non-shared secrets resolve for a dispatch only in their author's name.
    pub async fn job_poster(&self, claim: &Claim) -> Result<Option<arbe_core::MemberId>> {
        let job = claim.job();
        let entries = self.entries(job.house_id, job.thread_id, job.trigger_seq - 1, 1).await?;
        Ok(entries.into_iter().find(|e| e.seq == job.trigger_seq).and_then(|e| match e.body {
            EntryBody::UserMessage { author_id, .. } => Some(author_id),
            _ => None,
        }))
    }
}

impl std::ops::Deref for Claim {
    type Target = DispatchJob;
    fn deref(&self) -> &DispatchJob {
        &self.job
    }
}

/// What renewing a lease found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lease {
    /// The worker still holds the job; `cancel_requested` says whether to stop.
    Held {
        /// Someone asked to cancel the job.
        cancel_requested: bool,
    },
    /// The job is no longer this worker's (its lease ran out and it was taken over, or it
    /// finished): stop working on it and write nothing more.
    Lost,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: Uuid,
    house_id: Uuid,
    thread_id: Uuid,
    trigger_seq: i64,
    state: String,
    attempts: i64,
    lease_owner: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    cancel_requested: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<JobRow> for DispatchJob {
    type Error = StoreError;
    fn try_from(row: JobRow) -> Result<Self> {
        Ok(DispatchJob {
            id: JobId::from_uuid(row.id),
            house_id: HouseId::from_uuid(row.house_id),
            thread_id: ThreadId::from_uuid(row.thread_id),
            trigger_seq: row.trigger_seq,
            state: column("dispatch_jobs", JobState::parse(&row.state))?,
            attempts: row.attempts,
            lease_owner: row.lease_owner,
            lease_expires_at: row.lease_expires_at,
            cancel_requested: row.cancel_requested,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

macro_rules! job_columns {
    () => {
        "id, house_id, thread_id, trigger_seq, state, attempts, lease_owner, lease_expires_at, \
         cancel_requested, created_at, updated_at"
    };
}

/// A lease's deadline by this process's clock (SQLite, one host).
fn lease_until(lease: Duration) -> DateTime<Utc> {
    now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

/// A lease's length in microseconds, for PostgreSQL to add to its own `now()`.
fn micros(lease: Duration) -> i64 {
    i64::try_from(lease.as_micros()).unwrap_or(i64::MAX)
}

/// Queues a job (`$1` id, `$2` thread, `$3` trigger seq, `$4` now, `$5` house).
const ENQUEUE: &str = concat!(
    "INSERT INTO dispatch_jobs (id, house_id, thread_id, trigger_seq, state, created_at, updated_at) \
     SELECT $1, house_id, id, $3, 'queued', $4, $4 FROM threads WHERE id = $2 AND house_id = $5 \
     RETURNING ",
    job_columns!()
);

impl Store {
    /// Appends a user's entry, queues a dispatch for it and records `signal.thread.status`
    /// `queued`, in one transaction: a crash never leaves an entry without its dispatch.
    /// Returns the entry and the job. The house's `concurrent_dispatches` quota counts its
    /// queued and running jobs in the same transaction; at the cap nothing is written.
    pub async fn append_and_enqueue(
        &self,
        house: HouseId,
        thread: ThreadId,
        body: EntryBody,
    ) -> Result<(Entry, DispatchJob)> {
        let job = JobId::new();
        let queued = EntryBody::Status { status: ThreadStatus::Queued, job: Some(job), ledger: None };
        let no_fence = None::<(JobId, &str)>;
        let cap = self.quota(house, QuotaKind::ConcurrentDispatches).await?;
        // One transaction; the two backends differ only in the append statement.
        macro_rules! post {
            ($pool:expr, $append:expr, $backend:ident) => {{
                let mut tx = $pool.begin().await?;
                if let Some(limit) = cap {
                    lock_house!($backend, &mut *tx, house);
                    let busy: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM dispatch_jobs WHERE house_id = $1 AND state IN ('queued', 'running')",
                    )
                    .bind(house.as_uuid())
                    .fetch_one(&mut *tx)
                    .await?;
                    if busy.max(0) as u64 >= limit {
                        return Err(QuotaExceeded { quota: QuotaKind::ConcurrentDispatches, limit }.into());
                    }
                }
                let entry = append_one!($append, &mut *tx, house, thread, body, no_fence)
                    .ok_or(StoreError::NotFound { what: "thread" })?;
                let row: JobRow = sqlx::query_as(ENQUEUE)
                    .bind(job.as_uuid())
                    .bind(thread.as_uuid())
                    .bind(entry.seq)
                    .bind(now())
                    .bind(house.as_uuid())
                    .fetch_one(&mut *tx)
                    .await?;
                append_one!($append, &mut *tx, house, thread, queued, no_fence);
                tx.commit().await?;
                (entry, row)
            }};
        }
        let (entry, row) = match &self.write {
            Pool::Sqlite(pool) => post!(pool, SQLITE_APPEND, sqlite),
            Pool::Postgres(pool) => post!(pool, POSTGRES_APPEND, postgres),
        };
        Ok((entry, row.try_into()?))
    }

    /// Queues a dispatch of `thread` for the user entry at `trigger_seq`.
    pub async fn enqueue_job(&self, house: HouseId, thread: ThreadId, trigger_seq: i64) -> Result<DispatchJob> {
        let at = now();
        let row: JobRow = on!(&self.write, |pool| {
            sqlx::query_as(ENQUEUE)
                .bind(Uuid::now_v7())
                .bind(thread.as_uuid())
                .bind(trigger_seq)
                .bind(at)
                .bind(house.as_uuid())
                .fetch_optional(pool)
                .await
        })?
        .ok_or(StoreError::NotFound { what: "thread" })?;
        row.try_into()
    }

    /// A job of `house`.
    pub async fn job(&self, house: HouseId, id: JobId) -> Result<DispatchJob> {
        let row: Option<JobRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!("SELECT ", job_columns!(), " FROM dispatch_jobs WHERE house_id = $1 AND id = $2"))
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "job" })?.try_into()
    }

    /// Claims the oldest queued job for `owner` with a lease of `lease`, or `None` when the
    /// queue is empty. Concurrent claimers never get the same job, and a thread's jobs run one
    /// at a time and in order: only the oldest queued job of a thread with no running job can
    /// be claimed (a claimer that finds it locked by another moves on to other threads).
    pub async fn claim_job(&self, owner: &str, lease: Duration) -> Result<Option<Claim>> {
        let at = now();
        let row: Option<JobRow> = match &self.write {
            // One writer at a time makes the pick and the update one atomic step.
            Pool::Sqlite(pool) => {
                sqlx::query_as(concat!(
                    "UPDATE dispatch_jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2, \
                     attempts = attempts + 1, updated_at = $3 \
                     WHERE id = (SELECT q.id FROM dispatch_jobs q WHERE q.state = 'queued' AND NOT EXISTS \
                                 (SELECT 1 FROM dispatch_jobs r WHERE r.thread_id = q.thread_id \
                                  AND (r.state = 'running' OR (r.state = 'queued' AND r.id < q.id))) \
                                 ORDER BY q.id LIMIT 1) \
                     RETURNING ",
                    job_columns!()
                ))
                .bind(owner)
                .bind(lease_until(lease))
                .bind(at)
                .fetch_optional(pool)
                .await?
            }
            // SKIP LOCKED: concurrent claimers pass over a row another one is taking.
            Pool::Postgres(pool) => {
                sqlx::query_as(concat!(
                    "UPDATE dispatch_jobs SET state = 'running', lease_owner = $1, \
                     lease_expires_at = now() + make_interval(secs => $2::DOUBLE PRECISION / 1000000), \
                     attempts = attempts + 1, updated_at = $3 \
                     WHERE id = (SELECT q.id FROM dispatch_jobs q WHERE q.state = 'queued' AND NOT EXISTS \
                                 (SELECT 1 FROM dispatch_jobs r WHERE r.thread_id = q.thread_id \
                                  AND (r.state = 'running' OR (r.state = 'queued' AND r.id < q.id))) \
                                 ORDER BY q.id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING ",
                    job_columns!()
                ))
                .bind(owner)
                .bind(micros(lease))
                .bind(at)
                .fetch_optional(pool)
                .await
                .or_else(|err| match err.as_database_error() {
                    // Another worker claimed a job of the same thread at the same moment: the
                    // thread is busy, so this claim takes nothing.
                    Some(db) if db.is_unique_violation() => Ok(None),
                    _ => Err(err),
                })?
            }
        };
        let job: Option<DispatchJob> = row.map(TryInto::try_into).transpose()?;
        Ok(job.map(|job| Claim { job, owner: owner.to_owned() }))
    }

    /// A thread's jobs, oldest first.
    pub async fn jobs_of_thread(&self, house: HouseId, thread: ThreadId) -> Result<Vec<DispatchJob>> {
        let rows: Vec<JobRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                job_columns!(),
                " FROM dispatch_jobs WHERE house_id = $1 AND thread_id = $2 ORDER BY id"
            ))
            .bind(house.as_uuid())
            .bind(thread.as_uuid())
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Extends the claim's lease on its job (the worker's heartbeat).
    pub async fn renew_lease(&self, claim: &Claim, lease: Duration) -> Result<Lease> {
        let (id, owner) = (claim.job.id, claim.owner.as_str());
        let cancel: Option<bool> = match &self.write {
            Pool::Sqlite(pool) => {
                sqlx::query_scalar(
                    "UPDATE dispatch_jobs SET lease_expires_at = $3, updated_at = $4 \
                     WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING cancel_requested",
                )
                .bind(id.as_uuid())
                .bind(owner)
                .bind(lease_until(lease))
                .bind(now())
                .fetch_optional(pool)
                .await?
            }
            Pool::Postgres(pool) => {
                sqlx::query_scalar(
                    "UPDATE dispatch_jobs SET lease_expires_at = now() + make_interval(secs => $3::DOUBLE PRECISION / 1000000), \
                     updated_at = $4 \
                     WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING cancel_requested",
                )
                .bind(id.as_uuid())
                .bind(owner)
                .bind(micros(lease))
                .bind(now())
                .fetch_optional(pool)
                .await?
            }
        };
        Ok(match cancel {
            Some(cancel_requested) => Lease::Held { cancel_requested },
            None => Lease::Lost,
        })
    }

    /// Ends the claimed job in a terminal `state`, if the claim still holds it; `false` means
    /// the lease was lost and someone else owns the outcome.
    pub async fn finish_job(&self, claim: &Claim, state: JobState) -> Result<bool> {
        let (id, owner) = (claim.job.id, claim.owner.as_str());
        if !state.is_terminal() {
            return Err(arbe_core::InvalidInput::new("job state", "must be succeeded, failed or cancelled").into());
        }
        let n = on!(&self.write, |pool| {
            sqlx::query(
                "UPDATE dispatch_jobs SET state = $3, lease_owner = NULL, lease_expires_at = NULL, updated_at = $4 \
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(id.as_uuid())
            .bind(owner)
            .bind(state.as_str())
            .bind(now())
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// The recovery sweep: running jobs whose lease ran out go back to the queue. Returns how
    /// many were requeued.
    pub async fn requeue_expired_jobs(&self) -> Result<u64> {
        let at = now();
        // On PostgreSQL the database's clock judges expiry, as it set the deadline: workers on
        // several hosts never compare their own clocks. SQLite lives on one host.
        let n = match &self.write {
            Pool::Sqlite(pool) => sqlx::query(
                "UPDATE dispatch_jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
                 WHERE state = 'running' AND lease_expires_at < $1",
            )
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected(),
            Pool::Postgres(pool) => sqlx::query(
                "UPDATE dispatch_jobs SET state = 'queued', lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
                 WHERE state = 'running' AND lease_expires_at < now()",
            )
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(n)
    }

    /// Cancels a thread's jobs: queued ones at once, each with its `cancelled` status entry in
    /// the same transaction (their ids are returned), running ones by flagging them for their
    /// worker, which sees the flag at its next heartbeat.
    pub async fn cancel_jobs(&self, house: HouseId, thread: ThreadId) -> Result<CancelledJobs> {
        let at = now();
        let no_fence = None::<(JobId, &str)>;
        // One transaction: the queued jobs and their terminal entries, so a crash never leaves
        // a cancelled job whose thread still says `queued`.
        macro_rules! cancel {
            ($pool:expr, $append:expr) => {{
                let mut tx = $pool.begin().await?;
                let queued: Vec<Uuid> = sqlx::query_scalar(
                    "UPDATE dispatch_jobs SET state = 'cancelled', updated_at = $3 \
                     WHERE house_id = $1 AND thread_id = $2 AND state = 'queued' RETURNING id",
                )
                .bind(house.as_uuid())
                .bind(thread.as_uuid())
                .bind(at)
                .fetch_all(&mut *tx)
                .await?;
                let mut queued: Vec<JobId> = queued.into_iter().map(JobId::from_uuid).collect();
                queued.sort();
                for job in &queued {
                    let body = EntryBody::Status {
                        status: ThreadStatus::Cancelled,
                        job: Some(*job),
                        ledger: Some(Ledger::default()),
                    };
                    append_one!($append, &mut *tx, house, thread, body, no_fence)
                        .ok_or(StoreError::NotFound { what: "thread" })?;
                }
                let running = sqlx::query(
                    "UPDATE dispatch_jobs SET cancel_requested = TRUE, updated_at = $3 \
                     WHERE house_id = $1 AND thread_id = $2 AND state = 'running' AND NOT cancel_requested",
                )
                .bind(house.as_uuid())
                .bind(thread.as_uuid())
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                CancelledJobs { queued, running }
            }};
        }
        Ok(match &self.write {
            Pool::Sqlite(pool) => cancel!(pool, SQLITE_APPEND),
            Pool::Postgres(pool) => cancel!(pool, POSTGRES_APPEND),
        })
    }
}

/// What cancelling a thread's jobs did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CancelledJobs {
    /// Queued jobs, now cancelled; nobody ran them.
    pub queued: Vec<JobId>,
    /// Running jobs flagged for their workers to stop.
    pub running: u64,
}

impl Store {
    /// Dispatch jobs queued or running, across every house, by state: the queue depth an
    /// operator watches on `/metrics`.
    pub async fn active_job_counts(&self) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = on!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT state, count(*) FROM dispatch_jobs WHERE state IN ('queued', 'running') GROUP BY state \
                 ORDER BY state",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(|(state, n)| (state, n.max(0) as u64)).collect())
    }
}
