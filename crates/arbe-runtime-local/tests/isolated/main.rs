//! The conformance suite on the isolated local runtime (bubblewrap namespaces), and escape
//! tests that fail if isolation breaks. Run as root (as CI does), houses get host uids of their
//! own from a range; as another user they share that user's uid.

use std::{os::unix::fs::MetadataExt, sync::Arc, time::Duration};

use arbe_core::HouseId;
use arbe_runtime::{CheckStatus, ExecRequest, ExternalId, Runtime, testkit};
use arbe_runtime_local::{Bubblewrap, CgroupsV1, LocalConfig, LocalRuntime, UidRange};

/// The host uids the tests give houses when they run as root.
const UIDS: UidRange = UidRange { first: 61_000, count: 500 };

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A workspaces root (passable by house uids), removed when the test drops it.
fn root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("arbe-isolated-").tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    dir
}

/// The static `arbe-sandboxd` that `cargo xtask sandbox-image` builds (`cargo xtask test` does
/// when it is missing).
fn sandboxd() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/sandboxd");
    let found = std::fs::read_dir(&dir).ok().and_then(|triples| {
        triples.flatten().map(|t| t.path().join("release/arbe-sandboxd")).find(|path| path.exists())
    });
    found.unwrap_or_else(|| panic!("no arbe-sandboxd under {}: run `cargo xtask sandbox-image`", dir.display()))
}

/// The cgroups the tests' sandboxes get, as root (cgroup v1, as on this machine).
fn cgroups() -> Option<CgroupsV1> {
    if !is_root() {
        return None;
    }
    let cgroups = CgroupsV1::under("/sys/fs/cgroup", "arbe-tests");
    for dir in [&cgroups.memory, &cgroups.pids, &cgroups.cpu] {
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => panic!("create {}: {e}", dir.display()),
            _ => {}
        }
    }
    Some(cgroups)
}

/// Namespaces per sandbox hosting the executor (the server's choice when it has one).
fn bubblewrap() -> Bubblewrap {
    Bubblewrap {
        house_uids: is_root().then_some(UIDS),
        executor: Some(sandboxd()),
        cgroups: cgroups(),
        ..Bubblewrap::new()
    }
}

fn runtime(dir: &std::path::Path) -> LocalRuntime {
    LocalRuntime::new(LocalConfig::isolated(dir.join("sandboxes"), bubblewrap()))
}

/// Namespaces per command (no executor).
fn per_command(dir: &std::path::Path) -> LocalRuntime {
    let bubblewrap = Bubblewrap { executor: None, ..bubblewrap() };
    LocalRuntime::new(LocalConfig::isolated(dir.join("sandboxes"), bubblewrap))
}

async fn make() -> (Arc<dyn Runtime>, tempfile::TempDir) {
    let dir = root();
    (Arc::new(runtime(dir.path())), dir)
}

arbe_runtime::conformance_suite!(make);

async fn run(rt: &LocalRuntime, id: &ExternalId, command: &str) -> arbe_runtime::ExecOutcome {
    rt.exec(id, ExecRequest::shell(command).timeout(Duration::from_secs(60)), &mut ()).await.unwrap()
}

