//! The conformance suite against this machine's real Docker engine, plus docker-only behaviour.
//! Under `CI=true` a missing engine or image fails the run; it never skips.

use std::{sync::Arc, time::Duration};

use arbe_core::ErrorKind;
use arbe_runtime::{ExecRequest, Runtime, testkit};
use arbe_runtime_docker::{DockerConfig, DockerRuntime};

/// The runtime under test. Panics with what to do when the engine or the image is missing.
async fn runtime(config: DockerConfig) -> DockerRuntime {
    let rt = DockerRuntime::new(config).expect("a docker runtime");
    let diagnosis = rt.diagnose().await;
    assert!(
        diagnosis.is_ok(),
        "the docker tests need a running engine and the sandbox image (`cargo xtask sandbox-image`): {diagnosis:#?}"
    );
    rt
}

async fn make() -> (Arc<dyn Runtime>, ()) {
    (Arc::new(runtime(DockerConfig::default()).await), ())
}

/// The label-less copy of the image: commands go through the Engine's exec API, the path any
/// image without the executor takes.
async fn make_plain() -> (Arc<dyn Runtime>, ()) {
    let config = DockerConfig { image: "arbe-sandbox:plain".into(), ..DockerConfig::default() };
    (Arc::new(runtime(config).await), ())
}

/// Through the executor.
mod executor {
    use super::*;
    arbe_runtime::conformance_suite!(make, with: [out_of_memory_is_reported_as_such]);
}

/// Through the exec API.
mod exec_api {
    use super::*;
    arbe_runtime::conformance_suite!(make_plain, with: [out_of_memory_is_reported_as_such]);
}

#[tokio::test]
async fn declared_capabilities_are_pinned() {
    let rt = runtime(DockerConfig::default()).await;
    let want = arbe_runtime::Capabilities {
        isolation: arbe_runtime::Isolation::Sandbox,
        persistent_fs: true,
        exec_streaming: true,
        file_transfer: true,
        oom_detection: true,
        ..arbe_runtime::Capabilities::default()
    };
    assert_eq!(rt.capabilities(), want);
}

#[tokio::test]
async fn the_plain_image_runs_commands_through_the_exec_api() {
    // No `arbe.executor` label on the sandbox: the exec-API path is the one under test there.
    let (rt, ()) = make_plain().await;
    let info = rt.provision(&testkit::spec()).await.unwrap();
    assert_eq!(info.labels.get("arbe.executor"), None);
    let (default, ()) = make().await;
    let executor = default.provision(&testkit::spec()).await.unwrap();
    assert!(executor.labels.get("arbe.executor").is_some());
    rt.destroy(&info.external_id).await.unwrap();
    default.destroy(&executor.external_id).await.unwrap();
}

