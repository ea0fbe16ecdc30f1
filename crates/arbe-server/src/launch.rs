//! A whole server from typed settings: the runtimes it can reach (docker, then the local runtime
//! isolated or trusted), the services over the store, the workers and the idle reaper, the API
//! on a listener, and the drain when told to stop. The `arbe-server` binary fills a [`Launch`]
//! from its flags, `ARBE_*` variables and `~/.arbe/`; `arbe up` fills one from its own.

use std::{collections::HashMap, future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use arbe_core::SecretValue;
use arbe_dispatch::{DispatchConfig, HttpModels, ModelFactory, Services, ServicesConfig};
use arbe_env::{EnvConfig, GitHubAppConfig, OperatorKeys, WorkerKeys};
use arbe_llm::ProviderKind;
use arbe_runtime::{Runtime, RuntimeRegistry};
use arbe_runtime_docker::{DockerConfig, DockerRuntime};
use arbe_runtime_local::{Bubblewrap, CgroupsV1, LocalConfig, LocalRuntime, UidRange};
use arbe_store::{AdminToken, StoreConfig};
use arbe_vault::MasterKeys;

use crate::Options;

/// How the local runtime runs, if at all.
#[derive(Clone, Debug)]
pub enum LocalMode {
    /// Not offered.
    Off,
    /// In bubblewrap namespaces, where this machine can make them.
    Isolated {
        /// Run as root: the host uids houses run under.
        uids: Option<UidRange>,
        /// `arbe-sandboxd`, for namespaces that live as long as a sandbox is started.
        sandboxd: Option<PathBuf>,
        /// Run as root with cgroup v1: where sandboxes' cgroups go.
        cgroups: Option<CgroupsV1>,
    },
    /// Unisolated, as the server's user: one house, loopback only.
    Trusted,
}

/// How the start-up line names the trusted local runtime when it stands in for the isolated one.
pub const TRUSTED_FALLBACK: &str = "local (trusted, one house: neither docker nor bubblewrap is available)";

/// Everything a server needs, resolved.
#[derive(Debug)]
pub struct Launch {
    /// Where to listen (for the start-up line and the trusted mode's loopback rule).
    pub listen: SocketAddr,
    /// `postgres://…` or `sqlite://…`.
    pub database_url: String,
    /// The master key and the ones before it.
    pub master_keys: MasterKeys,
    /// The operator's token for `/api/admin/*`.
    pub admin_token: SecretValue,
    /// Where sandboxes of the local runtime live.
    pub sandboxes: PathBuf,
    /// The local runtime's mode.
    pub local: LocalMode,
    /// When the isolated local runtime cannot run here (no bubblewrap) and docker is not there
    /// either, serve the trusted one on loopback instead (one house), so that `arbe up` on a
    /// laptop with neither still works, saying so. Off for the server binary.
    pub trusted_fallback: bool,
    /// The docker runtime's settings.
    pub docker: DockerConfig,
    /// The runtime environments use when they name none (else docker, else local).
    pub default_runtime: Option<String>,
    /// The GitHub App, if configured.
    pub github: Option<GitHubAppConfig>,
    /// The workers' own model keys.
    pub worker_keys: WorkerKeys,
    /// Model providers' base URLs.
    pub base_urls: HashMap<ProviderKind, String>,
    /// Where agents' models come from instead of the providers over HTTP (a scripted demo
    /// model, a cassette); `None` is [`HttpModels`] with `base_urls`.
    pub models: Option<Arc<dyn ModelFactory>>,
    /// How long dispatches in flight get when the server stops.
    pub drain: Duration,
    /// The API's options (the workers' health is filled in here).
    pub options: Options,
}

/// What a launch found and built, before it serves.
pub struct Launched {
    /// The services.
    pub services: Arc<Services>,
    /// The runtimes reached, as the start-up line names them.
    pub runtimes: Vec<&'static str>,
    /// The default runtime.
    pub default_runtime: String,
    docker: Option<Arc<DockerRuntime>>,
    drain: Duration,
    options: Options,
}

impl std::fmt::Debug for Launched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launched").field("runtimes", &self.runtimes).finish_non_exhaustive()
    }
}