#[test]
fn declared_capabilities_are_pinned() {
    let dir = root();
    let want = arbe_runtime::Capabilities {
        isolation: arbe_runtime::Isolation::Sandbox,
        persistent_fs: true,
        exec_streaming: true,
        file_transfer: true,
        // A memory cgroup per sandbox, which needs root.
        oom_detection: is_root(),
        ..arbe_runtime::Capabilities::default()
    };
    assert_eq!(runtime(dir.path()).capabilities(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_memory_is_reported_where_a_memory_cgroup_caps_the_sandbox() {
    let dir = root();
    let rt = runtime(dir.path());
    if is_root() {
        testkit::out_of_memory_is_reported_as_such(&rt).await;
    } else {
        // No cgroup to create: the capability is not claimed, and diagnose says so.
        assert!(!rt.capabilities().oom_detection);
        let diagnosis = rt.diagnose().await;
        let memory = diagnosis.checks.iter().find(|c| c.name == "memory").unwrap();
        assert_eq!(memory.status, CheckStatus::Warning);
    }
}

#[tokio::test]
async fn diagnose_says_how_it_isolates_and_which_limits_hold() {
    let dir = root();
    let diagnosis = runtime(dir.path()).diagnose().await;
    assert!(diagnosis.is_ok(), "{diagnosis:#?}");
    let isolation = diagnosis.checks.iter().find(|c| c.name == "isolation").unwrap();
    assert_eq!(isolation.status, CheckStatus::Ok, "{isolation:?}");
    assert!(isolation.detail.starts_with("bubblewrap namespaces"), "{isolation:?}");
    let memory = diagnosis.checks.iter().find(|c| c.name == "memory").unwrap();
    assert!(memory.detail.contains("rlimits"), "{memory:?}");
    assert_eq!(memory.detail.contains("cgroups per sandbox"), is_root(), "{memory:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_reaches_nothing_of_the_host_or_other_sandboxes() {
    let dir = root();
    escapes(&dir, runtime(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_in_namespaces_of_its_own_reaches_nothing_either() {
    let dir = root();
    escapes(&dir, per_command(dir.path())).await;
    // And the conformance cases that depend on the namespaces' lifetime hold per command too.
    let rt = per_command(dir.path());
    testkit::timeout_kills_the_whole_process_tree(&rt).await;
    testkit::stop_and_start_keep_the_workspace(&rt).await;
    testkit::env_values_never_reach_a_command_line_or_disk(&rt).await;
}

/// Every way out a command might try, on `rt` (whose root is `dir/sandboxes`).
async fn escapes(dir: &tempfile::TempDir, rt: LocalRuntime) {
    // What the server holds beside the sandboxes: its master key and its database.
    let secret = "master-key-canary-4f1d";
    std::fs::write(dir.path().join("master.key"), secret).unwrap();
    std::fs::write(dir.path().join("arbe.db"), secret).unwrap();
    let ours = rt.provision(&testkit::spec()).await.unwrap().external_id;
    let theirs_spec = testkit::spec();
    let theirs = rt.provision(&theirs_spec).await.unwrap().external_id;
    rt.put_file(&theirs, "notes.txt", secret.as_bytes()).await.unwrap();
    let theirs_folder = dir.path().join("sandboxes").join(&theirs.0);
    assert!(theirs_folder.join("notes.txt").exists());

    let attempts = [
        format!("cat {}", dir.path().join("master.key").display()),
        format!("cat {}", dir.path().join("arbe.db").display()),
        format!("cat {}/notes.txt", theirs_folder.display()),
        format!("ls {}", dir.path().join("sandboxes").display()),
        format!("cat /proc/{}/environ", std::process::id()),
        "cat /root/.bashrc; ls /root /home".to_owned(),
    ];
    for attempt in &attempts {
        let out = run(&rt, &ours, attempt).await;
        assert!(!out.success(), "`{attempt}` succeeded: {}", out.stdout_text());
        assert!(!out.stdout_text().contains(secret), "`{attempt}` read it");
    }
    // Nothing outside /workspace (and its own /tmp) is writable, and /tmp is its own.
    for path in ["/usr/escape", "/etc/escape", "/escape", "/bin/escape"] {
        let out = run(&rt, &ours, &format!("touch {path}")).await;
        assert!(!out.success(), "wrote {path}");
    }
    assert!(run(&rt, &ours, "touch /tmp/scratch && touch /workspace/kept").await.success());
    assert!(!std::path::Path::new("/tmp/scratch").exists());
    // A service on the host's loopback is out of reach: the sandbox has a loopback of its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = run(&rt, &ours, &format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected")).await;
    assert!(!out.stdout_text().contains("connected"), "{out:?}");
    // Workspace files belong to the house's uid, never the server's.
    let kept = dir.path().join("sandboxes").join(&ours.0).join("kept");
    let owner = std::fs::metadata(&kept).unwrap().uid();
    if is_root() {
        assert!((UIDS.first..UIDS.first + UIDS.count).contains(&owner), "owned by {owner}");
        // Another house gets another uid.
        let other_house = testkit::spec();
        let other = rt
            .provision(&arbe_runtime::SandboxSpec { house_id: HouseId::new(), ..other_house })
            .await
            .unwrap()
            .external_id;
        assert!(run(&rt, &other, "touch /workspace/mine").await.success());
        let theirs_owner = std::fs::metadata(dir.path().join("sandboxes").join(&other.0).join("mine")).unwrap().uid();
        assert_ne!(theirs_owner, owner, "two houses share a uid");
    } else {
        assert_eq!(owner, rustix::process::geteuid().as_raw());
    }
    // Inside, the command is uid 1000 with a hostname of its own.
    assert_eq!(run(&rt, &ours, "id -u; hostname").await.stdout_text(), "1000\nsandbox\n");
}

/// The same escapes, tried by a server running as an ordinary user: as root (CI), this test runs
/// the one above again under `runuser -u nobody`, where the unprivileged user namespace maps
/// nobody's uid; as anyone else it is that run already.
#[test]
fn a_command_reaches_nothing_of_the_host_when_the_server_is_an_ordinary_user() {
    if !is_root() {
        return a_command_reaches_nothing_of_the_host_or_other_sandboxes();
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&exe)
        .args(["--exact", "a_command_reaches_nothing_of_the_host_or_other_sandboxes", "--nocapture"])
        .env("TMPDIR", "/tmp")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 passed"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_is_contained_and_other_sandboxes_keep_answering() {
    let dir = root();
    let rt = Arc::new(LocalRuntime::new(LocalConfig::isolated(
        dir.path().join("sandboxes"),
        Bubblewrap { max_processes: 64, ..bubblewrap() },
    )));
    let bomb_spec = testkit::spec();
    let bomb = rt.provision(&bomb_spec).await.unwrap().external_id;
    let calm = rt
        .provision(&arbe_runtime::SandboxSpec { house_id: HouseId::new(), ..testkit::spec() })
        .await
        .unwrap()
        .external_id;
    let running = {
        let (rt, bomb) = (rt.clone(), bomb.clone());
        tokio::spawn(async move {
            let req = ExecRequest::shell("bomb_7x3() { bomb_7x3 | bomb_7x3 & }; bomb_7x3; sleep 5")
                .timeout(Duration::from_secs(8));
            rt.exec(&bomb, req, &mut ()).await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The other sandbox answers while the bomb goes off.
    assert_eq!(run(&rt, &calm, "echo calm").await.stdout_text(), "calm\n");
    let out = running.await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("Resource temporarily unavailable"),
        "the process cap stopped it: {}",
        &stderr[..stderr.len().min(300)]
    );
    // Stopping the sandbox ends its namespaces and every process of the bomb with them.
    rt.stop(&bomb).await.unwrap();
    let mut left = String::new();
    for _ in 0..100 {
        let out = std::process::Command::new("pgrep").args(["-f", "bomb_7x3"]).output().unwrap();
        left = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "survivors: {left}");
}

#[tokio::test]
async fn diagnose_blocks_a_root_that_houses_uids_cannot_reach() {
    use std::os::unix::fs::PermissionsExt;
    let dir = root();
    let closed = dir.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let bubblewrap = Bubblewrap { house_uids: Some(UIDS), ..bubblewrap() };
    let rt = LocalRuntime::new(LocalConfig::isolated(closed.join("sandboxes"), bubblewrap));
    let diagnosis = rt.diagnose().await;
    let blocker = diagnosis.checks.iter().find(|c| c.status == CheckStatus::Blocker).expect("a blocker");
    assert!(blocker.detail.contains("closed to other uids") && blocker.detail.contains("chmod 711"), "{blocker:?}");
}

#[tokio::test]
async fn as_root_a_started_sandbox_runs_in_cgroups_capping_memory_processes_and_cpus() {
    let dir = root();
    let rt = runtime(dir.path());
    let spec = arbe_runtime::SandboxSpec {
        resources: arbe_core::Resources { cpus: Some(0.5), memory_mb: Some(96), ..arbe_core::Resources::default() },
        ..testkit::spec()
    };
    let id = rt.provision(&spec).await.unwrap().external_id;
    assert!(run(&rt, &id, "true").await.success());
    let Some(cgroups) = cgroups() else {
        // Not root: no cgroups, and the capability says so.
        assert!(!rt.capabilities().oom_detection);
        return;
    };
    let read = |dir: &std::path::Path, file: &str| {
        std::fs::read_to_string(dir.join(spec.sandbox_id.to_string()).join(file)).unwrap().trim().to_owned()
    };
    assert_eq!(read(&cgroups.memory, "memory.limit_in_bytes"), (96 * 1024 * 1024).to_string());
    assert_eq!(read(&cgroups.pids, "pids.max"), "256");
    assert_eq!(read(&cgroups.cpu, "cpu.cfs_quota_us"), "50000");
    // The sandbox's processes are in them.
    let procs = read(&cgroups.pids, "cgroup.procs");
    assert!(!procs.is_empty(), "the namespaces' processes are counted");
    rt.destroy(&id).await.unwrap();
}
