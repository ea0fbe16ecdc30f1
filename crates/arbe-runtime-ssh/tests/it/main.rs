//! The conformance suite against a real OpenSSH sshd on loopback, plus ssh-only behaviour:
//! host-key checking, trust on first use, and reconnecting after the connection drops.

use std::sync::Arc;

use arbe_core::ErrorKind;
use arbe_runtime::{ExecRequest, Runtime, testkit};
use arbe_runtime_ssh::testkit::Sshd;
use arbe_runtime_ssh::{HostKeyPolicy, SshConfig, SshRuntime};
use zeroize::Zeroizing;

fn config(sshd: &Sshd, host_keys: HostKeyPolicy) -> SshConfig {
    SshConfig { host_keys, ..sshd.config() }
}

async fn make() -> (Arc<dyn Runtime>, Sshd) {
    let sshd = Sshd::start();
    let rt = SshRuntime::new(config(&sshd, HostKeyPolicy::KnownHosts(sshd.known_hosts.clone()))).unwrap();
    (Arc::new(rt), sshd)
}

arbe_runtime::conformance_suite!(make);

#[tokio::test]
async fn declared_capabilities_are_pinned() {
    let (rt, _sshd) = make().await;
    let want = arbe_runtime::Capabilities {
        isolation: arbe_runtime::Isolation::SharedAccount,
        persistent_fs: true,
        exec_streaming: true,
        file_transfer: true,
        ..arbe_runtime::Capabilities::default()
    };
    assert_eq!(rt.capabilities(), want);
}

#[tokio::test]
async fn reconnects_after_the_connection_drops() {
    let logs = arbe_testkit::LogCapture::install();
    let (rt, sshd) = make().await;
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    assert!(rt.exec(&id, ExecRequest::shell("echo one"), &mut ()).await.unwrap().success());
    assert!(sshd.kill_connections() >= 1, "the session's server side was found and killed");
    let out = rt.exec(&id, ExecRequest::shell("echo two"), &mut ()).await.unwrap();
    assert_eq!(out.stdout_text(), "two\n");
    assert!(logs.text().contains("the ssh session dropped; reconnecting"), "the second command reconnected");
    rt.destroy(&id).await.unwrap();
}

#[tokio::test]
async fn an_unknown_host_key_is_refused() {
    let sshd = Sshd::start();
    let empty = sshd.dir.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let rt = SshRuntime::new(config(&sshd, HostKeyPolicy::KnownHosts(empty))).unwrap();
    let err = rt.ping().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("is not trusted"), "{err}");
    assert!(!rt.diagnose().await.is_ok());
}

#[tokio::test]
async fn trust_on_first_use_learns_the_key_then_holds_it() {
    let sshd = Sshd::start();
    let learned = sshd.dir.path().join("tofu_known_hosts");
    let rt = SshRuntime::new(config(&sshd, HostKeyPolicy::TrustOnFirstUse(learned.clone()))).unwrap();
    rt.ping().await.unwrap();
    let text = std::fs::read_to_string(&learned).unwrap();
    assert!(text.contains("ssh-ed25519"), "{text}");
    // Another server on the same address with a different key is refused under the learned key.
    drop(rt);
    let other = Sshd::start();
    let mut cfg = config(&other, HostKeyPolicy::TrustOnFirstUse(learned.clone()));
    cfg.port = other.port;
    std::fs::write(
        &learned,
        text.replace(&format!("[127.0.0.1]:{}", sshd.port), &format!("[127.0.0.1]:{}", other.port)),
    )
    .unwrap();
    let err = SshRuntime::new(cfg).unwrap().ping().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthenticated);
}

#[tokio::test]
async fn a_wrong_client_key_is_refused() {
    let sshd = Sshd::start();
    let other = sshd.dir.path().join("other");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    let mut cfg = config(&sshd, HostKeyPolicy::KnownHosts(sshd.known_hosts.clone()));
    cfg.private_key = Zeroizing::new(std::fs::read_to_string(&other).unwrap());
    let err = SshRuntime::new(cfg).unwrap().ping().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("refused the key"), "{err}");
}

#[tokio::test]
async fn env_values_never_reach_the_remote_command_line() {
    let (rt, _sshd) = make().await;
    let id = rt.provision(&testkit::spec()).await.unwrap().external_id;
    // While the command runs, no process on the host has the value in its arguments.
    // This canary's own pattern (which the grep's command line does not match): other tests on
    // this machine print canaries of their own.
    let unique = arbe_core::SandboxId::new().as_uuid().simple().to_string();
    let canary = arbe_runtime::testkit::secret(&format!("sk-canary-{unique}"));
    let script = format!(
        "for f in /proc/[0-9]*/cmdline; do tr '\\000' ' ' < \"$f\"; echo; done | grep -c 'sk-canary-[{}]{}' || true",
        &unique[..1],
        &unique[1..]
    );
    let out = rt.exec(&id, ExecRequest::shell(script).env("TOKEN", canary), &mut ()).await.unwrap();
    assert_eq!(out.stdout_text().trim(), "0");
    rt.destroy(&id).await.unwrap();
}
