//! One dispatch: resolve the environment, reach the sandbox, run each replying agent, and end
//! in exactly one terminal status. Every entry is written under the job's lease.

use std::{
    future::Future,
    sync::{Arc, Mutex, RwLock},
};

use arbe_core::{
    Agent, Classify, Entry, EntryBody, ErrorClass, ErrorKind, JobState, Ledger, ModelRef, Name, Thread, ThreadId,
    ThreadStatus,
};
use arbe_env::{ReadySandbox, Resolution};
use arbe_llm::{ChatRequest, Message};
use arbe_store::{Claim, NewAgent, StoreError};
use tokio::sync::watch;

use crate::{Dispatcher, Inner, Redactor, Stop, context};

/// Why a run stops before its agents are done.
#[derive(Debug)]
pub(crate) enum Halt {
    /// Cancelled, or the lease is lost.
    Stop(Stop),
    /// The run failed, for a reason a user can act on.
    Fail(Failure),
    /// The store failed: the job is left to its lease, and retried by whoever takes it next.
    Store(StoreError),
}

/// A classified failure, as `signal.thread.agent_failed` reports it.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) class: ErrorClass,
    pub(crate) message: String,
    pub(crate) provider: Option<String>,
    pub(crate) model: Option<String>,
}

impl Halt {
    pub(crate) fn fail(class: ErrorClass, message: impl Into<String>) -> Self {
        Self::Fail(Failure { class, message: message.into(), provider: None, model: None })
    }
}

impl From<StoreError> for Halt {
    /// A store error that another attempt would meet again (a row that is gone or unreadable,
    /// input or a rule the store refuses) fails the run now; the others (the database
    /// unreachable, say) leave the job to its lease, for another attempt.
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::NotFound { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Invalid(_)
            | StoreError::Forbidden(_)
            | StoreError::Quota(_) => Self::fail(ErrorClass::Unknown, format!("the store refused the run: {err}")),
            _ => Self::Store(err),
        }
    }
}

/// Where one agent works: the thread its entries go to (the dispatch's, or a delegate's
/// sub-thread), its model, the sandbox and secrets it acts with, and whether it may delegate.
#[derive(Clone, Copy)]
pub(crate) struct Place<'a> {
    pub(crate) thread: &'a Thread,
    pub(crate) thread_id: ThreadId,
    pub(crate) agent: &'a Agent,
    pub(crate) model: &'a ModelRef,
    pub(crate) sandbox: Option<&'a ReadySandbox>,
    pub(crate) resolution: Option<&'a Resolution>,
    pub(crate) may_delegate: bool,
}

/// The state of one run.
pub(crate) struct Run<'a> {
    pub(crate) inner: &'a Inner,
    /// The job, held under this worker's lease.
    pub(crate) job: Claim,
    pub(crate) stop_tx: Arc<watch::Sender<Stop>>,
    pub(crate) stop: watch::Receiver<Stop>,
    pub(crate) deadline: tokio::time::Instant,
    pub(crate) ledger: Mutex<Ledger>,
    /// Every value to keep out of entries: the sandbox's and the model keys. For model text
    /// and error messages.
    pub(crate) redactor: RwLock<Redactor>,
    /// Only the values the sandbox holds, for command output: a value the sandbox never sees
    /// (a model key) must not be matched there, or how its output is cut into pieces would
    /// answer guesses at it.
    pub(crate) output_redactor: RwLock<Redactor>,
    /// When this dispatch started (its first attempt's `running` entry): wall time and the run
    /// timeout count from here across takeovers.
    pub(crate) started: chrono::DateTime<chrono::Utc>,
    /// When this run last marked its sandbox active.
    pub(crate) touched: Mutex<Option<std::time::Instant>>,
}

