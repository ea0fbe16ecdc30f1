//! The cases `both_backends!` runs on SQLite and on PostgreSQL.

use std::{sync::Arc, time::Duration};

use arbe_core::{EntryBody, ErrorClass, ErrorKind, JobState, ModelRef, SandboxState, ThreadStatus};
use arbe_runtime::{ExternalId, Runtime};
use arbe_store::testkit::TestStore;
use serde_json::json;
use tokio::sync::Notify;

use arbe_llm::testkit::Reply;
use arbe_testkit::eventually;

use crate::{CANARY, Fixture, MODEL_KEY, all_text, fast_config, kinds, takeover_config, terminals};

fn run(cmd: &str) -> Reply {
    Reply::tools(vec![("run_command", json!({ "command": cmd }))])
}

fn tool_outputs(entries: &[arbe_core::Entry]) -> Vec<(String, String, bool, Option<i32>, bool)> {
    let mut by_call: Vec<(String, String, bool, Option<i32>, bool)> = Vec::new();
    for e in entries {
        if let EntryBody::ToolResult { call_id, output, done, exit_code, timed_out, .. } = &e.body {
            match by_call.iter_mut().find(|(id, _, d, _, _)| id == call_id && !*d) {
                Some(slot) => {
                    slot.1.push_str(output);
                    slot.2 = *done;
                    slot.3 = *exit_code;
                    slot.4 = *timed_out;
                }
                None => by_call.push((call_id.clone(), output.clone(), *done, *exit_code, *timed_out)),
            }
        }
    }
    by_call
}

/// Only what commands printed (not the commands themselves).
fn output_text(entries: &[arbe_core::Entry]) -> String {
    tool_outputs(entries).into_iter().map(|o| o.1).collect()
}

/// The job closes just after its terminal entry is written: wait for it.
async fn job_state(fx: &Fixture, job: arbe_core::JobId) -> JobState {
    eventually(&format!("job {job} to close"), Duration::from_secs(20), || async {
        Some(fx.test.store.job(fx.house.id, job).await.unwrap().state).filter(|s| s.is_terminal())
    })
    .await
}

/// A marker unique to this test process and call, to put in a command line (`sleep 60.1234`).
fn marker(seconds: u32) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{seconds}.{}{n}", std::process::id() % 10_000)
}

/// How many processes on this machine (the local runtime's sandboxes are on it) have `needle`
/// in their command line.
fn processes_with(needle: &str) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle)
        {
            n += 1;
        }
    }
    n
}

/// Waits until no process has `needle` in its command line; fails naming it.
async fn none_left(needle: &str) {
    eventually(&format!("the processes running `{needle}` to be killed"), Duration::from_secs(20), || async {
        (processes_with(needle) == 0).then_some(())
    })
    .await;
}

/// Waits until the commands' output in `thread` contains `text`.
async fn output_contains(fx: &Fixture, thread: &arbe_core::Thread, text: &str) {
    eventually(&format!("the output `{text}`"), Duration::from_secs(20), || async {
        output_text(&fx.entries(thread).await).contains(text).then_some(())
    })
    .await;
}

fn failure(entries: &[arbe_core::Entry]) -> (ErrorClass, String, Option<String>, Option<String>) {
    entries
        .iter()
        .find_map(|e| match &e.body {
            EntryBody::AgentFailed { error_class, message, provider, model } => {
                Some((*error_class, message.clone(), provider.clone(), model.clone()))
            }
            _ => None,
        })
        .expect("an agent_failed entry")
}

pub(crate) async fn success_runs_commands_with_secrets_and_records_every_step(test: TestStore) {
    let logs = arbe_testkit::LogCapture::install();
    let script = vec![
        run("echo hello; test \"$DEPLOY_TOKEN\" = tok-canary-9f8e7d && echo has-token; echo $DEPLOY_TOKEN"),
        Reply::text_answer("Done: the token works."),
    ];
    let fx = Fixture::new(test, script).await;
    let thread = fx.thread("work", &[("DEPLOY_TOKEN", true), ("NICE_TO_HAVE", false)]).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let (user, job) = d.post(&fx.writer, thread.id, "check the deploy token").await.unwrap();
    assert_eq!(user.seq, 1);
    let entries = fx.wait_end(&d, &thread, job.id).await;
    workers.shutdown(Duration::from_secs(5)).await;

    let k = kinds(&entries);
    assert_eq!(&k[..4], ["user.message", "signal.thread.status", "signal.thread.status", "signal.thread.warning"]);
    assert_eq!(k[4], "tool.call");
    assert_eq!(&k[k.len() - 2..], ["agent.message", "signal.thread.status"]);
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Succeeded]);
    // The command saw the secret; its output stored only the redaction marker.
    let outputs = tool_outputs(&entries);
    assert_eq!(outputs.len(), 1);
    let (_, output, done, exit_code, _) = &outputs[0];
    assert_eq!(output, "hello\nhas-token\n[redacted:DEPLOY_TOKEN]\n");
    assert_eq!((*done, *exit_code), (true, Some(0)));
    assert!(!all_text(&entries).contains(CANARY));
    let EntryBody::Warning { message } = &entries[3].body else { panic!() };
    assert!(message.contains("NICE_TO_HAVE"), "{message}");
    // The ledger: names, never values.
    let EntryBody::Status { ledger: Some(ledger), .. } = &entries.last().unwrap().body else { panic!() };
    assert_eq!((ledger.model_turns, ledger.tokens_in, ledger.tokens_out, ledger.commands_run), (2, 200, 20, 1));
    assert_eq!(ledger.secret_names.iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["DEPLOY_TOKEN"]);
    // The model got the house key, the tools, and the redacted output, never the value.
    {
        let received = fx.model.received();
        let keys: Vec<_> = received.iter().map(|r| r.key()).collect();
        assert_eq!(keys, [Some(MODEL_KEY), Some(MODEL_KEY)]);
        let requests = fx.model.bodies();
        assert_eq!(requests[0]["model"], "anthropic/claude-haiku-4.5");
        assert_eq!(requests[0]["tools"][0]["function"]["name"], "run_command");
        let second = requests[1].to_string();
        assert!(second.contains("[redacted:DEPLOY_TOKEN]") && second.contains("[exit code 0]"), "{second}");
        assert!(!requests.iter().any(|r| r.to_string().contains(CANARY)));
    }
    assert_eq!(job_state(&fx, job.id).await, JobState::Succeeded);
    let thread = fx.test.store.thread(fx.house.id, thread.id).await.unwrap();
    assert_eq!(thread.status, ThreadStatus::Succeeded);
    // Every log line of the whole dispatch, at trace level: no value, no model key.
    assert!(logs.text().contains("sandbox provisioned"), "the capture saw the run's own events");
    logs.assert_absent(CANARY, "the bound secret's value");
    logs.assert_absent(MODEL_KEY, "the model key");
}

