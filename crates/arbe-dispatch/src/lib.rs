#![doc = include_str!("../README.md")]

mod agents;
mod context;
mod error;
mod feed;
mod models;
mod redact;
mod run;
mod services;
mod stats;
mod threads;
mod tools;
mod worker;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use arbe_core::{Action, DispatchJob, Entry, EntryBody, InvalidInput, JobId, ThreadId};
use arbe_env::Environments;
use arbe_store::{Actor, Store};
use futures_util::Stream;
use tokio::sync::{Notify, watch};

pub use agents::{Agents, CreateAgent, DEFAULT_PROMPT, MAX_PROMPT_CHARS};
pub use error::{DispatchError, Result};
pub use models::{HttpModels, ModelFactory, OneProvider};
pub use redact::{Redactor, StreamRedactor};
pub use services::{Services, ServicesConfig};
pub use stats::{BUCKETS, DispatchStats, Outcome};
pub use threads::{CreateThread, MAX_THREAD_AGENTS, Threads};
pub use worker::{Workers, WorkersHealth};

/// How dispatch runs. Every field has a default that suits a server.
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// Names this process's workers (`<id>-<n>`) in job leases.
    pub worker_id: String,
    /// Workers in this process, each running one job at a time.
    pub workers: usize,
    /// How long a claimed job stays a worker's without a heartbeat.
    pub lease: Duration,
    /// How often a worker renews its lease (and notices a cancel request). Keep it well under
    /// `lease`: a run stops by itself once no renewal has succeeded for `lease − heartbeat`.
    pub heartbeat: Duration,
    /// How often an idle worker looks for a job (posts in this process wake it at once).
    pub poll: Duration,
    /// How often the recovery sweep hands jobs with expired leases back to the queue.
    pub sweep_every: Duration,
    /// Model turns one agent may take in one dispatch.
    pub max_steps: u32,
    /// Wall time one dispatch may take.
    pub run_timeout: Duration,
    /// The default, and the longest, time a command may run.
    pub command_timeout: Duration,
    /// Bytes of one command's output a model gets back (head and tail are kept).
    pub tool_output_to_model: usize,
    /// How often streamed command output becomes an entry.
    pub output_flush: Duration,
    /// Bytes of one command's output stored in entries; past that only the last 16 KiB are
    /// kept, and the result says how much was cut.
    pub max_stored_output: usize,
    /// Attempts at one dispatch (a worker stopping mid-run costs one); past that it fails.
    pub max_attempts: u32,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", uuid::Uuid::now_v7().simple()),
            workers: 2,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_millis(500),
            sweep_every: Duration::from_secs(15),
            max_steps: 40,
            run_timeout: Duration::from_secs(30 * 60),
            command_timeout: Duration::from_secs(30),
            tool_output_to_model: 16 * 1024,
            output_flush: Duration::from_millis(250),
            max_stored_output: 1024 * 1024,
            max_attempts: 3,
        }
    }
}

/// Why a run must stop now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Keep going.
    No,
    /// Someone cancelled the thread, or the process is shutting down.
    Cancel,
    /// The lease is gone: another worker owns the job; write nothing more.
    Lost,
}

/// How a run is told to stop.
pub(crate) type StopSignal = Arc<watch::Sender<Stop>>;

/// Asks a run to stop as cancelled, unless it is already stopping.
pub(crate) fn request_cancel(stop: &watch::Sender<Stop>) {
    stop.send_if_modified(|s| {
        let changed = *s == Stop::No;
        if changed {
            *s = Stop::Cancel;
        }
        changed
    });
}

/// The dispatcher: posts user entries (which queue a dispatch), cancels, follows threads, and
/// runs workers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) envs: Environments,
    pub(crate) models: Arc<dyn ModelFactory>,
    pub(crate) config: DispatchConfig,
    /// Woken on every append this process makes and every job it queues.
    pub(crate) appended: Notify,
    /// The runs this process is working on: their thread and stop signal.
    pub(crate) running: Mutex<HashMap<JobId, (ThreadId, StopSignal)>>,
    /// Whether the PostgreSQL listener task was started.
    listening: std::sync::Once,
    /// Whether the listener is connected (false on SQLite, and while it reconnects).
    listening_now: watch::Sender<bool>,
    /// How many other-process appends the listener has heard.
    heard: std::sync::atomic::AtomicU64,
    /// What this process's dispatches came to.
    pub(crate) stats: DispatchStats,
    /// The feed of each thread this process follows (see `feed`).
    pub(crate) feeds: Mutex<HashMap<ThreadId, tokio::sync::broadcast::Sender<Entry>>>,
}

