#![doc = include_str!("../README.md")]

mod config;
mod runtime;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::{HostKeyPolicy, SshConfig};
pub use runtime::SshRuntime;

/// The runtime's name.
pub const NAME: &str = "ssh";
