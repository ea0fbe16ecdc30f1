//! Threads and their append-only entries.

use arbe_core::{
    AgentId, Entry, EntryBody, EntryId, EnvironmentId, EnvironmentSnapshot, HouseId, JobId, MemberId, ModelRef,
    ParentRef, Thread, ThreadId, ThreadStatus,
};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Claim, Pool, Result, Store, StoreError, column, now, on};

/// A thread to create.
#[derive(Clone, Debug)]
pub struct NewThread {
    /// The house.
    pub house_id: HouseId,
    /// Who creates it.
    pub author_id: MemberId,
    /// What it hangs under.
    pub parent: ParentRef,
    /// Its environment as it is now: the thread keeps this snapshot, and refers to the row while
    /// it exists (it must be the house's).
    pub environment: Option<EnvironmentSnapshot>,
    /// Pins every agent of the thread to this model.
    pub model_override: Option<ModelRef>,
    /// The agents that reply; empty means the house's default agent.
    pub agent_ids: Vec<AgentId>,
}

#[derive(sqlx::FromRow)]
struct ThreadRow {
    id: Uuid,
    house_id: Uuid,
    parent_ref: String,
    author_id: Uuid,
    environment_id: Option<Uuid>,
    environment_snapshot: Option<Json<EnvironmentSnapshot>>,
    model_override: Option<String>,
    agent_ids: Json<Vec<AgentId>>,
    status: String,
    last_seq: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ThreadRow> for Thread {
    type Error = StoreError;
    fn try_from(row: ThreadRow) -> Result<Self> {
        Ok(Thread {
            id: ThreadId::from_uuid(row.id),
            house_id: HouseId::from_uuid(row.house_id),
            parent: column("threads", ParentRef::parse(&row.parent_ref))?,
            author_id: MemberId::from_uuid(row.author_id),
            environment_id: row.environment_id.map(EnvironmentId::from_uuid),
            environment: row.environment_snapshot.map(|it| it.0),
            model_override: row
                .model_override
                .as_deref()
                .map(ModelRef::parse)
                .transpose()
                .map_err(|err| StoreError::Corrupt { table: "threads", reason: err.to_string() })?,
            agent_ids: row.agent_ids.0,
            status: column("threads", ThreadStatus::parse(&row.status))?,
            last_seq: row.last_seq,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: Uuid,
    thread_id: Uuid,
    seq: i64,
    body: Json<EntryBody>,
    created_at: DateTime<Utc>,
}

impl From<EntryRow> for Entry {
    fn from(row: EntryRow) -> Self {
        Entry {
            id: EntryId::from_uuid(row.id),
            thread_id: ThreadId::from_uuid(row.thread_id),
            seq: row.seq,
            body: row.body.0,
            created_at: row.created_at,
        }
    }
}

macro_rules! thread_columns {
    () => {
        "id, house_id, parent_ref, author_id, environment_id, environment_snapshot, model_override, \
         agent_ids, status, last_seq, created_at, updated_at"
    };
}

/// One statement: the SELECT of `last_seq`, the lease fence (`$7`/`$8`, both null for an
/// unfenced append) and the insert run under SQLite's single writer, and a trigger advances
/// `last_seq`.
pub(crate) const SQLITE_APPEND: &str = "INSERT INTO entries (id, thread_id, seq, kind, body, created_at) \
     SELECT $1, id, last_seq + 1, $3, $4, $5 FROM threads WHERE id = $2 AND house_id = $6 \
     AND ($7 IS NULL OR EXISTS (SELECT 1 FROM dispatch_jobs \
          WHERE id = $7 AND lease_owner = $8 AND state = 'running')) \
     RETURNING seq";

/// One statement: the UPDATE of `last_seq` takes the thread's row lock until commit, which
/// orders concurrent appends to one thread (appends to different threads do not wait for each
/// other). The fence holds the job's row FOR SHARE until commit, so the recovery sweep cannot
/// requeue the job between the check and the insert. Listeners on `arbe_entries` hear the
/// thread's id when the insert commits (and not when nothing was inserted).
pub(crate) const POSTGRES_APPEND: &str = "WITH j AS (SELECT 1 FROM dispatch_jobs \
                WHERE id = $7 AND lease_owner = $8 AND state = 'running' FOR SHARE), \
     t AS (UPDATE threads SET last_seq = last_seq + 1 WHERE id = $2 AND house_id = $6 \
           AND ($7::uuid IS NULL OR EXISTS (SELECT 1 FROM j)) RETURNING last_seq), \
     ins AS (INSERT INTO entries (id, thread_id, seq, kind, body, created_at) \
             SELECT $1, $2, t.last_seq, $3, $4, $5 FROM t RETURNING seq) \
     SELECT ins.seq, pg_notify('arbe_entries', $2::text) FROM ins";

/// Runs one append statement on `$exec` and returns the entry, or `None` when nothing was
/// written (no such thread in the house, or the fence failed).
macro_rules! append_one {
    ($sql:expr, $exec:expr, $house:expr, $thread:expr, $body:expr, $fence:expr) => {{
        let id = arbe_core::EntryId::new();
        let at = $crate::now();
        let body = $body;
        let (job, owner) =
            $fence.map_or((None, None), |(job, owner): (arbe_core::JobId, &str)| (Some(job.as_uuid()), Some(owner)));
        let seq: Option<i64> = sqlx::query_scalar($sql)
            .bind(id.as_uuid())
            .bind($thread.as_uuid())
            .bind(body.kind().as_str())
            .bind(sqlx::types::Json(&body))
            .bind(at)
            .bind($house.as_uuid())
            .bind(job)
            .bind(owner)
            .fetch_optional($exec)
            .await?;
        seq.map(|seq| arbe_core::Entry { id, thread_id: $thread, seq, body, created_at: at })
    }};
}
pub(crate) use append_one;

impl Store {
    /// Creates a thread, keeping a snapshot of its environment.
    pub async fn create_thread(&self, new: NewThread) -> Result<Thread> {
        let at = now();
        // The row a snapshot came from must be this house's; a purged one is referred to no more.
        let environment_id = match &new.environment {
            None => None,
            Some(snapshot) => {
                let owner: Option<Uuid> = on!(&self.read, |pool| {
                    sqlx::query_scalar("SELECT house_id FROM environments WHERE id = $1")
                        .bind(snapshot.id.as_uuid())
                        .fetch_optional(pool)
                        .await
                })?;
                match owner {
                    Some(house) if house == new.house_id.as_uuid() => Some(snapshot.id),
                    Some(_) => return Err(StoreError::NotFound { what: "environment" }),
                    None => None,
                }
            }
        };
        let thread = Thread {
            id: ThreadId::new(),
            house_id: new.house_id,
            parent: new.parent,
            author_id: new.author_id,
            environment_id,
            environment: new.environment,
            model_override: new.model_override,
            agent_ids: new.agent_ids,
            status: ThreadStatus::Idle,
            last_seq: 0,
            created_at: at,
            updated_at: at,
        };
        on!(&self.write, |pool| {
            sqlx::query(concat!(
                "INSERT INTO threads (",
                thread_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10)"
            ))
            .bind(thread.id.as_uuid())
            .bind(thread.house_id.as_uuid())
            .bind(thread.parent.to_string())
            .bind(thread.author_id.as_uuid())
            .bind(thread.environment_id.map(Uuid::from))
            .bind(thread.environment.as_ref().map(Json))
            .bind(thread.model_override.as_ref().map(ModelRef::as_str))
            .bind(Json(&thread.agent_ids))
            .bind(thread.status.as_str())
            .bind(at)
            .execute(pool)
            .await
            .map(|res| res.rows_affected())
        })
        .map_err(StoreError::unique("thread", "the thread id is taken"))?;
        Ok(thread)
    }

    /// A thread of `house`.
    pub async fn thread(&self, house: HouseId, id: ThreadId) -> Result<Thread> {
        let row: Option<ThreadRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!("SELECT ", thread_columns!(), " FROM threads WHERE house_id = $1 AND id = $2"))
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "thread" })?.try_into()
    }

