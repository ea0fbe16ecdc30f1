//! The agent's tools: `run_command` in the environment's sandbox (secrets as variables of each
//! command, output streamed into entries as it comes) and `delegate_task` (a fresh sandbox on
//! the same runtime for one run, mirrored into a sub-thread, destroyed afterwards).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arbe_core::{
    Agent, Classify, EntryBody, ErrorClass, ErrorKind, ModelRef, Name, ParentRef, Thread, ThreadId, ThreadStatus,
};
use arbe_env::{ReadySandbox, Resolution};
use arbe_llm::{ToolCall, ToolSpec};
use arbe_runtime::{ExecRequest, Stream};
use arbe_store::NewThread;
use tokio::sync::mpsc;

use crate::{
    Stop,
    run::{Halt, Place, Run, class_of},
};

pub(crate) fn specs(run_command: bool, delegate: bool) -> Vec<ToolSpec> {
    let mut out = Vec::new();
    if run_command {
        out.push(ToolSpec {
            name: "run_command".into(),
            description: "Run a shell command in the sandbox's workspace and get its output and exit code. \
                          Every action (read, write, edit, search, build, test) is a command."
                .into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The shell command to run."},
                    "timeout_seconds": {"type": "integer", "minimum": 1, "description": "Kill it after this long."}
                },
                "required": ["command"]
            }),
        });
    }
    if delegate {
        out.push(ToolSpec {
            name: "delegate_task".into(),
            description: "Hand a self-contained coding task to a helper working in a fresh sandbox of its own; \
                          get back its final answer. The sandbox is destroyed afterwards."
                .into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {"task": {"type": "string", "description": "What the helper must do."}},
                "required": ["task"]
            }),
        });
    }
    out
}

/// The final (and only) result piece of a tool call that ran no command or whose command ended.
pub(crate) fn done(call_id: &str, output: String) -> EntryBody {
    EntryBody::ToolResult {
        call_id: call_id.to_owned(),
        output,
        done: true,
        exit_code: None,
        timed_out: false,
        truncated: false,
    }
}

