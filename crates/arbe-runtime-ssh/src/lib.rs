#![doc = include_str!("../README.md")]

mod config;
mod runtime;

pub use config::{HostKeyPolicy, SshConfig};
pub use runtime::SshRuntime;

/// The runtime's name.
pub const NAME: &str = "ssh";
