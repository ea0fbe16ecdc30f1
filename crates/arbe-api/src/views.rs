//! Response bodies that are not a core type as it is: a core object with what a call found out
//! about it, or a report. The server serializes them, clients read them back.

use arbe_core::{ApiKeyMeta, DispatchJob, Entry, Environment, House, Member, Sandbox};
use serde::{Deserialize, Serialize};

/// A house and the caller's membership in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HouseView {
    /// The house.
    #[serde(flatten)]
    pub house: House,
    /// The caller's membership in it.
    pub membership: Member,
}

/// A posted message and the dispatch it queued.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Posted {
    /// The `user.message` entry.
    pub entry: Entry,
    /// The dispatch it queued.
    pub job: DispatchJob,
}

/// What binding a secret to an environment changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BindOutcome {
    /// The binding is new.
    Added,
    /// The `required` flag flipped.
    Changed,
    /// It was there with the same flag.
    Unchanged,
}

/// An environment after a binding changed, and what changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bound {
    /// The environment now.
    pub environment: Environment,
    /// What changed.
    pub outcome: BindOutcome,
}

/// An environment after an unbind, and whether the binding was there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unbound {
    /// The environment now.
    pub environment: Environment,
    /// Whether the binding was there.
    pub removed: bool,
}

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Passed.
    Ok,
    /// Worth knowing; does not stop a dispatch.
    Warning,
    /// Stops a dispatch until fixed.
    Blocker,
}

/// One check of a diagnosis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = CheckView))]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// How it came out.
    pub status: CheckStatus,
    /// What was found, and what to do about it.
    pub detail: String,
}

/// What a preflight found: would a dispatch in this environment, with this model, start?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvironmentDiagnosis {
    /// The environment's name.
    pub environment: String,
    /// The model checked for.
    pub model: String,
    /// No check is a blocker.
    pub ok: bool,
    /// Every check.
    pub checks: Vec<Check>,
}

/// What a ping found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ping {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// How long a `true` took, in milliseconds, when the sandbox is started.
    pub round_trip_ms: Option<f64>,
}

/// What a sandbox's diagnosis found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SandboxDiagnosis {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// Its runtime.
    pub runtime: String,
    /// What the runtime found.
    pub checks: Vec<Check>,
}

/// A variable commands in a sandbox get (its name, never its value).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnvVar {
    /// The variable's (and the secret's) name.
    pub name: String,
    /// Whether a dispatch fails without it.
    pub required: bool,
    /// The environment that binds it.
    pub environment: String,
}

/// A new API key, shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Created))]
pub struct NewKey {
    /// The key's metadata.
    #[serde(flatten)]
    pub meta: ApiKeyMeta,
    /// The key itself.
    pub api_key: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey").field("meta", &self.meta).field("api_key", &"[redacted]").finish()
    }
}

/// What a cancel did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cancelled {
    /// Dispatches ended or told to stop.
    pub cancelled: u64,
}
