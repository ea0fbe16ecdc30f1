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

arbe_runtime::conformance_suite!(make);

#[tokio::test]
async fn a_missing_image_names_the_command_that_builds_it() {
    let rt = runtime(DockerConfig::default()).await;
    let mut spec = testkit::spec();
    spec.image = Some("arbe-no-such-image:never".into());
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
    rt.exec(&idle, ExecRequest::shell("true"), &mut ()).await.unwrap();
    let running = {
        let (rt, busy) = (rt.clone(), busy.clone());
        tokio::spawn(async move { rt.exec(&busy, ExecRequest::shell("sleep 3"), &mut ()).await })
    };
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let stopped = rt.reap_idle().await.unwrap();
    assert!(stopped.contains(&idle), "{stopped:?}");
    assert!(!stopped.contains(&busy), "a sandbox running a command is never idle");
    assert_eq!(rt.get(&idle).await.unwrap().state, arbe_core::SandboxState::Stopped);
    assert!(running.await.unwrap().unwrap().success());
    rt.destroy(&idle).await.unwrap();
    rt.destroy(&busy).await.unwrap();
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