pub(crate) async fn each_error_class_ends_failed_with_agent_failed(test: TestStore) {
    let cases = [
        // A provider that echoes the key it was sent: the stored failure must not carry it.
        (
            401,
            json!({"error": {"code": 401, "message": format!("No auth credentials found for {MODEL_KEY}")}}),
            ErrorClass::Auth,
        ),
        (402, json!({"error": {"code": 402, "message": "Insufficient credits"}}), ErrorClass::Billing),
        (429, json!({"error": {"code": 429, "message": "Rate limit exceeded"}}), ErrorClass::Quota),
        (503, json!({"error": {"code": 503, "message": "No available providers"}}), ErrorClass::Network),
    ];
    let fx = Fixture::new(test, cases.iter().map(|(s, b, _)| Reply::Error(*s, b.clone())).collect()).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    for (i, (status, _, class)) in cases.iter().enumerate() {
        let thread = fx.thread(&format!("env{i}"), &[]).await;
        let (_, job) = d.post(&fx.writer, thread.id, "hello").await.unwrap();
        let entries = fx.wait_end(&d, &thread, job.id).await;
        assert_eq!(terminals(&entries, job.id), [ThreadStatus::Failed], "HTTP {status}");
        let (got, message, provider, model) = failure(&entries);
        assert_eq!(got, *class, "HTTP {status}: {message}");
        assert_eq!((provider.as_deref(), model.as_deref()), (Some("openrouter"), Some("anthropic/claude-haiku-4.5")));
        assert!(!message.contains(MODEL_KEY), "{message}");
        if *status == 401 {
            assert!(message.contains("No auth credentials found for [redacted"), "the echo was scrubbed: {message}");
        }
        assert_eq!(job_state(&fx, job.id).await, JobState::Failed);
    }
    workers.shutdown(Duration::from_secs(5)).await;
}

pub(crate) async fn missing_required_secret_or_model_key_fails_naming_it(test: TestStore) {
    let fx = Fixture::new(test, vec![]).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let thread = fx.thread("work", &[("NOT_SET_A", true), ("NOT_SET_B", true)]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "hello").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    let (class, message, _, _) = failure(&entries);
    assert_eq!(class, ErrorClass::Unknown);
    assert!(message.contains("NOT_SET_A is not set") && message.contains("NOT_SET_B is not set"), "{message}");
    // A model whose provider key is nowhere: auth, naming the variable.
    let thread = fx.thread("other", &[]).await;
    let pinned = fx
        .test
        .store
        .create_thread(arbe_store::NewThread {
            house_id: fx.house.id,
            author_id: fx.writer.member_id(),
            parent: arbe_core::ParentRef::Thread(thread.id),
            environment: None,
            model_override: Some(ModelRef::parse("openai/gpt-4o-mini").unwrap()),
            agent_ids: vec![],
        })
        .await
        .unwrap();
    let (_, job) = d.post(&fx.writer, pinned.id, "hello").await.unwrap();
    let entries = fx.wait_end(&d, &pinned, job.id).await;
    let (class, message, provider, _) = failure(&entries);
    assert_eq!((class, provider.as_deref()), (ErrorClass::Auth, Some("openai")));
    assert!(message.starts_with("no OPENAI_API_KEY for openai/gpt-4o-mini"), "{message}");
    assert!(fx.model.bodies().is_empty(), "no model was called");
    workers.shutdown(Duration::from_secs(5)).await;
}

pub(crate) async fn step_limit_ends_agent_exit(test: TestStore) {
    let fx = Fixture::new(test, vec![run("true"), run("true"), run("true")]).await;
    let d = fx.dispatcher(arbe_dispatch::DispatchConfig { max_steps: 2, ..fast_config("w") });
    let workers = d.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "loop").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    let (class, message, _, _) = failure(&entries);
    assert_eq!(class, ErrorClass::AgentExit);
    assert!(message.contains("limit of 2 model turns"), "{message}");
    assert_eq!(fx.model.bodies().len(), 2);
    workers.shutdown(Duration::from_secs(5)).await;
}

