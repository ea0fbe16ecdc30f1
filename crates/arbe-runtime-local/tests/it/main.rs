//! The conformance suite on the local runtime, plus what is local-only.

use std::{os::unix::fs::PermissionsExt, sync::Arc, time::Duration};

use arbe_core::ErrorKind;
use arbe_runtime::{CheckStatus, ExecRequest, Runtime, testkit};
use arbe_runtime_local::{LocalConfig, LocalRuntime};

fn root() -> std::path::PathBuf {
    // One root per test process, left for the OS to clean with the temp dir.
    let dir = tempfile::Builder::new().prefix("arbe-local-").tempdir().unwrap();
    dir.keep()
}

async fn make() -> (Arc<dyn Runtime>, ()) {
    (Arc::new(LocalRuntime::new(LocalConfig::new(root()))), ())
}

arbe_runtime::conformance_suite!(make);

#[tokio::test]
async fn workspaces_are_private_folders_and_destroy_removes_them() {
    let root = root();
    let rt = LocalRuntime::new(LocalConfig::new(&root));
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
    let rt = LocalRuntime::new(LocalConfig { workspace_max_bytes: 1000, ..LocalConfig::new(root()) });
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
    let rt = LocalRuntime::new(LocalConfig::new(root()));
    let diagnosis = rt.diagnose().await;
    let isolation = diagnosis.checks.iter().find(|c| c.name == "isolation").unwrap();
    assert_eq!(isolation.status, CheckStatus::Warning);
    assert!(isolation.detail.starts_with("none:"));
}

#[tokio::test]
async fn stop_kills_running_commands() {
    let rt = Arc::new(LocalRuntime::new(LocalConfig::new(root())));
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    let running = {
        let (rt, id) = (rt.clone(), id.clone());
        tokio::spawn(async move {
            rt.exec(&id, ExecRequest::shell("sleep 20").timeout(Duration::from_secs(60)), &mut ()).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    rt.stop(&id).await.unwrap();
    let out = running.await.unwrap().unwrap();
    assert_eq!(out.signal, Some(9), "{out:?}");
    assert!(!out.timed_out);
}

#[tokio::test]
async fn commands_run_under_the_configured_rlimits() {
    let rt = LocalRuntime::new(LocalConfig { cpu_seconds: 77, open_files: 333, ..LocalConfig::new(root()) });
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    // The limits apply to what the command starts, too.
    let out = rt.exec(&id, ExecRequest::shell("sleep 0.2; sh -c 'ulimit -t; ulimit -n'"), &mut ()).await.unwrap();
    assert_eq!(out.stdout_text(), "77\n333\n");
    rt.destroy(&id).await.unwrap();
}