    /// The newest `limit` threads of `house`, newest first.
    pub async fn list_threads(&self, house: HouseId, limit: u32) -> Result<Vec<Thread>> {
        let rows: Vec<ThreadRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                thread_columns!(),
                " FROM threads WHERE house_id = $1 ORDER BY id DESC LIMIT $2"
            ))
            .bind(house.as_uuid())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// The threads hanging under thread `parent` (sub-threads, e.g. a delegated task's), oldest
    /// first.
    pub async fn child_threads(&self, house: HouseId, parent: ThreadId) -> Result<Vec<Thread>> {
        let rows: Vec<ThreadRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                thread_columns!(),
                " FROM threads WHERE house_id = $1 AND parent_ref = $2 ORDER BY id"
            ))
            .bind(house.as_uuid())
            .bind(parent.to_string())
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Appends an entry to a thread of `house` and returns it with its sequence number: the
    /// thread's previous last plus one, taken in the same statement as the insert, so
    /// concurrent appends never share or skip a number.
    pub async fn append_entry(&self, house: HouseId, thread: ThreadId, body: EntryBody) -> Result<Entry> {
        self.append(house, thread, body, None).await?.ok_or(StoreError::NotFound { what: "thread" })
    }

    /// Appends an entry for the claimed job to `thread` (the job's, or a sub-thread of its
    /// house), only while the claim holds the job's lease: `None` means the lease is lost (the
    /// job was taken over or finished) and nothing was written. The check and the insert are
    /// one statement, so a worker that lost its job can never add to the thread behind the new
    /// owner's back.
    pub async fn append_job_entry(&self, claim: &Claim, thread: ThreadId, body: EntryBody) -> Result<Option<Entry>> {
        let house = claim.house_id();
        match self.append(house, thread, body, Some((claim.id, claim.owner()))).await? {
            Some(entry) => Ok(Some(entry)),
            // Tell a lost lease from a thread that is not this house's.
            None => self.thread(house, thread).await.map(|_| None),
        }
    }

    /// Appends several entries for the claimed job in one transaction, only while the claim holds
    /// the job's lease: all of them, with consecutive sequence numbers, or none (`None` when the
    /// lease is lost). A model turn's text and tool calls go in together this way, so a worker
    /// that dies between them never leaves half a turn.
    pub async fn append_job_entries(
        &self,
        claim: &Claim,
        thread: ThreadId,
        bodies: Vec<EntryBody>,
    ) -> Result<Option<Vec<Entry>>> {
        let house = claim.house_id();
        let fence = Some((claim.id, claim.owner()));
        // One transaction; the two backends differ only in the append statement.
        macro_rules! append_all {
            ($pool:expr, $append:expr) => {{
                let mut tx = $pool.begin().await?;
                let mut entries = Vec::with_capacity(bodies.len());
                for body in bodies {
                    match append_one!($append, &mut *tx, house, thread, body, fence) {
                        Some(entry) => entries.push(entry),
                        None => return self.thread(house, thread).await.map(|_| None),
                    }
                }
                tx.commit().await?;
                entries
            }};
        }
        let written = match &self.write {
            Pool::Sqlite(pool) => append_all!(pool, SQLITE_APPEND),
            Pool::Postgres(pool) => append_all!(pool, POSTGRES_APPEND),
        };
        Ok(Some(written))
    }

    async fn append(
        &self,
        house: HouseId,
        thread: ThreadId,
        body: EntryBody,
        fence: Option<(JobId, &str)>,
    ) -> Result<Option<Entry>> {
        Ok(match &self.write {
            Pool::Sqlite(pool) => append_one!(SQLITE_APPEND, pool, house, thread, body, fence),
            Pool::Postgres(pool) => append_one!(POSTGRES_APPEND, pool, house, thread, body, fence),
        })
    }

    /// Up to `limit` entries of a thread of `house` with `seq > after`, in order. Pass the last
    /// `seq` you saw to resume.
    pub async fn entries(&self, house: HouseId, thread: ThreadId, after: i64, limit: u32) -> Result<Vec<Entry>> {
        let rows: Vec<EntryRow> = on!(&self.read, |pool| {
            sqlx::query_as(
                "SELECT e.id, e.thread_id, e.seq, e.body, e.created_at \
                 FROM entries e JOIN threads t ON t.id = e.thread_id \
                 WHERE e.thread_id = $1 AND t.house_id = $2 AND e.seq > $3 ORDER BY e.seq LIMIT $4",
            )
            .bind(thread.as_uuid())
            .bind(house.as_uuid())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        if rows.is_empty() {
            // Tell an empty page of a real thread from a thread that is not this house's.
            self.thread(house, thread).await?;
        }
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