pub(crate) async fn failing_and_invalid_tool_calls_are_reported_and_the_run_goes_on(test: TestStore) {
    let script = vec![
        Reply::tools(vec![
            ("run_command", json!({"command": "echo oops >&2; exit 3"})),
            ("run_command", json!({"cmd": "ls"})),
            ("make_coffee", json!({})),
        ]),
        Reply::text_answer("The command failed with 3."),
    ];
    let fx = Fixture::new(test, script).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "try").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Succeeded]);
    let outputs = tool_outputs(&entries);
    assert_eq!(outputs.len(), 3);
    assert_eq!((outputs[0].1.as_str(), outputs[0].3), ("oops\n", Some(3)));
    assert!(outputs[1].1.contains("command must be a non-empty string"), "{}", outputs[1].1);
    assert!(outputs[2].1.starts_with("unknown tool make_coffee: the tools here are run_command, delegate_task"));
    // The model saw all three results, each paired with its call.
    let second = &fx.model.bodies()[1];
    let tool_msgs: Vec<_> = second["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "tool").collect();
    assert_eq!(tool_msgs.len(), 3);
    assert!(tool_msgs[0]["content"].as_str().unwrap().ends_with("[exit code 3]"));
}

pub(crate) async fn command_timeout_kills_the_command_and_run_timeout_fails_the_run(test: TestStore) {
    let gate = Arc::new(Notify::new());
    let sleep = marker(30);
    let script = vec![
        Reply::tools(vec![(
            "run_command",
            json!({"command": format!("sleep {sleep}; echo late"), "timeout_seconds": 1}),
        )]),
        Reply::text_answer("It timed out."),
        Reply::Gated(gate.clone(), Box::new(Reply::text_answer("never"))),
    ];
    let fx = Fixture::new(test, script).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "sleep").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    // The sleep is gone (it would last 30 s), not merely no longer waited for.
    none_left(&format!("sleep {sleep}")).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Succeeded]);
    let outputs = tool_outputs(&entries);
    assert!(outputs[0].4, "timed out: {:?}", outputs[0]);
    assert!(!outputs[0].1.contains("late"));
    workers.shutdown(Duration::from_secs(5)).await;
    // A whole dispatch past its time: agent_exit, and the hung model call is abandoned.
    let d = fx.dispatcher(arbe_dispatch::DispatchConfig { run_timeout: Duration::from_secs(1), ..fast_config("w2") });
    let workers = d.start();
    let (_, job) = d.post(&fx.writer, thread.id, "hang").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    let (class, message, _, _) = failure(&entries);
    assert_eq!(class, ErrorClass::AgentExit);
    assert!(message.contains("ran out of time"), "{message}");
    workers.shutdown(Duration::from_secs(5)).await;
}

pub(crate) async fn cancel_stops_the_running_command_and_the_model_call(test: TestStore) {
    let gate = Arc::new(Notify::new());
    let sleep = marker(60);
    let script = vec![
        run(&format!("echo started; sleep {sleep}; echo finished")),
        Reply::Gated(gate.clone(), Box::new(Reply::text_answer("x"))),
    ];
    let fx = Fixture::new(test, script).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "long").await.unwrap();
    // Wait until the command has started (its first output is recorded, its sleep runs).
    output_contains(&fx, &thread, "started").await;
    assert!(processes_with(&format!("sleep {sleep}")) >= 1, "the sleep runs before the cancel");
    assert_eq!(d.cancel(&fx.writer, thread.id).await.unwrap(), 1);
    let entries = fx.wait_end(&d, &thread, job.id).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Cancelled]);
    // Killed, not merely abandoned: the sleep (60 s) is gone.
    none_left(&format!("sleep {sleep}")).await;
    assert!(!output_text(&entries).contains("finished"));
    assert_eq!(job_state(&fx, job.id).await, JobState::Cancelled);
    // A cancel while the model is thinking stops the call.
    let (_, job) = d.post(&fx.writer, thread.id, "think").await.unwrap();
    eventually("the second model call", Duration::from_secs(20), || async {
        (fx.model.bodies().len() >= 2).then_some(())
    })
    .await;
    d.cancel(&fx.writer, thread.id).await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Cancelled]);
    workers.shutdown(Duration::from_secs(5)).await;
    // The cancelled command got a final result, so the conversation stayed well formed for the
    // next dispatch (the fake refuses any other).
    let outputs = tool_outputs(&entries);
    assert!(outputs[0].2 && outputs[0].1.contains("cancelled: the dispatch was cancelled"), "{outputs:?}");
    assert!(fx.model.invalid().is_empty());
    // A reader may not cancel.
    let (reader, _) = arbe_store::testkit::member(&fx.test.store, &fx.house, "rita", arbe_core::Role::Reader).await;
    let err = d.cancel(&reader, thread.id).await.unwrap_err();
    assert_eq!(arbe_core::Classify::kind(&err), ErrorKind::Forbidden);
}

