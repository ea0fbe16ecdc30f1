//! `LocalRuntime`: sandboxes as folders, commands as process groups.

use std::{
    collections::{HashMap, HashSet},
    os::unix::{
        fs::{DirBuilderExt, PermissionsExt},
        process::ExitStatusExt,
    },
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use arbe_core::{ErrorKind, HouseId, Labels, SandboxId, SandboxState};
use arbe_runtime::framed::Executor;
use arbe_runtime::{
    Capabilities, Capture, CheckStatus, Command, Diagnosis, ExecOutcome, ExecRequest, ExternalId, HOUSE_LABEL,
    OutputSink, Result, Runtime, RuntimeError, SANDBOX_LABEL, SandboxInfo, SandboxSpec, Stream, check_workspace_path,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Bubblewrap, Isolation, LocalConfig, NAME};

/// The local runtime: sandboxes as folders on this machine. Trusted ([`Isolation::Trusted`]),
/// commands run as the server's user and can read and write whatever it can; isolated
/// ([`Isolation::Bubblewrap`]), each command runs in namespaces of its own that show it its
/// workspace at `/workspace`, the system read-only and nothing else.
#[derive(Debug, Clone)]
pub struct LocalRuntime {
    config: Arc<LocalConfig>,
    /// Process groups running per sandbox, so stop and destroy can end them.
    running: Arc<Mutex<HashMap<ExternalId, HashSet<i32>>>>,
    /// Host uids handed to houses (root mode), loaded from `<root>/uids.json`.
    uids: Arc<Mutex<Option<HashMap<HouseId, u32>>>>,
    /// Per started sandbox (isolated, with an executor): its namespaces' executor, and the
    /// process holding them (killed when dropped, which ends them).
    executors: Arc<Mutex<HashMap<ExternalId, Namespaces>>>,
}

/// A started sandbox's namespaces: the executor in them, the process holding them, and their
/// cgroups. Dropping it ends them: the holder is killed, which ends the namespaces and
/// everything in them, and the cgroups go once empty.
#[derive(Debug)]
struct Namespaces {
    executor: Arc<Executor>,
    holder: tokio::process::Child,
    cgroups: Option<crate::CgroupsV1>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        let _ = self.holder.start_kill();
        if let Some(groups) = self.cgroups.take() {
            // Removable once the last process in them is gone, a moment after the kill.
            std::thread::spawn(move || {
                for group in groups.all() {
                    for _ in 0..50 {
                        if std::fs::remove_dir(&group).is_ok() || !group.exists() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            });
        }
    }
}

/// What the runtime remembers about a sandbox, beside its folder.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    state: SandboxState,
    labels: Labels,
    /// The house's cap on this workspace, below the runtime's own.
    #[serde(default)]
    workspace_bytes: Option<u64>,
    /// The sandbox's memory cap, where a memory cgroup enforces it.
    #[serde(default)]
    memory_mb: Option<u64>,
    /// Its CPUs, where a cpu cgroup enforces them.
    #[serde(default)]
    cpus: Option<f64>,
}

fn err(op: &'static str, kind: ErrorKind, message: impl Into<String>) -> RuntimeError {
    RuntimeError::new(NAME, op, kind, message)
}

fn io(op: &'static str, what: &str, e: std::io::Error) -> RuntimeError {
    let kind = if e.kind() == std::io::ErrorKind::NotFound { ErrorKind::NotFound } else { ErrorKind::Internal };
    err(op, kind, format!("{what}: {e}")).with_source(e)
}

impl LocalRuntime {
    /// A local runtime under `config.root` (created 0700 on first use).
    pub fn new(config: LocalConfig) -> Self {
        if let Isolation::Bubblewrap(Bubblewrap { cgroups: Some(groups), .. }) = &config.isolation {
            sweep_cgroups(groups);
        }
        Self { config: Arc::new(config), running: Arc::default(), uids: Arc::default(), executors: Arc::default() }
    }

    /// The sandbox's executor, starting its namespaces when they are not running.
    async fn executor(&self, id: &ExternalId, workspace: &Path, program: &Path, meta: &Meta) -> Result<Arc<Executor>> {
        if let Some(namespaces) = self.executors.lock().expect("executors lock").get(id)
            && namespaces.executor.is_alive()
        {
            return Ok(namespaces.executor.clone());
        }
        let bubblewrap = self.bubblewrap().expect("an executor is isolated");
        let uid = Self::house_of(id).map(|house| self.house_uid("exec", house)).transpose()?.flatten();
        let argv = limited(&self.config, vec![EXECUTOR_PATH.to_owned()]);
        let mut argv = isolated(bubblewrap, workspace, Path::new(SANDBOX_WORKSPACE), Some(program), argv);
        if let Some(groups) = self.cgroups(id) {
            let memory = meta.memory_mb.map_or(bubblewrap.memory_bytes, |mb| mb * 1024 * 1024);
            let cpus = meta.cpus.unwrap_or(bubblewrap.cpus);
            prepare_cgroups(&groups, memory, bubblewrap.max_processes, cpus, uid)
                .map_err(|e| io("exec", "set up the sandbox's cgroups", e))?;
            // The holder joins the groups before it makes the namespaces: everything in them is
            // counted there from their first instruction.
            let join = "for g in \"$0\" \"$1\" \"$2\"; do echo $$ > \"$g\" || exit 125; done; shift 2; exec \"$@\"";
            let mut joined = vec!["/bin/sh".to_owned(), "-c".to_owned(), join.to_owned()];
            joined.extend(groups.all().iter().map(|g| g.join("cgroup.procs").display().to_string()));
            joined.append(&mut argv);
            argv = joined;
        }
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        cmd.current_dir("/")
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", SANDBOX_WORKSPACE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| io("exec", "start the sandbox's namespaces", e))?;
        let input = child.stdin.take().expect("piped stdin");
        let output = child.stdout.take().expect("piped stdout");
        let output = futures_util::stream::unfold(output, |mut output| async move {
            let mut buf = vec![0u8; 64 * 1024];
            match output.read(&mut buf).await {
                Ok(0) | Err(_) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((buf, output))
                }
            }
        });
        let executor = Executor::new(Box::pin(input), output);
        let namespaces = Namespaces { executor: executor.clone(), holder: child, cgroups: self.cgroups(id) };
        self.executors.lock().expect("executors lock").insert(id.clone(), namespaces);
        Ok(executor)
    }

    /// Ends the sandbox's namespaces, if they run (every process in them dies with them).
    fn end_namespaces(&self, id: &ExternalId) {
        // Dropping them ends them.
        drop(self.executors.lock().expect("executors lock").remove(id));
    }

    /// The sandbox's cgroups, when the runtime has hierarchies for them and an executor.
    fn cgroups(&self, id: &ExternalId) -> Option<crate::CgroupsV1> {
        let bubblewrap = self.bubblewrap()?;
        bubblewrap.executor.as_ref()?;
        let (_, sandbox) = id.0.split_once('/')?;
        let cgroups = bubblewrap.cgroups.as_ref()?;
        Some(crate::CgroupsV1 {
            memory: cgroups.memory.join(sandbox),
            pids: cgroups.pids.join(sandbox),
            cpu: cgroups.cpu.join(sandbox),
        })
    }

    fn bubblewrap(&self) -> Option<&Bubblewrap> {
        match &self.config.isolation {
            Isolation::Trusted => None,
            Isolation::Bubblewrap(bubblewrap) => Some(bubblewrap),
        }
    }

    /// The host uid (and gid) `house`'s commands run under in root mode: handed out in order
    /// of arrival from the operator's range and kept in `<root>/uids.json`, so a restart gives
    /// every house the uid that owns its workspaces.
    fn house_uid(&self, op: &'static str, house: HouseId) -> Result<Option<u32>> {
        let Some(range) = self.bubblewrap().and_then(|b| b.house_uids) else { return Ok(None) };
        let path = self.config.root.join("uids.json");
        let mut uids = self.uids.lock().expect("uids lock");
        let known = match uids.as_mut() {
            Some(known) => known,
            None => {
                let loaded = match std::fs::read(&path) {
                    Ok(text) => serde_json::from_slice(&text)
                        .map_err(|e| err(op, ErrorKind::Internal, format!("{} is corrupt: {e}", path.display())))?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
                    Err(e) => return Err(io(op, "read the house uids", e)),
                };
                uids.insert(loaded)
            }
        };
        if let Some(uid) = known.get(&house) {
            return Ok(Some(*uid));
        }
        let taken: HashSet<u32> = known.values().copied().collect();
        let uid = (range.first..range.first.saturating_add(range.count)).find(|uid| !taken.contains(uid)).ok_or_else(
            || {
                err(
                    op,
                    ErrorKind::QuotaExceeded,
                    format!("every uid of the range given to houses ({}) is taken", range.count),
                )
            },
        )?;
        known.insert(house, uid);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.config.root)
            .map_err(|e| io(op, "create the workspaces root", e))?;
        let text = serde_json::to_vec(&*known).expect("uids serialize");
        std::fs::write(&path, text).map_err(|e| io(op, "write the house uids", e))?;
        Ok(Some(uid))
    }

    /// The house of a sandbox id this runtime made.
    fn house_of(id: &ExternalId) -> Option<HouseId> {
        id.0.split_once('/').and_then(|(house, _)| HouseId::parse(house).ok())
    }

    /// `<root>/<house>/<sandbox>`, checking the id is one this runtime made.
    fn paths(&self, op: &'static str, id: &ExternalId) -> Result<(PathBuf, PathBuf)> {
        let (house, sandbox) = id.0.split_once('/').ok_or_else(|| RuntimeError::not_found(NAME, op, &id.0))?;
        let (house, sandbox) = match (HouseId::parse(house), SandboxId::parse(sandbox)) {
            (Ok(h), Ok(s)) => (h, s),
            _ => return Err(RuntimeError::not_found(NAME, op, &id.0)),
        };
        let dir = self.config.root.join(house.to_string());
        Ok((dir.join(sandbox.to_string()), dir.join(format!("{sandbox}.json"))))
    }

    async fn meta(&self, op: &'static str, id: &ExternalId) -> Result<(PathBuf, PathBuf, Meta)> {
        let (workspace, meta_path) = self.paths(op, id)?;
        let text = match tokio::fs::read(&meta_path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RuntimeError::not_found(NAME, op, &id.0)),
            Err(e) => return Err(io(op, "read sandbox state", e)),
        };
        let meta = serde_json::from_slice(&text)
            .map_err(|e| err(op, ErrorKind::Internal, format!("sandbox state is corrupt: {e}")))?;
        Ok((workspace, meta_path, meta))
    }

    async fn write_meta(op: &'static str, path: &Path, meta: &Meta) -> Result<()> {
        let text = serde_json::to_vec(meta).expect("meta serializes");
        let tmp = path.with_extension("json.tmp");
        tokio::fs::write(&tmp, text).await.map_err(|e| io(op, "write sandbox state", e))?;
        tokio::fs::rename(&tmp, path).await.map_err(|e| io(op, "write sandbox state", e))
    }

    async fn set_state(&self, op: &'static str, id: &ExternalId, state: SandboxState) -> Result<()> {
        let (_, meta_path, mut meta) = self.meta(op, id).await?;
        if state != SandboxState::Started {
            self.kill_all(id);
        }
        meta.state = state;
        Self::write_meta(op, &meta_path, &meta).await
    }

    fn kill_all(&self, id: &ExternalId) {
        self.end_namespaces(id);
        let groups = self.running.lock().expect("running lock").remove(id).unwrap_or_default();
        for pgid in groups {
            kill_group(pgid);
        }
    }

    fn info(id: &ExternalId, meta: Meta) -> SandboxInfo {
        SandboxInfo { external_id: id.clone(), state: meta.state, image: None, labels: meta.labels }
    }
}

