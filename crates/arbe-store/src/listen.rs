//! Cross-process wake-ups for thread followers: on PostgreSQL every append notifies channel
//! `arbe_entries` with the thread's id when it commits. SQLite has no such channel; followers
//! there poll.

use arbe_core::ThreadId;
use sqlx::postgres::PgListener;

use crate::{Pool, Result, Store, StoreError};

/// The channel appends notify.
const CHANNEL: &str = "arbe_entries";

/// Hears which threads got new entries, from any process on the same database.
#[derive(Debug)]
pub struct EntryListener(PgListener);

impl EntryListener {
    /// The next thread that got an entry. Reconnects by itself when the connection drops
    /// (notifications sent meanwhile are lost: followers read from their last sequence number,
    /// so they miss nothing but the wake-up).
    pub async fn next(&mut self) -> Result<ThreadId> {
        loop {
            let note = self.0.recv().await.map_err(StoreError::Database)?;
            if let Ok(id) = ThreadId::parse(note.payload()) {
                return Ok(id);
            }
        }
    }
}

impl Store {
    /// A listener for appends on PostgreSQL; `None` on SQLite.
    pub async fn entry_listener(&self) -> Result<Option<EntryListener>> {
        match &self.read {
            Pool::Sqlite(_) => Ok(None),
            Pool::Postgres(pool) => {
                let mut listener = PgListener::connect_with(pool).await.map_err(StoreError::Database)?;
                listener.listen(CHANNEL).await.map_err(StoreError::Database)?;
                Ok(Some(EntryListener(listener)))
            }
        }
    }
}
