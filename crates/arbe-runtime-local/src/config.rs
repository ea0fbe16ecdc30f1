//! The local runtime's settings. The binaries fill them (the workspaces root is
//! `~/.arbe/workspaces`); the library reads no environment.

use std::{path::PathBuf, time::Duration};

/// Settings of the local runtime.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// Where sandboxes live: `<root>/<house>/<sandbox>`.
    pub root: PathBuf,
    /// Default per-command timeout (a request may set its own); zero means none.
    pub exec_timeout: Duration,
    /// Workspace quota enforced on `put_file`, and the largest file a command may write; 0 is no cap.
    pub workspace_max_bytes: u64,
    /// CPU seconds a command may use (`RLIMIT_CPU`); 0 is no cap.
    pub cpu_seconds: u64,
    /// Open files a command may hold (`RLIMIT_NOFILE`).
    pub open_files: u64,
}

impl LocalConfig {
    /// The defaults of SPEC §3 under `root`: 30 s per command, a 1 GiB workspace.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            exec_timeout: Duration::from_secs(30),
            workspace_max_bytes: 1024 * 1024 * 1024,
            cpu_seconds: 600,
            open_files: 1024,
        }
    }
}
