//! The one place a server reads its environment and files, for the programs that run one: the
//! `arbe-server` binary and `arbe up`. Precedence, first hit wins (seed 003): a flag, an `ARBE_*`
//! variable, a convention variable (`OPENROUTER_API_KEY`, …), a file under `~/.arbe/`, the
//! default. `~/.arbe/` comes from `$HOME`. Embedders that configure a server themselves fill a
//! [`crate::launch::Launch`] instead and never come here.

use std::{
    collections::HashMap,
    io::Write,
    net::{IpAddr, SocketAddr},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use arbe_core::SecretValue;
use arbe_llm::ProviderKind;
use arbe_runtime_docker::DockerConfig;
use arbe_vault::{MasterKey, MasterKeys};

use crate::launch::{Launch, LocalMode};

/// What the command line said (flags win over everything else).
#[derive(Clone, Debug, Default)]
pub struct Flags {
    /// `--port` (else `ARBE_PORT`, else 8080).
    pub port: Option<u16>,
    /// `--bind` (else `ARBE_BIND`, else 127.0.0.1).
    pub bind: Option<IpAddr>,
    /// `--verbose` (else `ARBE_API_VERBOSE`): every request logged, entry streams mirrored.
    pub verbose: bool,
}

/// How log lines look (`ARBE_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event (the default).
    Human,
    /// One JSON object per line, with the request's id and span fields on every line.
    Json,
}

/// Everything the server needs, resolved.
#[derive(Debug)]
pub struct Settings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Requests logged and entry streams mirrored.
    pub verbose: bool,
    /// How log lines look.
    pub log_format: LogFormat,
    /// `ARBE_AUTH_FAILURES_PER_MINUTE` (default 20).
    pub auth_failures_per_minute: u32,
    /// `~/.arbe/`.
    pub home: PathBuf,
    /// `ARBE_DATABASE_URL`, else SQLite at `~/.arbe/arbe.db`.
    pub database_url: String,
    /// `ARBE_MASTER_KEY`, else `~/.arbe/master.key`.
    pub master_key: MasterKeySource,
    /// `ARBE_PREVIOUS_MASTER_KEYS`: earlier master keys (base64, comma-separated), still
    /// accepted for data keys a rotation has not rewrapped yet.
    pub previous_master_keys: Vec<SecretValue>,
    /// `ARBE_DRAIN_SECONDS` (30).
    pub drain: Duration,
    /// `ARBE_LOCAL_RUNTIME=trusted`: the unisolated local runtime, for a single loopback house.
    pub local_runtime_trusted: bool,
    /// The local runtime in bubblewrap namespaces (`ARBE_LOCAL_RUNTIME` unset or `isolated`;
    /// `off` turns it off).
    pub local_runtime_isolated: bool,
    /// Whether `ARBE_LOCAL_RUNTIME` was set: the operator chose, so nothing falls back.
    pub local_runtime_chosen: bool,
    /// Run as root: the host uids houses' sandboxes run under (`ARBE_LOCAL_UIDS=first:count`,
    /// default 200000:10000). `None` when not root.
    pub local_uids: Option<arbe_runtime_local::UidRange>,
    /// `arbe-sandboxd` for the isolated local runtime (`ARBE_SANDBOXD`, else next to this
    /// program): with it, a sandbox's namespaces host it and commands are frames.
    pub sandboxd: Option<PathBuf>,
    /// Run as root with cgroup v1: where sandboxes' cgroups go (`/sys/fs/cgroup/*/arbe`).
    pub cgroups: Option<arbe_runtime_local::CgroupsV1>,
    /// `ARBE_SANDBOX_*` and `DOCKER_HOST`, for the docker runtime.
    pub docker_pairs: Vec<(String, String)>,
    /// `ARBE_DEFAULT_RUNTIME` (default: docker when reachable, else local).
    pub default_runtime: Option<String>,
    /// The GitHub App, when `GITHUB_APP_ID` and `GITHUB_APP_PRIVATE_KEY` are set.
    pub github: Option<arbe_env::GitHubAppConfig>,
}