#[tokio::test]
async fn a_missing_image_names_the_command_that_builds_it() {
    // The operator configured an image nobody built (on an engine that answers).
    runtime(DockerConfig::default()).await;
    let rt = DockerRuntime::new(DockerConfig { image: "arbe-no-such-image:never".into(), ..DockerConfig::default() })
        .expect("a docker runtime");
    let spec = testkit::spec();
    let err = rt.provision(&spec).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Misconfigured);
    assert_eq!(
        err.to_string(),
        "docker provision: image `arbe-no-such-image:never` is missing; build it with `cargo xtask sandbox-image`"
    );
    // Nothing is left behind: not the container, not the volume.
    let house = arbe_core::Labels::parse([(arbe_runtime::HOUSE_LABEL, spec.house_id.to_string())]).unwrap();
    assert!(rt.list(&house).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_engine_says_why_and_breaks_nothing_else() {
    let err = DockerRuntime::new(DockerConfig {
        endpoint: "unix:///nonexistent/docker.sock".into(),
        ..DockerConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(err.to_string().contains("docker engine unreachable at unix:///nonexistent/docker.sock"), "{err}");
    // A TCP endpoint where nothing listens: the runtime exists, and says why it cannot work.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let rt = DockerRuntime::new(DockerConfig { endpoint: endpoint.clone(), ..DockerConfig::default() }).unwrap();
    let err = rt.ping().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert!(err.to_string().contains(&format!("docker engine unreachable at {endpoint}")), "{err}");
    let diagnosis = rt.diagnose().await;
    assert!(!diagnosis.is_ok());
    assert!(diagnosis.checks[0].detail.contains("unreachable"));
}

#[tokio::test]
async fn sandboxes_are_locked_down_as_configured() {
    let rt = runtime(DockerConfig::default()).await;
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    // No network, no capabilities, no new privileges, and the workspace on a volume.
    let out = rt
        .exec(
            &id,
            ExecRequest::shell(
                "ip -o link | grep -vc ' lo:'; grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; pwd",
            ),
            &mut (),
        )
        .await
        .unwrap();
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0", "only loopback: {text}");
    assert!(lines[1].ends_with("0000000000000000"), "{text}");
    assert!(lines[2].ends_with('1'), "{text}");
    assert_eq!(lines[3], "/workspace");
    rt.destroy(&id).await.unwrap();
}

#[tokio::test]
async fn idle_reaper_stops_only_idle_sandboxes() {
    let rt = Arc::new(runtime(DockerConfig { idle: Duration::from_secs(1), ..DockerConfig::default() }).await);
    let idle = rt.provision(&testkit::spec()).await.unwrap().external_id;
    let busy = rt.provision(&testkit::spec()).await.unwrap().external_id;
    // Another process's sandbox: this runtime never used it, so it cannot know it is idle.
    let elsewhere = runtime(DockerConfig::default()).await;
    let theirs = elsewhere.provision(&testkit::spec()).await.unwrap().external_id;
    rt.exec(&idle, ExecRequest::shell("true"), &mut ()).await.unwrap();
    // The busy sandbox runs a command for as long as the test needs; it has started once it
    // printed.
    let started = Arc::new(tokio::sync::Notify::new());
    let running = {
        let (rt, busy, started) = (rt.clone(), busy.clone(), started.clone());
        tokio::spawn(async move {
            let mut sink = |_: arbe_runtime::Stream, _: &[u8]| started.notify_one();
            let req = ExecRequest::shell("echo started; sleep 600").timeout(Duration::from_secs(600));
            rt.exec(&busy, req, &mut sink).await
        })
    };
    started.notified().await;
    let stopped = arbe_testkit::eventually("the idle sandbox to be reaped", Duration::from_secs(30), || async {
        let stopped = rt.reap_idle().await.unwrap();
        assert!(!stopped.contains(&busy), "a sandbox running a command is never idle");
        stopped.contains(&idle).then_some(stopped)
    })
    .await;
    assert!(!stopped.contains(&busy));
    assert!(!stopped.contains(&theirs), "a sandbox this runtime never used was reaped");
    assert_eq!(rt.get(&theirs).await.unwrap().state, arbe_core::SandboxState::Started);
    elsewhere.destroy(&theirs).await.unwrap();
    assert_eq!(rt.get(&idle).await.unwrap().state, arbe_core::SandboxState::Stopped);
    assert_eq!(rt.get(&busy).await.unwrap().state, arbe_core::SandboxState::Started);
    running.abort();
    rt.destroy(&idle).await.unwrap();
    rt.destroy(&busy).await.unwrap();
}

/// `docker inspect` of a container's host config, as JSON.
fn host_config(container: &str) -> serde_json::Value {
    let out = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{json .HostConfig}}", container])
        .output()
        .expect("run docker inspect");
    assert!(out.status.success(), "docker inspect failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON host config")
}

#[tokio::test]
async fn the_engine_holds_the_limits_of_spec_3() {
    let config = DockerConfig { memory_mb: 256, cpus: 0.5, pids_limit: 64, ..DockerConfig::default() };
    let rt = runtime(config).await;
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    let host = host_config(&id.0);
    // The spec's 128 MiB override wins over the config's 256; swap equals memory (none).
    assert_eq!(host["Memory"], 128 * 1024 * 1024);
    assert_eq!(host["MemorySwap"], 128 * 1024 * 1024);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["PidsLimit"], 64);
    assert_eq!(host["Init"], true);
    assert_eq!(host["NetworkMode"], "none");
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(host["SecurityOpt"], serde_json::json!(["no-new-privileges"]));
    assert_eq!(host["LogConfig"]["Type"], "none", "the executor's output travels over the attach stream only");
    // The kernel holds the sandbox to them: its cgroup's limits, read from inside (v2, else v1).
    let script = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; \
                  cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes";
    let out = rt.exec(&id, ExecRequest::shell(script), &mut ()).await.unwrap();
    assert_eq!(out.stdout_text(), format!("64\n{}\n", 128 * 1024 * 1024), "{out:?}");
    rt.destroy(&id).await.unwrap();
}

#[tokio::test]
async fn put_file_enforces_the_workspace_quota() {
    let rt = runtime(DockerConfig { workspace_max_bytes: 64 * 1024, ..DockerConfig::default() }).await;
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    rt.put_file(&id, "a", &[1; 16 * 1024]).await.unwrap();
    let err = rt.put_file(&id, "b", &[1; 60 * 1024]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::QuotaExceeded);
    assert_eq!(rt.get_file(&id, "b").await.unwrap_err().kind, ErrorKind::NotFound, "nothing was written");
    rt.destroy(&id).await.unwrap();
}

/// Through either path, commands run as the unprivileged sandbox user: the system is read-only
/// to them (the runtime's own tools cannot be replaced), the workspace and /tmp are theirs, and
/// the executor's streams are out of reach (a command that could write them could forge frames
/// or make the server buffer gigabytes).
#[tokio::test]
async fn commands_run_unprivileged_and_cannot_reach_the_system_or_the_executor() {
    for (rt, ()) in [make().await, make_plain().await] {
        let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
        let script = r#"id -u; id -g
touch /bin/x 2>/dev/null && echo wrote-bin || echo bin-refused
echo t > /tmp/t && cat /tmp/t
touch /workspace/f && echo workspace-ok
for p in /proc/[0-9]*; do
  [ "$(cat "$p/comm" 2>/dev/null)" = arbe-sandboxd ] || continue
  printf 'O\000\000\000\001\177\377\377\377' 2>/dev/null > "$p/fd/1" && echo forged || echo stream-refused
done"#;
        let out = rt.exec(&id, ExecRequest::shell(script), &mut ()).await.unwrap();
        let text = out.stdout_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..5], ["1000", "1000", "bin-refused", "t", "workspace-ok"], "{text}");
        assert!(!text.contains("forged"), "a command wrote into the executor's stream: {text}");
        if rt.capabilities().exec_streaming && lines.len() > 5 {
            assert_eq!(lines[5], "stream-refused", "{text}");
        }
        // The sandbox still answers.
        let out = rt.exec(&id, ExecRequest::shell("echo still-here"), &mut ()).await.unwrap();
        assert_eq!(out.stdout_text(), "still-here\n");
        rt.destroy(&id).await.unwrap();
    }
}

