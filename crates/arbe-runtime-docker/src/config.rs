//! The docker runtime's settings: SPEC §3's `ARBE_SANDBOX_*` as a typed config. The binaries
//! read the variables and call [`DockerConfig::from_pairs`]; the library reads no environment.

use std::time::Duration;

use arbe_core::InvalidInput;

/// Settings of the docker runtime. Zero means "no cap" for every limit.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerConfig {
    /// `unix:///var/run/docker.sock` (the default), or `tcp://host:port` / `http://host:port`
    /// (what `DOCKER_HOST` holds).
    pub endpoint: String,
    /// The image sandboxes run (`ARBE_SANDBOX_IMAGE`); build the default with
    /// `cargo xtask sandbox-image`.
    pub image: String,
    /// Docker network mode (`ARBE_SANDBOX_NETWORK`): `none` keeps commands offline.
    pub network: String,
    /// Memory cap in MiB (`ARBE_SANDBOX_MEMORY_MB`).
    pub memory_mb: u64,
    /// CPUs (`ARBE_SANDBOX_CPUS`).
    pub cpus: f64,
    /// Process cap (`ARBE_SANDBOX_PIDS_LIMIT`).
    pub pids_limit: i64,
    /// Default per-command timeout (`ARBE_SANDBOX_EXEC_TIMEOUT`, seconds).
    pub exec_timeout: Duration,
    /// Workspace quota enforced on `put_file` (`ARBE_SANDBOX_WORKSPACE_MAX_BYTES`).
    pub workspace_max_bytes: u64,
    /// Sandboxes idle longer than this are stopped by the reaper (`ARBE_SANDBOX_IDLE_SECONDS`).
    pub idle: Duration,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            endpoint: "unix:///var/run/docker.sock".into(),
            image: "arbe-sandbox:latest".into(),
            network: "none".into(),
            memory_mb: 512,
            cpus: 1.0,
            pids_limit: 256,
            exec_timeout: Duration::from_secs(30),
            workspace_max_bytes: 1024 * 1024 * 1024,
            idle: Duration::from_secs(1800),
        }
    }
}

impl DockerConfig {
    /// Applies `ARBE_SANDBOX_*` (and `DOCKER_HOST`) pairs over the defaults; other names are
    /// ignored. Errors name the variable and the rule.
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, InvalidInput> {
        let mut config = Self::default();
        for (key, value) in pairs {
            let (key, value) = (key.as_ref(), value.as_ref().trim());
            let number = |rule: &'static str| move || InvalidInput::new(key.to_owned(), rule);
            match key {
                "DOCKER_HOST" if !value.is_empty() => config.endpoint = value.to_owned(),
                "ARBE_SANDBOX_IMAGE" => {
                    if value.is_empty() {
                        return Err(InvalidInput::new(key.to_owned(), "must name an image"));
                    }
                    config.image = value.to_owned();
                }
                "ARBE_SANDBOX_NETWORK" => config.network = value.to_owned(),
                "ARBE_SANDBOX_MEMORY_MB" => {
                    config.memory_mb = value.parse().map_err(|_| number("must be a whole number of MiB")())?
                }
                "ARBE_SANDBOX_CPUS" => {
                    config.cpus = value
                        .parse()
                        .ok()
                        .filter(|c: &f64| c.is_finite() && *c >= 0.0)
                        .ok_or_else(number("must be a number of CPUs, 0 or more"))?;
                }
                "ARBE_SANDBOX_PIDS_LIMIT" => {
                    config.pids_limit = value
                        .parse()
                        .ok()
                        .filter(|p| *p >= 0)
                        .ok_or_else(number("must be a whole number, 0 or more"))?
                }
                "ARBE_SANDBOX_EXEC_TIMEOUT" => {
                    config.exec_timeout =
                        Duration::from_secs(value.parse().map_err(|_| number("must be whole seconds")())?);
                }
                "ARBE_SANDBOX_WORKSPACE_MAX_BYTES" => {
                    config.workspace_max_bytes =
                        value.parse().map_err(|_| number("must be a whole number of bytes")())?;
                }
                "ARBE_SANDBOX_IDLE_SECONDS" => {
                    config.idle = Duration::from_secs(value.parse().map_err(|_| number("must be whole seconds")())?)
                }
                _ => {}
            }
        }
        if config.network.is_empty() {
            return Err(InvalidInput::new(
                "ARBE_SANDBOX_NETWORK",
                "must name a docker network mode, e.g. none or bridge",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_override_defaults_and_errors_name_the_variable() {
        let config = DockerConfig::from_pairs([
            ("ARBE_SANDBOX_MEMORY_MB", "1024"),
            ("ARBE_SANDBOX_CPUS", "2.5"),
            ("ARBE_SANDBOX_IDLE_SECONDS", "0"),
            ("DOCKER_HOST", "tcp://10.0.0.1:2375"),
            ("UNRELATED", "x"),
        ])
        .unwrap();
        assert_eq!((config.memory_mb, config.cpus, config.idle), (1024, 2.5, Duration::ZERO));
        assert_eq!(config.endpoint, "tcp://10.0.0.1:2375");
        assert_eq!(config.network, "none");
        let err = DockerConfig::from_pairs([("ARBE_SANDBOX_CPUS", "lots")]).unwrap_err();
        assert_eq!(err.to_string(), "invalid ARBE_SANDBOX_CPUS: must be a number of CPUs, 0 or more");
        assert!(DockerConfig::from_pairs([("ARBE_SANDBOX_IMAGE", " ")]).is_err());
    }
}
