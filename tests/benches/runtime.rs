//! `cargo xtask bench runtime`: each adapter's command latency beside the reference a user would
//! otherwise reach for, measured in the same run (p50 and p99; the ratio compares p50s).
//!
//! - docker adapter `exec true` vs `docker exec <c> true` (target ≤ 0.3×)
//! - docker provision-to-first-exec vs `docker run --rm <img> true` (target ≤ 1.0×)
//! - ssh adapter `exec true` vs a fresh `ssh host true` (≤ 0.1×) and vs OpenSSH through a
//!   ControlMaster socket (≤ 1.0×)
//! - local adapter `exec true` vs `sh -c true` spawned from Rust (≤ 1.5×)

#![allow(clippy::print_stdout, missing_docs)]

use std::{process::Command, sync::Arc};

use arbe_runtime::{ExecRequest, Runtime, testkit};
use arbe_runtime_docker::{DockerConfig, DockerRuntime};
use arbe_runtime_local::{LocalConfig, LocalRuntime};
use arbe_runtime_ssh::{SshRuntime, testkit::Sshd};
use arbe_tests::{Samples, header, report};

fn run(cmd: &mut Command) {
    let status = cmd.output().expect("spawn a reference command").status;
    assert!(status.success(), "{cmd:?} failed");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("{}", header());
    local().await;
    docker().await;
    ssh().await;
}

async fn exec_true(rt: &dyn Runtime, id: &arbe_runtime::ExternalId) {
    let out = rt.exec(id, ExecRequest::argv(["true"]), &mut ()).await.expect("exec true");
    assert!(out.success());
}

async fn local() {
    let root = tempfile::tempdir().unwrap();
    let rt = LocalRuntime::new(LocalConfig::new(root.path()));
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    exec_true(&rt, &id).await;
    let ours = Samples::collect(300, || exec_true(&rt, &id)).await;
    let reference = Samples::collect(300, || async { run(Command::new("sh").args(["-c", "true"])) }).await;
    println!("{}", report("local exec true vs sh -c true", &ours, &reference, 1.5));
    rt.destroy(&id).await.unwrap();
}

async fn docker() {
    let rt = Arc::new(DockerRuntime::new(DockerConfig::default()).expect("docker runtime"));
    let id = rt
        .provision(&testkit::spec())
        .await
        .expect("provision (is the image built? cargo xtask sandbox-image)")
        .external_id;
    exec_true(&*rt, &id).await;
    let ours = Samples::collect(50, || exec_true(&*rt, &id)).await;
    let reference = Samples::collect(50, || async { run(Command::new("docker").args(["exec", &id.0, "true"])) }).await;
    println!("{}", report("docker exec true vs docker exec CLI", &ours, &reference, 0.3));
    rt.destroy(&id).await.unwrap();

    let ours = Samples::collect(10, || {
        let rt = rt.clone();
        async move {
            let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
            exec_true(&*rt, &id).await;
            // Teardown is not part of what is measured, but it runs in the loop; keep it out of
            // the sample by destroying in the background.
            tokio::spawn(async move { rt.destroy(&id).await.unwrap() });
        }
    })
    .await;
    let image = DockerConfig::default().image;
    let reference =
        Samples::collect(10, || async { run(Command::new("docker").args(["run", "--rm", &image, "true"])) }).await;
    println!("{}", report("docker provision+first exec vs docker run --rm", &ours, &reference, 1.0));
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
}

async fn ssh() {
    let sshd = Sshd::start();
    let rt = SshRuntime::new(sshd.config()).unwrap();
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    exec_true(&rt, &id).await;
    let ours = Samples::collect(100, || exec_true(&rt, &id)).await;

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
    let ssh = |extra: &[&str]| {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F").arg(&config).args(extra).args(["arbe-bench", "true"]);
        cmd
    };
    let fresh = Samples::collect(10, || async { run(&mut ssh(&[])) }).await;
    println!("{}", report("ssh exec true vs fresh ssh host true", &ours, &fresh, 0.1));

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
    let multiplexed = Samples::collect(100, || async { run(&mut ssh(&["-o", &control])) }).await;
    println!("{}", report("ssh exec true vs ssh through ControlMaster", &ours, &multiplexed, 1.0));
    let _ = Command::new("ssh").arg("-F").arg(&config).args(["-o", &control, "-O", "exit", "arbe-bench"]).output();
    rt.destroy(&id).await.unwrap();
}
