//! `DockerRuntime`: one container per sandbox, driven over the Engine API with bollard.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use arbe_core::{ErrorKind, Labels, SandboxState};
use arbe_runtime::{
    Capabilities, Capture, CheckStatus, Command, Diagnosis, ExecOutcome, ExecRequest, ExternalId, HOUSE_LABEL,
    OutputSink, Result, Runtime, RuntimeError, SANDBOX_LABEL, SandboxInfo, SandboxSpec, Stream, check_workspace_path,
};
use bollard::{
    Docker,
    container::LogOutput,
    errors::Error as BollardError,
    exec::{CreateExecOptions, StartExecOptions, StartExecResults},
    models::{
        ContainerCreateBody, ContainerStateStatusEnum, ContainerSummaryStateEnum, HostConfig, HostConfigLogConfig,
        Mount, MountType, VolumeCreateRequest,
    },
    query_parameters::{
        CreateContainerOptions, InspectContainerOptions, ListContainersOptions, RemoveContainerOptions,
        RemoveVolumeOptions, StartContainerOptions, StopContainerOptions,
    },
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use arbe_runtime::framed::Executor;

use crate::{
    DockerConfig, NAME,
    executor::{self, EXECUTOR_LABEL},
};

/// The Engine API version spoken: old enough for any supported daemon.
const API_VERSION: &bollard::ClientVersion = &bollard::ClientVersion { major_version: 1, minor_version: 44 };
/// Marks containers this runtime manages.
const MANAGED_LABEL: &str = "arbe.managed";
/// The house's cap on a sandbox's workspace, in bytes, when it is below the runtime's own.
const WORKSPACE_LABEL: &str = "arbe.workspace-bytes";
/// Where the workspace volume is mounted.
const WORKSPACE: &str = "/workspace";
/// Runs the command as the leader of its own process group (docker makes every exec a session
/// leader) and records the group id, so a timeout can kill the whole tree.
const WRAPPER: &str = r#"echo $$ > "$0"; n=$1; shift
if [ "$n" -gt 0 ]; then eval "$(dd bs=1 count="$n" 2>/dev/null)"; fi
"$@"; rc=$?; rm -f "$0"; exit $rc"#;

/// The docker runtime.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    config: Arc<DockerConfig>,
    /// Per container: when it was last used and how many commands run in it now.
    activity: Arc<Mutex<HashMap<String, Activity>>>,
    /// Per container: the cgroup's OOM-kill count last read.
    oom_kills: Arc<Mutex<HashMap<String, u64>>>,
    /// Per container: its executor's attach stream, or `None` for a container from an image
    /// without one (commands then go through `docker exec`).
    executors: Arc<Mutex<HashMap<String, Option<Arc<Executor>>>>>,
    /// Held while attaching, so concurrent first commands share one attach stream (each stream
    /// receives everything the executor writes).
    attaching: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Clone, Copy)]
struct Activity {
    last: Instant,
    running: usize,
}

/// The most a helper command (`get_file`, say) may print.
const MAX_HELPER_OUTPUT: usize = 64 * 1024 * 1024;

/// The unprivileged user (uid:gid) every command runs as; the image's `/workspace` is theirs.
const SANDBOX_USER: &str = "1000:1000";

/// How long a killed command may take to report its end before `exec` stops waiting.
const KILL_GRACE: Duration = Duration::from_secs(5);

fn err(op: &'static str, kind: ErrorKind, message: impl Into<String>) -> RuntimeError {
    RuntimeError::new(NAME, op, kind, message)
}

fn container_name(spec: &SandboxSpec) -> String {
    format!("arbe-{}", spec.sandbox_id)
}

fn volume_name(container: &str) -> String {
    format!("{container}-workspace")
}

