//! A thread's entries as one agent's conversation, and where that agent stands in a dispatch.
//!
//! The entries are the only state: a worker that takes over a job rebuilds everything from
//! them, so nothing is lost or done twice.

use std::collections::{HashMap, HashSet};

use arbe_core::{AgentId, Entry, EntryBody, JobId, ThreadStatus};
use arbe_llm::{Message, ToolCall};

/// One agent's view of a thread.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// The conversation so far, without the system prompt.
    pub(crate) messages: Vec<Message>,
    /// Model turns the agent took in this dispatch.
    pub(crate) steps: u32,
    /// The agent gave its final answer in this dispatch.
    pub(crate) done: bool,
    /// Tool calls of this dispatch that have no final result (a worker died running them).
    pub(crate) open_calls: Vec<String>,
}

/// Where `job`'s entries start in the thread: just after its `running` status entry.
pub(crate) fn run_start(entries: &[Entry], job: JobId) -> Option<usize> {
    entries.iter().position(
        |e| matches!(&e.body, EntryBody::Status { status: ThreadStatus::Running, job: Some(j), .. } if *j == job),
    )
}

/// The terminal status `job` already recorded, if any.
pub(crate) fn terminal_status(entries: &[Entry], job: JobId) -> Option<ThreadStatus> {
    entries.iter().find_map(|e| match &e.body {
        EntryBody::Status { status, job: Some(j), .. } if *j == job && status.is_terminal() => Some(*status),
        _ => None,
    })
}

/// Tool calls (of any agent) that `job` made in this thread and that have no final result.
pub(crate) fn open_calls(entries: &[Entry], job: JobId) -> Vec<String> {
    let Some(start) = run_start(entries, job) else { return Vec::new() };
    let mut open: Vec<String> = Vec::new();
    for entry in &entries[start..] {
        match &entry.body {
            EntryBody::ToolCall { call_id, .. } => open.push(call_id.clone()),
            EntryBody::ToolResult { call_id, done: true, .. } => open.retain(|id| id != call_id),
            _ => {}
        }
    }
    open
}

/// The model turns and commands recorded in a dispatch's entries (`segment` starts at its
/// `running` entry): a turn is an agent's message and the tool calls written with it.
pub(crate) fn work_done(segment: &[Entry]) -> (u32, u32) {
    let (mut turns, mut commands) = (0, 0);
    let mut previous: Option<&EntryBody> = None;
    for entry in segment {
        match &entry.body {
            EntryBody::AgentMessage { .. } => turns += 1,
            EntryBody::ToolCall { agent_id, tool, .. } => {
                let continues = matches!(
                    previous,
                    Some(EntryBody::AgentMessage { agent_id: a, .. } | EntryBody::ToolCall { agent_id: a, .. }) if a == agent_id
                );
                if !continues {
                    turns += 1;
                }
                if tool == "run_command" {
                    commands += 1;
                }
            }
            _ => {}
        }
        previous = Some(&entry.body);
    }
    (turns, commands)
}

/// Keeps the head and the tail of long output, marking what was cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut head = max / 2;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - max / 2;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}\n[… {} bytes cut …]\n{}", &text[..head], tail - head, &text[tail..])
}

/// Builds `agent`'s view. Other agents' replies appear as user messages; a user message that
/// arrived while tool calls were open is placed after their results, as providers require.
pub(crate) fn build(entries: &[Entry], agent: AgentId, job: JobId, max_output: usize) -> View {
    let start = run_start(entries, job).unwrap_or(entries.len());
    let mut view = View::default();
    let mut outputs: HashMap<String, String> = HashMap::new();
    let mut open: HashSet<String> = HashSet::new();
    let mut deferred: Vec<String> = Vec::new();
    let mut last_mine_final = false;
    // Whether the last message is this agent's assistant turn still taking tool calls.
    let mut turn_open = false;
    for (i, entry) in entries.iter().enumerate() {
        let in_run = i > start;
        match &entry.body {
            EntryBody::UserMessage { text, .. } => {
                turn_open = false;
                if open.is_empty() {
                    view.messages.push(Message::User { text: text.clone() });
                } else {
                    deferred.push(text.clone());
                }
            }
            EntryBody::AgentMessage { agent_id, text, .. } if *agent_id == agent => {
                view.messages.push(Message::Assistant { text: text.clone(), tool_calls: Vec::new() });
                turn_open = true;
                if in_run {
                    view.steps += 1;
                    last_mine_final = true;
                }
            }
            EntryBody::AgentMessage { text, .. } if !text.trim().is_empty() => {
                turn_open = false;
                let text = format!("Another agent replied:\n{text}");
                if open.is_empty() { view.messages.push(Message::User { text }) } else { deferred.push(text) }
            }
            EntryBody::ToolCall { agent_id, call_id, tool, arguments } if *agent_id == agent => {
                let call = ToolCall {
                    id: call_id.clone(),
                    name: tool.clone(),
                    arguments: match arguments {
                        serde_json::Value::String(raw) => raw.clone(),
                        other => other.to_string(),
                    },
                };
                match view.messages.last_mut() {
                    Some(Message::Assistant { tool_calls, .. }) if turn_open => tool_calls.push(call),
                    _ => {
                        view.messages.push(Message::Assistant { text: String::new(), tool_calls: vec![call] });
                        turn_open = true;
                        if in_run {
                            view.steps += 1;
                        }
                    }
                }
                outputs.insert(call_id.clone(), String::new());
                open.insert(call_id.clone());
                if in_run {
                    last_mine_final = false;
                }
            }
            EntryBody::Status { status, .. } if status.is_terminal() && !open.is_empty() => {
                // A dispatch ended with calls that never got a result (its end could not be
                // recorded in full): providers need one per call before anything else.
                let mut ids: Vec<String> = open.drain().collect();
                ids.sort();
                for call_id in ids {
                    // A result that turns up later is not sent again.
                    outputs.remove(&call_id);
                    view.messages.push(Message::Tool { call_id, content: "no result was recorded".into() });
                }
                turn_open = false;
                view.messages.extend(deferred.drain(..).map(|text| Message::User { text }));
            }
            EntryBody::ToolResult { call_id, output, done, exit_code, timed_out, truncated } => {
                let Some(acc) = outputs.get_mut(call_id) else { continue };
                acc.push_str(output);
                if !*done {
                    continue;
                }
                turn_open = false;
                let mut content = clip(acc, max_output);
                if *timed_out {
                    content.push_str("\n[the command ran out of time and was killed]");
                } else if let Some(code) = exit_code {
                    content.push_str(&format!("\n[exit code {code}]"));
                }
                if *truncated {
                    content.push_str("\n[output was cut at the capture limit]");
                }
                view.messages.push(Message::Tool { call_id: call_id.clone(), content });
                open.remove(call_id);
                if open.is_empty() {
                    view.messages.extend(deferred.drain(..).map(|text| Message::User { text }));
                }
            }
            _ => {}
        }
    }
    view.messages.extend(deferred.drain(..).map(|text| Message::User { text }));
    view.done = last_mine_final;
    // Open calls of this run, in the order they were made.
    view.open_calls = entries[start.min(entries.len())..]
        .iter()
        .filter_map(|e| match &e.body {
            EntryBody::ToolCall { agent_id, call_id, .. } if *agent_id == agent && open.contains(call_id) => {
                Some(call_id.clone())
            }
            _ => None,
        })
        .collect();
    view
}
