#![doc = include_str!("../README.md")]

mod error;
mod exec;
pub mod framed;
mod registry;
mod runtime;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{Result, RuntimeError};
pub use exec::{
    Capture, Command, DEFAULT_OUTPUT_CAP, ExecOutcome, ExecRequest, OutputSink, Stream, check_workspace_path,
    env_script, shell_quote,
};
pub use registry::RuntimeRegistry;
pub use runtime::{
    Capabilities, Check, CheckStatus, Diagnosis, ExternalId, HOUSE_LABEL, Isolation, Runtime, SANDBOX_LABEL,
    SandboxInfo, SandboxSpec,
};