fn status(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

impl DockerRuntime {
    /// A runtime for the engine at `config.endpoint`. A unix socket that does not exist fails
    /// here (`Unavailable`, naming it); otherwise nothing is sent until the first call, and an
    /// engine that does not answer fails `ping` and `diagnose` with the reason.
    pub fn new(config: DockerConfig) -> Result<Self> {
        let endpoint = config.endpoint.as_str();
        let docker = if let Some(path) = endpoint.strip_prefix("unix://") {
            Docker::connect_with_unix(path, 120, API_VERSION)
        } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
            Docker::connect_with_http(&endpoint.replacen("tcp://", "http://", 1), 120, API_VERSION)
        } else {
            return Err(err(
                "connect",
                ErrorKind::Misconfigured,
                format!("docker endpoint {endpoint} must start with unix://, tcp:// or http://"),
            ));
        }
        .map_err(|e| err("connect", ErrorKind::Unavailable, format!("docker engine unreachable at {endpoint}: {e}")))?;
        Ok(Self {
            docker,
            config: Arc::new(config),
            activity: Arc::default(),
            oom_kills: Arc::default(),
            executors: Arc::default(),
            attaching: Arc::default(),
        })
    }

    /// Maps an engine error; 404 means the sandbox is gone.
    fn map(&self, op: &'static str, id: &str, e: BollardError) -> RuntimeError {
        let (kind, message) = match status(&e) {
            Some(404) => return RuntimeError::not_found(NAME, op, id),
            Some(409) => (ErrorKind::Conflict, format!("sandbox {id} is not running; start it first")),
            Some(s) if s >= 500 => (ErrorKind::Unavailable, format!("the docker engine failed: {e}")),
            Some(_) => (ErrorKind::Internal, format!("the docker engine refused: {e}")),
            None => (ErrorKind::Unavailable, format!("docker engine unreachable at {}: {e}", self.config.endpoint)),
        };
        err(op, kind, message).with_source(e)
    }

    fn touch(&self, container: &str, delta: isize) {
        let mut activity = self.activity.lock().expect("activity lock");
        let entry = activity.entry(container.to_owned()).or_insert(Activity { last: Instant::now(), running: 0 });
        entry.last = Instant::now();
        entry.running = entry.running.saturating_add_signed(delta);
    }

    /// Stops every managed, running sandbox this runtime has used, and not for longer than the
    /// idle setting, and returns them. A sandbox running a command is never idle, and one this
    /// runtime has not used (another process's) is left alone: it may be busy there. Reaping
    /// across processes from the store's `last_active_at` comes with scale-out.
    pub async fn reap_idle(&self) -> Result<Vec<ExternalId>> {
        if self.config.idle.is_zero() {
            return Ok(Vec::new());
        }
        let running = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: false,
                filters: Some(HashMap::from([("label".to_owned(), vec![format!("{MANAGED_LABEL}=true")])])),
                ..Default::default()
            }))
            .await
            .map_err(|e| self.map("reap", "(all)", e))?;
        let mut stopped = Vec::new();
        for summary in running {
            let Some(name) = summary.names.and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_owned())) else {
                continue;
            };
            // Only sandboxes this runtime has seen in use: another process's (or another
            // runtime's in this one) may be busy for all this one knows.
            let idle = {
                let activity = self.activity.lock().expect("activity lock");
                activity.get(&name).is_some_and(|entry| entry.running == 0 && entry.last.elapsed() > self.config.idle)
            };
            if idle {
                let id = ExternalId(name);
                self.stop(&id).await?;
                tracing::info!(sandbox = %id, "stopped an idle sandbox");
                stopped.push(id);
            }
        }
        Ok(stopped)
    }

    /// Runs [`DockerRuntime::reap_idle`] every `every` until the handle is aborted.
    pub fn spawn_reaper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let runtime = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = runtime.reap_idle().await {
                    tracing::warn!(error = %e, "the idle reaper failed");
                }
            }
        })
    }

    /// Runs an internal command to completion and returns its exit code and output.
    /// The container's executor stream, attaching when there is none yet (or it closed);
    /// `None` when the container runs no executor, or is not running (then `docker exec`
    /// answers as usual).
    async fn executor(&self, id: &ExternalId) -> Result<Option<Arc<Executor>>> {
        let known = || match self.executors.lock().expect("executors lock").get(&id.0) {
            Some(None) => Some(None),
            Some(Some(executor)) if executor.is_alive() => Some(Some(executor.clone())),
            _ => None,
        };
        if let Some(known) = known() {
            return Ok(known);
        }
        let _attaching = self.attaching.lock().await;
        if let Some(known) = known() {
            return Ok(known);
        }
        let inspect = self
            .docker
            .inspect_container(&id.0, None::<InspectContainerOptions>)
            .await
            .map_err(|e| self.map("exec", &id.0, e))?;
        let has_executor = inspect.config.and_then(|c| c.labels).is_some_and(|l| l.contains_key(EXECUTOR_LABEL));
        let running = inspect.state.and_then(|s| s.running).unwrap_or(false);
        if !has_executor {
            self.executors.lock().expect("executors lock").insert(id.0.clone(), None);
            return Ok(None);
        }
        if !running {
            return Ok(None);
        }
        let executor = executor::attach(&self.docker, &id.0).await.map_err(|e| self.map("exec", &id.0, e))?;
        self.executors.lock().expect("executors lock").insert(id.0.clone(), Some(executor.clone()));
        Ok(Some(executor))
    }

    /// Runs a command through the container's executor (see [`arbe_runtime::framed::exec`]).
    async fn exec_framed(
        &self,
        executor: &Arc<Executor>,
        req: ExecRequest,
        out: &mut (dyn OutputSink + '_),
    ) -> Result<ExecOutcome> {
        let cwd = match &req.cwd {
            Some(dir) if dir.starts_with('/') => dir.clone(),
            Some(dir) => format!("{WORKSPACE}/{dir}"),
            None => WORKSPACE.to_owned(),
        };
        arbe_runtime::framed::exec(NAME, executor, &cwd, &["/bin/sh", "-c"], req, out, self.config.exec_timeout).await
    }

    /// Runs a helper command of the runtime's own (as root in the container, or as the
    /// sandbox's user where `as_user` says so: anything that reads or writes the user's files).
    async fn run_internal(
        &self,
        op: &'static str,
        id: &ExternalId,
        argv: Vec<String>,
        stdin: Option<&[u8]>,
    ) -> Result<(i64, Vec<u8>, Vec<u8>)> {
        self.run_helper(op, id, argv, stdin, false).await
    }

    async fn run_helper(
        &self,
        op: &'static str,
        id: &ExternalId,
        argv: Vec<String>,
        stdin: Option<&[u8]>,
        as_user: bool,
    ) -> Result<(i64, Vec<u8>, Vec<u8>)> {
        let exec = self
            .docker
            .create_exec(
                &id.0,
                CreateExecOptions {
                    cmd: Some(argv),
                    user: as_user.then(|| SANDBOX_USER.to_owned()),
                    attach_stdin: Some(stdin.is_some()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.map(op, &id.0, e))?;
        let (mut out, mut errs) = (Vec::new(), Vec::new());
        if let StartExecResults::Attached { mut output, mut input } = self
            .docker
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| self.map(op, &id.0, e))?
        {
            if let Some(bytes) = stdin {
                input
                    .write_all(bytes)
                    .await
                    .map_err(|e| err(op, ErrorKind::Unavailable, format!("write to the sandbox: {e}")))?;
                input.shutdown().await.map_err(|e| err(op, ErrorKind::Unavailable, format!("close input: {e}")))?;
            }
            while let Some(chunk) = output.next().await {
                match chunk.map_err(|e| self.map(op, &id.0, e))? {
                    LogOutput::StdOut { message } => out.extend_from_slice(&message),
                    LogOutput::StdErr { message } => errs.extend_from_slice(&message),
                    _ => {}
                }
                // A file (or anything a helper prints) is read whole into memory: bounded.
                if out.len() + errs.len() > MAX_HELPER_OUTPUT {
                    return Err(err(op, ErrorKind::InvalidInput, "the output is larger than 64 MiB"));
                }
            }
        }
        let code = self.exit_code(op, id, &exec.id).await?;
        Ok((code, out, errs))
    }

    async fn exit_code(&self, op: &'static str, id: &ExternalId, exec: &str) -> Result<i64> {
        for _ in 0..50 {
            let inspect = self.docker.inspect_exec(exec).await.map_err(|e| self.map(op, &id.0, e))?;
            if inspect.running != Some(true)
                && let Some(code) = inspect.exit_code
            {
                return Ok(code);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(err(op, ErrorKind::Internal, "the command's exit code never arrived"))
    }

    /// The container's cgroup OOM-kill count (cgroup v1 or v2).
    async fn oom_kill_count(&self, id: &ExternalId) -> Result<u64> {
        let script = "cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null | grep '^oom_kill ' | head -n 1";
        let (_, out, _) =
            self.run_internal("exec", id, vec!["/bin/sh".into(), "-c".into(), script.into()], None).await?;
        let text = String::from_utf8_lossy(&out);
        Ok(text.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0))
    }

    fn info(
        &self,
        name: String,
        state: SandboxState,
        image: Option<String>,
        labels: Option<HashMap<String, String>>,
    ) -> SandboxInfo {
        let labels = labels.unwrap_or_default().into_iter().filter(|(k, _)| k != MANAGED_LABEL);
        SandboxInfo { external_id: ExternalId(name), state, image, labels: Labels::parse(labels).unwrap_or_default() }
    }
}

/// Keeps a sandbox's activity up to date for as long as a command runs.
struct Busy<'a> {
    runtime: &'a DockerRuntime,
    container: &'a str,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.runtime.touch(self.container, -1);
    }
}