/// Reaches the runtimes and opens the store (running its migrations).
pub async fn build(launch: Launch) -> Result<Launched, String> {
    let mut runtimes = RuntimeRegistry::new();
    let mut names = Vec::new();
    let mut docker = None;
    match DockerRuntime::new(launch.docker) {
        Ok(rt) => {
            let diagnosis = rt.diagnose().await;
            if diagnosis.is_ok() {
                let rt = Arc::new(rt);
                runtimes.register(rt.clone());
                docker = Some(rt);
                names.push("docker");
            } else {
                tracing::warn!(?diagnosis, "the docker runtime is unavailable");
            }
        }
        Err(err) => tracing::warn!(error = %err, "the docker runtime is unavailable"),
    }
    let mut store_config = StoreConfig::new(launch.database_url.clone());
    match launch.local {
        LocalMode::Off => {}
        LocalMode::Trusted => {
            if !launch.listen.ip().is_loopback() {
                return Err(format!(
                    "ARBE_LOCAL_RUNTIME=trusted runs agents' commands on this host as this user: it needs a loopback \
                     address to listen on, not {}",
                    launch.listen.ip()
                ));
            }
            runtimes.register(Arc::new(LocalRuntime::new(LocalConfig::new(&launch.sandboxes))));
            // The host runtime serves one house: the store refuses a second.
            store_config.single_house = true;
            names.push("local (trusted, one house)");
        }
        LocalMode::Isolated { uids, sandboxd, cgroups } => {
            let bubblewrap = Bubblewrap { house_uids: uids, executor: sandboxd, cgroups, ..Bubblewrap::new() };
            let local = LocalRuntime::new(LocalConfig::isolated(&launch.sandboxes, bubblewrap));
            let diagnosis = local.diagnose().await;
            if diagnosis.is_ok() {
                runtimes.register(Arc::new(local));
                names.push(if uids.is_some() { "local (isolated, a host uid per house)" } else { "local (isolated)" });
            } else if launch.trusted_fallback && docker.is_none() && launch.listen.ip().is_loopback() {
                tracing::warn!(
                    ?diagnosis,
                    "the isolated local runtime is unavailable: falling back to the trusted one"
                );
                runtimes.register(Arc::new(LocalRuntime::new(LocalConfig::new(&launch.sandboxes))));
                store_config.single_house = true;
                names.push(TRUSTED_FALLBACK);
            } else {
                tracing::warn!(?diagnosis, "the isolated local runtime is unavailable");
            }
        }
    }
    let default_runtime = launch.default_runtime.unwrap_or_else(|| {
        if docker.is_some() || names.iter().all(|n| !n.starts_with("local")) { "docker" } else { "local" }.to_owned()
    });
    let github = match &launch.github {
        Some(config) => Some(Arc::new(arbe_env::GitHubApp::new(config).map_err(|e| format!("the GitHub App: {e}"))?)),
        None => None,
    };
    let config = ServicesConfig {
        master_keys: launch.master_keys,
        runtimes,
        env: EnvConfig {
            default_runtime: arbe_core::RuntimeName::parse(&default_runtime).map_err(|e| e.to_string())?,
            github,
            worker_keys: launch.worker_keys,
            operator_keys: OperatorKeys::Every,
        },
        dispatch: DispatchConfig::default(),
        models: launch
            .models
            .unwrap_or_else(|| Arc::new(HttpModels { base_urls: launch.base_urls, ..HttpModels::default() })),
        admin_token: Some(AdminToken::new(&launch.admin_token)),
    };
    let services = Arc::new(Services::build(&store_config, config).await.map_err(|e| format!("the store: {e}"))?);
    Ok(Launched { services, runtimes: names, default_runtime, docker, drain: launch.drain, options: launch.options })
}

impl Launched {
    /// Starts the workers and the idle reaper, serves the API on `listener` until `shutdown`
    /// resolves, then drains: dispatches in flight get the drain period, then go back to the
    /// queue (never cancelled).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let workers = self.services.start_workers();
        let reaper = self.docker.map(|rt| rt.spawn_reaper(Duration::from_secs(60)));
        let options = Options { workers: Some(workers.health()), ..self.options };
        let app = crate::router(self.services, options);
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(drain = ?self.drain, "shutting down: no new dispatches; giving the ones in flight time to finish");
        if let Some(reaper) = reaper {
            reaper.abort();
        }
        workers.drain(self.drain).await;
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM: what a server run from a terminal or a service manager stops on.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