/// The program and arguments that run `argv` under the configured rlimits (CPU seconds, open
/// files, file size). util-linux's `prlimit` sets them on itself and then execs `argv`, so they
/// are in force before the command's first instruction and bind everything it forks; setting
/// them from here after the spawn would leave a window (and a `pre_exec` hook needs unsafe code,
/// which this workspace forbids).
fn limited(config: &LocalConfig, argv: Vec<String>) -> Vec<String> {
    let (processes, memory) = match &config.isolation {
        Isolation::Trusted => (0, 0),
        Isolation::Bubblewrap(b) => (b.max_processes, b.memory_bytes),
    };
    let limits: Vec<String> = [
        ("--cpu", config.cpu_seconds),
        ("--nofile", config.open_files),
        ("--fsize", config.workspace_max_bytes),
        ("--nproc", processes),
        ("--as", memory),
    ]
    .into_iter()
    .filter(|(_, value)| *value > 0)
    .map(|(flag, value)| format!("{flag}={value}"))
    .collect();
    if limits.is_empty() {
        return argv;
    }
    let mut out = vec![PRLIMIT.to_owned()];
    out.extend(limits);
    out.push("--".to_owned());
    out.extend(argv);
    out
}

/// util-linux's prlimit (Debian's essential `util-linux` package).
const PRLIMIT: &str = "/usr/bin/prlimit";

