//! `cargo xtask bench runtime`: each adapter's command latency beside a reference measured in
//! the same run, like for like (p50 and p99; the ratio compares p50s; nearest-rank percentiles).
//!
//! - local `exec true` (argv) vs `sh -c true` spawned from Rust (≤ 1.5×), and the shell path the
//!   agents use (`bash -lc`, under prlimit) vs `bash -lc true` spawned from Rust (≤ 1.5×)
//! - isolated local (bubblewrap) `exec true` vs `sh -c true` (≤ 2×), and its provision + first
//!   exec + destroy vs the docker runtime's, teardown included on both sides (≤ 0.1×)
//! - docker `exec true` through the executor vs the Engine's exec API driven by the same adapter
//!   in process (an image without the executor) (≤ 0.3×); the `docker exec` CLI is printed too,
//!   for scale
//! - docker provision + first exec + destroy vs `docker run --rm <img> true` (≤ 1.0×), teardown
//!   included on both sides
//! - ssh `exec true` vs a fresh `ssh host true` (≤ 0.1×) and vs OpenSSH through a ControlMaster
//!   socket (≤ 1.0×), and the shell path vs the same through the ControlMaster (≤ 1.0×)
//!
//! A full run exits non-zero when a target is missed; `cargo test --benches` runs a smoke run.

#![allow(clippy::print_stdout, missing_docs)]

use std::{process::Command, sync::Arc};

use arbe_runtime::{ExecRequest, Runtime, testkit};
use arbe_runtime_docker::{DockerConfig, DockerRuntime};
use arbe_runtime_local::{LocalConfig, LocalRuntime};
use arbe_runtime_ssh::{SshRuntime, testkit::Sshd};
use arbe_testkit::bench::{Samples, Verdicts, scale};

fn run(cmd: &mut Command) {
    let status = cmd.output().expect("spawn a reference command").status;
    assert!(status.success(), "{cmd:?} failed");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut verdicts = Verdicts::new();
    println!("{}", Verdicts::header());
    local(&mut verdicts).await;
    isolated(&mut verdicts).await;
    docker(&mut verdicts).await;
    ssh(&mut verdicts).await;
    verdicts.finish();
}

async fn exec(rt: &dyn Runtime, id: &arbe_runtime::ExternalId, req: ExecRequest) {
    let out = rt.exec(id, req, &mut ()).await.expect("exec");
    assert!(out.success(), "{out:?}");
}

/// A sandbox's whole life: provisioned, one command, destroyed.
async fn life<R: Runtime>(rt: Arc<R>) {
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    exec(&*rt, &id, ExecRequest::argv(["true"])).await;
    rt.destroy(&id).await.unwrap();
}

async fn local(verdicts: &mut Verdicts) {
    let root = tempfile::tempdir().unwrap();
    let rt = LocalRuntime::new(LocalConfig::new(root.path()));
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    exec(&rt, &id, ExecRequest::argv(["true"])).await;
    let n = scale(300, 5);
    let ours = Samples::collect(n, || exec(&rt, &id, ExecRequest::argv(["true"]))).await;
    let reference = Samples::collect(n, || async { run(Command::new("sh").args(["-c", "true"])) }).await;
    println!("{}", verdicts.compare("local exec true vs sh -c true", &ours, &reference, 1.5));
    let ours = Samples::collect(n, || exec(&rt, &id, ExecRequest::shell("true"))).await;
    // Like for like: the sandbox's bare environment (PATH and HOME only), so no profile of
    // this machine's user is read on either side.
    let workspace = root.path().join("bench-home");
    std::fs::create_dir_all(&workspace).unwrap();
    let reference = Samples::collect(n, || async {
        run(Command::new("bash")
            .args(["-lc", "true"])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &workspace)
            .current_dir(&workspace))
    })
    .await;
    println!("{}", verdicts.compare("local shell `true` (bash -lc) vs bash -lc true", &ours, &reference, 1.5));
    rt.destroy(&id).await.unwrap();
}

/// The local runtime in bubblewrap namespaces: a command against `sh -c true` on the host, and
/// a sandbox's whole life (provision, first command, destroy) against docker's.
async fn isolated(verdicts: &mut Verdicts) {
    let root = tempfile::tempdir().unwrap();
    let uids =
        rustix::process::geteuid().is_root().then_some(arbe_runtime_local::UidRange { first: 62_000, count: 100 });
    // The static executor `cargo xtask sandbox-image` builds, as the server would use it.
    let sandboxd = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/sandboxd"))
        .expect("arbe-sandboxd is built (cargo xtask sandbox-image)")
        .flatten()
        .map(|t| t.path().join("release/arbe-sandboxd"))
        .find(|p| p.exists());
    let bubblewrap = arbe_runtime_local::Bubblewrap {
        house_uids: uids,
        executor: sandboxd,
        ..arbe_runtime_local::Bubblewrap::new()
    };
    let rt = Arc::new(LocalRuntime::new(LocalConfig::isolated(root.path().join("sandboxes"), bubblewrap)));
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    exec(&*rt, &id, ExecRequest::argv(["true"])).await;
    let n = scale(200, 3);
    let ours = Samples::collect(n, || exec(&*rt, &id, ExecRequest::argv(["true"]))).await;
    let reference = Samples::collect(n, || async { run(Command::new("sh").args(["-c", "true"])) }).await;
    println!("{}", verdicts.compare("isolated exec true vs sh -c true", &ours, &reference, 2.0));
    rt.destroy(&id).await.unwrap();

    let n = scale(10, 1);
    let ours = Samples::collect(n, || life(rt.clone())).await;
    let docker = Arc::new(DockerRuntime::new(DockerConfig::default()).expect("docker runtime"));
    let reference = Samples::collect(n, || life(docker.clone())).await;
    println!("{}", verdicts.compare("isolated provision+exec+destroy vs docker's", &ours, &reference, 0.1));
}

