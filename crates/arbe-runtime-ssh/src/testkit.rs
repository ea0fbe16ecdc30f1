//! A real OpenSSH sshd on a loopback port with throwaway keys, stopped on drop (feature
//! `testkit`, for tests and benchmarks). A missing sshd panics, naming the package to install:
//! tests that need it fail, never skip.

use std::{
    net::TcpStream,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A running sshd and what a client needs to reach it.
#[derive(Debug)]
pub struct Sshd {
    /// Its loopback port.
    pub port: u16,
    /// The user to log in as (the one running the tests).
    pub user: String,
    /// The client's private key (OpenSSH format), authorized on the server.
    pub client_key: String,
    /// A known_hosts file naming the server's key.
    pub known_hosts: PathBuf,
    /// Its private folder (keys, config, log).
    pub dir: tempfile::TempDir,
    child: Child,
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "arbe-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) is needed for the ssh tests");
    assert!(status.success());
}

impl Sshd {
    /// Starts sshd on a free loopback port; panics with what to install if it cannot.
    pub fn start() -> Self {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(sshd.exists(), "the ssh runtime tests need a real sshd: install openssh-server (.ci/run does)");
        let dir = tempfile::Builder::new().prefix("arbe-sshd-").tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host"));
        keygen(&d.join("client"));
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
        std::fs::set_permissions(d.join("authorized_keys"), std::fs::Permissions::from_mode(0o600)).unwrap();
        // sshd insists on its privilege-separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        // A free port is picked by binding and releasing it, so another process may take it
        // before sshd binds: then sshd exits, and the next attempt picks another.
        let mut attempt = 0;
        let (port, child) = loop {
            attempt += 1;
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {0}/host\nPidFile {0}/sshd.pid\nAuthorizedKeysFile {0}/authorized_keys\n\
                 PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nUseDNS no\nPrintMotd no\nLogLevel ERROR\n\
                 MaxSessions 100\nMaxStartups 100\nSetEnv SHLVL=1\n",
                d.display()
            );
            std::fs::write(d.join("sshd_config"), config).unwrap();
            let mut child = Command::new(sshd)
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdin(Stdio::null())
                .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
                .spawn()
                .expect("start sshd");
            let started = Instant::now();
            let listening = loop {
                if child.try_wait().unwrap().is_some() {
                    break false;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break true;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "sshd did not listen: {}",
                    std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            if listening {
                break (port, child);
            }
            assert!(
                attempt < 5,
                "sshd exited at start five times: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
        };
        let host_pub = std::fs::read_to_string(d.join("host.pub")).unwrap();
        let mut parts = host_pub.split_whitespace();
        let (algo, key) = (parts.next().unwrap(), parts.next().unwrap());
        let known_hosts = d.join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {algo} {key}\n")).unwrap();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_owned();
        let client_key = std::fs::read_to_string(d.join("client")).unwrap();
        Self { port, user, client_key, known_hosts, dir, child }
    }

    /// A config for this server, with sandboxes in its private folder.
    pub fn config(&self) -> crate::SshConfig {
        let mut config = crate::SshConfig::new(
            "127.0.0.1",
            self.port,
            self.user.clone(),
            zeroize::Zeroizing::new(self.client_key.clone()),
            crate::HostKeyPolicy::KnownHosts(self.known_hosts.clone()),
        );
        config.base_dir = self.dir.path().join("sandboxes").display().to_string();
        config
    }

    /// Kills every connection sshd is serving (its child processes), keeping the listener.
    pub fn kill_connections(&self) -> usize {
        let parent = self.child.id().to_string();
        let mut killed = 0;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            // Only positive process ids: `kill -9 -1` would signal every process there is.
            let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()).filter(|&pid| pid > 1)
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            let Some(after) = stat.rsplit_once(") ").map(|(_, rest)| rest) else { continue };
            // The connection may end on its own between the scan and the signal: stay quiet then.
            if after.split_whitespace().nth(1) == Some(parent.as_str())
                && Command::new("kill")
                    .args(["-s", "KILL", "--", &pid.to_string()])
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            {
                killed += 1;
            }
        }
        killed
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.kill_connections();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