#[tokio::test]
async fn resources_and_images_a_caller_asks_for_are_checked() {
    let rt = runtime(DockerConfig::default()).await;
    let mark = format!("checked-{}", arbe_core::SandboxId::new().as_uuid().simple());
    let labels = arbe_core::Labels::parse([("arbe.test", mark.as_str())]).unwrap();
    let base = arbe_runtime::SandboxSpec { labels: labels.clone(), ..testkit::spec() };
    for resources in [
        arbe_core::Resources { cpus: Some(f64::NAN), ..Default::default() },
        arbe_core::Resources { cpus: Some(0.0), ..Default::default() },
        arbe_core::Resources { cpus: Some(-1.0), ..Default::default() },
        arbe_core::Resources { memory_mb: Some(0), ..Default::default() },
        arbe_core::Resources { memory_mb: Some(u64::MAX), ..Default::default() },
    ] {
        let err = rt
            .provision(&arbe_runtime::SandboxSpec { resources: resources.clone(), ..base.clone() })
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{resources:?}");
        assert!(err.to_string().contains("resources."), "{err}");
    }
    let other = arbe_runtime::SandboxSpec { image: Some("alpine:latest".into()), ..base.clone() };
    let err = rt.provision(&other).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(err.to_string().contains("image"), "{err}");
    // Nothing was created.
    assert_eq!(rt.list(&labels).await.unwrap(), []);
}

/// On the exec-API path a variable travels on the command's standard input, read by the
/// wrapper before the command starts (never in the exec's create body, which the engine client
/// logs at debug level); the command's own standard input follows it untouched.
#[tokio::test]
async fn exec_api_variables_arrive_on_standard_input_before_the_commands_own() {
    let (rt, ()) = make_plain().await;
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    let canary = format!("sk-canary-{}", arbe_core::SandboxId::new().as_uuid().simple());
    let req = ExecRequest::shell("printf %s \"$TOKEN\"").env("TOKEN", testkit::secret(&canary));
    let out = rt.exec(&id, req, &mut ()).await.unwrap();
    assert_eq!(out.stdout_text(), canary);
    let quoted = testkit::secret("it's \"quoted\"\nand $(not run)");
    let req = ExecRequest::shell("printf '%s|' \"$A\"; cat").env("A", quoted).stdin(b"just this".to_vec());
    let out = rt.exec(&id, req, &mut ()).await.unwrap();
    assert_eq!(out.stdout_text(), "it's \"quoted\"\nand $(not run)|just this");
    rt.destroy(&id).await.unwrap();
}

/// A killed command whose descendant escaped its process group (and holds its output open) does
/// not hold `exec` until that descendant ends: after the kill, exec waits a bounded time. The
/// 60 s bound below is a hang detector, not a speed target: the escaped process lives 300 s.
#[tokio::test]
async fn a_timed_out_command_whose_child_escaped_its_group_does_not_hold_exec() {
    for (rt, ()) in [make().await, make_plain().await] {
        let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
        let req = ExecRequest::shell("setsid sleep 300 & echo started; sleep 300").timeout(Duration::from_secs(1));
        let out = tokio::time::timeout(Duration::from_secs(60), rt.exec(&id, req, &mut ()))
            .await
            .expect("exec returned while the escaped process still held its output")
            .unwrap();
        assert!(out.timed_out, "{out:?}");
        assert_eq!(out.stdout_text(), "started\n");
        rt.destroy(&id).await.unwrap();
    }
}