async fn docker(verdicts: &mut Verdicts) {
    let rt = Arc::new(DockerRuntime::new(DockerConfig::default()).expect("docker runtime"));
    let plain = DockerRuntime::new(DockerConfig { image: "arbe-sandbox:plain".into(), ..DockerConfig::default() })
        .expect("docker runtime");
    let id = rt
        .provision(&testkit::spec())
        .await
        .expect("provision (is the image built? cargo xtask sandbox-image)")
        .external_id;
    let plain_id = plain.provision(&testkit::spec()).await.expect("provision the plain image").external_id;
    exec(&*rt, &id, ExecRequest::argv(["true"])).await;
    exec(&plain, &plain_id, ExecRequest::argv(["true"])).await;
    let n = scale(50, 3);
    let ours = Samples::collect(n, || exec(&*rt, &id, ExecRequest::argv(["true"]))).await;
    let api = Samples::collect(n, || exec(&plain, &plain_id, ExecRequest::argv(["true"]))).await;
    println!("{}", verdicts.compare("docker exec true: executor vs Engine exec API", &ours, &api, 0.3));
    let cli = Samples::collect(n, || async { run(Command::new("docker").args(["exec", &id.0, "true"])) }).await;
    println!("{:<52} {:>10.2?} {:>10.2?} (for scale: the docker exec CLI)", "docker exec CLI", cli.p50(), cli.p99());
    let shell = Samples::collect(n, || exec(&*rt, &id, ExecRequest::shell("true"))).await;
    let shell_api = Samples::collect(n, || exec(&plain, &plain_id, ExecRequest::shell("true"))).await;
    println!("{}", verdicts.compare("docker shell `true`: executor vs Engine exec API", &shell, &shell_api, 0.3));
    rt.destroy(&id).await.unwrap();
    plain.destroy(&plain_id).await.unwrap();

    // Provision, first command and teardown, against `docker run --rm`, which also removes.
    let n = scale(10, 1);
    let ours = Samples::collect(n, || life(rt.clone())).await;
    let image = DockerConfig::default().image;
    let reference =
        Samples::collect(n, || async { run(Command::new("docker").args(["run", "--rm", &image, "true"])) }).await;
    println!("{}", verdicts.compare("docker provision+exec+destroy vs docker run --rm", &ours, &reference, 1.0));
}

async fn ssh(verdicts: &mut Verdicts) {
    let sshd = Sshd::start();
    let rt = SshRuntime::new(sshd.config()).unwrap();
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    exec(&rt, &id, ExecRequest::argv(["true"])).await;
    let n = scale(100, 3);
    let ours = Samples::collect(n, || exec(&rt, &id, ExecRequest::argv(["true"]))).await;

    let dir = sshd.dir.path();
    let key = dir.join("client");
    let config = dir.join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host arbe-bench\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  BatchMode yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
            sshd.port,
            sshd.user,
            key.display(),
            sshd.known_hosts.display()
        ),
    )
    .unwrap();
    let ssh = |extra: &[&str], command: &str| {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F").arg(&config).args(extra).args(["arbe-bench", command]);
        cmd
    };
    let fresh = Samples::collect(scale(10, 1), || async { run(&mut ssh(&[], "true")) }).await;
    println!("{}", verdicts.compare("ssh exec true vs fresh ssh host true", &ours, &fresh, 0.1));

    let socket = dir.join("cm.sock");
    let control = format!("ControlPath={}", socket.display());
    run(Command::new("ssh").arg("-F").arg(&config).args([
        "-o",
        "ControlMaster=yes",
        "-o",
        &control,
        "-o",
        "ControlPersist=yes",
        "-fN",
        "arbe-bench",
    ]));
    let multiplexed = Samples::collect(n, || async { run(&mut ssh(&["-o", &control], "true")) }).await;
    println!("{}", verdicts.compare("ssh exec true vs ssh through ControlMaster", &ours, &multiplexed, 1.0));
    let shell = Samples::collect(n, || exec(&rt, &id, ExecRequest::shell("true"))).await;
    let shell_ref = Samples::collect(n, || async { run(&mut ssh(&["-o", &control], "sh -c true")) }).await;
    println!("{}", verdicts.compare("ssh shell `true` vs sh -c true through ControlMaster", &shell, &shell_ref, 1.0));
    let _ = Command::new("ssh").arg("-F").arg(&config).args(["-o", &control, "-O", "exit", "arbe-bench"]).output();
    rt.destroy(&id).await.unwrap();
}
