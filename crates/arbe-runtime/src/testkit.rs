//! The conformance suite (feature `testkit`): the behaviour every adapter must show, picked by
//! capability. An adapter's test crate runs it with [`crate::conformance_suite!`].

use std::time::Duration;

use arbe_core::{ErrorKind, HouseId, Labels, Name, Resources, SandboxId, SandboxState, testkit::assert_kind};

use crate::{ExecRequest, ExternalId, HOUSE_LABEL, Runtime, SandboxSpec, Stream};

/// A spec for a fresh sandbox in a fresh house, with a small memory limit.
pub fn spec() -> SandboxSpec {
    let sandbox_id = SandboxId::new();
    SandboxSpec {
        house_id: HouseId::new(),
        sandbox_id,
        name: Name::parse(&format!("conformance-{}", &sandbox_id.to_string()[..8])).expect("a valid name"),
        image: None,
        resources: Resources { memory_mb: Some(128), ..Resources::default() },
        labels: Labels::parse([("arbe.test", "conformance")]).expect("valid labels"),
    }
}

/// Runs one suite case per listed name against the runtime `$make` builds:
/// `async fn() -> (Arc<dyn Runtime>, G)`, where `G` is kept alive for the test (a server the
/// runtime talks to, say) and dropped at its end. `conformance_suite!(make)` runs every case
/// every adapter must pass; `conformance_suite!(make, with: [case, …])` adds the cases of
/// optional capabilities the adapter declares (`out_of_memory_is_reported_as_such` for
/// `oom_detection`). No case skips itself: a case for a capability the adapter lacks fails, and
/// each adapter pins its declared capabilities in a test of its own, so a capability that
/// disappears is noticed.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!($make, with: []);
    };
    ($make:path, with: [$($extra:ident),* $(,)?]) => {
        $crate::conformance_suite!($make =>
            exit_codes_are_reported,
            env_vars_are_per_command,
            env_values_never_reach_a_command_line_or_disk,
            timeout_kills_the_whole_process_tree,
            dropping_an_exec_kills_the_whole_process_tree,
            binary_output_is_kept_exactly,
            output_past_the_cap_is_truncated_and_marked,
            twenty_concurrent_execs_keep_their_own_output,
            stdin_and_cwd_reach_the_command,
            files_with_odd_names_round_trip,
            stop_and_start_keep_the_workspace,
            destroy_removes_everything,
            list_finds_sandboxes_by_house_label,
            optional_features_match_capabilities,
            ping_and_diagnose_answer,
            $($extra,)*
        );
    };
    ($make:path => $($case:ident),* $(,)?) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (runtime, _guard) = $make().await;
                    $crate::testkit::$case(&*runtime).await;
                }
            )*
        }
    };
}

async fn provision(rt: &dyn Runtime) -> ExternalId {
    let info = rt.provision(&spec()).await.expect("provision a sandbox");
    assert_eq!(info.state, SandboxState::Started);
    info.external_id
}

async fn run(rt: &dyn Runtime, id: &ExternalId, req: ExecRequest) -> crate::ExecOutcome {
    rt.exec(id, req, &mut ()).await.expect("exec")
}

/// How many processes in the sandbox have `pattern` in their command line (the `[s]leep` trick
/// keeps the scan itself out of the count).
async fn survivors(rt: &dyn Runtime, id: &ExternalId, pattern: &str) -> usize {
    let scan = format!(
        "for f in /proc/[0-9]*/cmdline; do tr '\\000' ' ' < \"$f\"; echo; done 2>/dev/null | grep -c '{pattern}' || true"
    );
    run(rt, id, ExecRequest::shell(scan)).await.stdout_text().trim().parse().expect("a count")
}

/// Waits (at most 20 s) until no process matches `pattern`; fails naming what survived.
async fn wait_for_no_survivors(rt: &dyn Runtime, id: &ExternalId, pattern: &str, after: &str) {
    arbe_testkit::eventually(
        &format!("every process of the tree to be gone {after}"),
        Duration::from_secs(20),
        || async { (survivors(rt, id, pattern).await == 0).then_some(()) },
    )
    .await;
}

/// Exit codes come back for shell strings and argv alike.
pub async fn exit_codes_are_reported(rt: &dyn Runtime) {
    let id = provision(rt).await;
    assert_eq!(run(rt, &id, ExecRequest::shell("exit 0")).await.exit_code, Some(0));
    assert_eq!(run(rt, &id, ExecRequest::shell("exit 3")).await.exit_code, Some(3));
    let out = run(rt, &id, ExecRequest::argv(["sh", "-c", "echo out; echo err >&2; exit 7"])).await;
    assert_eq!((out.exit_code, out.stdout_text().as_str(), out.stderr.as_slice()), (Some(7), "out\n", &b"err\n"[..]));
    assert!(!out.timed_out && !out.oom_killed && !out.truncated);
    assert_kind(rt.exec(&id, ExecRequest::argv(Vec::<String>::new()), &mut ()).await, ErrorKind::InvalidInput);
    rt.destroy(&id).await.unwrap();
}