/// Where the workspace appears inside the namespaces.
const SANDBOX_WORKSPACE: &str = "/workspace";

/// Where the executor appears inside a sandbox's namespaces.
const EXECUTOR_PATH: &str = "/.arbe-sandboxd";

/// `argv` inside bubblewrap namespaces of its own: user (uid 1000 inside), pid, ipc, uts, net
/// (its own loopback only), mount and cgroup; `/usr` read-only with the usual links to it,
/// `/etc` reduced to what programs need to start, a fresh `/proc`, `/dev` and `/tmp`, and the
/// workspace at `/workspace`, the one place that outlives the command. The namespaces die with
/// the command (and with the server: `--die-with-parent`).
fn isolated(
    bubblewrap: &Bubblewrap,
    workspace: &Path,
    cwd: &Path,
    executor: Option<&Path>,
    argv: Vec<String>,
) -> Vec<String> {
    let mut out: Vec<String> = vec![bubblewrap.program.display().to_string()];
    let args = [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--uid",
        "1000",
        "--gid",
        "1000",
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--dir",
        "/etc",
    ];
    out.extend(args.iter().map(|s| (*s).to_owned()));
    // What programs read at start: the dynamic linker's cache, name service and terminal
    // settings, the alternatives links Debian's tools resolve through. No passwd or shadow
    // beyond what `--uid` implies, nothing of the host's configuration.
    for file in ["/etc/ld.so.cache", "/etc/alternatives", "/etc/nsswitch.conf", "/etc/localtime", "/etc/ssl"] {
        if Path::new(file).exists() {
            out.extend(["--ro-bind".to_owned(), file.to_owned(), file.to_owned()]);
        }
    }
    out.extend(["--bind".to_owned(), workspace.display().to_string(), SANDBOX_WORKSPACE.to_owned()]);
    if let Some(executor) = executor {
        out.extend(["--ro-bind".to_owned(), executor.display().to_string(), EXECUTOR_PATH.to_owned()]);
    }
    // The root itself read-only last: only /workspace and the command's own /tmp take writes.
    out.extend(["--remount-ro".to_owned(), "/".to_owned()]);
    out.extend(["--chdir".to_owned(), cwd.display().to_string(), "--".to_owned()]);
    out.extend(argv);
    out
}

