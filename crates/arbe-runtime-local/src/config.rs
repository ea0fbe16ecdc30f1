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
    /// How commands are kept from the host.
    pub isolation: Isolation,
}

/// How the local runtime keeps commands from the host.
#[derive(Clone, Debug, Default)]
pub enum Isolation {
    /// None: commands run on the host as the server's user and can read whatever it can. For a
    /// single house on loopback only (the trusted mode).
    #[default]
    Trusted,
    /// Every command runs in bubblewrap namespaces of its own (user, pid, ipc, uts, net, mount,
    /// cgroup): the workspace is `/workspace`, the system read-only, nothing else of the host
    /// visible, no network but its own loopback.
    Bubblewrap(Bubblewrap),
}

/// The bubblewrap mode's settings.
#[derive(Clone, Debug)]
pub struct Bubblewrap {
    /// The `bwrap` program.
    pub program: PathBuf,
    /// Run as root (a server): each house's commands run under a host uid of their own, the
    /// `index`-th house to arrive getting `first + index`; their workspaces belong to that uid.
    /// `None` (an ordinary user, a laptop): every house runs under the server's own uid, which
    /// the namespace maps to uid 1000 inside.
    pub house_uids: Option<UidRange>,
    /// Processes one house's uid may have at once (`RLIMIT_NPROC`): what stops a fork bomb.
    pub max_processes: u64,
    /// Address space one command may map (`RLIMIT_AS`); 0 is no cap.
    pub memory_bytes: u64,
    /// `arbe-sandboxd` on this machine (a static build). With it, each sandbox's namespaces
    /// live as long as the sandbox is started, hosting the executor, and commands are frames to
    /// it: a command then costs about what one on the host does. Without it, every command
    /// gets namespaces of its own.
    pub executor: Option<PathBuf>,
    /// Folders of cgroup v1 hierarchies this process may create groups in (run as root). With
    /// them and an executor, each started sandbox's namespaces run in cgroups of their own:
    /// memory capped at the sandbox's `memory_mb` (else `memory_bytes`), processes at
    /// `max_processes`, CPU at its `cpus` (else `cpus`); a command the kernel kills for memory
    /// is reported as such.
    pub cgroups: Option<CgroupsV1>,
    /// CPUs a sandbox may use when its spec names none (cgroups only).
    pub cpus: f64,
}

/// Where sandboxes' cgroups go in each cgroup v1 hierarchy: `/sys/fs/cgroup/memory/arbe` and
/// its `pids` and `cpu` siblings, say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupsV1 {
    /// In the memory hierarchy.
    pub memory: PathBuf,
    /// In the pids hierarchy.
    pub pids: PathBuf,
    /// In the cpu hierarchy.
    pub cpu: PathBuf,
}

impl CgroupsV1 {
    /// `<mount>/{memory,pids,cpu}/<name>`.
    pub fn under(mount: impl Into<PathBuf>, name: &str) -> Self {
        let mount = mount.into();
        Self {
            memory: mount.join("memory").join(name),
            pids: mount.join("pids").join(name),
            cpu: mount.join("cpu").join(name),
        }
    }
}

/// Host uids (and gids, the same numbers) the operator sets aside for houses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UidRange {
    /// The first.
    pub first: u32,
    /// How many.
    pub count: u32,
}

impl Bubblewrap {
    /// Debian's `/usr/bin/bwrap`, one uid for every house, 256 processes, 2 GiB per command,
    /// namespaces per command.
    pub fn new() -> Self {
        Self {
            program: PathBuf::from("/usr/bin/bwrap"),
            house_uids: None,
            max_processes: 256,
            memory_bytes: 2 * 1024 * 1024 * 1024,
            executor: None,
            cgroups: None,
            cpus: 1.0,
        }
    }
}

impl Default for Bubblewrap {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalConfig {
    /// The defaults of SPEC §3 under `root`: 30 s per command, a 1 GiB workspace, trusted.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            exec_timeout: Duration::from_secs(30),
            workspace_max_bytes: 1024 * 1024 * 1024,
            cpu_seconds: 600,
            open_files: 1024,
            isolation: Isolation::Trusted,
        }
    }

    /// The same, isolated in bubblewrap namespaces.
    pub fn isolated(root: impl Into<PathBuf>, bubblewrap: Bubblewrap) -> Self {
        Self { isolation: Isolation::Bubblewrap(bubblewrap), ..Self::new(root) }
    }
}
