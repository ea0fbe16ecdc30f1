//! The conformance suite on the local runtime, plus what is local-only.

use std::{os::unix::fs::PermissionsExt, sync::Arc, time::Duration};

use arbe_core::ErrorKind;
use arbe_runtime::{CheckStatus, ExecRequest, Runtime, testkit};
use arbe_runtime_local::{LocalConfig, LocalRuntime};

/// A workspaces root, removed when the test drops it.
fn root() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("arbe-local-").tempdir().unwrap()
}

async fn make() -> (Arc<dyn Runtime>, tempfile::TempDir) {
    let dir = root();
    (Arc::new(LocalRuntime::new(LocalConfig::new(dir.path()))), dir)
}

arbe_runtime::conformance_suite!(make);

#[test]
fn declared_capabilities_are_pinned() {
    let dir = root();
    let rt = LocalRuntime::new(LocalConfig::new(dir.path()));
    let want = arbe_runtime::Capabilities {
        isolation: arbe_runtime::Isolation::Host,
        persistent_fs: true,
        exec_streaming: true,
        file_transfer: true,
        ..arbe_runtime::Capabilities::default()
    };
    assert_eq!(rt.capabilities(), want);
}

#[tokio::test]
async fn workspaces_are_private_folders_and_destroy_removes_them() {
    let dir = root();
    let root = dir.path();
    let rt = LocalRuntime::new(LocalConfig::new(root));
    let spec = testkit::spec();
    let id = rt.provision(&spec).await.unwrap().external_id;
    let folder = root.join(spec.house_id.to_string()).join(spec.sandbox_id.to_string());
    assert_eq!(std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777, 0o700);
    let out = rt
        .exec(&id, ExecRequest::shell("pwd; echo \"$HOME\"; env | cut -d= -f1 | sort | tr '\\n' ' '"), &mut ())
        .await
        .unwrap();
    let text = out.stdout_text();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), folder.to_str().unwrap());
    assert_eq!(lines.next().unwrap(), folder.to_str().unwrap());
    // A clean environment: the server's own variables (CARGO_*, RUST_*, …) do not leak in.
    assert!(!text.contains("CARGO"), "{text}");
    rt.destroy(&id).await.unwrap();
    assert!(!folder.exists());
}

#[tokio::test]
async fn put_file_enforces_the_workspace_quota() {
    let dir = root();
    let rt = LocalRuntime::new(LocalConfig { workspace_max_bytes: 1000, ..LocalConfig::new(dir.path()) });
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    rt.put_file(&id, "a", &[1; 600]).await.unwrap();
    let err = rt.put_file(&id, "b", &[1; 600]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::QuotaExceeded);
    assert_eq!(err.to_string(), "local put_file: the workspace_bytes quota of 1000 bytes would be exceeded");
    assert!(rt.get_file(&id, "b").await.is_err(), "nothing was written");
    rt.put_file(&id, "a", &[2; 900]).await.unwrap();
}

#[tokio::test]
async fn diagnose_says_it_isolates_nothing() {
    let dir = root();
    let rt = LocalRuntime::new(LocalConfig::new(dir.path()));
    let diagnosis = rt.diagnose().await;
    let isolation = diagnosis.checks.iter().find(|c| c.name == "isolation").unwrap();
    assert_eq!(isolation.status, CheckStatus::Warning);
    assert!(isolation.detail.starts_with("none:"));
}

#[tokio::test]
async fn stop_kills_running_commands() {
    let dir = root();
    let rt = Arc::new(LocalRuntime::new(LocalConfig::new(dir.path())));
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    let started = Arc::new(tokio::sync::Notify::new());
    let running = {
        let (rt, id, started) = (rt.clone(), id.clone(), started.clone());
        tokio::spawn(async move {
            let mut sink = |_: arbe_runtime::Stream, _: &[u8]| started.notify_one();
            let req = ExecRequest::shell("echo started; sleep 20").timeout(Duration::from_secs(60));
            rt.exec(&id, req, &mut sink).await
        })
    };
    // The command is running once it has printed.
    started.notified().await;
    rt.stop(&id).await.unwrap();
    let out = running.await.unwrap().unwrap();
    assert_eq!(out.signal, Some(9), "{out:?}");
    assert!(!out.timed_out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rlimits_bind_a_command_from_its_first_instruction() {
    // The command reads its limits before anything else, and forks at once: limits applied
    // after the spawn would miss it whenever the child runs before the parent gets to them.
    // Many at once, so the scheduler interleaves spawns and children.
    let dir = root();
    let rt =
        Arc::new(LocalRuntime::new(LocalConfig { cpu_seconds: 77, open_files: 333, ..LocalConfig::new(dir.path()) }));
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300 {
        let (rt, id) = (rt.clone(), id.clone());
        let argv = if i % 2 == 0 {
            ExecRequest::argv(["sh", "-c", "ulimit -t; ulimit -n"])
        } else {
            ExecRequest::shell("sh -c 'ulimit -t; ulimit -n'")
        };
        tasks.spawn(async move { rt.exec(&id, argv, &mut ()).await.unwrap().stdout_text() });
        if tasks.len() >= 16 {
            let out = tasks.join_next().await.unwrap().unwrap();
            assert_eq!(out, "77\n333\n");
        }
    }
    while let Some(out) = tasks.join_next().await {
        assert_eq!(out.unwrap(), "77\n333\n");
    }
    rt.destroy(&id).await.unwrap();
}