/// Where the master key comes from.
#[derive(Debug)]
pub enum MasterKeySource {
    /// `ARBE_MASTER_KEY` (base64), held as a secret.
    Env(SecretValue),
    /// A file, created 0600 on first start.
    File(PathBuf),
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Settings {
    /// Resolves the settings: `args` first, then the environment, then `~/.arbe/`, then defaults.
    pub fn resolve(args: Flags) -> Result<Self, String> {
        let home =
            PathBuf::from(var("HOME").ok_or("HOME is not set: arbe keeps its files under ~/.arbe/")?).join(".arbe");
        let port = match (args.port, var("ARBE_PORT")) {
            (Some(port), _) => port,
            (None, Some(text)) => text.parse().map_err(|_| "ARBE_PORT must be a port number (1-65535)")?,
            (None, None) => 8080,
        };
        let bind = match (args.bind, var("ARBE_BIND")) {
            (Some(bind), _) => bind,
            (None, Some(text)) => text.parse().map_err(|_| "ARBE_BIND must be an IP address, e.g. 127.0.0.1")?,
            (None, None) => IpAddr::from([127, 0, 0, 1]),
        };
        let verbose = args.verbose || var("ARBE_API_VERBOSE").is_some_and(|v| v != "0" && v != "false");
        let database_url =
            var("ARBE_DATABASE_URL").unwrap_or_else(|| format!("sqlite://{}", home.join("arbe.db").display()));
        let master_key = match var("ARBE_MASTER_KEY") {
            Some(key) => MasterKeySource::Env(SecretValue::new(key).map_err(|e| format!("ARBE_MASTER_KEY: {e}"))?),
            None => MasterKeySource::File(home.join("master.key")),
        };
        let log_format = match var("ARBE_LOG_FORMAT").as_deref() {
            None | Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(_) => return Err("ARBE_LOG_FORMAT must be `human` or `json`".into()),
        };
        let auth_failures_per_minute = match var("ARBE_AUTH_FAILURES_PER_MINUTE") {
            None => crate::FailedAuth::MAX,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or("ARBE_AUTH_FAILURES_PER_MINUTE must be a whole number of 1 or more")?,
        };
        let previous_master_keys = match var("ARBE_PREVIOUS_MASTER_KEYS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| SecretValue::new(k.to_owned()).map_err(|e| format!("ARBE_PREVIOUS_MASTER_KEYS: {e}")))
                .collect::<Result<_, _>>()?,
        };
        let drain = match var("ARBE_DRAIN_SECONDS") {
            Some(text) => Duration::from_secs(text.parse().map_err(|_| "ARBE_DRAIN_SECONDS must be a whole number")?),
            None => Duration::from_secs(30),
        };
        let (local_runtime_trusted, local_runtime_isolated) = match var("ARBE_LOCAL_RUNTIME").as_deref() {
            None | Some("isolated") => (false, true),
            Some("trusted") => (true, false),
            Some("off") => (false, false),
            Some(_) => return Err("ARBE_LOCAL_RUNTIME must be `isolated` (the default), `trusted` or `off`".into()),
        };
        let local_uids = if rustix::process::geteuid().is_root() {
            let text = var("ARBE_LOCAL_UIDS").unwrap_or_else(|| "200000:10000".into());
            let parsed = text.split_once(':').and_then(|(first, count)| {
                Some(arbe_runtime_local::UidRange { first: first.parse().ok()?, count: count.parse().ok()? })
            });
            match parsed {
                Some(range) if range.first >= 1000 && range.count > 0 => Some(range),
                _ => return Err("ARBE_LOCAL_UIDS must be first:count, with first 1000 or more".into()),
            }
        } else {
            None
        };
        let docker_pairs =
            std::env::vars().filter(|(k, _)| k.starts_with("ARBE_SANDBOX_") || k == "DOCKER_HOST").collect();
        let default_runtime = var("ARBE_DEFAULT_RUNTIME");
        let cgroups = local_uids.and_then(|_| {
            let cgroups = arbe_runtime_local::CgroupsV1::under("/sys/fs/cgroup", "arbe");
            let made =
                [&cgroups.memory, &cgroups.pids, &cgroups.cpu].iter().all(|dir| match std::fs::create_dir(dir) {
                    Ok(()) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::AlreadyExists,
                });
            made.then_some(cgroups)
        });
        let sandboxd = match var("ARBE_SANDBOXD") {
            Some(path) => Some(PathBuf::from(path)),
            None => std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(|dir| dir.join("arbe-sandboxd")))
                .filter(|path| path.exists()),
        };
        let github = match (var("GITHUB_APP_ID"), var("GITHUB_APP_PRIVATE_KEY")) {
            (None, None) => None,
            (Some(id), Some(pem)) => {
                let pem = SecretValue::new(pem).map_err(|e| format!("GITHUB_APP_PRIVATE_KEY: {e}"))?;
                let mut config = arbe_env::GitHubAppConfig::new(id, pem);
                if let Some(url) = var("ARBE_GITHUB_API_URL") {
                    config.api_url = url;
                }
                if let Some(url) = var("ARBE_GITHUB_WEB_URL") {
                    config.web_url = url;
                }
                config.slug = var("GITHUB_APP_SLUG");
                config.oauth = match (var("GITHUB_APP_CLIENT_ID"), var("GITHUB_APP_CLIENT_SECRET")) {
                    (Some(client_id), Some(secret)) => Some(arbe_env::GitHubOAuthClient {
                        client_id,
                        client_secret: SecretValue::new(secret)
                            .map_err(|e| format!("GITHUB_APP_CLIENT_SECRET: {e}"))?,
                    }),
                    (None, None) => None,
                    _ => return Err("GITHUB_APP_CLIENT_ID and GITHUB_APP_CLIENT_SECRET go together".into()),
                };
                Some(config)
            }
            _ => return Err("GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY go together".into()),
        };
        Ok(Self {
            listen: SocketAddr::new(bind, port),
            verbose,
            log_format,
            auth_failures_per_minute,
            home,
            database_url,
            master_key,
            previous_master_keys,
            drain,
            local_runtime_trusted,
            local_runtime_isolated,
            local_runtime_chosen: var("ARBE_LOCAL_RUNTIME").is_some(),
            local_uids,
            sandboxd,
            cgroups,
            docker_pairs,
            default_runtime,
            github,
        })
    }