pub(crate) async fn cancel_of_a_queued_dispatch_ends_it_at_once(test: TestStore) {
    let fx = Fixture::new(test, vec![]).await;
    let d = fx.dispatcher(fast_config("w"));
    let thread = fx.thread("work", &[]).await;
    // No workers: the job stays queued until cancelled.
    let (_, job) = d.post(&fx.writer, thread.id, "never runs").await.unwrap();
    assert_eq!(d.cancel(&fx.writer, thread.id).await.unwrap(), 1);
    let entries = fx.entries(&thread).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Cancelled]);
    assert_eq!(job_state(&fx, job.id).await, JobState::Cancelled);
    assert_eq!(fx.test.store.thread(fx.house.id, thread.id).await.unwrap().status, ThreadStatus::Cancelled);
    // Bad input changes nothing.
    let before = entries.len();
    let err = d.post(&fx.writer, thread.id, "   ").await.unwrap_err();
    assert_eq!(err.to_string(), "invalid message: must be 1 to 32,768 characters and not only white space");
    assert_eq!(fx.entries(&thread).await.len(), before);
}

pub(crate) async fn worker_killed_mid_run_is_taken_over_without_loss_or_duplicates(test: TestStore) {
    let sleep = marker(30);
    let script = vec![
        run("echo step-one"),
        run(&format!("echo begun; sleep {sleep}; echo never")),
        Reply::text_answer("Recovered."),
    ];
    let fx = Fixture::new(test, script).await;
    let a = fx.dispatcher(takeover_config("a"));
    let workers_a = a.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = a.post(&fx.writer, thread.id, "two steps").await.unwrap();
    output_contains(&fx, &thread, "begun").await;
    // The worker dies: no more writes, its lease lapses, and its command goes with it.
    workers_a.abort();
    none_left(&format!("sleep {sleep}")).await;
    let b = fx.dispatcher(takeover_config("b"));
    let workers_b = b.start();
    let entries = fx.wait_end(&b, &thread, job.id).await;
    workers_b.shutdown(Duration::from_secs(5)).await;

    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Succeeded]);
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=entries.len() as i64).collect::<Vec<_>>(), "no gaps, no duplicates");
    let running = entries
        .iter()
        .filter(|e| matches!(&e.body, EntryBody::Status { status: ThreadStatus::Running, job: Some(j), .. } if *j == job.id))
        .count();
    assert_eq!(running, 1);
    let calls: Vec<&str> = entries
        .iter()
        .filter_map(|e| match &e.body {
            EntryBody::ToolCall { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2);
    let outputs = tool_outputs(&entries);
    assert_eq!(outputs.len(), 2, "one final result per call: {outputs:?}");
    assert_eq!(outputs[0].1, "step-one\n");
    assert!(outputs[1].1.starts_with("begun\ninterrupted: the worker running this tool stopped"), "{:?}", outputs[1]);
    assert!(!output_text(&entries).contains("never"));
    assert_eq!(job_state(&fx, job.id).await, JobState::Succeeded);
    assert_eq!(fx.test.store.job(fx.house.id, job.id).await.unwrap().attempts, 2);
    let third = fx.model.bodies()[2].to_string();
    assert!(third.contains("interrupted"), "the new worker told the model: {third}");
    // The ledger counts the work of both attempts.
    let EntryBody::Status { ledger: Some(ledger), .. } = &entries.last().unwrap().body else { panic!() };
    assert_eq!((ledger.model_turns, ledger.commands_run), (3, 2), "{ledger:?}");
}

pub(crate) async fn two_workers_racing_for_one_job_run_it_once(test: TestStore) {
    let fx = Fixture::new(test, vec![Reply::text_answer("Only once.")]).await;
    let a = fx.dispatcher(fast_config("a"));
    let b = fx.dispatcher(fast_config("b"));
    let thread = fx.thread("work", &[]).await;
    let (_, job) = a.post(&fx.writer, thread.id, "race").await.unwrap();
    let (wa, wb) = (a.start(), b.start());
    let entries = fx.wait_end(&a, &thread, job.id).await;
    wa.shutdown(Duration::from_secs(5)).await;
    wb.shutdown(Duration::from_secs(5)).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Succeeded]);
    assert_eq!(fx.test.store.job(fx.house.id, job.id).await.unwrap().attempts, 1);
    assert_eq!(fx.model.bodies().len(), 1);
    assert_eq!(kinds(&fx.entries(&thread).await).iter().filter(|k| **k == "agent.message").count(), 1);
}

pub(crate) async fn secrets_split_across_output_chunks_are_redacted(test: TestStore) {
    let script = vec![
        run("printf 'tok-can'; sleep 0.4; printf 'ary-9f8e7d and more, and more, and more, and more'; sleep 0.4; \
             echo; echo tok-canary-9f8e7d"),
        Reply::text_answer("I must not repeat tok-canary-9f8e7d."),
    ];
    let fx = Fixture::new(test, script).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let thread = fx.thread("work", &[("DEPLOY_TOKEN", true)]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "leak it").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    workers.shutdown(Duration::from_secs(5)).await;
    let pieces: Vec<&str> = entries
        .iter()
        .filter_map(|e| match &e.body {
            EntryBody::ToolResult { output, .. } => Some(output.as_str()),
            _ => None,
        })
        .collect();
    assert!(pieces.len() >= 2, "the output streamed in pieces: {pieces:?}");
    assert!(pieces.iter().all(|p| !p.contains("tok-can")), "{pieces:?}");
    assert_eq!(
        pieces.concat(),
        "[redacted:DEPLOY_TOKEN] and more, and more, and more, and more\n[redacted:DEPLOY_TOKEN]\n"
    );
    assert!(!all_text(&entries).contains(CANARY));
    assert!(all_text(&entries).contains("I must not repeat [redacted:DEPLOY_TOKEN]."));
}

