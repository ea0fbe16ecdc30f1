#![doc = include_str!("../README.md")]

mod config;
mod executor;
mod runtime;

pub use config::DockerConfig;
pub use runtime::DockerRuntime;

/// The runtime's name.
pub const NAME: &str = "docker";