/// A value for [`ExecRequest::env`].
pub fn secret(value: &str) -> arbe_core::SecretValue {
    arbe_core::SecretValue::new(value.to_owned()).expect("a test value of 1 byte to 64 KiB")
}

/// A variable is visible to its command and absent from the next one.
pub async fn env_vars_are_per_command(rt: &dyn Runtime) {
    let id = provision(rt).await;
    let out =
        run(rt, &id, ExecRequest::shell("printf '%s' \"$ARBE_SECRET_X\"").env("ARBE_SECRET_X", secret("v a'l\"ue")))
            .await;
    assert_eq!(out.stdout_text(), "v a'l\"ue");
    let out = run(rt, &id, ExecRequest::shell("printf '%s' \"${ARBE_SECRET_X-unset}\"")).await;
    assert_eq!(out.stdout_text(), "unset");
    rt.destroy(&id).await.unwrap();
}

/// A variable's value is in the command's environment only: not on any process's command line
/// while it runs, and not in any file of the workspace or `/tmp` afterwards.
pub async fn env_values_never_reach_a_command_line_or_disk(rt: &dyn Runtime) {
    let id = provision(rt).await;
    let unique = SandboxId::new().as_uuid().simple().to_string();
    let canary = format!("sk-canary-{unique}");
    // This canary's own pattern, which the grep's command line does not match: other tests on
    // this machine legitimately print canaries of their own.
    let scan = format!(
        "for f in /proc/[0-9]*/cmdline; do tr '\\000' ' ' < \"$f\"; echo; done 2>/dev/null \
         | grep -c 'sk-canary-[{}]{}' || true",
        &unique[..1],
        &unique[1..]
    );
    let out = run(rt, &id, ExecRequest::shell(scan).env("ARBE_CANARY_TOKEN", secret(&canary))).await;
    assert_eq!(out.stdout_text().trim(), "0", "a command line carried the value");
    // The command saw it.
    let out =
        run(rt, &id, ExecRequest::shell("printf %s \"$ARBE_CANARY_TOKEN\"").env("ARBE_CANARY_TOKEN", secret(&canary)))
            .await;
    assert_eq!(out.stdout_text(), canary);
    let grep = format!("grep -rl '{canary}' . /tmp 2>/dev/null | head -n 5; true");
    let out = run(rt, &id, ExecRequest::shell(grep)).await;
    assert_eq!(out.stdout_text(), "", "a file held the value");
    rt.destroy(&id).await.unwrap();
}

/// A timeout kills the command and every process it started.
pub async fn timeout_kills_the_whole_process_tree(rt: &dyn Runtime) {
    let id = provision(rt).await;
    let marker = format!("3{}.{}", SandboxId::new().as_uuid().as_u128() % 1000, std::process::id() % 1000);
    let cmd = format!("sleep {marker} & sleep {marker} & sleep {marker}; wait");
    let out = run(rt, &id, ExecRequest::shell(cmd).timeout(Duration::from_secs(1))).await;
    assert!(out.timed_out, "{out:?}");
    assert_ne!(out.exit_code, Some(0));
    // Look for survivors by their command lines.
    wait_for_no_survivors(rt, &id, &format!("[s]leep {marker}"), "after the timeout").await;
    rt.destroy(&id).await.unwrap();
}

/// Dropping an exec's future (a cancelled dispatch drops it) kills the command's whole process
/// group, as a timeout does: nothing keeps running in the sandbox.
pub async fn dropping_an_exec_kills_the_whole_process_tree(rt: &dyn Runtime) {
    let id = provision(rt).await;
    let marker = format!("4{}.{}", SandboxId::new().as_uuid().as_u128() % 1000, std::process::id() % 1000);
    let cmd = format!("sleep {marker} & echo started; sleep {marker}; echo late > dropped.txt");
    let req = ExecRequest::shell(cmd).timeout(Duration::from_secs(60));
    // Drop the exec only once the command has started (it printed), so the kill has something
    // to kill.
    let started = tokio::sync::Notify::new();
    let mut sink = |_: Stream, _: &[u8]| started.notify_one();
    let outcome = {
        let exec = rt.exec(&id, req, &mut sink);
        tokio::select! {
            res = exec => Some(res),
            () = started.notified() => None,
        }
    };
    assert!(outcome.is_none(), "the command should still have been running: {outcome:?}");
    let pattern = format!("[s]leep {marker}");
    // The two sleeps were seen running before the drop: they would last 40 s.
    wait_for_no_survivors(rt, &id, &pattern, "after the exec was dropped").await;
    assert_kind(rt.get_file(&id, "dropped.txt").await, ErrorKind::NotFound);
    rt.destroy(&id).await.unwrap();
}