    /// The typed launch these settings describe: loads (or creates, 0600) the master key and the
    /// admin token, and picks the local runtime's mode.
    pub fn launch(&self) -> Result<Launch, String> {
        let master = match &self.master_key {
            MasterKeySource::Env(text) => {
                MasterKey::from_base64(text.expose()).map_err(|_| "ARBE_MASTER_KEY must hold 32 bytes in base64")?
            }
            MasterKeySource::File(path) => {
                let (key, created) = MasterKey::load_or_create(path).map_err(|e| e.to_string())?;
                if created {
                    tracing::info!(path = %path.display(), "created the master key; back it up: without it no secret opens");
                }
                key
            }
        };
        let mut master_keys = MasterKeys::new(master);
        for key in &self.previous_master_keys {
            let key = MasterKey::from_base64(key.expose())
                .map_err(|_| "ARBE_PREVIOUS_MASTER_KEYS must hold 32-byte keys in base64, comma-separated")?;
            master_keys.previous.push(key);
        }
        let admin_token = load_or_create_admin_token(&self.admin_token_path())?;
        let docker = DockerConfig::from_pairs(self.docker_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| e.to_string())?;
        let local = if self.local_runtime_trusted {
            LocalMode::Trusted
        } else if self.local_runtime_isolated {
            if self.local_uids.is_some() {
                // Houses' uids must pass ~/.arbe to reach their workspaces under it (bubblewrap
                // binds them as that uid); they list nothing there, and every file of the server's
                // in it is 0600.
                make_passable(&self.home)?;
            }
            LocalMode::Isolated {
                uids: self.local_uids,
                sandboxd: self.sandboxd.clone(),
                cgroups: self.cgroups.clone(),
            }
        } else {
            LocalMode::Off
        };
        let base_urls: HashMap<ProviderKind, String> =
            ProviderKind::ALL.into_iter().filter_map(|kind| var(kind.base_url_var()).map(|url| (kind, url))).collect();
        Ok(Launch {
            listen: self.listen,
            database_url: self.database_url.clone(),
            master_keys,
            admin_token,
            sandboxes: self.home.join("sandboxes"),
            local,
            trusted_fallback: false,
            docker,
            default_runtime: self.default_runtime.clone(),
            github: self.github.clone(),
            worker_keys: self.worker_keys(),
            base_urls,
            models: None,
            drain: self.drain,
            options: crate::Options {
                verbose: self.verbose,
                auth_failures_per_minute: self.auth_failures_per_minute,
                workers: None,
            },
        })
    }

    /// Where the admin token lives: `~/.arbe/admin_token`.
    pub fn admin_token_path(&self) -> PathBuf {
        self.home.join("admin_token")
    }

    /// After the store opened: a SQLite database holds every house's sealed secrets, so it
    /// becomes its owner's alone.
    pub fn protect_database(&self) -> Result<(), String> {
        match self.database_url.strip_prefix("sqlite://") {
            Some(path) => make_private(Path::new(path)),
            None => Ok(()),
        }
    }

    /// `sqlite` or `postgresql`, for the start-up line.
    pub fn store_kind(&self) -> &'static str {
        if self.database_url.starts_with("postgres") { "postgresql" } else { "sqlite" }
    }

    /// The worker's model keys: convention variables, then `~/.arbe/keys/<VAR>`.
    pub fn worker_keys(&self) -> arbe_env::WorkerKeys {
        arbe_env::WorkerKeys::new(var, Some(self.home.join("keys")))
    }
}

/// The admin token in `path`, created (0600, a new random token) on first start. Refuses a file
/// that its group or others can read or write.
pub fn load_or_create_admin_token(path: &Path) -> Result<SecretValue, String> {
    let error = |reason: String| format!("admin token file {}: {reason}", path.display());
    match std::fs::metadata(path) {
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(error(format!(
                    "is accessible to group or others (mode {mode:04o}); run `chmod 600` on it"
                )));
            }
            let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
            SecretValue::new(text.trim().to_owned()).map_err(|_| error("is empty".into()))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|e| error(format!("cannot create its folder: {e}")))?;
            }
            let token = arbe_store::AdminToken::generate();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| error(e.to_string()))?;
            file.write_all(token.expose().as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .map_err(|e| error(e.to_string()))?;
            Ok(token)
        }
        Err(err) => Err(error(err.to_string())),
    }
}

/// Lets other uids pass `dir` (0711: enter, not list), creating it if needed.
pub fn make_passable(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Makes a SQLite database and its journal files readable by their owner only.
pub fn make_private(db: &Path) -> Result<(), String> {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("{}: {e}", path.display())),
            _ => {}
        }
    }
    Ok(())
}
