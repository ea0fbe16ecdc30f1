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
use arbe_runtime::{
    Capabilities, Capture, CheckStatus, Command, Diagnosis, ExecOutcome, ExecRequest, ExternalId, HOUSE_LABEL,
    OutputSink, Result, Runtime, RuntimeError, SANDBOX_LABEL, SandboxInfo, SandboxSpec, Stream, check_workspace_path,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{LocalConfig, NAME};

/// The local runtime. Trusted use only: commands run as the server's user, on the server's
/// machine, and can read and write whatever that user can. It isolates nothing.
#[derive(Debug, Clone)]
pub struct LocalRuntime {
    config: Arc<LocalConfig>,
    /// Process groups running per sandbox, so stop and destroy can end them.
    running: Arc<Mutex<HashMap<ExternalId, HashSet<i32>>>>,
}

/// What the runtime remembers about a sandbox, beside its folder.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    state: SandboxState,
    labels: Labels,
    /// The house's cap on this workspace, below the runtime's own.
    #[serde(default)]
    workspace_bytes: Option<u64>,
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
        Self { config: Arc::new(config), running: Arc::default() }
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
    let limits: Vec<String> =
        [("--cpu", config.cpu_seconds), ("--nofile", config.open_files), ("--fsize", config.workspace_max_bytes)]
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
        Capabilities { persistent_fs: true, exec_streaming: true, file_transfer: true, ..Capabilities::default() }
    }

    async fn provision(&self, spec: &SandboxSpec) -> Result<SandboxInfo> {
        let id = ExternalId(format!("{}/{}", spec.house_id, spec.sandbox_id));
        let (workspace, meta_path) = self.paths("provision", &id)?;
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder.create(&workspace).map_err(|e| io("provision", "create the workspace folder", e))?;
        // The folder may pre-exist with looser bits; workspaces are private.
        std::fs::set_permissions(&workspace, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io("provision", "set workspace permissions", e))?;
        let mut pairs: Vec<(String, String)> = spec.labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        pairs.push((HOUSE_LABEL.into(), spec.house_id.to_string()));
        pairs.push((SANDBOX_LABEL.into(), spec.sandbox_id.to_string()));
        let labels = Labels::parse(pairs).map_err(|e| err("provision", ErrorKind::InvalidInput, e.to_string()))?;
        let meta = Meta { state: SandboxState::Started, labels, workspace_bytes: spec.resources.workspace_bytes };
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
        let cwd = match &req.cwd {
            Some(dir) if dir.starts_with('/') => PathBuf::from(dir),
            Some(dir) => workspace.join(dir),
            None => workspace.clone(),
        };
        let config = &self.config;
        let argv = match &req.command {
            Command::Shell(text) => vec!["bash".to_owned(), "-lc".to_owned(), text.clone()],
            Command::Argv(argv) => argv.clone(),
        };
        let argv = limited(config, argv);
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd.current_dir(&cwd)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &workspace)
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
        tokio::fs::write(&target, contents).await.map_err(|e| io("put_file", "write the file", e))
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
        d.check(
            "isolation",
            CheckStatus::Warning,
            "none: commands run as the server's user on the server's machine and can touch whatever it can; \
             use the docker or ssh runtime for anything you do not trust",
        );
        d
    }
}