/// The argv that kills the process group recorded in `pidfile`, waiting briefly for the wrapper
/// to write it (a command dropped at once may not have yet).
fn kill_group(pidfile: &str) -> Vec<String> {
    let script = r#"for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$0" ] && break; sleep 0.2; done
[ -s "$0" ] && kill -9 -"$(cat "$0")" 2>/dev/null; rm -f "$0""#;
    vec!["/bin/sh".into(), "-c".into(), script.into(), pidfile.into()]
}

/// Kills a running command's process group when its exec future is dropped before the command
/// ended. The engine keeps an exec running after its client goes away, so without this a
/// cancelled command would run on.
struct KillOnDrop {
    runtime: Option<DockerRuntime>,
    id: ExternalId,
    pidfile: String,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else { return };
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let (id, pidfile) = (self.id.clone(), std::mem::take(&mut self.pidfile));
        handle.spawn(async move {
            if let Err(err) = runtime.run_internal("exec", &id, kill_group(&pidfile), None).await {
                tracing::warn!(container = %id, error = %err, "could not kill a dropped command");
            }
        });
    }
}

#[async_trait::async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            isolation: arbe_runtime::Isolation::Sandbox,
            persistent_fs: true,
            exec_streaming: true,
            file_transfer: true,
            oom_detection: true,
            ..Capabilities::default()
        }
    }

    async fn provision(&self, spec: &SandboxSpec) -> Result<SandboxInfo> {
        // What the caller asked for is checked before anything is created; the image is the
        // operator's (a caller choosing one could run anything with the sandbox's rights).
        spec.resources.validate().map_err(|e| err("provision", ErrorKind::InvalidInput, e.to_string()))?;
        if spec.image.as_ref().is_some_and(|image| *image != self.config.image) {
            return Err(err(
                "provision",
                ErrorKind::InvalidInput,
                "image: must be the runtime's configured image (ARBE_SANDBOX_IMAGE); per-sandbox images are not allowed",
            ));
        }
        let name = container_name(spec);
        let mut labels: HashMap<String, String> =
            spec.labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        labels.insert(HOUSE_LABEL.into(), spec.house_id.to_string());
        labels.insert(SANDBOX_LABEL.into(), spec.sandbox_id.to_string());
        labels.insert(MANAGED_LABEL.into(), "true".into());
        if let Some(cap) = spec.resources.workspace_bytes {
            labels.insert(WORKSPACE_LABEL.into(), cap.to_string());
        }
        let volume = volume_name(&name);
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(volume.clone()),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(|e| self.map("provision", &name, e))?;
        let image = self.config.image.clone();
        let memory_mb = spec.resources.memory_mb.unwrap_or(self.config.memory_mb);
        let cpus = spec.resources.cpus.unwrap_or(self.config.cpus);
        let memory = (memory_mb > 0).then(|| memory_mb.saturating_mul(1024 * 1024).min(i64::MAX as u64) as i64);
        // An image with the executor runs it as the main process and takes commands on its
        // attached stdin; any other image idles and takes commands through `docker exec`.
        let executor = match self.docker.inspect_image(&image).await {
            Ok(found) => found.config.and_then(|c| c.labels).and_then(|l| l.get(EXECUTOR_LABEL).cloned()),
            Err(e) if status(&e) == Some(404) => {
                let _ = self.docker.remove_volume(&volume, None::<RemoveVolumeOptions>).await;
                return Err(err(
                    "provision",
                    ErrorKind::Misconfigured,
                    format!("image `{image}` is missing; build it with `cargo xtask sandbox-image`"),
                ));
            }
            Err(e) => return Err(self.map("provision", &name, e)),
        };
        if let Some(path) = &executor {
            labels.insert(EXECUTOR_LABEL.into(), path.clone());
        }
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            // tini (Init) is PID 1: it reaps what timed-out commands leave and stops quickly.
            cmd: Some(match &executor {
                Some(path) => vec![path.clone()],
                None => vec!["sleep".into(), "2147483647".into()],
            }),
            open_stdin: Some(executor.is_some()),
            stdin_once: Some(false),
            attach_stdin: Some(executor.is_some()),
            working_dir: Some(WORKSPACE.into()),
            env: Some(vec![format!("HOME={WORKSPACE}"), format!("ARBE_SANDBOX_USER={SANDBOX_USER}")]),
            labels: Some(labels),
            host_config: Some(HostConfig {
                init: Some(true),
                memory,
                // Swap as large as memory: none, so the memory cap is real.
                memory_swap: memory,
                nano_cpus: (cpus > 0.0).then_some((cpus * 1e9) as i64),
                pids_limit: (self.config.pids_limit > 0).then_some(self.config.pids_limit),
                network_mode: Some(self.config.network.clone()),
                mounts: Some(vec![Mount {
                    typ: Some(MountType::VOLUME),
                    source: Some(volume.clone()),
                    target: Some(WORKSPACE.into()),
                    ..Default::default()
                }]),
                // Commands run as SANDBOX_USER; root in the container keeps only what it needs to
                // switch to that user, signal its processes and measure the workspace.
                cap_drop: Some(vec!["ALL".into()]),
                cap_add: Some(["SETUID", "SETGID", "KILL", "DAC_READ_SEARCH"].map(String::from).to_vec()),
                security_opt: Some(vec!["no-new-privileges".into()]),
                // Nothing outside the workspace and /tmp is writable: a command cannot replace
                // the tools the runtime itself runs (`sh`, `du`, `kill`).
                readonly_rootfs: Some(true),
                tmpfs: Some(HashMap::from([("/tmp".to_owned(), "rw,nosuid,nodev,mode=1777,size=1g".to_owned())])),
                // Command output travels over the attach stream; the engine keeps no copy.
                log_config: executor.is_some().then(|| HostConfigLogConfig { typ: Some("none".into()), config: None }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(CreateContainerOptions { name: Some(name.clone()), ..Default::default() }), body)
            .await;
        if let Err(e) = created {
            let _ = self.docker.remove_volume(&volume, None::<RemoveVolumeOptions>).await;
            return Err(match status(&e) {
                Some(404) => err(
                    "provision",
                    ErrorKind::Misconfigured,
                    format!("image `{image}` is missing; build it with `cargo xtask sandbox-image`"),
                ),
                Some(409) => {
                    err("provision", ErrorKind::Conflict, format!("a sandbox container named {name} already exists"))
                }
                _ => self.map("provision", &name, e),
            });
        }
        let id = ExternalId(name.clone());
        self.start(&id).await?;
        self.get(&id).await
    }

    async fn get(&self, id: &ExternalId) -> Result<SandboxInfo> {
        let inspect = self
            .docker
            .inspect_container(&id.0, None::<InspectContainerOptions>)
            .await
            .map_err(|e| self.map("get", &id.0, e))?;
        let config = inspect.config.unwrap_or_default();
        if config.labels.as_ref().and_then(|l| l.get(MANAGED_LABEL)).is_none() {
            return Err(RuntimeError::not_found(NAME, "get", &id.0));
        }
        let state = match inspect.state.and_then(|s| s.status) {
            Some(ContainerStateStatusEnum::RUNNING) => SandboxState::Started,
            Some(ContainerStateStatusEnum::RESTARTING) => SandboxState::Provisioning,
            Some(ContainerStateStatusEnum::REMOVING) => SandboxState::Destroyed,
            Some(ContainerStateStatusEnum::DEAD) => SandboxState::Error,
            _ => SandboxState::Stopped,
        };
        Ok(self.info(id.0.clone(), state, config.image, config.labels))
    }

    async fn list(&self, labels: &Labels) -> Result<Vec<SandboxInfo>> {
        let mut filter: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        filter.push(format!("{MANAGED_LABEL}=true"));
        let summaries = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(HashMap::from([("label".to_owned(), filter)])),
                ..Default::default()
            }))
            .await
            .map_err(|e| self.map("list", "(all)", e))?;
        let mut found: Vec<SandboxInfo> = summaries
            .into_iter()
            .filter_map(|s| {
                let name = s.names?.first()?.trim_start_matches('/').to_owned();
                let state = match s.state {
                    Some(ContainerSummaryStateEnum::RUNNING) => SandboxState::Started,
                    Some(ContainerSummaryStateEnum::DEAD) => SandboxState::Error,
                    _ => SandboxState::Stopped,
                };
                Some(self.info(name, state, s.image, s.labels))
            })
            .collect();
        found.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        Ok(found)
    }

    async fn start(&self, id: &ExternalId) -> Result<()> {
        self.get(id).await?;
        match self.docker.start_container(&id.0, None::<StartContainerOptions>).await {
            Err(e) if status(&e) != Some(304) => Err(self.map("start", &id.0, e)),
            _ => {
                self.touch(&id.0, 0);
                Ok(())
            }
        }
    }

    async fn stop(&self, id: &ExternalId) -> Result<()> {
        self.get(id).await?;
        self.executors.lock().expect("executors lock").remove(&id.0);
        let options = StopContainerOptions { t: Some(2), ..Default::default() };
        match self.docker.stop_container(&id.0, Some(options)).await {
            Err(e) if status(&e) != Some(304) => Err(self.map("stop", &id.0, e)),
            _ => Ok(()),
        }
    }

    async fn destroy(&self, id: &ExternalId) -> Result<()> {
        self.get(id).await?;
        self.executors.lock().expect("executors lock").remove(&id.0);
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        self.docker.remove_container(&id.0, Some(options)).await.map_err(|e| self.map("destroy", &id.0, e))?;
        match self.docker.remove_volume(&volume_name(&id.0), None::<RemoveVolumeOptions>).await {
            Err(e) if status(&e) != Some(404) => return Err(self.map("destroy", &id.0, e)),
            _ => {}
        }
        self.activity.lock().expect("activity lock").remove(&id.0);
        self.oom_kills.lock().expect("oom lock").remove(&id.0);
        Ok(())
    }

    async fn exec(&self, id: &ExternalId, req: ExecRequest, out: &mut (dyn OutputSink + '_)) -> Result<ExecOutcome> {
        req.validate().map_err(|e| err("exec", ErrorKind::InvalidInput, e.to_string()))?;
        let started = Instant::now();
        self.touch(&id.0, 1);
        let _busy = Busy { runtime: self, container: &id.0 };
        if let Some(executor) = self.executor(id).await? {
            return self.exec_framed(&executor, req, out).await;
        }
        // Know the OOM-kill count before the first command, to tell a memory kill from `kill -9`.
        let known = self.oom_kills.lock().expect("oom lock").get(&id.0).copied();
        if known.is_none() {
            let count = self.oom_kill_count(id).await?;
            self.oom_kills.lock().expect("oom lock").insert(id.0.clone(), count);
        }
        let pidfile = format!("/tmp/.arbe-exec-{}.pid", arbe_core::JobId::new());
        // Variables reach the command through its standard input, read by the wrapper before
        // the command starts: never in the exec's create body, which the engine client logs.
        let env_script = arbe_runtime::env_script(&req.env);
        let mut argv = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            WRAPPER.to_owned(),
            pidfile.clone(),
            env_script.len().to_string(),
        ];
        match &req.command {
            Command::Shell(text) => argv.extend(["/bin/sh".to_owned(), "-c".to_owned(), text.clone()]),
            Command::Argv(args) => argv.extend(args.iter().cloned()),
        }
        let cwd = match &req.cwd {
            Some(dir) if dir.starts_with('/') => dir.clone(),
            Some(dir) => format!("{WORKSPACE}/{dir}"),
            None => WORKSPACE.to_owned(),
        };
        let exec = self
            .docker
            .create_exec(
                &id.0,
                CreateExecOptions {
                    cmd: Some(argv),
                    user: Some(SANDBOX_USER.into()),
                    working_dir: Some(cwd),
                    attach_stdin: Some(req.stdin.is_some() || !env_script.is_empty()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.map("exec", &id.0, e))?;
        let StartExecResults::Attached { mut output, mut input } = self
            .docker
            .start_exec(&exec.id, Some(StartExecOptions::default()))
            .await
            .map_err(|e| self.map("exec", &id.0, e))?
        else {
            return Err(err("exec", ErrorKind::Internal, "the engine detached an attached exec"));
        };
        // From here the command runs: if this future is dropped before it ends (a cancelled
        // dispatch), the guard kills its process group, since the engine would not.
        let mut guard = KillOnDrop { runtime: Some(self.clone()), id: id.clone(), pidfile: pidfile.clone() };
        if req.stdin.is_some() || !env_script.is_empty() {
            let mut bytes = zeroize::Zeroizing::new(env_script.as_bytes().to_vec());
            bytes.extend_from_slice(req.stdin.as_deref().unwrap_or_default());
            tokio::spawn(async move {
                let _ = input.write_all(&bytes).await;
                let _ = input.shutdown().await;
            });
        } else {
            drop(input);
        }
        let mut capture = Capture::new(out, req.output_cap);
        let timeout = req.timeout.unwrap_or(self.config.exec_timeout);
        let deadline = tokio::time::sleep(if timeout.is_zero() { Duration::from_secs(u64::MAX / 4) } else { timeout });
        tokio::pin!(deadline);
        let mut timed_out = false;
        loop {
            tokio::select! {
                chunk = output.next() => match chunk {
                    Some(Ok(LogOutput::StdOut { message })) => capture.push(Stream::Stdout, &message),
                    Some(Ok(LogOutput::StdErr { message })) => capture.push(Stream::Stderr, &message),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(self.map("exec", &id.0, e)),
                    None => break,
                },
                () = &mut deadline => {
                    if timed_out {
                        // Killed and still not ended: stop waiting (the guard kills it again).
                        return Ok(capture.finish(ExecOutcome {
                            timed_out,
                            duration: started.elapsed(),
                            ..ExecOutcome::default()
                        }));
                    }
                    timed_out = true;
                    // Kill the command's whole process group, then keep reading to the end.
                    self.run_internal("exec", id, kill_group(&pidfile), None).await?;
                    deadline.as_mut().reset(tokio::time::Instant::now() + KILL_GRACE);
                }
            }
        }
        guard.runtime = None;
        let code = self.exit_code("exec", id, &exec.id).await?;
        let code = i32::try_from(code).unwrap_or(-1);
        let killed = (129..=192).contains(&code);
        let mut oom_killed = false;
        if killed && !timed_out {
            let count = self.oom_kill_count(id).await?;
            let before = self.oom_kills.lock().expect("oom lock").insert(id.0.clone(), count).unwrap_or(count);
            oom_killed = count > before;
        }
        Ok(capture.finish(ExecOutcome {
            exit_code: Some(code),
            signal: killed.then_some(code - 128),
            timed_out,
            oom_killed,
            duration: started.elapsed(),
            ..ExecOutcome::default()
        }))
    }

    async fn put_file(&self, id: &ExternalId, path: &str, contents: &[u8]) -> Result<()> {
        check_workspace_path(NAME, "put_file", path)?;
        let target = format!("{WORKSPACE}/{path}");
        let house_cap = self.get(id).await?.labels.get(WORKSPACE_LABEL).and_then(|v| v.parse::<u64>().ok());
        let max = match (self.config.workspace_max_bytes, house_cap) {
            (0, Some(house)) => house,
            (runtime, Some(house)) => runtime.min(house),
            (runtime, None) => runtime,
        };
        if max > 0 {
            let script = r#"du -sk /workspace | cut -f1; wc -c < "$0" 2>/dev/null || echo 0"#;
            let (_, out, _) = self
                .run_internal("put_file", id, vec!["/bin/sh".into(), "-c".into(), script.into(), target.clone()], None)
                .await?;
            let text = String::from_utf8_lossy(&out);
            let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().unwrap_or(0));
            let (used_kib, existing) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
            if (used_kib * 1024).saturating_sub(existing) + contents.len() as u64 > max {
                return Err(err(
                    "put_file",
                    ErrorKind::QuotaExceeded,
                    format!("the workspace_bytes quota of {max} bytes would be exceeded"),
                ));
            }
        }
        let script = r#"mkdir -p "$(dirname "$0")" && cat > "$0""#;
        let (code, _, errs) = self
            .run_helper(
                "put_file",
                id,
                vec!["/bin/sh".into(), "-c".into(), script.into(), target],
                Some(contents),
                true,
            )
            .await?;
        if code != 0 {
            return Err(err(
                "put_file",
                ErrorKind::Internal,
                format!("writing the file failed: {}", String::from_utf8_lossy(&errs).trim()),
            ));
        }
        Ok(())
    }

    async fn get_file(&self, id: &ExternalId, path: &str) -> Result<Vec<u8>> {
        check_workspace_path(NAME, "get_file", path)?;
        let target = format!("{WORKSPACE}/{path}");
        let (code, out, errs) = self.run_helper("get_file", id, vec!["cat".into(), target], None, true).await?;
        if code != 0 {
            let errs = String::from_utf8_lossy(&errs);
            let kind = if errs.contains("No such file") { ErrorKind::NotFound } else { ErrorKind::Internal };
            return Err(err("get_file", kind, format!("reading {path:?} failed: {}", errs.trim())));
        }
        Ok(out)
    }

    async fn ping(&self) -> Result<()> {
        self.docker.ping().await.map(|_| ()).map_err(|e| self.map("ping", "(engine)", e))
    }

    async fn diagnose(&self) -> Diagnosis {
        let mut d = Diagnosis::new(NAME);
        match self.docker.version().await {
            Ok(v) => d.check(
                "engine",
                CheckStatus::Ok,
                format!(
                    "docker {} (API {}) at {}",
                    v.version.unwrap_or_default(),
                    v.api_version.unwrap_or_default(),
                    self.config.endpoint
                ),
            ),
            Err(e) => {
                d.check(
                    "engine",
                    CheckStatus::Blocker,
                    format!("docker engine unreachable at {}: {e}", self.config.endpoint),
                );
                return d;
            }
        }
        match self.docker.inspect_image(&self.config.image).await {
            Ok(_) => d.check("image", CheckStatus::Ok, format!("{} is present", self.config.image)),
            Err(_) => d.check(
                "image",
                CheckStatus::Blocker,
                format!("image `{}` is missing; build it with `cargo xtask sandbox-image`", self.config.image),
            ),
        }
        d.check("limits", CheckStatus::Ok, format!(
            "network {}, memory {} MiB, {} CPUs, {} processes, workspace {} bytes, commands {} s, idle stop {} s (0 = no cap)",
            self.config.network,
            self.config.memory_mb,
            self.config.cpus,
            self.config.pids_limit,
            self.config.workspace_max_bytes,
            self.config.exec_timeout.as_secs(),
            self.config.idle.as_secs()
        ));
        d
    }
}