impl Run<'_> {
    /// Runs one tool call and records its result entries.
    pub(crate) async fn call_tool(&self, at: Place<'_>, call: &ToolCall) -> Result<(), Halt> {
        let Place { thread, thread_id, agent, model, sandbox, resolution, may_delegate } = at;
        let args = match call.parsed_arguments() {
            Ok(args) => args,
            Err(err) => return self.write(thread_id, done(&call.id, err.to_string())).await.map(drop),
        };
        let text_arg = |name: &str| args.get(name).and_then(|v| v.as_str()).filter(|s| !s.trim().is_empty());
        match (call.name.as_str(), sandbox) {
            ("run_command", Some(sandbox)) => {
                let Some(command) = text_arg("command") else {
                    let msg = "invalid arguments of run_command: command must be a non-empty string".to_owned();
                    return self.write(thread_id, done(&call.id, msg)).await.map(drop);
                };
                let max = self.inner.config.command_timeout;
                let timeout = args
                    .get("timeout_seconds")
                    .and_then(|v| v.as_u64())
                    .map_or(max, |s| Duration::from_secs(s.max(1)).min(max));
                self.run_command(thread_id, sandbox, resolution, &call.id, command, timeout).await
            }
            ("delegate_task", Some(sandbox)) if may_delegate => {
                let Some(task) = text_arg("task") else {
                    let msg = "invalid arguments of delegate_task: task must be a non-empty string".to_owned();
                    return self.write(thread_id, done(&call.id, msg)).await.map(drop);
                };
                let answer = Box::pin(self.delegate(thread, agent, model, sandbox, resolution, task)).await?;
                self.write(thread_id, done(&call.id, self.redact(&answer))).await.map(drop)
            }
            (name, _) => {
                let msg = format!("unknown tool {name}: the tools here are {}", {
                    let names: Vec<_> = specs(sandbox.is_some(), may_delegate && sandbox.is_some())
                        .into_iter()
                        .map(|t| t.name)
                        .collect();
                    if names.is_empty() { "none (this thread has no environment)".to_owned() } else { names.join(", ") }
                });
                self.write(thread_id, done(&call.id, msg)).await.map(drop)
            }
        }
    }

    async fn run_command(
        &self,
        thread_id: ThreadId,
        sandbox: &ReadySandbox,
        resolution: Option<&Resolution>,
        call_id: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<(), Halt> {
        let mut req = ExecRequest::shell(command).timeout(timeout);
        for (name, value) in resolution.map(|r| r.vars.as_slice()).unwrap_or_default() {
            // Variables of this one command: never written to disk in the sandbox.
            req = req.env(name.as_str(), value.clone());
        }
        self.touch(sandbox).await?;
        let (mut sink, mut rx) = output_queue();
        let exec = async move { sandbox.runtime.exec(&sandbox.external_id, req, &mut sink).await };
        // Output becomes entries as it comes, redacted across chunk boundaries, up to
        // `max_stored_output` bytes; past that only the last `KEPT_TAIL` bytes are kept.
        let mut redactor = self.stream_redactor();
        let mut stored = StoredOutput::new(self.inner.config.max_stored_output);
        let pump = async {
            let flush = self.inner.config.output_flush;
            let mut open = true;
            while open {
                let tick = tokio::time::sleep(flush);
                tokio::pin!(tick);
                loop {
                    tokio::select! {
                        chunk = rx.recv() => match chunk {
                            Some(Output::Bytes(chunk)) => stored.push(&redactor.push(&chunk)),
                            Some(Output::Lost(bytes)) => stored.push(&redactor.gap(bytes)),
                            None => { open = false; break; }
                        },
                        () = &mut tick => break,
                    }
                }
                if open && let Some(piece) = stored.take_piece() {
                    let body = EntryBody::ToolResult {
                        call_id: call_id.to_owned(),
                        output: piece,
                        done: false,
                        exit_code: None,
                        timed_out: false,
                        truncated: false,
                    };
                    self.write(thread_id, body).await?;
                }
            }
            stored.push(&redactor.finish());
            Ok::<StoredOutput, Halt>(stored)
        };
        let (outcome, stored) = tokio::join!(self.guarded(exec), pump);
        let (rest, cut) = stored?.finish();
        self.ledger().commands_run += 1;
        let outcome = match outcome? {
            Ok(outcome) => outcome,
            Err(err) if matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::NotFound) => {
                let message = format!("the sandbox could not run the command: {}", self.redact(&err.to_string()));
                return Err(Halt::fail(ErrorClass::Network, message));
            }
            Err(err) => {
                let output = format!("{rest}{}", self.redact(&err.to_string()));
                return self.write(thread_id, done(call_id, output)).await.map(drop);
            }
        };
        let mut output = rest;
        if outcome.oom_killed {
            output.push_str("\n[killed: out of memory]");
        }
        let body = EntryBody::ToolResult {
            call_id: call_id.to_owned(),
            output,
            done: true,
            exit_code: outcome.exit_code,
            timed_out: outcome.timed_out,
            truncated: outcome.truncated || cut,
        };
        self.write(thread_id, body).await.map(drop)
    }

    /// A fresh sandbox on the same runtime, a sub-thread mirroring the helper's run, and the
    /// sandbox destroyed whatever happens. Returns the helper's answer, or why it failed.
    async fn delegate(
        &self,
        thread: &Thread,
        agent: &Agent,
        model: &ModelRef,
        parent_box: &ReadySandbox,
        resolution: Option<&Resolution>,
        task: &str,
    ) -> Result<String, Halt> {
        let store = &self.inner.store;
        let house = self.house_id();
        let Some(env) = &thread.environment else { return Ok("delegate_task needs an environment".into()) };
        let short = &uuid::Uuid::now_v7().simple().to_string()[20..];
        let name = Name::parse_field("sandbox", &format!("delegate-{short}")).expect("a valid name");
        let fresh =
            match self.guarded(self.inner.envs.provision_for(&self.job, &parent_box.sandbox.runtime, name)).await? {
                Ok(fresh) => fresh,
                Err(err) => return Ok(format!("could not provision a sandbox for the task: {err}")),
            };
        let res = async {
            // The helper's environment: the thread's, on the fresh sandbox.
            let sub_env = arbe_core::EnvironmentSnapshot { sandbox_id: fresh.sandbox.id, ..env.clone() };
            let sub = store
                .create_thread(NewThread {
                    house_id: house,
                    author_id: thread.author_id,
                    parent: ParentRef::Thread(thread.id),
                    environment: Some(sub_env),
                    model_override: thread.model_override.clone(),
                    agent_ids: vec![agent.id],
                })
                .await?;
            self.write(sub.id, EntryBody::UserMessage { author_id: thread.author_id, text: self.redact(task) }).await?;
            let running = EntryBody::Status { status: ThreadStatus::Running, job: Some(self.job.id), ledger: None };
            self.write(sub.id, running).await?;
            let at = Place {
                thread: &sub,
                thread_id: sub.id,
                agent,
                model,
                sandbox: Some(&fresh),
                resolution,
                may_delegate: false,
            };
            let outcome = self.run_agent(at).await;
            let (status, answer) = match outcome {
                Ok(()) => {
                    let entries = self.all_entries(sub.id).await?;
                    let answer = entries
                        .iter()
                        .rev()
                        .find_map(|e| match &e.body {
                            EntryBody::AgentMessage { text, .. } => Some(text.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    (ThreadStatus::Succeeded, format!("sub-thread {}: {answer}", sub.id))
                }
                Err(Halt::Fail(failure)) => {
                    let failed = self.redact(&failure.message);
                    let message = format!("the helper failed ({}): {failed}", failure.class);
                    let body = EntryBody::AgentFailed {
                        error_class: failure.class,
                        message: failed,
                        provider: failure.provider,
                        model: failure.model,
                    };
                    self.write(sub.id, body).await?;
                    (ThreadStatus::Failed, format!("sub-thread {}: {message}", sub.id))
                }
                Err(Halt::Stop(Stop::Cancel)) => {
                    // The sub-thread ends too, and says so; then the cancel goes on up.
                    let entries = self.all_entries(sub.id).await?;
                    let note = "cancelled: the dispatch was cancelled while this ran";
                    let mut bodies: Vec<EntryBody> = crate::context::open_calls(&entries, self.job.id)
                        .into_iter()
                        .map(|id| done(&id, note.to_owned()))
                        .collect();
                    let status = ThreadStatus::Cancelled;
                    bodies.push(EntryBody::Status { status, job: Some(self.job.id), ledger: None });
                    self.write_all(sub.id, bodies).await?;
                    return Err(Halt::Stop(Stop::Cancel));
                }
                Err(other) => return Err(other),
            };
            self.write(sub.id, EntryBody::Status { status, job: Some(self.job.id), ledger: None }).await?;
            Ok(answer)
        }
        .await;
        if let Err(err) = self.inner.envs.destroy_for(&self.job, fresh.sandbox.id).await {
            tracing::warn!(sandbox = %fresh.sandbox.id, error = %err, "could not destroy a delegate's sandbox");
            if res.is_ok() {
                return Err(Halt::fail(class_of(err.kind()), format!("could not destroy the helper's sandbox: {err}")));
            }
        }
        res
    }

    fn house_id(&self) -> arbe_core::HouseId {
        self.job.house_id
    }
}

/// How much of a command's output a tool result keeps past the head.
const KEPT_TAIL: usize = 16 * 1024;

/// Output on its way from the runtime's sink to the pump that stores it.
enum Output {
    Bytes(Vec<u8>),
    /// This many bytes were dropped here because the queue was full.
    Lost(u64),
}

/// The most output held between the runtime and the store: a command that writes faster than
/// entries are written loses the excess (and the tail says how much) instead of growing the
/// server's memory without bound.
const OUTPUT_QUEUE_BYTES: usize = 4 * 1024 * 1024;

/// The runtime's sink, which never blocks, and the pump's end of a queue bounded in bytes.
fn output_queue() -> (QueueSink, QueueSource) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (QueueSink { tx, queued: queued.clone(), lost: 0 }, QueueSource { rx, queued })
}

struct QueueSink {
    tx: mpsc::UnboundedSender<Output>,
    queued: Arc<AtomicUsize>,
    /// Bytes dropped since the last `Lost` sent.
    lost: u64,
}

impl arbe_runtime::OutputSink for QueueSink {
    fn output(&mut self, _: Stream, chunk: &[u8]) {
        if self.queued.load(Ordering::Acquire) + chunk.len() > OUTPUT_QUEUE_BYTES {
            self.lost += chunk.len() as u64;
            return;
        }
        if self.lost > 0 {
            let _ = self.tx.send(Output::Lost(std::mem::take(&mut self.lost)));
        }
        self.queued.fetch_add(chunk.len(), Ordering::AcqRel);
        let _ = self.tx.send(Output::Bytes(chunk.to_vec()));
    }
}

impl Drop for QueueSink {
    fn drop(&mut self) {
        if self.lost > 0 {
            let _ = self.tx.send(Output::Lost(self.lost));
        }
    }
}

struct QueueSource {
    rx: mpsc::UnboundedReceiver<Output>,
    queued: Arc<AtomicUsize>,
}

impl QueueSource {
    async fn recv(&mut self) -> Option<Output> {
        let out = self.rx.recv().await;
        if let Some(Output::Bytes(chunk)) = &out {
            self.queued.fetch_sub(chunk.len(), Ordering::AcqRel);
        }
        out
    }
}

/// A command's redacted output on its way into entries: everything up to `max` bytes, then
/// only the last [`KEPT_TAIL`] bytes, counting what was cut.
struct StoredOutput {
    max: usize,
    stored: usize,
    piece: String,
    tail: String,
    cut: usize,
}

impl StoredOutput {
    fn new(max: usize) -> Self {
        Self { max, stored: 0, piece: String::new(), tail: String::new(), cut: 0 }
    }

    fn push(&mut self, text: &str) {
        let room = self.max.saturating_sub(self.stored + self.piece.len());
        if self.tail.is_empty() && text.len() <= room {
            self.piece.push_str(text);
            return;
        }
        let mut head = room.min(text.len());
        while !text.is_char_boundary(head) {
            head -= 1;
        }
        self.piece.push_str(&text[..head]);
        self.tail.push_str(&text[head..]);
        if self.tail.len() > KEPT_TAIL {
            let mut from = self.tail.len() - KEPT_TAIL;
            while !self.tail.is_char_boundary(from) {
                from += 1;
            }
            self.cut += from;
            self.tail.drain(..from);
        }
    }

    /// The text gathered since the last piece, if any (the tail is kept for the end).
    fn take_piece(&mut self) -> Option<String> {
        if self.piece.is_empty() {
            return None;
        }
        self.stored += self.piece.len();
        Some(std::mem::take(&mut self.piece))
    }

    /// The rest of the output, and whether anything was cut.
    fn finish(mut self) -> (String, bool) {
        let mut out = std::mem::take(&mut self.piece);
        if self.cut > 0 {
            out.push_str(&format!("\n[… {} bytes of output not stored …]\n", self.cut));
        }
        out.push_str(&self.tail);
        (out, self.cut > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbe_runtime::OutputSink as _;

    #[tokio::test]
    async fn output_past_the_queue_bound_is_dropped_and_counted_not_buffered() {
        let (mut sink, mut source) = output_queue();
        let chunk = vec![b'y'; 64 * 1024];
        // The pump is stalled (a slow store): 6 MiB arrive, 4 MiB are kept.
        for _ in 0..96 {
            sink.output(Stream::Stdout, &chunk);
        }
        assert_eq!(source.queued.load(Ordering::Acquire), OUTPUT_QUEUE_BYTES);
        // Draining makes room; the next chunk first reports what was lost.
        let mut kept = 0;
        for _ in 0..64 {
            match source.recv().await {
                Some(Output::Bytes(bytes)) => kept += bytes.len(),
                _ => panic!("bytes first"),
            }
        }
        assert_eq!(kept, OUTPUT_QUEUE_BYTES);
        sink.output(Stream::Stdout, b"after");
        assert!(matches!(source.recv().await, Some(Output::Lost(n)) if n == 32 * 64 * 1024));
        assert!(matches!(source.recv().await, Some(Output::Bytes(b)) if b == b"after"));
        // A loss at the very end is reported when the sink goes away.
        for _ in 0..65 {
            sink.output(Stream::Stdout, &chunk);
        }
        drop(sink);
        let mut lost = 0;
        while let Some(out) = source.recv().await {
            if let Output::Lost(n) = out {
                lost += n;
            }
        }
        assert_eq!(lost, 64 * 1024);
    }

    #[test]
    fn stored_output_keeps_head_and_tail_and_counts_the_cut() {
        let mut out = StoredOutput::new(10);
        out.push("0123456");
        assert_eq!(out.take_piece().as_deref(), Some("0123456"));
        out.push("789abc");
        out.push(&"x".repeat(KEPT_TAIL));
        out.push("END");
        assert_eq!(out.take_piece().as_deref(), Some("789"));
        let (rest, cut) = out.finish();
        assert!(cut);
        assert!(rest.starts_with("\n[… 6 bytes of output not stored …]\n"), "{}", &rest[..60]);
        assert!(rest.ends_with("xxxEND"));
        assert_eq!(rest.len(), "\n[… 6 bytes of output not stored …]\n".len() + KEPT_TAIL);
        // Small output passes whole.
        let mut out = StoredOutput::new(100);
        out.push("hello é");
        assert_eq!(out.finish(), ("hello é".to_owned(), false));
    }
}
