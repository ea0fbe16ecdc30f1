//! Maps runtime names to adapters, and remembers why the unconfigured ones are not there.

use std::{collections::BTreeMap, sync::Arc};

use arbe_core::ErrorKind;

use crate::{Result, Runtime, RuntimeError};

/// The runtimes a process has, by name.
#[derive(Debug, Default, Clone)]
pub struct RuntimeRegistry {
    available: BTreeMap<&'static str, Arc<dyn Runtime>>,
    unavailable: BTreeMap<String, String>,
}

impl RuntimeRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a configured adapter under its name.
    pub fn register(&mut self, runtime: Arc<dyn Runtime>) {
        self.unavailable.remove(runtime.name());
        self.available.insert(runtime.name(), runtime);
    }

    /// Records that `name` is not configured, and why (for start-up logs and diagnose).
    pub fn unavailable(&mut self, name: impl Into<String>, reason: impl Into<String>) {
        self.unavailable.insert(name.into(), reason.into());
    }

    /// The adapter called `name`, or an error saying why there is none.
    pub fn get(&self, name: &str) -> Result<Arc<dyn Runtime>> {
        if let Some(runtime) = self.available.get(name) {
            return Ok(runtime.clone());
        }
        Err(match self.unavailable.get(name) {
            Some(reason) => RuntimeError::new(
                "registry",
                "get",
                ErrorKind::Misconfigured,
                format!("runtime {name} is not configured: {reason}"),
            ),
            None => RuntimeError::new("registry", "get", ErrorKind::NotFound, format!("no runtime called {name}")),
        })
    }

    /// Every known runtime: `Ok` for configured ones, `Err(reason)` for the others.
    pub fn report(&self) -> Vec<(String, std::result::Result<(), String>)> {
        let mut report: Vec<_> = self.available.keys().map(|name| ((*name).to_owned(), Ok(()))).collect();
        report.extend(self.unavailable.iter().map(|(name, reason)| (name.clone(), Err(reason.clone()))));
        report.sort_by(|a, b| a.0.cmp(&b.0));
        report
    }
}