impl crate::CgroupsV1 {
    fn all(&self) -> [PathBuf; 3] {
        [self.memory.clone(), self.pids.clone(), self.cpu.clone()]
    }
}

/// Creates a sandbox's cgroups: memory capped at `memory` bytes, at most `pids` processes,
/// `cpus` CPUs; each `cgroup.procs` writable by `uid`, so the holder, running as that uid, can
/// join them.
fn prepare_cgroups(
    groups: &crate::CgroupsV1,
    memory: u64,
    pids: u64,
    cpus: f64,
    uid: Option<u32>,
) -> std::io::Result<()> {
    for group in groups.all() {
        match std::fs::create_dir(&group) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        if let Some(uid) = uid {
            chown(&group.join("cgroup.procs"), uid)?;
        }
    }
    std::fs::write(groups.memory.join("memory.limit_in_bytes"), memory.to_string())?;
    // No swap to spill into where the kernel offers the knob: the cap is the cap.
    let _ = std::fs::write(groups.memory.join("memory.swappiness"), "0");
    std::fs::write(groups.pids.join("pids.max"), pids.to_string())?;
    let period: u64 = 100_000;
    std::fs::write(groups.cpu.join("cpu.cfs_period_us"), period.to_string())?;
    let quota = (cpus.max(0.01) * period as f64) as u64;
    std::fs::write(groups.cpu.join("cpu.cfs_quota_us"), quota.to_string())
}

