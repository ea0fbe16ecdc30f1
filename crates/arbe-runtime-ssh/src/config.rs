//! The ssh runtime's settings: one host per runtime instance.

use std::{path::PathBuf, time::Duration};

use zeroize::Zeroizing;

/// How the host's key is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// The key must already be in this known_hosts file.
    KnownHosts(PathBuf),
    /// Trust on first use: a host not yet in the file is added; a changed key is still refused.
    TrustOnFirstUse(PathBuf),
}

/// Settings of one ssh sandbox host.
#[derive(Clone)]
pub struct SshConfig {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The user commands run as.
    pub user: String,
    /// The ed25519 private key, in OpenSSH format (a secret: never printed).
    pub private_key: Zeroizing<String>,
    /// How the host's key is checked.
    pub host_keys: HostKeyPolicy,
    /// Where sandboxes live on the host, relative to the user's home: `<base>/<house>/<sandbox>`.
    pub base_dir: String,
    /// Default per-command timeout; zero means none.
    pub exec_timeout: Duration,
    /// Time allowed to connect and authenticate.
    pub connect_timeout: Duration,
    /// Workspace quota enforced on `put_file`; 0 is no cap.
    pub workspace_max_bytes: u64,
}

impl std::fmt::Debug for SshConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("private_key", &"[redacted]")
            .field("host_keys", &self.host_keys)
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

impl SshConfig {
    /// Settings for `user@host:port` with SPEC §3's defaults.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        private_key: Zeroizing<String>,
        host_keys: HostKeyPolicy,
    ) -> Self {
        Self {
            host: host.into(),
            port,
            user: user.into(),
            private_key,
            host_keys,
            base_dir: "arbe-sandboxes".into(),
            exec_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(15),
            workspace_max_bytes: 1024 * 1024 * 1024,
        }
    }
}
