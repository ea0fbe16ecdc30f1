//! `arbe thread`: threads, their entries, and the tail that follows a dispatch to its end.

use std::io::Read;

use arbe_client::Client;
use arbe_core::{Entry, EntryBody, ErrorClass, HouseId, Thread, ThreadId, ThreadStatus};
use futures_util::StreamExt;

use crate::{
    args::{EntriesCommand, ThreadCommand},
    commands::{Ctx, named, when},
    error::{CliError, code},
    output::{Printer, Spinner, Style},
};

/// Runs `arbe thread …`; `entries read` exits with its dispatch's status code.
pub(crate) async fn run(ctx: &Ctx, command: ThreadCommand) -> Result<u8, CliError> {
    let client = ctx.client()?;
    let house = ctx.house(&client).await?;
    match command {
        ThreadCommand::Create { parent, model, agents } => {
            let environment = ctx.env();
            let body = arbe_api::CreateThread { parent, environment: environment.clone(), model, agents };
            let env = environment.as_deref().unwrap_or_default();
            let thread =
                client.create_thread(house, &body).await.map_err(named("environment", env, "arbe env list"))?;
            if ctx.out.json {
                ctx.out.json(&thread);
            } else {
                ctx.out.line(&thread.id.to_string());
                if environment.is_none() {
                    ctx.out.warn("no environment: this thread's agents get no sandbox");
                    ctx.out.hint("pass --env NAME, or pick one once with `arbe env use NAME`");
                }
            }
        }
        ThreadCommand::List { limit } => {
            let threads = client.threads(house, limit).await?;
            if ctx.out.json {
                ctx.out.json(&threads);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = threads
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.parent.to_string(),
                        t.environment.as_ref().map_or_else(|| "-".to_owned(), |e| e.name.to_string()),
                        t.status.as_str().to_owned(),
                        when(&t.updated_at),
                    ]
                })
                .collect();
            ctx.out.table(&["ID", "PARENT", "ENV", "STATUS", "UPDATED"], &rows, "No threads in this house.");
        }
        ThreadCommand::View { thread } => {
            let thread = client.thread(house, thread_id(&thread)?).await.map_err(named(
                "thread",
                &thread,
                "arbe thread list",
            ))?;
            if ctx.out.json {
                ctx.out.json(&thread);
            } else {
                view(ctx, &thread);
            }
        }
        ThreadCommand::Cancel { thread } => {
            let cancelled = client.cancel_thread(house, thread_id(&thread)?).await.map_err(named(
                "thread",
                &thread,
                "arbe thread list",
            ))?;
            if ctx.out.json {
                ctx.out.json(&cancelled);
            } else if cancelled.cancelled == 0 {
                ctx.out.note("Nothing to cancel: no dispatch of this thread is queued or running.");
            } else {
                ctx.out.note(&format!("Cancelled {} dispatch(es)", cancelled.cancelled));
            }
        }
        ThreadCommand::Entries(EntriesCommand::Create { thread, text }) => {
            let id = thread_id(&thread)?;
            let text = if text == "-" { read_stdin()? } else { text };
            let posted =
                client.post_entry(house, id, &text).await.map_err(named("thread", &thread, "arbe thread list"))?;
            if ctx.out.json {
                ctx.out.json(&posted);
            } else {
                ctx.out.note(&format!("Posted entry #{}; its dispatch is queued.", posted.entry.seq));
                ctx.out.hint(&format!("follow it with `arbe thread entries read {id}`"));
            }
        }
        ThreadCommand::Entries(EntriesCommand::Read { thread, after, no_follow }) => {
            let id = thread_id(&thread)?;
            return tail(&ctx.out, &client, house, id, after, !no_follow).await;
        }
    }
    Ok(0)
}

fn thread_id(text: &str) -> Result<ThreadId, CliError> {
    ThreadId::parse(text).map_err(|_| {
        CliError::usage(format!("thread: `{text}` is not a thread id (a UUID)"))
            .hint("`arbe thread list` shows the house's threads")
    })
}

fn read_stdin() -> Result<String, CliError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::usage(format!("cannot read the message from stdin: {e}")))?;
    Ok(text)
}

fn view(ctx: &Ctx, t: &Thread) {
    ctx.out.fields(&[
        ("id", t.id.to_string()),
        ("parent", t.parent.to_string()),
        ("environment", t.environment.as_ref().map_or_else(|| "-".to_owned(), |e| e.name.to_string())),
        ("model", t.model_override.as_ref().map_or_else(|| "each agent's own".to_owned(), ToString::to_string)),
        ("status", t.status.as_str().to_owned()),
        ("entries", t.last_seq.to_string()),
        ("created", when(&t.created_at)),
        ("updated", when(&t.updated_at)),
    ]);
}