/// Removes sandboxes' cgroups a process that ended left behind: empty ones (the kernel refuses
/// to remove a group with processes) made over a minute ago (so a group being joined right now
/// is left alone).
fn sweep_cgroups(groups: &crate::CgroupsV1) {
    for root in groups.all() {
        let Ok(entries) = std::fs::read_dir(&root) else { continue };
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > Duration::from_secs(60)));
            if old && entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
}

/// How many times the kernel killed a process of the group for memory (cgroup v1's
/// `memory.oom_control`), 0 when unreadable.
fn oom_kills(group: &Path) -> u64 {
    std::fs::read_to_string(group.join("memory.oom_control"))
        .ok()
        .and_then(|text| text.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok())))
        .unwrap_or(0)
}

/// Gives `path` to `uid` (and the group of the same number).
fn chown(path: &Path, uid: u32) -> std::io::Result<()> {
    let owner = rustix::fs::Uid::from_raw(uid);
    let group = rustix::fs::Gid::from_raw(uid);
    rustix::fs::chown(path, Some(owner), Some(group)).map_err(std::io::Error::from)
}

fn kill_group(pgid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Kills a command's process group if the exec future is dropped or times out.
struct GroupGuard<'a> {
    pgid: i32,
    id: &'a ExternalId,
    running: &'a Mutex<HashMap<ExternalId, HashSet<i32>>>,
}

impl Drop for GroupGuard<'_> {
    fn drop(&mut self) {
        kill_group(self.pgid);
        if let Some(groups) = self.running.lock().expect("running lock").get_mut(self.id) {
            groups.remove(&self.pgid);
        }
    }
}