pub(crate) async fn run_job(
    d: &Dispatcher,
    job: Claim,
    stop_tx: Arc<watch::Sender<Stop>>,
    stop: watch::Receiver<Stop>,
) {
    let inner = &*d.inner;
    let mut run = Run {
        inner,
        deadline: tokio::time::Instant::now() + inner.config.run_timeout,
        job,
        stop_tx,
        stop,
        ledger: Mutex::default(),
        redactor: RwLock::default(),
        output_redactor: RwLock::default(),
        started: chrono::Utc::now(),
        touched: Mutex::default(),
    };
    let outcome = run.go().await;
    let wall = (chrono::Utc::now() - run.started).num_milliseconds().max(0) as u64;
    run.ledger().wall_ms = wall;
    if let Err(err) = run.finish(outcome).await {
        // The terminal entry could not be written: the job stays leased until the lease runs
        // out, and the worker that takes it over finishes it.
        tracing::warn!(job = %run.job.id, error = ?err, "could not record the end of a dispatch");
    }
}

impl Run<'_> {
    fn house(&self) -> arbe_core::HouseId {
        self.job.house_id
    }

    /// Appends an entry under the job's lease; a lost lease stops the run.
    pub(crate) async fn write(&self, thread: ThreadId, body: EntryBody) -> Result<Entry, Halt> {
        Ok(self.write_all(thread, vec![body]).await?.remove(0))
    }

    /// Appends entries together (all or none) under the job's lease; a lost lease stops the run.
    /// NUL characters, which PostgreSQL's JSON cannot hold, become U+FFFD on both backends.
    pub(crate) async fn write_all(&self, thread: ThreadId, mut bodies: Vec<EntryBody>) -> Result<Vec<Entry>, Halt> {
        bodies.iter_mut().for_each(scrub);
        let store = &self.inner.store;
        match store.append_job_entries(&self.job, thread, bodies).await? {
            Some(entries) => {
                self.inner.appended.notify_waiters();
                Ok(entries)
            }
            None => {
                tracing::warn!(job = %self.job.id, "lost the lease: another worker owns this job now; writing nothing more");
                self.stop_tx.send_replace(Stop::Lost);
                Err(Halt::Stop(Stop::Lost))
            }
        }
    }

    /// Marks the sandbox active (the agent is working: the idle reaper must leave it alone), at
    /// most once a minute per run, since the reaper counts idleness in tens of minutes.
    pub(crate) async fn touch(&self, sandbox: &ReadySandbox) -> Result<(), Halt> {
        const EVERY: std::time::Duration = std::time::Duration::from_secs(60);
        let due = self.touched.lock().unwrap_or_else(|e| e.into_inner()).is_none_or(|at| at.elapsed() >= EVERY);
        if due {
            self.inner.store.touch_sandbox(self.house(), sandbox.sandbox.id).await?;
            *self.touched.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        }
        Ok(())
    }

    /// `text` with every secret value of this run replaced by `[redacted:NAME]`.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.redactor.read().unwrap_or_else(|e| e.into_inner()).redact(text)
    }

    /// A streaming redactor over the values this run's sandbox holds.
    pub(crate) fn stream_redactor(&self) -> crate::StreamRedactor {
        self.output_redactor.read().unwrap_or_else(|e| e.into_inner()).stream()
    }

    /// Runs `fut` unless the run is cancelled, loses its lease or runs out of time first
    /// (then `fut` is dropped, which aborts a model call or kills a command).
    pub(crate) async fn guarded<T>(&self, fut: impl Future<Output = T>) -> Result<T, Halt> {
        let mut stop = self.stop.clone();
        let now = *stop.borrow_and_update();
        if now != Stop::No {
            return Err(Halt::Stop(now));
        }
        tokio::select! {
            value = fut => Ok(value),
            res = stop.wait_for(|s| *s != Stop::No) => {
                Err(Halt::Stop(res.map(|s| *s).unwrap_or(Stop::Lost)))
            }
            () = tokio::time::sleep_until(self.deadline) => Err(Halt::fail(
                ErrorClass::AgentExit,
                format!("the dispatch ran out of time ({} s)", self.inner.config.run_timeout.as_secs()),
            )),
        }
    }

    pub(crate) fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) async fn all_entries(&self, thread: ThreadId) -> Result<Vec<Entry>, Halt> {
        let mut all = Vec::new();
        self.read_new_entries(thread, &mut all).await?;
        Ok(all)
    }

    /// Adds to `entries` (a thread's entries read so far, in order) those appended since.
    pub(crate) async fn read_new_entries(&self, thread: ThreadId, entries: &mut Vec<Entry>) -> Result<(), Halt> {
        const PAGE: u32 = 1000;
        loop {
            let after = entries.last().map_or(0, |e| e.seq);
            let page = self.inner.store.entries(self.house(), thread, after, PAGE).await?;
            let n = page.len();
            entries.extend(page);
            if n < PAGE as usize {
                return Ok(());
            }
        }
    }

    async fn go(&mut self) -> Result<(), Halt> {
        let house = self.house();
        let thread = self.inner.store.thread(house, self.job.thread_id).await?;
        let entries = self.all_entries(thread.id).await?;
        if let Some(status) = context::terminal_status(&entries, self.job.id) {
            // A worker recorded the end and died before closing the job: close it.
            self.close(status).await?;
            return Err(Halt::Stop(Stop::Lost));
        }
        let start = context::run_start(&entries, self.job.id);
        let fresh = start.is_none();
        match start {
            None => {
                let body = EntryBody::Status { status: ThreadStatus::Running, job: Some(self.job.id), ledger: None };
                self.started = self.write(thread.id, body).await?.created_at;
            }
            Some(start) => {
                tracing::info!(job = %self.job.id, attempt = self.job.attempts, "taking over a dispatch from a worker that stopped");
                // Time and work count from the first attempt, not from this one.
                self.started = entries[start].created_at;
                let spent = (chrono::Utc::now() - self.started).to_std().unwrap_or_default();
                self.deadline = tokio::time::Instant::now() + self.inner.config.run_timeout.saturating_sub(spent);
                let (turns, commands) = context::work_done(&entries[start..]);
                let mut ledger = self.ledger();
                ledger.model_turns = turns;
                ledger.commands_run = commands;
            }
        }
        let max = self.inner.config.max_attempts;
        if self.job.attempts > i64::from(max) {
            return Err(Halt::fail(
                ErrorClass::AgentExit,
                format!(
                    "gave up after {} attempts: the workers running this dispatch kept stopping (the limit is {max})",
                    self.job.attempts
                ),
            ));
        }
        let (resolution, sandbox) = match &thread.environment {
            None => (None, None),
            Some(env) => {
                let resolution = self
                    .guarded(self.inner.envs.resolve(&self.job, env))
                    .await?
                    .map_err(|err| Halt::fail(class_of(err.kind()), err.to_string()))?;
                let sandboxed =
                    Redactor::new(resolution.vars.iter().chain(&resolution.redact_also).map(|(n, v)| (n, v)));
                *self.redactor.write().unwrap_or_else(|e| e.into_inner()) = sandboxed.clone();
                *self.output_redactor.write().unwrap_or_else(|e| e.into_inner()) = sandboxed;
                self.ledger().secret_names = resolution.secret_names();
                if fresh {
                    for warning in &resolution.warnings {
                        self.write(thread.id, EntryBody::Warning { message: warning.clone() }).await?;
                    }
                }
                let sandbox = self
                    .guarded(self.inner.envs.ensure_sandbox(&self.job, env.sandbox_id))
                    .await?
                    .map_err(|err| Halt::fail(class_of(err.kind()), format!("sandbox {}: {err}", env.sandbox_id)))?;
                // Reaching it marked it active.
                *self.touched.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
                (Some(resolution), Some(sandbox))
            }
        };
        let outcome = self.run_agents(&thread, sandbox.as_ref(), resolution.as_ref()).await;
        if let Some(resolution) = &resolution {
            // However the run ended, the token minted for it stops working now.
            self.inner.envs.release(resolution).await;
        }
        outcome
    }

    async fn run_agents(
        &self,
        thread: &Thread,
        sandbox: Option<&ReadySandbox>,
        resolution: Option<&Resolution>,
    ) -> Result<(), Halt> {
        for agent in self.agents(thread).await? {
            let model = thread.model_override.clone().unwrap_or_else(|| agent.model.clone());
            let at = Place {
                thread,
                thread_id: thread.id,
                agent: &agent,
                model: &model,
                sandbox,
                resolution,
                may_delegate: true,
            };
            self.run_agent(at).await?;
        }
        Ok(())
    }

    /// The thread's agents, or the house's default agent (created on first use).
    async fn agents(&self, thread: &Thread) -> Result<Vec<Agent>, Halt> {
        let store = &self.inner.store;
        if !thread.agent_ids.is_empty() {
            let mut agents = Vec::with_capacity(thread.agent_ids.len());
            for id in &thread.agent_ids {
                match store.agent(self.house(), *id).await {
                    Ok(agent) => agents.push(agent),
                    // Deleted since the thread named it: retrying cannot help.
                    Err(StoreError::NotFound { .. }) => {
                        return Err(Halt::fail(
                            ErrorClass::Unknown,
                            format!("agent {id} of this thread was deleted: create a thread with agents that exist"),
                        ));
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            return Ok(agents);
        }
        match store.default_agent(self.house()).await {
            Ok(agent) => Ok(vec![agent]),
            Err(StoreError::NotFound { .. }) => {
                let agent = store
                    .create_agent(NewAgent {
                        house_id: self.house(),
                        name: Name::parse("arbe").expect("a valid name"),
                        model: ModelRef::default(),
                        system_prompt: crate::agents::DEFAULT_PROMPT.to_owned(),
                        is_default: true,
                    })
                    .await;
                match agent {
                    Ok(agent) => Ok(vec![agent]),
                    // Another worker created it at the same moment.
                    Err(StoreError::Conflict { .. }) => Ok(vec![store.default_agent(self.house()).await?]),
                    Err(err) => Err(err.into()),
                }
            }
            Err(err) => Err(err.into()),
        }
    }

    /// One agent's model turns until it answers without calling a tool.
    pub(crate) async fn run_agent(&self, at: Place<'_>) -> Result<(), Halt> {
        let Place { thread_id, agent, model, sandbox, may_delegate, .. } = at;
        let key = self
            .guarded(self.inner.envs.model_key(&self.job, model))
            .await?
            .map_err(|err| Halt::fail(ErrorClass::Unknown, err.to_string()))?;
        let provider_name = key.model.provider.name().to_owned();
        if let (Some(var), None) = (key.var, &key.found) {
            return Err(Halt::Fail(Failure {
                class: ErrorClass::Auth,
                message: format!(
                    "no {var} for {model}: set it as a house secret (printf '%s' \"$KEY\" | arbe secret set {var} \
                     --shared), in the worker's environment, or in ~/.arbe/keys/{var}"
                ),
                provider: Some(provider_name),
                model: Some(key.model.wire_model.clone()),
            }));
        }
        if let (Some(var), Some((value, _))) = (key.var, &key.found) {
            // A provider that echoes the key in an error must not get it stored. Only in the
            // model-text redactor: the sandbox never holds the key.
            self.redactor.write().unwrap_or_else(|e| e.into_inner()).add(var, value);
        }
        let provider = self.inner.models.provider(&key.model, key.found.map(|(value, _)| value));
        let tools = crate::tools::specs(sandbox.is_some(), may_delegate && sandbox.is_some());
        let mut entries = Vec::new();
        loop {
            // Each turn reads only what was appended since the last.
            self.read_new_entries(thread_id, &mut entries).await?;
            let view = context::build(&entries, agent.id, self.job.id, self.inner.config.tool_output_to_model);
            if !view.open_calls.is_empty() {
                // Their worker died while they ran: they may or may not have finished. Say so
                // rather than run them twice, and end what a cut-off delegate left running.
                self.end_abandoned_delegates(thread_id, may_delegate).await?;
                let note = "interrupted: the worker running this tool stopped; it may or may not have completed";
                let bodies = view.open_calls.iter().map(|id| crate::tools::done(id, note.into())).collect();
                self.write_all(thread_id, bodies).await?;
                continue;
            }
            if view.done {
                return Ok(());
            }
            if view.steps >= self.inner.config.max_steps {
                return Err(Halt::fail(
                    ErrorClass::AgentExit,
                    format!("agent {} reached its limit of {} model turns", agent.name, self.inner.config.max_steps),
                ));
            }
            if let Some(sandbox) = sandbox {
                self.touch(sandbox).await?;
            }
            let mut messages = Vec::with_capacity(view.messages.len() + 1);
            if !agent.system_prompt.is_empty() {
                messages.push(Message::System { text: agent.system_prompt.clone() });
            }
            messages.extend(view.messages);
            let mut request = ChatRequest::new(key.model.wire_model.clone(), messages);
            request.tools = tools.clone();
            let reply = self.guarded(provider.chat(&request, &mut ())).await?.map_err(|err| {
                let failure = err.failure();
                Halt::Fail(Failure {
                    class: err.class(),
                    message: failure.map_or_else(|| err.to_string(), |f| f.message.clone()),
                    provider: Some(failure.map_or_else(|| provider_name.clone(), |f| f.provider.clone())),
                    model: Some(key.model.wire_model.clone()),
                })
            })?;
            {
                let mut ledger = self.ledger();
                ledger.model_turns += 1;
                ledger.tokens_in += reply.usage.input_tokens;
                ledger.tokens_out += reply.usage.output_tokens;
            }
            // The turn's text and tool calls are written together: a worker that dies between
            // them must not leave an interim message that looks like a final answer.
            let text = self.redact(&reply.text);
            let mut turn = Vec::with_capacity(reply.tool_calls.len() + 1);
            if reply.tool_calls.is_empty() || !text.trim().is_empty() {
                turn.push(EntryBody::AgentMessage { agent_id: agent.id, model: model.clone(), text });
            }
            let mut calls = reply.tool_calls.clone();
            let mut taken: std::collections::HashSet<String> = entries
                .iter()
                .filter_map(|e| match &e.body {
                    EntryBody::ToolCall { call_id, .. } => Some(call_id.clone()),
                    _ => None,
                })
                .collect();
            for call in &mut calls {
                // Results pair with calls by id: an id that is missing or already used in the
                // thread (another agent's, a provider's reuse) gets a fresh one.
                if call.id.is_empty() || !taken.insert(call.id.clone()) {
                    call.id = format!("call_{}", uuid::Uuid::now_v7().simple());
                    taken.insert(call.id.clone());
                }
                let redacted = self.redact(&call.arguments);
                let arguments =
                    serde_json::from_str::<serde_json::Value>(&redacted).unwrap_or(serde_json::Value::String(redacted));
                turn.push(EntryBody::ToolCall {
                    agent_id: agent.id,
                    call_id: call.id.clone(),
                    tool: call.name.clone(),
                    arguments,
                });
            }
            self.write_all(thread_id, turn).await?;
            for call in &calls {
                self.call_tool(at, call).await?;
            }
        }
    }

    /// Records the end in one write: a final result for every tool call the run cut off (so
    /// the conversation stays well formed for the next dispatch), `agent_failed` for a failure,
    /// and exactly one terminal status with the ledger; then the job is closed.
    async fn finish(&self, outcome: Result<(), Halt>) -> Result<(), Halt> {
        let thread = self.job.thread_id;
        let (status, note, failed) = match outcome {
            Ok(()) => (ThreadStatus::Succeeded, "", None),
            Err(Halt::Stop(Stop::Cancel)) => {
                (ThreadStatus::Cancelled, "cancelled: the dispatch was cancelled while this ran", None)
            }
            Err(Halt::Stop(Stop::Lost)) | Err(Halt::Stop(Stop::No)) => return Ok(()),
            Err(Halt::Store(err)) => return Err(Halt::Store(err)),
            Err(Halt::Fail(failure)) => {
                tracing::info!(job = %self.job.id, class = %failure.class, "dispatch failed");
                (ThreadStatus::Failed, "stopped: the dispatch failed while this ran", Some(failure))
            }
        };
        if status != ThreadStatus::Succeeded {
            // A delegate cut off with the run ends too, and its sandbox goes.
            self.end_abandoned_delegates(thread, true).await?;
        }
        let entries = self.all_entries(thread).await?;
        let mut bodies: Vec<EntryBody> = context::open_calls(&entries, self.job.id)
            .into_iter()
            .map(|id| crate::tools::done(&id, note.to_owned()))
            .collect();
        let failed_class = failed.as_ref().map(|f| f.class);
        if let Some(failure) = failed {
            bodies.push(EntryBody::AgentFailed {
                error_class: failure.class,
                message: self.redact(&failure.message),
                provider: failure.provider,
                model: failure.model,
            });
        }
        let ledger = self.ledger().clone();
        self.inner.stats.record(status, failed_class, ledger.wall_ms);
        bodies.push(EntryBody::Status { status, job: Some(self.job.id), ledger: Some(ledger) });
        self.write_all(thread, bodies).await?;
        self.close(status).await
    }

    /// Ends the sub-threads a cut-off `delegate_task` of this dispatch left running: their
    /// status becomes `cancelled` and their sandboxes are destroyed.
    async fn end_abandoned_delegates(&self, thread: ThreadId, may_delegate: bool) -> Result<(), Halt> {
        if !may_delegate {
            return Ok(());
        }
        for child in self.inner.store.child_threads(self.house(), thread).await? {
            let entries = self.all_entries(child.id).await?;
            let ours = context::run_start(&entries, self.job.id).is_some();
            if !ours || context::terminal_status(&entries, self.job.id).is_some() {
                continue;
            }
            let mut bodies: Vec<EntryBody> = context::open_calls(&entries, self.job.id)
                .into_iter()
                .map(|id| crate::tools::done(&id, "interrupted: the worker running this stopped".into()))
                .collect();
            bodies.push(EntryBody::Status { status: ThreadStatus::Cancelled, job: Some(self.job.id), ledger: None });
            self.write_all(child.id, bodies).await?;
            if let Some(env) = &child.environment
                && let Err(err) = self.inner.envs.destroy_for(&self.job, env.sandbox_id).await
            {
                tracing::warn!(sandbox = %env.sandbox_id, error = %err, "could not destroy an abandoned delegate's sandbox");
            }
        }
        Ok(())
    }

    async fn close(&self, status: ThreadStatus) -> Result<(), Halt> {
        let state = match status {
            ThreadStatus::Succeeded => JobState::Succeeded,
            ThreadStatus::Cancelled => JobState::Cancelled,
            _ => JobState::Failed,
        };
        // The thread's status followed the terminal entry (a trigger); the job closes now.
        self.inner.store.finish_job(&self.job, state).await?;
        self.inner.appended.notify_waiters();
        Ok(())
    }
}

/// Replaces NUL characters (PostgreSQL's JSON cannot hold them) with U+FFFD in every text an
/// entry carries, so both backends store the same thing.
fn scrub(body: &mut EntryBody) {
    fn text(s: &mut String) {
        if s.contains('\0') {
            *s = s.replace('\0', "\u{FFFD}");
        }
    }
    fn value(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => text(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(value),
            serde_json::Value::Object(map) => map.values_mut().for_each(value),
            _ => {}
        }
    }
    match body {
        EntryBody::UserMessage { text: t, .. } | EntryBody::AgentMessage { text: t, .. } => text(t),
        EntryBody::ToolCall { arguments, .. } => value(arguments),
        EntryBody::ToolResult { output, .. } => text(output),
        EntryBody::AgentFailed { message, .. } | EntryBody::Warning { message } => text(message),
        EntryBody::Status { .. } => {}
    }
}

/// The user-facing class of an error from resolving or reaching the sandbox.
pub(crate) fn class_of(kind: ErrorKind) -> ErrorClass {
    match kind {
        ErrorKind::Unavailable | ErrorKind::Timeout => ErrorClass::Network,
        ErrorKind::Unauthenticated => ErrorClass::Auth,
        ErrorKind::QuotaExceeded => ErrorClass::Billing,
        ErrorKind::RateLimited => ErrorClass::Quota,
        _ => ErrorClass::Unknown,
    }
}