/// Output is bytes, not text.
pub async fn binary_output_is_kept_exactly(rt: &dyn Runtime) {
    let id = provision(rt).await;
    let out = run(rt, &id, ExecRequest::shell("printf '\\000\\001\\377\\n\\200'")).await;
    assert_eq!(out.stdout, [0u8, 1, 255, b'\n', 128]);
    rt.destroy(&id).await.unwrap();
}

/// Output past the cap is cut and marked, while the sink still sees all of it.
pub async fn output_past_the_cap_is_truncated_and_marked(rt: &dyn Runtime) {
    let id = provision(rt).await;
    let mut req = ExecRequest::shell("head -c 200000 /dev/zero");
    req.output_cap = 64 * 1024;
    let mut streamed = 0usize;
    let mut sink = |stream: Stream, chunk: &[u8]| {
        if stream == Stream::Stdout {
            streamed += chunk.len();
        }
    };
    let out = rt.exec(&id, req, &mut sink).await.unwrap();
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), 64 * 1024);
    assert_eq!(streamed, 200_000);
    let small = run(rt, &id, ExecRequest::shell("head -c 1000 /dev/zero")).await;
    assert!(!small.truncated && small.stdout.len() == 1000);
    rt.destroy(&id).await.unwrap();
}

/// Twenty commands at once each get their own output.
pub async fn twenty_concurrent_execs_keep_their_own_output(rt: &dyn Runtime) {
    let id = provision(rt).await;
    let runs = (0..20).map(|i| {
        let id = id.clone();
        async move {
            (i, rt.exec(&id, ExecRequest::shell(format!("echo start-{i}; sleep 0.2; echo end-{i}")), &mut ()).await)
        }
    });
    for (i, res) in futures_join_all(runs).await {
        let out = res.expect("concurrent exec");
        assert_eq!(out.stdout_text(), format!("start-{i}\nend-{i}\n"));
    }
    rt.destroy(&id).await.unwrap();
}

