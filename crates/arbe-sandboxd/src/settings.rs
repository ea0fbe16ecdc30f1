//! The one place the executor reads its environment.

/// The user commands run as (`ARBE_SANDBOX_USER=uid:gid`, which the docker runtime sets), so
/// that no command can open this process's standard streams (`/proc/<pid>/fd/1`) and write
/// frames of its own. Unset, commands run as this process's user.
#[derive(Clone, Copy)]
pub(crate) struct RunAs {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl RunAs {
    pub(crate) fn from_env() -> Result<Option<Self>, String> {
        let Some(spec) = std::env::var_os("ARBE_SANDBOX_USER") else { return Ok(None) };
        let spec = spec.to_string_lossy();
        let parsed = spec.split_once(':').and_then(|(u, g)| Some(Self { uid: u.parse().ok()?, gid: g.parse().ok()? }));
        match parsed {
            Some(run_as) if run_as.uid != 0 => Ok(Some(run_as)),
            _ => Err(format!("ARBE_SANDBOX_USER must be uid:gid with a uid other than 0, not {spec:?}")),
        }
    }
}
