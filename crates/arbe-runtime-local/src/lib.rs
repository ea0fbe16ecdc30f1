#![doc = include_str!("../README.md")]

mod config;
mod runtime;

pub use config::{Bubblewrap, CgroupsV1, Isolation, LocalConfig, UidRange};
pub use runtime::LocalRuntime;

/// The runtime's name.
pub const NAME: &str = "local";