/// The tighter of the runtime's cap (0: none) and the house's (`None`: none); 0 is no cap.
fn workspace_cap(runtime: u64, house: Option<u64>) -> u64 {
    match (runtime, house) {
        (0, Some(house)) => house,
        (runtime, Some(house)) => runtime.min(house),
        (runtime, None) => runtime,
    }
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[async_trait::async_trait]
impl Runtime for LocalRuntime {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        let isolation = match self.config.isolation {
            Isolation::Trusted => arbe_runtime::Isolation::Host,
            Isolation::Bubblewrap(_) => arbe_runtime::Isolation::Sandbox,
        };
        let oom_detection = self.bubblewrap().is_some_and(|b| b.executor.is_some() && b.cgroups.is_some());
        Capabilities {
            isolation,
            persistent_fs: true,
            exec_streaming: true,
            file_transfer: true,
            oom_detection,
            ..Capabilities::default()
        }
    }

    async fn provision(&self, spec: &SandboxSpec) -> Result<SandboxInfo> {
        let id = ExternalId(format!("{}/{}", spec.house_id, spec.sandbox_id));
        let (workspace, meta_path) = self.paths("provision", &id)?;
        let uid = self.house_uid("provision", spec.house_id)?;
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(&workspace).map_err(|e| io("provision", "create the workspace folder", e))?;
        // The folder may pre-exist with looser bits; workspaces are private.
        std::fs::set_permissions(&workspace, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io("provision", "set workspace permissions", e))?;
        if let Some(uid) = uid {
            // The house's uid must pass the root and house folders to reach its workspace (they
            // list nothing to it), and owns the workspace itself.
            for dir in [self.config.root.as_path(), workspace.parent().expect("a house folder")] {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
                    .map_err(|e| io("provision", "set folder permissions", e))?;
            }
            chown(&workspace, uid).map_err(|e| io("provision", "give the workspace to the house's uid", e))?;
        }
        let mut pairs: Vec<(String, String)> = spec.labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        pairs.push((HOUSE_LABEL.into(), spec.house_id.to_string()));
        pairs.push((SANDBOX_LABEL.into(), spec.sandbox_id.to_string()));
        let labels = Labels::parse(pairs).map_err(|e| err("provision", ErrorKind::InvalidInput, e.to_string()))?;
        let meta = Meta {
            state: SandboxState::Started,
            labels,
            workspace_bytes: spec.resources.workspace_bytes,
            memory_mb: spec.resources.memory_mb,
            cpus: spec.resources.cpus,
        };
        Self::write_meta("provision", &meta_path, &meta).await?;
        Ok(Self::info(&id, meta))
    }

    async fn get(&self, id: &ExternalId) -> Result<SandboxInfo> {
        let (_, _, meta) = self.meta("get", id).await?;
        Ok(Self::info(id, meta))
    }

    async fn list(&self, labels: &Labels) -> Result<Vec<SandboxInfo>> {
        let mut found = Vec::new();
        let Ok(houses) = std::fs::read_dir(&self.config.root) else { return Ok(found) };
        for house in houses.flatten() {
            let Ok(files) = std::fs::read_dir(house.path()) else { continue };
            for file in files.flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                let Some(sandbox) = name.strip_suffix(".json") else { continue };
                let id = ExternalId(format!("{}/{sandbox}", house.file_name().to_string_lossy()));
                let Ok((_, _, meta)) = self.meta("list", &id).await else { continue };
                if labels.iter().all(|(k, v)| meta.labels.get(k) == Some(v)) {
                    found.push(Self::info(&id, meta));
                }
            }
        }
        found.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        Ok(found)
    }

    async fn start(&self, id: &ExternalId) -> Result<()> {
        self.set_state("start", id, SandboxState::Started).await
    }

    async fn stop(&self, id: &ExternalId) -> Result<()> {
        self.set_state("stop", id, SandboxState::Stopped).await
    }

    async fn destroy(&self, id: &ExternalId) -> Result<()> {
        let (workspace, meta_path, _) = self.meta("destroy", id).await?;
        self.kill_all(id);
        tokio::fs::remove_file(&meta_path).await.map_err(|e| io("destroy", "remove sandbox state", e))?;
        match tokio::fs::remove_dir_all(&workspace).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("destroy", "remove the workspace", e)),
            _ => Ok(()),
        }
    }

    async fn exec(&self, id: &ExternalId, req: ExecRequest, out: &mut (dyn OutputSink + '_)) -> Result<ExecOutcome> {
        req.validate().map_err(|e| err("exec", ErrorKind::InvalidInput, e.to_string()))?;
        let (workspace, _, meta) = self.meta("exec", id).await?;
        if meta.state != SandboxState::Started {
            return Err(err("exec", ErrorKind::Conflict, format!("sandbox {id} is {}; start it first", meta.state)));
        }
        let config = &self.config;
        let argv = match &req.command {
            Command::Shell(text) => vec!["bash".to_owned(), "-lc".to_owned(), text.clone()],
            Command::Argv(argv) => argv.clone(),
        };
        let argv = limited(config, argv);
        let (argv, cwd, home, uid) = match self.bubblewrap() {
            None => {
                let cwd = match &req.cwd {
                    Some(dir) if dir.starts_with('/') => PathBuf::from(dir),
                    Some(dir) => workspace.join(dir),
                    None => workspace.clone(),
                };
                (argv, cwd, workspace.clone(), None)
            }
            Some(bubblewrap) => {
                let inner = match &req.cwd {
                    Some(dir) if dir.starts_with('/') => PathBuf::from(dir),
                    Some(dir) => Path::new(SANDBOX_WORKSPACE).join(dir),
                    None => PathBuf::from(SANDBOX_WORKSPACE),
                };
                if let Some(program) = &bubblewrap.executor {
                    let executor = self.executor(id, &workspace, program, &meta).await?;
                    let cwd = inner.display().to_string();
                    let group = self.cgroups(id).map(|groups| groups.memory);
                    let before = group.as_deref().map(oom_kills);
                    let mut outcome = arbe_runtime::framed::exec(
                        NAME,
                        &executor,
                        &cwd,
                        &["bash", "-lc"],
                        req,
                        out,
                        config.exec_timeout,
                    )
                    .await?;
                    // Killed outright (or a shell reporting its child killed) while the group's
                    // OOM-kill count rose: the memory cap.
                    let killed = outcome.signal == Some(9) || outcome.exit_code == Some(137);
                    if let (Some(group), Some(before)) = (group, before) {
                        outcome.oom_killed = killed && !outcome.timed_out && oom_kills(&group) > before;
                    }
                    return Ok(outcome);
                }
                // Namespaces for this command alone, made as the house's uid.
                let uid = Self::house_of(id).map(|house| self.house_uid("exec", house)).transpose()?.flatten();
                let argv = isolated(bubblewrap, &workspace, &inner, None, argv);
                (argv, PathBuf::from("/"), PathBuf::from(SANDBOX_WORKSPACE), uid)
            }
        };
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        cmd.current_dir(&cwd)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &home)
            .envs(req.env.iter().map(|(k, v)| (k, v.expose())))
            .stdin(if req.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| io("exec", "start the command", e))?;
        let pgid = child.id().map(|pid| pid as i32).unwrap_or(0);
        self.running.lock().expect("running lock").entry(id.clone()).or_default().insert(pgid);
        let _guard = GroupGuard { pgid, id, running: &self.running };

        if let (Some(mut stdin), Some(bytes)) = (child.stdin.take(), req.stdin.clone()) {
            tokio::spawn(async move {
                let _ = stdin.write_all(&bytes).await;
            });
        }
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let mut capture = Capture::new(out, req.output_cap);
        let timeout = req.timeout.unwrap_or(config.exec_timeout);
        let deadline = tokio::time::sleep(if timeout.is_zero() { Duration::from_secs(u64::MAX / 4) } else { timeout });
        tokio::pin!(deadline);
        let (mut buf_out, mut buf_err) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        let (mut out_open, mut err_open, mut timed_out) = (true, true, false);
        let mut status = None;
        // Once the command exits, background processes it left may hold the pipes: drain for a
        // moment, then stop reading and leave them be (a timeout kills the whole group instead).
        let drain = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
        tokio::pin!(drain);
        while out_open || err_open {
            tokio::select! {
                n = stdout.read(&mut buf_out), if out_open => match n {
                    Ok(0) | Err(_) => out_open = false,
                    Ok(n) => capture.push(Stream::Stdout, &buf_out[..n]),
                },
                n = stderr.read(&mut buf_err), if err_open => match n {
                    Ok(0) | Err(_) => err_open = false,
                    Ok(n) => capture.push(Stream::Stderr, &buf_err[..n]),
                },
                res = child.wait(), if status.is_none() => {
                    status = Some(res.map_err(|e| io("exec", "wait for the command", e))?);
                    drain.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(1));
                }
                () = &mut deadline, if !timed_out => {
                    timed_out = true;
                    kill_group(pgid);
                }
                () = &mut drain => break,
            }
        }
        let status = match status {
            Some(status) => status,
            None => child.wait().await.map_err(|e| io("exec", "wait for the command", e))?,
        };
        Ok(capture.finish(ExecOutcome {
            exit_code: status.code(),
            signal: status.signal(),
            timed_out,
            duration: started.elapsed(),
            ..ExecOutcome::default()
        }))
    }

    async fn put_file(&self, id: &ExternalId, path: &str, contents: &[u8]) -> Result<()> {
        check_workspace_path(NAME, "put_file", path)?;
        let (workspace, _, meta) = self.meta("put_file", id).await?;
        let target = workspace.join(path);
        let max = workspace_cap(self.config.workspace_max_bytes, meta.workspace_bytes);
        if max > 0 {
            let existing = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
            let used = dir_size(&workspace);
            if used - existing.min(used) + contents.len() as u64 > max {
                return Err(err(
                    "put_file",
                    ErrorKind::QuotaExceeded,
                    format!("the workspace_bytes quota of {max} bytes would be exceeded"),
                ));
            }
        }
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| io("put_file", "create folders", e))?;
        }
        tokio::fs::write(&target, contents).await.map_err(|e| io("put_file", "write the file", e))?;
        if let Some(uid) = Self::house_of(id).map(|house| self.house_uid("put_file", house)).transpose()?.flatten() {
            // Everything under the workspace belongs to the house's uid, what put_file made too.
            let mut dir = target.as_path();
            while dir != workspace {
                chown(dir, uid).map_err(|e| io("put_file", "give the file to the house's uid", e))?;
                dir = dir.parent().expect("inside the workspace");
            }
        }
        Ok(())
    }

    async fn get_file(&self, id: &ExternalId, path: &str) -> Result<Vec<u8>> {
        check_workspace_path(NAME, "get_file", path)?;
        let (workspace, _, _) = self.meta("get_file", id).await?;
        tokio::fs::read(workspace.join(path)).await.map_err(|e| io("get_file", "read the file", e))
    }

    async fn ping(&self) -> Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(&self.config.root).map_err(|e| io("ping", "create the workspaces root", e))?;
        let probe = self.config.root.join(".arbe-ping");
        std::fs::write(&probe, b"ok").map_err(|e| io("ping", "write to the workspaces root", e))?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }

    async fn diagnose(&self) -> Diagnosis {
        let mut d = Diagnosis::new(NAME);
        match self.ping().await {
            Ok(()) => {
                d.check("workspaces root", CheckStatus::Ok, format!("{} is writable", self.config.root.display()))
            }
            Err(e) => d.check("workspaces root", CheckStatus::Blocker, e.to_string()),
        }
        match tokio::process::Command::new("bash").args(["-c", "true"]).status().await {
            Ok(s) if s.success() => d.check("shell", CheckStatus::Ok, "bash runs"),
            _ => d.check("shell", CheckStatus::Blocker, "bash is not installed; commands need it"),
        }
        match tokio::process::Command::new(PRLIMIT).args(["--cpu=1", "--", "true"]).status().await {
            Ok(s) if s.success() => d.check(
                "limits",
                CheckStatus::Ok,
                "CPU time, open files and file size are capped per command (rlimits)",
            ),
            _ => d.check(
                "limits",
                CheckStatus::Blocker,
                "util-linux's prlimit is missing; commands need it for their limits",
            ),
        }
        match self.bubblewrap() {
            None => d.check(
                "isolation",
                CheckStatus::Warning,
                "none: commands run as the server's user on the server's machine and can touch whatever it can; \
                 use the docker runtime or the isolated local runtime for anything you do not trust",
            ),
            Some(bubblewrap) => {
                let probe = isolated(bubblewrap, &self.config.root, Path::new("/"), None, vec!["true".to_owned()]);
                match tokio::process::Command::new(&probe[0]).args(&probe[1..]).status().await {
                    Ok(s) if s.success() => {
                        let who = match bubblewrap.house_uids {
                            Some(range) => {
                                format!("each house under a host uid of its own ({} from {})", range.count, range.first)
                            }
                            None => "every house under the server's uid, mapped to uid 1000 inside".to_owned(),
                        };
                        if bubblewrap.house_uids.is_some() {
                            // Houses' uids reach their workspaces through every folder above.
                            let shut =
                                self.config.root.ancestors().skip(1).find(|dir| {
                                    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 == 0)
                                });
                            if let Some(dir) = shut {
                                d.check(
                                    "workspaces root",
                                    CheckStatus::Blocker,
                                    format!(
                                        "{} is closed to other uids, so houses' uids cannot reach their workspaces: \
                                         chmod 711 it (they can enter it, not list it)",
                                        dir.display()
                                    ),
                                );
                            }
                        }
                        let lifetime = match &bubblewrap.executor {
                            Some(_) => "per sandbox, hosting its executor",
                            None => "per command",
                        };
                        d.check(
                            "isolation",
                            CheckStatus::Ok,
                            format!(
                                "bubblewrap namespaces {lifetime} (user, pid, net, mount, ipc, uts, cgroup), {who}"
                            ),
                        );
                        match (&bubblewrap.executor, &bubblewrap.cgroups) {
                            (Some(_), Some(cgroups)) => d.check(
                                "memory",
                                CheckStatus::Ok,
                                format!(
                                    "cgroups per sandbox under {} cap its memory (its memory_mb, else {} bytes; \
                                     out-of-memory kills told apart), processes ({}) and CPUs (its cpus, else {}); \
                                     rlimits too",
                                    cgroups.memory.display(),
                                    bubblewrap.memory_bytes,
                                    bubblewrap.max_processes,
                                    bubblewrap.cpus
                                ),
                            ),
                            _ => d.check(
                                "memory",
                                CheckStatus::Warning,
                                format!(
                                    "address space per command capped at {} bytes and {} processes per house \
                                     (rlimits); no cgroup memory limit, so running out of memory is not told apart \
                                     from other failures",
                                    bubblewrap.memory_bytes, bubblewrap.max_processes
                                ),
                            ),
                        }
                    }
                    _ => d.check(
                        "isolation",
                        CheckStatus::Blocker,
                        format!(
                            "bubblewrap ({}) cannot create namespaces here: install Debian's bubblewrap and allow \
                             unprivileged user namespaces",
                            bubblewrap.program.display()
                        ),
                    ),
                }
            }
        }
        d
    }
}
