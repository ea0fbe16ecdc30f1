//! The agent's tools: `run_command` in the environment's sandbox (secrets as variables of each
//! command, output streamed into entries as it comes) and `delegate_task` (a fresh sandbox on
//! the same runtime for one run, mirrored into a sub-thread, destroyed afterwards).

use std::time::Duration;

use arbe_core::{
    Agent, Classify, EntryBody, ErrorClass, ErrorKind, ModelRef, Name, ParentRef, Thread, ThreadId, ThreadStatus,
};
use arbe_env::{ReadySandbox, Resolution};
use arbe_llm::{ToolCall, ToolSpec};
use arbe_runtime::{ExecRequest, Stream};
use arbe_store::NewThread;
use tokio::sync::mpsc;

use crate::run::{Halt, Run, class_of};

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
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn call_tool(
        &self,
        thread: &Thread,
        thread_id: ThreadId,
        agent: &Agent,
        model: &ModelRef,
        sandbox: Option<&ReadySandbox>,
        resolution: Option<&Resolution>,
        call: &ToolCall,
        may_delegate: bool,
    ) -> Result<(), Halt> {
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
                self.write(thread_id, done(&call.id, self.redactor.redact(&answer))).await.map(drop)
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
            req = req.env(name.as_str(), value.expose());
        }
        let _ = self.inner.store.touch_sandbox(self.house_id(), sandbox.sandbox.id).await;
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let exec = async move {
            let mut sink = move |_: Stream, chunk: &[u8]| {
                let _ = tx.send(chunk.to_vec());
            };
            sandbox.runtime.exec(&sandbox.external_id, req, &mut sink).await
        };
        // Output becomes entries as it comes, redacted across chunk boundaries.
        let mut redactor = self.redactor.stream();
        let pump = async {
            let flush = self.inner.config.output_flush;
            let mut pending = String::new();
            let mut open = true;
            while open {
                let tick = tokio::time::sleep(flush);
                tokio::pin!(tick);
                loop {
                    tokio::select! {
                        chunk = rx.recv() => match chunk {
                            Some(chunk) => pending.push_str(&redactor.push(&chunk)),
                            None => { open = false; break; }
                        },
                        () = &mut tick => break,
                    }
                }
                if !pending.is_empty() && open {
                    let body = EntryBody::ToolResult {
                        call_id: call_id.to_owned(),
                        output: std::mem::take(&mut pending),
                        done: false,
                        exit_code: None,
                        timed_out: false,
                        truncated: false,
                    };
                    self.write(thread_id, body).await?;
                }
            }
            pending.push_str(&redactor.finish());
            Ok::<String, Halt>(pending)
        };
        let (outcome, rest) = tokio::join!(self.guarded(exec), pump);
        let rest = rest?;
        self.ledger().commands_run += 1;
        let outcome = match outcome? {
            Ok(outcome) => outcome,
            Err(err) if matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::NotFound) => {
                return Err(Halt::fail(ErrorClass::Network, format!("the sandbox could not run the command: {err}")));
            }
            Err(err) => return self.write(thread_id, done(call_id, format!("{rest}{err}"))).await.map(drop),
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
            truncated: outcome.truncated,
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
            match self.guarded(self.inner.envs.provision_sandbox(house, &parent_box.sandbox.runtime, name)).await? {
                Ok(fresh) => fresh,
                Err(err) => return Ok(format!("could not provision a sandbox for the task: {err}")),
            };
        let res = async {
            let now = chrono::Utc::now();
            let sub_env = arbe_core::Environment {
                id: env.id,
                house_id: house,
                author_id: env.author_id,
                name: env.name.clone(),
                runtime: env.runtime.clone(),
                sandbox_id: fresh.sandbox.id,
                default_repo: env.default_repo.clone(),
                allowed_repos: env.allowed_repos.clone(),
                github_installation_id: env.github_installation_id,
                secret_bindings: env.secret_bindings.clone(),
                created_at: now,
                updated_at: now,
                deleted_at: None,
            };
            let sub = store
                .create_thread(NewThread {
                    house_id: house,
                    author_id: thread.author_id,
                    parent: ParentRef::Thread(thread.id),
                    environment: Some(&sub_env),
                    model_override: thread.model_override.clone(),
                    agent_ids: vec![agent.id],
                })
                .await?;
            self.write(sub.id, EntryBody::UserMessage { author_id: thread.author_id, text: task.to_owned() }).await?;
            let running = EntryBody::Status { status: ThreadStatus::Running, job: Some(self.job.id), ledger: None };
            self.write(sub.id, running).await?;
            let outcome = self.run_agent(&sub, sub.id, agent, model, Some(&fresh), resolution, false).await;
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
                    let message = format!("the helper failed ({}): {}", failure.class, failure.message);
                    let body = EntryBody::AgentFailed {
                        error_class: failure.class,
                        message: failure.message,
                        provider: failure.provider,
                        model: failure.model,
                    };
                    self.write(sub.id, body).await?;
                    (ThreadStatus::Failed, format!("sub-thread {}: {message}", sub.id))
                }
                Err(other) => return Err(other),
            };
            self.write(sub.id, EntryBody::Status { status, job: Some(self.job.id), ledger: None }).await?;
            store.set_thread_status(house, sub.id, status).await?;
            Ok(answer)
        }
        .await;
        if let Err(err) = self.inner.envs.destroy_sandbox(house, fresh.sandbox.id).await {
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
