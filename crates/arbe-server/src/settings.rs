//! The one place the server reads its environment and files. Precedence, first hit wins (seed
//! 003): a flag, an `ARBE_*` variable, a convention variable (`OPENROUTER_API_KEY`, …), a file
//! under `~/.arbe/`, the default. `~/.arbe/` comes from `$HOME`.

use std::{
    io::Write,
    net::{IpAddr, SocketAddr},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use arbe_core::SecretValue;
use clap::Parser;

/// arbe's HTTP API.
#[derive(Debug, Parser)]
#[command(name = "arbe-server", version, about)]
pub(crate) struct Args {
    /// Port to listen on (ARBE_PORT; default 8080).
    #[arg(long)]
    port: Option<u16>,
    /// Address to listen on (ARBE_BIND; default 127.0.0.1).
    #[arg(long)]
    bind: Option<IpAddr>,
    /// Log every request and mirror entry streams to stderr (ARBE_API_VERBOSE).
    #[arg(long)]
    verbose: bool,
    /// Print the API's OpenAPI document and exit.
    #[arg(long)]
    pub(crate) openapi: bool,
}

/// How log lines look (`ARBE_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// One readable line per event (the default).
    Human,
    /// One JSON object per line, with the request's id and span fields on every line.
    Json,
}

/// Everything the server needs, resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    pub(crate) verbose: bool,
    pub(crate) log_format: LogFormat,
    /// `ARBE_AUTH_FAILURES_PER_MINUTE` (default 20).
    pub(crate) auth_failures_per_minute: u32,
    pub(crate) home: PathBuf,
    pub(crate) database_url: String,
    pub(crate) master_key: MasterKeySource,
    /// `ARBE_PREVIOUS_MASTER_KEYS`: earlier master keys (base64, comma-separated), still
    /// accepted for data keys a rotation has not rewrapped yet.
    pub(crate) previous_master_keys: Vec<SecretValue>,
    pub(crate) drain: Duration,
    /// `ARBE_LOCAL_RUNTIME=trusted`: the unisolated local runtime, for a single loopback house.
    pub(crate) local_runtime_trusted: bool,
    /// The local runtime in bubblewrap namespaces (`ARBE_LOCAL_RUNTIME` unset or `isolated`;
    /// `off` turns it off).
    pub(crate) local_runtime_isolated: bool,
    /// Run as root: the host uids houses' sandboxes run under (`ARBE_LOCAL_UIDS=first:count`,
    /// default 200000:10000). `None` when not root.
    pub(crate) local_uids: Option<arbe_runtime_local::UidRange>,
    /// `arbe-sandboxd` for the isolated local runtime (`ARBE_SANDBOXD`, else next to this
    /// program): with it, a sandbox's namespaces host it and commands are frames.
    pub(crate) sandboxd: Option<PathBuf>,
    /// Run as root with cgroup v1: where sandboxes' cgroups go (`/sys/fs/cgroup/*/arbe`).
    pub(crate) cgroups: Option<arbe_runtime_local::CgroupsV1>,
    /// `ARBE_SANDBOX_*` and `DOCKER_HOST`, for the docker runtime.
    pub(crate) docker_pairs: Vec<(String, String)>,
    /// `ARBE_DEFAULT_RUNTIME` (default: docker when reachable, else local).
    pub(crate) default_runtime: Option<String>,
    /// The GitHub App, when `GITHUB_APP_ID` and `GITHUB_APP_PRIVATE_KEY` are set.
    pub(crate) github: Option<arbe_env::GitHubAppConfig>,
}

/// Where the master key comes from.
#[derive(Debug)]
pub(crate) enum MasterKeySource {
    /// `ARBE_MASTER_KEY` (base64), held as a secret.
    Env(SecretValue),
    /// A file, created 0600 on first start.
    File(PathBuf),
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Settings {
    pub(crate) fn resolve(args: Args) -> Result<Self, String> {
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
            None => arbe_server::FailedAuth::MAX,
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
            local_uids,
            sandboxd,
            cgroups,
            docker_pairs,
            default_runtime,
            github,
        })
    }

    /// The worker's model keys: convention variables, then `~/.arbe/keys/<VAR>`.
    pub(crate) fn worker_keys(&self) -> arbe_env::WorkerKeys {
        arbe_env::WorkerKeys::new(var, Some(self.home.join("keys")))
    }

    /// Provider base URLs from `OPENROUTER_BASE_URL` and friends.
    pub(crate) fn base_url(&self, name: &str) -> Option<String> {
        var(name)
    }
}

/// The admin token in `path`, created (0600, a new random token) on first start. Refuses a file
/// that its group or others can read or write.
pub(crate) fn load_or_create_admin_token(path: &Path) -> Result<SecretValue, String> {
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
pub(crate) fn make_passable(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Makes a SQLite database and its journal files readable by their owner only.
pub(crate) fn make_private(db: &Path) -> Result<(), String> {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("{}: {e}", path.display())),
            _ => {}
        }
    }
    Ok(())
}