pub(crate) async fn delegate_task_creates_a_sub_thread_and_destroys_its_sandbox(test: TestStore) {
    let script = vec![
        Reply::tools(vec![("delegate_task", json!({"task": "write hi to a file"}))]),
        run("echo hi > f.txt; cat f.txt; pwd"),
        Reply::text_answer("Helper: wrote f.txt."),
        Reply::text_answer("All done."),
    ];
    let fx = Fixture::new(test, script).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "delegate it").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Succeeded]);
    let outputs = tool_outputs(&entries);
    assert!(outputs[0].1.contains("Helper: wrote f.txt."), "{outputs:?}");
    // The sub-thread mirrors the helper's run.
    let threads = fx.test.store.list_threads(fx.house.id, 100).await.unwrap();
    let sub = threads.iter().find(|t| t.parent == arbe_core::ParentRef::Thread(thread.id)).expect("a sub-thread");
    assert_eq!(sub.status, ThreadStatus::Succeeded);
    let sub_entries = fx.entries(sub).await;
    assert_eq!(
        kinds(&sub_entries),
        ["user.message", "signal.thread.status", "tool.call", "tool.result", "agent.message", "signal.thread.status"]
    );
    let sub_out = &tool_outputs(&sub_entries)[0].1;
    assert!(sub_out.starts_with("hi\n"), "{sub_out}");
    // Its sandbox was fresh (not the parent's) and is gone: the row says destroyed, the runtime
    // has nothing.
    let env_box = thread.environment.as_ref().unwrap().sandbox_id;
    let sub_box = sub.environment.as_ref().unwrap().sandbox_id;
    assert_ne!(sub_box, env_box);
    let row = fx.test.store.sandbox(fx.house.id, sub_box).await.unwrap();
    assert_eq!(row.state, SandboxState::Destroyed);
    let gone = fx.local.get(&ExternalId(row.external_id.unwrap())).await.unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound);
    let parent_box = fx.test.store.sandbox(fx.house.id, env_box).await.unwrap();
    assert_eq!(parent_box.state, SandboxState::Started);
}

pub(crate) async fn subscriptions_resume_from_a_sequence_number(test: TestStore) {
    let fx = Fixture::new(test, vec![Reply::text_answer("one"), Reply::text_answer("two")]).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let thread = fx.thread("work", &[]).await;
    let (_, first) = d.post(&fx.writer, thread.id, "first").await.unwrap();
    let entries = fx.wait_end(&d, &thread, first.id).await;
    let cut = entries.last().unwrap().seq;
    // A subscriber that saw up to `cut` resumes from there and gets only what follows.
    use futures_util::StreamExt;
    let mut tail = Box::pin(d.subscribe(&fx.writer, thread.id, cut).await.unwrap());
    let (_, second) = d.post(&fx.writer, thread.id, "second").await.unwrap();
    let mut got = Vec::new();
    loop {
        let entry = tokio::time::timeout(Duration::from_secs(30), tail.next()).await.unwrap().unwrap().unwrap();
        let end = matches!(&entry.body, EntryBody::Status { status, job: Some(j), .. } if *j == second.id && status.is_terminal());
        got.push(entry);
        if end {
            break;
        }
    }
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(got.first().unwrap().seq, cut + 1);
    assert!(got.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(got.first().unwrap().body.kind().as_str(), "user.message");
    // Another process's appends reach a follower without waiting for its poll: on PostgreSQL
    // through LISTEN/NOTIFY (the follower here polls only every 5 minutes), on SQLite by polling.
    let poll = match fx.test.store.backend() {
        arbe_store::Backend::Postgres => Duration::from_secs(300),
        arbe_store::Backend::Sqlite => Duration::from_millis(50),
    };
    let follower = fx.dispatcher(arbe_dispatch::DispatchConfig { poll, ..fast_config("f") });
    let last = fx.entries(&thread).await.last().unwrap().seq;
    let postgres = fx.test.store.backend() == arbe_store::Backend::Postgres;
    if postgres {
        // Listening before the other process appends: no guess with a sleep.
        follower.until_listening().await;
    }
    let follow = follower.subscribe(&fx.writer, thread.id, last).await.unwrap();
    let waiting = tokio::spawn(async move { Box::pin(follow).next().await });
    let heard_before = follower.appends_heard();
    let (posted, _) = d.post(&fx.writer, thread.id, "third").await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(20), waiting).await.expect("woken").unwrap().unwrap().unwrap();
    assert_eq!(heard.seq, posted.seq);
    if postgres {
        assert!(follower.appends_heard() > heard_before, "the wake came through LISTEN/NOTIFY");
    }
    // Another house cannot follow it.
    let stranger = arbe_store::testkit::house(&fx.test.store, "other").await.owner;
    let err = d.subscribe(&stranger, thread.id, 0).await.err().expect("another house's thread is not found");
    assert_eq!(arbe_core::Classify::kind(&err), ErrorKind::NotFound);
}