impl Inner {
    /// On PostgreSQL, starts (once) a task that turns other processes' appends into wake-ups
    /// of this process's followers and idle workers. It ends with the dispatcher.
    fn listen(self: &Arc<Self>) {
        self.listening.call_once(|| {
            let weak = Arc::downgrade(self);
            tokio::spawn(async move {
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    let listener = inner.store.entry_listener().await;
                    drop(inner);
                    let mut listener = match listener {
                        Ok(Some(listener)) => {
                            if let Some(inner) = weak.upgrade() {
                                inner.listening_now.send_replace(true);
                            }
                            listener
                        }
                        Ok(None) => return,
                        Err(err) => {
                            tracing::warn!(error = %err, "cannot listen for entries; followers poll");
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            continue;
                        }
                    };
                    loop {
                        let heard = listener.next().await;
                        let Some(inner) = weak.upgrade() else { return };
                        match heard {
                            Ok(_) => {
                                inner.heard.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                inner.appended.notify_waiters();
                            }
                            Err(err) => {
                                inner.listening_now.send_replace(false);
                                tracing::warn!(error = %err, "listening for entries failed; reconnecting");
                                break;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        });
    }
}

/// The longest user message accepted, in characters (at most 128 KiB of UTF-8).
pub const MAX_MESSAGE_CHARS: usize = 32 * 1024;

impl Dispatcher {
    /// What this process's dispatches came to, for `/metrics`.
    pub fn stats(&self) -> &DispatchStats {
        &self.inner.stats
    }

    /// A dispatcher over `store` and the environments service, with `models` for model calls.
    /// [`Services::build`] wires one; embedding services rarely call this.
    pub fn new(store: Store, envs: Environments, models: Arc<dyn ModelFactory>, config: DispatchConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                envs,
                models,
                config,
                appended: Notify::new(),
                running: Mutex::default(),
                listening: std::sync::Once::new(),
                listening_now: watch::Sender::new(false),
                stats: DispatchStats::default(),
                feeds: Mutex::default(),
                heard: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Appends a user entry to a thread and queues a dispatch of its agents: the entry, the job
    /// and `signal.thread.status` `queued`, in one transaction. Needs a writer. An empty or
    /// oversized message changes nothing.
    pub async fn post(&self, actor: &Actor, thread: ThreadId, text: &str) -> Result<(Entry, DispatchJob)> {
        actor.require(Action::Dispatch)?;
        if text.trim().is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(InvalidInput::new("message", "must be 1 to 32,768 characters and not only white space").into());
        }
        // PostgreSQL's JSON cannot hold NUL: it becomes U+FFFD, as in every other entry.
        let text = text.replace('\0', "\u{FFFD}");
        let body = EntryBody::UserMessage { author_id: actor.member_id(), text };
        // Another house's thread is not found, and nothing is written.
        let (entry, job) = self.inner.store.append_and_enqueue(actor.house_id(), thread, body).await?;
        self.inner.appended.notify_waiters();
        Ok((entry, job))
    }

    /// Cancels a thread's dispatches: queued ones end `cancelled` at once; running ones stop
    /// their model call and command (at once in this process, at the worker's next heartbeat
    /// in another) and end `cancelled`. Needs a writer. Returns how many dispatches it reached.
    pub async fn cancel(&self, actor: &Actor, thread: ThreadId) -> Result<u64> {
        actor.require(Action::CancelThread)?;
        let store = &self.inner.store;
        let house = actor.house_id();
        store.thread(house, thread).await?;
        // Queued jobs end here, with their `cancelled` entries written in the same transaction.
        let cancelled = store.cancel_jobs(house, thread).await?;
        // Runs of this thread in this process stop now rather than at the next heartbeat.
        for (running_thread, stop) in self.inner.running.lock().unwrap_or_else(|e| e.into_inner()).values() {
            if *running_thread == thread {
                request_cancel(stop);
            }
        }
        self.inner.appended.notify_waiters();
        Ok(cancelled.queued.len() as u64 + cancelled.running)
    }

    /// Up to `limit` entries of a thread with `seq > after`, in order. Needs a reader.
    pub async fn entries(&self, actor: &Actor, thread: ThreadId, after: i64, limit: u32) -> Result<Vec<Entry>> {
        actor.require(Action::Read)?;
        Ok(self.inner.store.entries(actor.house_id(), thread, after, limit.clamp(1, 1000)).await?)
    }

    /// A thread's entries with `seq > after`, in order, as they are appended: resumable from
    /// any sequence number, and across processes (this process's appends wake it at once; on
    /// PostgreSQL so do other processes' appends, through LISTEN/NOTIFY; on SQLite those are
    /// seen at the next poll). Needs a reader; another house's thread is `NotFound` here, before
    /// any stream starts. The stream ends when the thread can no longer be read.
    pub async fn subscribe(
        &self,
        actor: &Actor,
        thread: ThreadId,
        after: i64,
    ) -> Result<impl Stream<Item = Result<Entry>> + Send + use<>> {
        actor.require(Action::Read)?;
        let house = actor.house_id();
        self.inner.store.thread(house, thread).await?;
        Ok(self.follow(house, thread, after))
    }

    fn follow(
        &self,
        house: arbe_core::HouseId,
        thread: ThreadId,
        after: i64,
    ) -> impl Stream<Item = Result<Entry>> + Send + use<> {
        self.inner.listen();
        feed::follow(self.inner.clone(), house, thread, after)
    }

    /// Waits until this process listens for other processes' appends (PostgreSQL only; on
    /// SQLite it never does, and followers poll). For tests: it replaces guessing with a sleep.
    #[cfg(feature = "testkit")]
    pub async fn until_listening(&self) {
        self.inner.listen();
        let mut now = self.inner.listening_now.subscribe();
        let _ = now.wait_for(|listening| *listening).await;
    }

    /// How many other processes' appends this process's listener has heard (for tests).
    #[cfg(feature = "testkit")]
    pub fn appends_heard(&self) -> u64 {
        self.inner.heard.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts this process's workers and the recovery sweep (which also runs once at once).
    pub fn start(&self) -> Workers {
        self.inner.listen();
        worker::start(self.clone())
    }
}