/// Prints the thread's entries after `after` and, when following, every new one until no
/// dispatch of the thread is queued or running. The exit code is the thread's status once the
/// tail ends (so `--after` past the status entry still tells): 0 succeeded (or no dispatch),
/// [`code::DISPATCH_FAILED`], [`code::DISPATCH_CANCELLED`]; a followed stream that ended while
/// the dispatch still runs (the server stopped) is an error.
pub(crate) async fn tail(
    out: &Printer,
    client: &Client,
    house: HouseId,
    thread: ThreadId,
    after: i64,
    follow: bool,
) -> Result<u8, CliError> {
    let mut view = Tail { out, spinner: None, seen: after };
    if follow {
        let mut entries = std::pin::pin!(client.follow(house, thread, after));
        while let Some(entry) = entries.next().await {
            view.show(&entry?);
        }
    } else {
        let mut after = after;
        loop {
            let page = client.entries(house, thread, after).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for entry in &page {
                view.show(entry);
            }
        }
    }
    view.spinner = None;
    match client.thread(house, thread).await?.status {
        ThreadStatus::Failed => Ok(code::DISPATCH_FAILED),
        ThreadStatus::Cancelled => Ok(code::DISPATCH_CANCELLED),
        ThreadStatus::Queued | ThreadStatus::Running if follow => Err(CliError::new(
            arbe_core::ErrorKind::Unavailable,
            "the stream ended before the dispatch did (the server stopped or restarts)",
        )
        .hint(format!("follow it again with `arbe thread entries read {thread} --after {}`", view.seen))),
        _ => Ok(0),
    }
}

/// A tail as it prints.
struct Tail<'a> {
    out: &'a Printer,
    spinner: Option<Spinner>,
    /// The last sequence number shown.
    seen: i64,
}

impl Tail<'_> {
    fn show(&mut self, entry: &Entry) {
        self.spinner = None;
        self.seen = entry.seq;
        let out = self.out;
        if out.json {
            out.json_line(entry);
            return;
        }
        match &entry.body {
            EntryBody::UserMessage { text, .. } => {
                out.line(&format!("{} {text}", out.paint(Style::Bold, "you:")));
            }
            EntryBody::AgentMessage { text, model, .. } => {
                out.line(&format!("{} {}", out.paint(Style::Bold, "agent:"), text.trim_end()));
                out.line(&out.paint(Style::Dim, &format!("  ({model})")));
                self.spinner = out.spinner("the agent is working…");
            }
            EntryBody::ToolCall { tool, arguments, .. } => {
                let line = match (tool.as_str(), arguments.get("command").and_then(|c| c.as_str())) {
                    ("run_command", Some(command)) => format!("$ {command}"),
                    _ => format!("→ {tool} {arguments}"),
                };
                out.line(&out.paint(Style::Cyan, &line));
                self.spinner = out.spinner("running…");
            }
            EntryBody::ToolResult { output, done, exit_code, timed_out, truncated, .. } => {
                let text = output.trim_end_matches('\n');
                if !text.is_empty() {
                    out.line(text);
                }
                if *done {
                    let mut notes = Vec::new();
                    if let Some(code) = exit_code.filter(|c| *c != 0) {
                        notes.push(format!("exit {code}"));
                    }
                    if *timed_out {
                        notes.push("timed out".to_owned());
                    }
                    if *truncated {
                        notes.push("output truncated".to_owned());
                    }
                    if !notes.is_empty() {
                        out.line(&out.paint(Style::Yellow, &format!("[{}]", notes.join(", "))));
                    }
                    self.spinner = out.spinner("the agent is thinking…");
                }
            }
            EntryBody::Status { status, .. } => {
                let line = match status {
                    ThreadStatus::Idle => return,
                    ThreadStatus::Queued => {
                        self.spinner = out.spinner("waiting for a worker…");
                        out.paint(Style::Dim, "· queued")
                    }
                    ThreadStatus::Running => {
                        self.spinner = out.spinner("the agent is thinking…");
                        out.paint(Style::Dim, "· running")
                    }
                    ThreadStatus::Succeeded => out.paint(Style::Green, "✓ succeeded"),
                    ThreadStatus::Failed => out.paint(Style::Red, "✗ failed"),
                    ThreadStatus::Cancelled => out.paint(Style::Yellow, "· cancelled"),
                };
                out.line(&line);
            }
            EntryBody::AgentFailed { error_class, message, provider, model } => {
                let from = match (provider, model) {
                    (_, Some(model)) => format!(" ({model})"),
                    (Some(provider), None) => format!(" ({provider})"),
                    _ => String::new(),
                };
                out.line(&out.paint(
                    Style::Red,
                    &format!("✗ the agent failed: {} error{from}: {message}", error_class.as_str()),
                ));
                out.hint(what_to_do(*error_class));
            }
            EntryBody::Warning { message } => {
                out.line(&out.paint(Style::Yellow, &format!("! {message}")));
            }
        }
    }
}

/// What a person can do about a failure of each class.
fn what_to_do(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Auth => {
            "the model provider refused the key: set a valid one with `printf '%s' \"$OPENROUTER_API_KEY\" | arbe secret set OPENROUTER_API_KEY --shared`"
        }
        ErrorClass::Billing => "the model provider's account needs credit or a payment method",
        ErrorClass::Quota => "a quota or rate limit was reached: post the message again later, or raise the limit",
        ErrorClass::Network => {
            "the server could not reach the model provider: check its network access (or OPENROUTER_BASE_URL)"
        }
        ErrorClass::AgentExit => "the agent stopped before finishing: the entries above show how far it got",
        _ => "the server's log has the details (`arbe up --verbose`)",
    }
}