pub(crate) async fn nul_bytes_and_floods_of_output_are_stored_safely(test: TestStore) {
    let script = vec![
        run("printf 'a\\000b\\n'; yes 0123456789 | head -c 3000000; echo; echo THE-END"),
        Reply::text_answer("Lots of output."),
    ];
    let fx = Fixture::new(test, script).await;
    let config = arbe_dispatch::DispatchConfig { max_stored_output: 64 * 1024, ..fast_config("w") };
    let d = fx.dispatcher(config);
    let workers = d.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "flood").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Succeeded]);
    let output = output_text(&entries);
    // NUL, which PostgreSQL's JSON cannot hold, is stored as U+FFFD on both backends.
    assert!(output.starts_with("a\u{FFFD}b\n0123456789"), "{}", &output[..20]);
    // Head up to the cap, then the cut counted, then the tail with the end of the output.
    assert!(output.len() < 64 * 1024 + 16 * 1024 + 100, "{} bytes stored", output.len());
    assert!(output.contains("bytes of output not stored"));
    assert!(output.trim_end().ends_with("THE-END"));
    let last = entries.iter().rev().find_map(|e| match &e.body {
        EntryBody::ToolResult { done: true, truncated, .. } => Some(*truncated),
        _ => None,
    });
    assert_eq!(last, Some(true));
    // A user message's NUL is stored as U+FFFD too.
    let (entry, _) = d.post(&fx.writer, thread.id, "a\0b").await.unwrap();
    assert!(matches!(&entry.body, EntryBody::UserMessage { text, .. } if text == "a\u{FFFD}b"), "{entry:?}");
    d.cancel(&fx.writer, thread.id).await.unwrap();
}

pub(crate) async fn reused_or_missing_call_ids_are_made_unique(test: TestStore) {
    let script = vec![
        Reply::ToolsWithId(String::new(), vec![("run_command".into(), json!({"command": "echo one"}))]),
        Reply::ToolsWithId(
            "dup".into(),
            vec![
                ("run_command".into(), json!({"command": "echo two"})),
                ("run_command".into(), json!({"command": "echo three"})),
            ],
        ),
        Reply::ToolsWithId("dup".into(), vec![("run_command".into(), json!({"command": "echo four"}))]),
        Reply::text_answer("Four commands."),
    ];
    let fx = Fixture::new(test, script).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "ids").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Succeeded]);
    let ids: Vec<&str> = entries
        .iter()
        .filter_map(|e| match &e.body {
            EntryBody::ToolCall { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 4);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 4, "{ids:?}");
    assert!(ids.iter().all(|id| !id.is_empty()));
    let outputs: Vec<String> = tool_outputs(&entries).into_iter().map(|o| o.1).collect();
    assert_eq!(outputs, ["one\n", "two\n", "three\n", "four\n"]);
}

pub(crate) async fn a_dispatch_whose_workers_keep_stopping_fails(test: TestStore) {
    let script = vec![run("echo begun; sleep 30")];
    let fx = Fixture::new(test, script).await;
    let a = fx.dispatcher(arbe_dispatch::DispatchConfig { max_attempts: 1, ..takeover_config("a") });
    let workers_a = a.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = a.post(&fx.writer, thread.id, "doomed").await.unwrap();
    output_contains(&fx, &thread, "begun").await;
    workers_a.abort();
    let b = fx.dispatcher(arbe_dispatch::DispatchConfig { max_attempts: 1, ..takeover_config("b") });
    let workers_b = b.start();
    let entries = fx.wait_end(&b, &thread, job.id).await;
    workers_b.shutdown(Duration::from_secs(5)).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Failed]);
    let (class, message, _, _) = failure(&entries);
    assert_eq!(class, ErrorClass::AgentExit);
    assert!(message.starts_with("gave up after 2 attempts"), "{message}");
    // The cut-off command got its final result, so the thread stays usable.
    let outputs = tool_outputs(&entries);
    assert!(outputs[0].2, "{outputs:?}");
    assert_eq!(fx.model.bodies().len(), 1);
}

pub(crate) async fn cancel_during_a_delegate_ends_its_sub_thread_and_sandbox(test: TestStore) {
    let sleep = marker(30);
    let script = vec![
        Reply::tools(vec![("delegate_task", json!({"task": "work for a long time"}))]),
        run(&format!("echo sub-begun; sleep {sleep}; echo sub-finished")),
    ];
    let fx = Fixture::new(test, script).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "delegate and cancel").await.unwrap();
    let sub = eventually("the helper's command to start", Duration::from_secs(20), || async {
        let children = fx.test.store.child_threads(fx.house.id, thread.id).await.unwrap();
        let sub = children.first()?;
        output_text(&fx.entries(sub).await).contains("sub-begun").then(|| sub.clone())
    })
    .await;
    d.cancel(&fx.writer, thread.id).await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Cancelled]);
    // The sub-thread ended too, its cut-off command has a final result, and its sandbox is gone.
    let sub_entries = fx.entries(&sub).await;
    assert_eq!(terminals(&sub_entries, job.id), [ThreadStatus::Cancelled]);
    assert!(tool_outputs(&sub_entries).iter().all(|o| o.2), "{:?}", tool_outputs(&sub_entries));
    assert!(!output_text(&sub_entries).contains("sub-finished"));
    none_left(&format!("sleep {sleep}")).await;
    let sub_box = sub.environment.as_ref().unwrap().sandbox_id;
    assert_eq!(fx.test.store.sandbox(fx.house.id, sub_box).await.unwrap().state, SandboxState::Destroyed);
    assert_eq!(fx.test.store.thread(fx.house.id, sub.id).await.unwrap().status, ThreadStatus::Cancelled);
}

