//! Sandboxes: a machine and working tree where an agent's hands run, on some runtime.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    error::InvalidInput,
    ids::{HouseId, SandboxId},
    names::{Labels, Name, RuntimeName},
};

/// Where a sandbox is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SandboxState {
    /// Being created on the runtime.
    Provisioning,
    /// Running and able to execute commands.
    Started,
    /// Stopped; start it to use it again.
    Stopped,
    /// Gone for good.
    Destroyed,
    /// The runtime reported a failure.
    Error,
}

impl SandboxState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Started => "started",
            Self::Stopped => "stopped",
            Self::Destroyed => "destroyed",
            Self::Error => "error",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        Ok(match s {
            "provisioning" => Self::Provisioning,
            "started" => Self::Started,
            "stopped" => Self::Stopped,
            "destroyed" => Self::Destroyed,
            "error" => Self::Error,
            _ => {
                return Err(InvalidInput::new(
                    "sandbox state",
                    "must be provisioning, started, stopped, destroyed or error",
                ));
            }
        })
    }
}

impl fmt::Display for SandboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a sandbox may use. `None` means the runtime's default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resources {
    /// CPUs (fractions allowed).
    pub cpus: Option<f64>,
    /// Memory cap in MiB.
    pub memory_mb: Option<u64>,
    /// Bytes the workspace may hold (the house's `workspace_bytes` quota, where it has one).
    pub workspace_bytes: Option<u64>,
    /// GPU type, for runtimes that have them.
    pub gpu: Option<String>,
}

impl Resources {
    /// The most CPUs a sandbox may ask for.
    pub const MAX_CPUS: f64 = 1024.0;
    /// The most memory a sandbox may ask for, in MiB (1 TiB).
    pub const MAX_MEMORY_MB: u64 = 1024 * 1024;

    /// Checks what a caller asked for: a limit is a positive, finite number within bounds
    /// (`0` never means "unlimited" from a caller; `None` is the runtime's default).
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if let Some(cpus) = self.cpus
            && !(cpus.is_finite() && cpus > 0.0 && cpus <= Self::MAX_CPUS)
        {
            return Err(InvalidInput::new("resources.cpus", "must be a number above 0 and at most 1024"));
        }
        if let Some(mb) = self.memory_mb
            && !(1..=Self::MAX_MEMORY_MB).contains(&mb)
        {
            return Err(InvalidInput::new("resources.memory_mb", "must be 1 to 1048576 (MiB)"));
        }
        if self.workspace_bytes == Some(0) {
            return Err(InvalidInput::new("resources.workspace_bytes", "must be above 0"));
        }
        if let Some(gpu) = &self.gpu
            && (gpu.is_empty() || gpu.len() > 64 || !gpu.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(InvalidInput::new("resources.gpu", "must be 1 to 64 printable ASCII characters"));
        }
        Ok(())
    }
}

/// A sandbox row. Created once and reused across dispatches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sandbox {
    /// Its id.
    pub id: SandboxId,
    /// The house it belongs to.
    pub house_id: HouseId,
    /// The runtime it lives on.
    pub runtime: RuntimeName,
    /// The runtime's own id for it, once provisioned.
    pub external_id: Option<String>,
    /// Its name, unique in the house.
    pub name: Name,
    /// Where it is in its life.
    pub state: SandboxState,
    /// The image it runs, where the runtime has images.
    pub image: Option<String>,
    /// What it may use.
    pub resources: Resources,
    /// Free-form labels.
    pub labels: Labels,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When an agent or user last used it; the idle reaper reads this.
    pub last_active_at: DateTime<Utc>,
}
