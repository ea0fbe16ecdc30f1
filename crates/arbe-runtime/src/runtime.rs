//! The `Runtime` trait: what every sandbox adapter can do.

use std::fmt;

use arbe_core::{HouseId, Labels, Name, Resources, SandboxId, SandboxState};

use crate::{ExecOutcome, ExecRequest, OutputSink, Result, RuntimeError};

/// The label every adapter puts on a sandbox naming its house.
pub const HOUSE_LABEL: &str = "arbe.house";
/// The label every adapter puts on a sandbox naming its arbe sandbox id.
pub const SANDBOX_LABEL: &str = "arbe.sandbox";

/// The runtime's own id for a sandbox (a container id, a folder, a host and folder, …).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(pub String);

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ExternalId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// What to provision.
#[derive(Clone, Debug)]
pub struct SandboxSpec {
    /// The house it belongs to (becomes the `arbe.house` label).
    pub house_id: HouseId,
    /// The arbe sandbox row it backs (becomes the `arbe.sandbox` label).
    pub sandbox_id: SandboxId,
    /// Its name.
    pub name: Name,
    /// The image, where the runtime has images; `None` is the adapter's default.
    pub image: Option<String>,
    /// Limits; `None` fields use the adapter's defaults.
    pub resources: Resources,
    /// Extra labels.
    pub labels: Labels,
}

/// A sandbox as the runtime sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxInfo {
    /// The runtime's id.
    pub external_id: ExternalId,
    /// Started, stopped, …
    pub state: SandboxState,
    /// Its image, if it has one.
    pub image: Option<String>,
    /// Its labels, `arbe.house` and `arbe.sandbox` included.
    pub labels: Labels,
}

/// How far a runtime keeps its sandboxes apart from each other and from the control plane.
/// arbe-env enforces what it implies before provisioning or starting a sandbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// Commands run on the control plane's host as its user: they can read its configuration,
    /// its database and every house's secrets. Only a deployment serving one house may use it.
    #[default]
    Host,
    /// Sandboxes share one account on another machine: one house's commands can read another's
    /// workspaces and processes. Only one house may have sandboxes on it.
    SharedAccount,
    /// Each sandbox is its own container or machine, apart from the control plane.
    Sandbox,
}

/// What an adapter can do beyond the basics. Callers check before calling an optional method,
/// and the conformance suite picks its tests from the same flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// How far sandboxes are kept apart (the default is the least: `Host`).
    pub isolation: Isolation,
    /// GPUs can be attached.
    pub gpu: bool,
    /// The sandbox can be snapshotted.
    pub snapshots: bool,
    /// `preview_url` works.
    pub preview_url: bool,
    /// The workspace survives stop and start.
    pub persistent_fs: bool,
    /// Output streams while the command runs (not only at its end).
    pub exec_streaming: bool,
    /// `put_file` and `get_file` work.
    pub file_transfer: bool,
    /// Memory kills are detected and reported as `oom_killed`.
    pub oom_detection: bool,
}

/// How one line of a checklist came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckStatus {
    /// Fine.
    Ok,
    /// Works, but the user should know.
    Warning,
    /// Stops dispatch.
    Blocker,
}

/// One line of a checklist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// How it came out.
    pub status: CheckStatus,
    /// Why, and what to do.
    pub detail: String,
}

/// A structured checklist from `diagnose`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    /// The adapter.
    pub runtime: &'static str,
    /// The lines.
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// An empty checklist for `runtime`.
    pub fn new(runtime: &'static str) -> Self {
        Self { runtime, checks: Vec::new() }
    }

    /// Adds a line.
    pub fn check(&mut self, name: impl Into<String>, status: CheckStatus, detail: impl Into<String>) {
        self.checks.push(Check { name: name.into(), status, detail: detail.into() });
    }

    /// No line is a blocker.
    pub fn is_ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Blocker)
    }
}

/// A sandbox runtime. Object-safe: callers hold `Arc<dyn Runtime>` from a [`crate::RuntimeRegistry`].
///
/// Every operation on a sandbox that does not exist (or was destroyed) fails with
/// `ErrorKind::NotFound`.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// The adapter's name (`docker`).
    fn name(&self) -> &'static str;

    /// What it can do; cheap, no I/O.
    fn capabilities(&self) -> Capabilities;

    /// Creates and starts a sandbox.
    async fn provision(&self, spec: &SandboxSpec) -> Result<SandboxInfo>;

    /// A sandbox's current state.
    async fn get(&self, id: &ExternalId) -> Result<SandboxInfo>;

    /// The sandboxes carrying every one of `labels` (e.g. a house's).
    async fn list(&self, labels: &Labels) -> Result<Vec<SandboxInfo>>;

    /// Starts a stopped sandbox (a started one is left alone).
    async fn start(&self, id: &ExternalId) -> Result<()>;

    /// Stops a sandbox, keeping its workspace where the adapter persists it.
    async fn stop(&self, id: &ExternalId) -> Result<()>;

    /// Removes a sandbox and everything it had.
    async fn destroy(&self, id: &ExternalId) -> Result<()>;

    /// Runs a command, streaming output to `out` as it comes.
    ///
    /// Dropping the returned future before it completes (a cancelled dispatch does) must kill
    /// the command's whole process group, as a timeout does: nothing may keep running.
    async fn exec(&self, id: &ExternalId, req: ExecRequest, out: &mut (dyn OutputSink + '_)) -> Result<ExecOutcome>;

    /// Writes a file (path relative to the workspace; parents are created).
    async fn put_file(&self, id: &ExternalId, path: &str, contents: &[u8]) -> Result<()>;

    /// Reads a file (path relative to the workspace).
    async fn get_file(&self, id: &ExternalId, path: &str) -> Result<Vec<u8>>;

    /// Whether the runtime answers at all.
    async fn ping(&self) -> Result<()>;

    /// A checklist of what works and what does not, and why.
    async fn diagnose(&self) -> Diagnosis;

    /// A URL reaching `port` inside the sandbox, where the runtime has them.
    async fn preview_url(&self, _id: &ExternalId, _port: u16) -> Result<String> {
        Err(RuntimeError::unsupported(self.name(), "preview_url"))
    }
}