pub(crate) async fn a_worker_whose_renewals_fail_stops_before_its_lease_runs_out(test: TestStore) {
    let logs = arbe_testkit::LogCapture::install();
    // Worker A's lease renewals start failing while its command runs (the jobs table is out of
    // reach). A must stop the command, and write nothing, before its lease could run out and
    // another worker take the job; once the table is back, B takes the job over and ends it.
    let sleep = marker(8);
    let script = vec![
        run(&format!("echo a-begun; sleep {sleep}; echo a-finished; touch a-done")),
        Reply::text_answer("B finished it."),
    ];
    let fx = Fixture::new(test, script).await;
    let a = fx.dispatcher(arbe_dispatch::DispatchConfig { lease: Duration::from_secs(2), ..fast_config("a") });
    let workers_a = a.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = a.post(&fx.writer, thread.id, "lose it").await.unwrap();
    output_contains(&fx, &thread, "a-begun").await;
    let tamper = fx.test.tamper();
    tamper.execute("ALTER TABLE dispatch_jobs RENAME TO dispatch_jobs_away").await.unwrap();
    eventually("worker A to give its run up", Duration::from_secs(20), || async {
        logs.text().contains("no lease renewal succeeded").then_some(())
    })
    .await;
    eventually("worker A's command to be killed", Duration::from_secs(20), || async {
        (processes_with(&sleep) == 0).then_some(())
    })
    .await;
    workers_a.shutdown(Duration::from_secs(5)).await;
    tamper.execute("ALTER TABLE dispatch_jobs_away RENAME TO dispatch_jobs").await.unwrap();
    let b = fx.dispatcher(takeover_config("b"));
    let workers_b = b.start();
    let entries = fx.wait_end(&b, &thread, job.id).await;
    workers_b.shutdown(Duration::from_secs(5)).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Succeeded], "exactly one terminal status");
    assert!(!output_text(&entries).contains("a-finished"), "worker A wrote after giving its run up");
    let sandbox = fx
        .services
        .sandboxes
        .view(&fx.writer, &arbe_core::SandboxRef::Id(thread.environment.as_ref().unwrap().sandbox_id))
        .await
        .unwrap();
    let external = arbe_runtime::ExternalId(sandbox.external_id.unwrap());
    assert_eq!(
        arbe_core::Classify::kind(&fx.local.get_file(&external, "a-done").await.unwrap_err()),
        ErrorKind::NotFound,
        "worker A's command ran to its end"
    );
}

pub(crate) async fn cancelling_queued_jobs_writes_their_ends_in_the_same_transaction(test: TestStore) {
    let fx = Fixture::new(test, vec![]).await;
    let d = fx.dispatcher(fast_config("w"));
    let thread = fx.thread("work", &[]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "never runs").await.unwrap();
    // The store's one call, with nothing after it: the end is already written.
    let cancelled = fx.test.store.cancel_jobs(fx.house.id, thread.id).await.unwrap();
    assert_eq!(cancelled.queued, [job.id]);
    assert_eq!(terminals(&fx.entries(&thread).await, job.id), [ThreadStatus::Cancelled]);
    assert_eq!(fx.test.store.thread(fx.house.id, thread.id).await.unwrap().status, ThreadStatus::Cancelled);
    // Again: nothing left to cancel, nothing written.
    let before = fx.entries(&thread).await.len();
    assert_eq!(fx.test.store.cancel_jobs(fx.house.id, thread.id).await.unwrap().queued, []);
    assert_eq!(fx.entries(&thread).await.len(), before);
}

pub(crate) async fn stored_pieces_do_not_reveal_a_guess_at_a_secret(test: TestStore) {
    // A writer guesses the next character of a bound secret: the command prints filler, the
    // known prefix and a guess, pauses, and goes on. Whether the guess is right must not change
    // how the output is cut into stored pieces (H1).
    let command = |guess: char| {
        format!("printf '%s' '{}tok-canary-9f8e{guess}'; sleep 1; printf '|'; sleep 1; echo end", "x".repeat(80))
    };
    let script = vec![run(&command('7')), Reply::text_answer("one"), run(&command('q')), Reply::text_answer("two")];
    let fx = Fixture::new(test, script).await;
    let d = fx.dispatcher(fast_config("w"));
    let workers = d.start();
    let thread = fx.thread("work", &[("DEPLOY_TOKEN", true)]).await;
    let mut sizes = vec![];
    for message in ["right guess", "wrong guess"] {
        let (_, job) = d.post(&fx.writer, thread.id, message).await.unwrap();
        let entries = fx.wait_end(&d, &thread, job.id).await;
        let after =
            entries.iter().position(|e| matches!(&e.body, EntryBody::UserMessage { text, .. } if text == message));
        let pieces: Vec<usize> = entries[after.unwrap()..]
            .iter()
            .filter_map(|e| match &e.body {
                EntryBody::ToolResult { output, .. } => Some(output.len()),
                _ => None,
            })
            .collect();
        sizes.push(pieces);
    }
    workers.shutdown(Duration::from_secs(5)).await;
    assert!(sizes[0].len() >= 2, "the output streamed in pieces: {sizes:?}");
    // The first piece is stored during the pause after the guess: what it holds must not
    // depend on whether the guess was right. (Later boundaries depend on timing alone: on a
    // busy machine the last chunk and the command's end may land in one flush or two.)
    assert_eq!(sizes[0][0], sizes[1][0], "the piece stored after a right and a wrong guess: {sizes:?}");
    assert_eq!(sizes[0].iter().sum::<usize>(), sizes[1].iter().sum::<usize>(), "{sizes:?}");
}