async fn futures_join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results = Vec::with_capacity(futures.len());
    // Poll them together: a simple join, so the commands really overlap.
    let mut pending: Vec<_> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (slot, fut) in pending.iter_mut().enumerate() {
            if let Some(f) = fut {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => {
                        outputs[slot] = Some(out);
                        *fut = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    results.extend(outputs.into_iter().map(|o| o.expect("every future finished")));
    results
}

/// Standard input reaches the command; the working folder is honoured.
pub async fn stdin_and_cwd_reach_the_command(rt: &dyn Runtime) {
    let id = provision(rt).await;
    let out = run(rt, &id, ExecRequest::shell("cat").stdin(b"hello\x00world".to_vec())).await;
    assert_eq!(out.stdout, b"hello\x00world");
    run(rt, &id, ExecRequest::shell("mkdir -p 'sub dir'")).await;
    let out = run(rt, &id, ExecRequest::shell("basename \"$(pwd)\"").cwd("sub dir")).await;
    assert_eq!(out.stdout_text(), "sub dir\n");
    rt.destroy(&id).await.unwrap();
}

/// Files whose names hold spaces, quotes and newlines go in and come out unchanged, and the
/// commands see them.
pub async fn files_with_odd_names_round_trip(rt: &dyn Runtime) {
    assert!(rt.capabilities().file_transfer, "every adapter moves files");
    let id = provision(rt).await;
    let name = "dir with space/it's \"quoted\"\nand new-lined.bin";
    let contents: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    rt.put_file(&id, name, &contents).await.unwrap();
    assert_eq!(rt.get_file(&id, name).await.unwrap(), contents);
    let out = run(rt, &id, ExecRequest::shell("cat \"$F\" | wc -c").env("F", secret(name))).await;
    assert_eq!(out.stdout_text().trim(), "70000");
    rt.put_file(&id, name, b"replaced").await.unwrap();
    assert_eq!(rt.get_file(&id, name).await.unwrap(), b"replaced");
    assert_kind(rt.get_file(&id, "missing.txt").await, ErrorKind::NotFound);
    assert_kind(rt.put_file(&id, "../escape", b"x").await, ErrorKind::InvalidInput);
    assert_kind(rt.put_file(&id, "/etc/passwd", b"x").await, ErrorKind::InvalidInput);
    rt.destroy(&id).await.unwrap();
}

/// Stop and start keep the workspace, where the adapter says it persists.
pub async fn stop_and_start_keep_the_workspace(rt: &dyn Runtime) {
    let id = provision(rt).await;
    run(rt, &id, ExecRequest::shell("echo kept > note.txt")).await;
    rt.stop(&id).await.unwrap();
    assert_eq!(rt.get(&id).await.unwrap().state, SandboxState::Stopped);
    assert!(rt.exec(&id, ExecRequest::shell("true"), &mut ()).await.is_err(), "a stopped sandbox runs nothing");
    rt.start(&id).await.unwrap();
    rt.start(&id).await.unwrap();
    assert_eq!(rt.get(&id).await.unwrap().state, SandboxState::Started);
    let out = run(rt, &id, ExecRequest::shell("cat note.txt")).await;
    if rt.capabilities().persistent_fs {
        assert_eq!(out.stdout_text(), "kept\n");
    }
    rt.destroy(&id).await.unwrap();
}

/// Destroy removes the sandbox; every operation on it then answers not found.
pub async fn destroy_removes_everything(rt: &dyn Runtime) {
    let spec = spec();
    let id = rt.provision(&spec).await.unwrap().external_id;
    rt.destroy(&id).await.unwrap();
    assert_kind(rt.get(&id).await, ErrorKind::NotFound);
    assert_kind(rt.exec(&id, ExecRequest::shell("true"), &mut ()).await, ErrorKind::NotFound);
    assert_kind(rt.start(&id).await, ErrorKind::NotFound);
    assert_kind(rt.stop(&id).await, ErrorKind::NotFound);
    assert_kind(rt.destroy(&id).await, ErrorKind::NotFound);
    assert_kind(rt.get_file(&id, "x").await, ErrorKind::NotFound);
    let house = Labels::parse([(HOUSE_LABEL, spec.house_id.to_string())]).unwrap();
    assert!(rt.list(&house).await.unwrap().is_empty());
}

/// `list` finds a house's sandboxes by label and nobody else's.
pub async fn list_finds_sandboxes_by_house_label(rt: &dyn Runtime) {
    let (a, b) = (spec(), spec());
    let id_a = rt.provision(&a).await.unwrap().external_id;
    let id_b = rt.provision(&b).await.unwrap().external_id;
    let house_a = Labels::parse([(HOUSE_LABEL, a.house_id.to_string())]).unwrap();
    let found = rt.list(&house_a).await.unwrap();
    assert_eq!(found.iter().map(|s| s.external_id.clone()).collect::<Vec<_>>(), vec![id_a.clone()]);
    assert_eq!(found[0].labels.get("arbe.test"), Some("conformance"));
    assert_eq!(found[0].labels.get(crate::SANDBOX_LABEL), Some(a.sandbox_id.to_string().as_str()));
    rt.destroy(&id_a).await.unwrap();
    rt.destroy(&id_b).await.unwrap();
}

/// What an adapter says it cannot do, it refuses plainly.
pub async fn optional_features_match_capabilities(rt: &dyn Runtime) {
    let id = provision(rt).await;
    if !rt.capabilities().preview_url {
        assert_kind(rt.preview_url(&id, 3000).await, ErrorKind::Unsupported);
    }
    if !rt.capabilities().file_transfer {
        assert_kind(rt.put_file(&id, "a", b"x").await, ErrorKind::Unsupported);
    }
    rt.destroy(&id).await.unwrap();
}

/// The runtime answers, and its checklist has no blocker.
pub async fn ping_and_diagnose_answer(rt: &dyn Runtime) {
    rt.ping().await.expect("ping");
    let diagnosis = rt.diagnose().await;
    assert_eq!(diagnosis.runtime, rt.name());
    assert!(diagnosis.is_ok(), "{diagnosis:#?}");
    assert!(!diagnosis.checks.is_empty());
}

/// A command the kernel kills for memory is reported as out of memory, not as a plain failure.
pub async fn out_of_memory_is_reported_as_such(rt: &dyn Runtime) {
    assert!(rt.capabilities().oom_detection, "run this case only for adapters that declare oom_detection");
    let id = provision(rt).await;
    // The spec caps memory at 128 MiB; this string doubles until it passes that, in well under a
    // second of work (a pipe through `tail` took over a minute on a loaded machine).
    let hog = "awk 'BEGIN { s = \"x\"; while (1) s = s s }'";
    let out = run(rt, &id, ExecRequest::shell(hog).timeout(Duration::from_secs(60))).await;
    assert!(out.oom_killed, "{out:?}");
    assert!(!out.success());
    // The sandbox survives and works.
    assert_eq!(run(rt, &id, ExecRequest::shell("echo alive")).await.stdout_text(), "alive\n");
    rt.destroy(&id).await.unwrap();
}
