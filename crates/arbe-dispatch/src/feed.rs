//! One reader per followed thread (review L10): however many followers a thread has in this
//! process, a new entry costs one store query, made by the thread's feed and broadcast to them
//! all. Sequence numbers have no gaps, so a follower that sees one (it joined between a read
//! and a broadcast, or fell behind the channel) fills it from the store itself.

use std::sync::{Arc, Weak};

use arbe_core::{Entry, HouseId, ThreadId};
use futures_util::Stream;
use tokio::sync::broadcast;

use crate::{Inner, Result};

/// Entries a feed holds for followers that are slow to take them; past this a follower lags
/// and reads from the store instead.
const CAPACITY: usize = 1024;
/// Entries read from the store at once.
const PAGE: u32 = 500;

/// A receiver of the thread's feed, started (from the thread's last sequence number, read
/// before anything is subscribed) when its first follower arrives; it stops once none is left.
/// Everything the feed broadcast before a follower subscribed is in the store when the
/// follower reads it afterwards, so nothing falls between the two.
async fn subscribe(inner: &Arc<Inner>, house: HouseId, thread: ThreadId) -> Result<broadcast::Receiver<Entry>> {
    if let Some(tx) = inner.feeds.lock().unwrap_or_else(|e| e.into_inner()).get(&thread) {
        return Ok(tx.subscribe());
    }
    let last = inner.store.thread(house, thread).await?.last_seq;
    let mut feeds = inner.feeds.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = feeds.get(&thread) {
        return Ok(tx.subscribe());
    }
    let (tx, rx) = broadcast::channel(CAPACITY);
    feeds.insert(thread, tx.clone());
    drop(feeds);
    tokio::spawn(run(Arc::downgrade(inner), house, thread, last, tx));
    Ok(rx)
}

async fn run(weak: Weak<Inner>, house: HouseId, thread: ThreadId, mut last: i64, tx: broadcast::Sender<Entry>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        {
            let mut feeds = inner.feeds.lock().unwrap_or_else(|e| e.into_inner());
            if tx.receiver_count() == 0 {
                feeds.remove(&thread);
                return;
            }
        }
        // Register for wake-ups before reading, so an append between the read and the wait is
        // not missed.
        let notified = inner.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Ok(page) = inner.store.entries(house, thread, last, PAGE).await else {
            // Followers notice the closed channel and read the store themselves.
            inner.feeds.lock().unwrap_or_else(|e| e.into_inner()).remove(&thread);
            return;
        };
        let full = page.len() == PAGE as usize;
        for entry in page {
            last = entry.seq;
            let _ = tx.send(entry);
        }
        if !full {
            // Holds the dispatcher at most one poll interval past its last user.
            let _ = tokio::time::timeout(inner.config.poll, notified).await;
        }
    }
}

/// Where a follower stands.
struct Follower {
    inner: Arc<Inner>,
    house: HouseId,
    thread: ThreadId,
    /// The last sequence number it yielded.
    last: i64,
    /// Entries read from the store, to yield before listening again.
    backlog: std::vec::IntoIter<Entry>,
    /// Whether the last page read from the store was full (more may follow).
    more: bool,
    /// The feed, once subscribed.
    rx: Option<broadcast::Receiver<Entry>>,
    done: bool,
}

impl Follower {
    /// Reads what follows `last` from the store into the backlog, a page at a time.
    async fn fill(&mut self) -> Result<()> {
        let page = self.inner.store.entries(self.house, self.thread, self.last, PAGE).await?;
        self.more = page.len() == PAGE as usize;
        self.backlog = page.into_iter();
        Ok(())
    }

    async fn next(&mut self) -> Option<Result<Entry>> {
        loop {
            let Some(rx) = self.rx.as_mut() else {
                // Subscribe first, then read what the store holds.
                match subscribe(&self.inner, self.house, self.thread).await {
                    Ok(rx) => self.rx = Some(rx),
                    Err(err) => return Some(Err(err)),
                }
                if let Err(err) = self.fill().await {
                    return Some(Err(err));
                }
                continue;
            };
            if let Some(entry) = self.backlog.next() {
                if entry.seq > self.last {
                    self.last = entry.seq;
                    return Some(Ok(entry));
                }
                continue;
            }
            if self.more {
                if let Err(err) = self.fill().await {
                    return Some(Err(err));
                }
                continue;
            }
            match rx.recv().await {
                Ok(entry) if entry.seq <= self.last => {}
                Ok(entry) if entry.seq == self.last + 1 => {
                    self.last = entry.seq;
                    return Some(Ok(entry));
                }
                // A gap, or entries this follower fell too far behind to receive: the store has
                // them.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Err(err) = self.fill().await {
                        return Some(Err(err));
                    }
                }
                // The feed stopped (its read failed): follow a new one if the thread can still
                // be read.
                Err(broadcast::error::RecvError::Closed) => self.rx = None,
            }
        }
    }
}

/// A thread's entries with `seq > after`, in order, as they are appended.
pub(crate) fn follow(
    inner: Arc<Inner>,
    house: HouseId,
    thread: ThreadId,
    after: i64,
) -> impl Stream<Item = Result<Entry>> + Send + use<> {
    let backlog = Vec::new().into_iter();
    let follower = Follower { inner, house, thread, last: after, backlog, more: false, rx: None, done: false };
    futures_util::stream::unfold(follower, |mut follower| async move {
        if follower.done {
            return None;
        }
        let item = follower.next().await?;
        if item.is_err() {
            follower.done = true;
        }
        Some((item, follower))
    })
}