pub(crate) async fn a_recorded_end_whose_job_was_never_closed_is_closed_not_rerun(test: TestStore) {
    // A worker wrote the dispatch's terminal status and died before closing the job.
    let fx = Fixture::new(test, vec![Reply::text_answer("must not be asked")]).await;
    let thread = fx.thread("work", &[]).await;
    let (_, job) = fx.services.dispatcher.post(&fx.writer, thread.id, "finished already").await.unwrap();
    let store = &fx.test.store;
    let dead = store.claim_job("dead", Duration::from_millis(1)).await.unwrap().unwrap();
    assert_eq!(dead.id, job.id);
    let running = EntryBody::Status { status: ThreadStatus::Running, job: Some(job.id), ledger: None };
    let ended =
        EntryBody::Status { status: ThreadStatus::Succeeded, job: Some(job.id), ledger: Some(Default::default()) };
    store.append_job_entries(&dead, thread.id, vec![running, ended]).await.unwrap().unwrap();
    // Its lease lapses; the next worker finds the recorded end and only closes the job.
    let d = fx.dispatcher(takeover_config("next"));
    let workers = d.start();
    assert_eq!(job_state(&fx, job.id).await, JobState::Succeeded);
    workers.shutdown(Duration::from_secs(5)).await;
    assert!(fx.model.received().is_empty(), "nothing ran again");
    assert_eq!(terminals(&fx.entries(&thread).await, job.id), [ThreadStatus::Succeeded]);
}

pub(crate) async fn a_run_that_panics_ends_itself_and_its_worker_goes_on(test: TestStore) {
    // A bug (here in a provider) panics in the middle of a run. The one worker there is must
    // survive it: after the lease the job is retried, by that same worker, and succeeds.
    let logs = arbe_testkit::LogCapture::install();
    let fx = Fixture::new(test, vec![]).await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let provider = arbe_llm::FnProvider::new("panicky", move |_: &arbe_llm::ChatRequest| {
        if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            panic!("a bug in a provider");
        }
        arbe_llm::ChatResponse {
            text: "recovered".into(),
            tool_calls: vec![],
            stop: arbe_llm::StopReason::EndTurn,
            usage: Default::default(),
        }
    });
    let models = Arc::new(arbe_dispatch::OneProvider(Arc::new(provider)));
    let d = fx.dispatcher_with(arbe_dispatch::DispatchConfig { workers: 1, ..takeover_config("w") }, models);
    let workers = d.start();
    let thread = fx.thread("work", &[]).await;
    let (_, job) = d.post(&fx.writer, thread.id, "panic once").await.unwrap();
    let entries = fx.wait_end(&d, &thread, job.id).await;
    workers.shutdown(Duration::from_secs(5)).await;
    assert_eq!(terminals(&entries, job.id), [ThreadStatus::Succeeded]);
    assert!(all_text(&entries).contains("recovered"));
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2, "the model was asked again, once");
    assert!(logs.text().contains("a run panicked"), "the panic was logged");
}

/// Collects `n` entries from a follower, failing after 30 s.
async fn take(stream: impl futures_util::Stream<Item = arbe_dispatch::Result<arbe_core::Entry>>, n: usize) -> Vec<i64> {
    use futures_util::StreamExt;
    let mut stream = Box::pin(stream);
    let mut seqs = Vec::new();
    while seqs.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.next()).await;
        seqs.push(next.expect("the follower keeps up").expect("the stream goes on").unwrap().seq);
    }
    seqs
}

pub(crate) async fn many_followers_of_a_thread_each_see_every_entry_once_in_order(test: TestStore) {
    let fx = Fixture::new(test, vec![]).await;
    let d = fx.dispatcher(fast_config("w"));
    let thread = fx.thread("work", &[]).await;
    let note = |i: usize| EntryBody::Warning { message: format!("note {i}") };
    // More than a page already there, with nothing more coming: a follower from 0 reads it all.
    for i in 0..1_100 {
        fx.test.store.append_entry(fx.house.id, thread.id, note(i)).await.unwrap();
    }
    assert_eq!(
        take(d.subscribe(&fx.writer, thread.id, 0).await.unwrap(), 1_100).await,
        (1..=1_100).collect::<Vec<i64>>()
    );
    // Fifty followers from different places, some joining while entries arrive.
    let mut followers = Vec::new();
    for k in 0..50_i64 {
        let after = 1_100 - k * 7;
        let stream = d.subscribe(&fx.writer, thread.id, after).await.unwrap();
        let want = usize::try_from(1_300 - after).unwrap();
        followers.push((after, tokio::spawn(take(stream, want))));
        if k % 10 == 0 {
            for i in 0..40 {
                fx.test.store.append_entry(fx.house.id, thread.id, note(i)).await.unwrap();
            }
        }
    }
    for (after, follower) in followers {
        let seqs = follower.await.unwrap();
        assert_eq!(seqs, ((after + 1)..=1_300).collect::<Vec<i64>>(), "the follower from {after}");
    }
}
