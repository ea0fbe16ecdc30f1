//! `arbe-server`: reads its settings (flags, `ARBE_*`, `~/.arbe/`), opens the store, builds the
//! runtimes it can reach, starts the dispatch workers and serves the API until SIGTERM or
//! Ctrl-C, then drains.

mod settings;

use std::{collections::HashMap, process::ExitCode, sync::Arc};

use arbe_dispatch::{DispatchConfig, HttpModels, Services, ServicesConfig};
use arbe_env::{EnvConfig, OperatorKeys};
use arbe_llm::ProviderKind;
use arbe_runtime::{Runtime, RuntimeRegistry};
use arbe_runtime_docker::{DockerConfig, DockerRuntime};
use arbe_runtime_local::{Bubblewrap, LocalConfig, LocalRuntime};
use arbe_store::{AdminToken, StoreConfig};
use arbe_vault::{MasterKey, MasterKeys};
use clap::Parser;
use settings::{Args, LogFormat, MasterKeySource, Settings};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.openapi {
        let doc = serde_json::to_string_pretty(&arbe_server::openapi()).expect("the document serializes");
        #[allow(clippy::print_stdout)]
        {
            println!("{doc}");
        }
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::resolve(args) {
        Ok(settings) => settings,
        Err(reason) => return fail(&reason),
    };
    let level = if settings.verbose { tracing::Level::DEBUG } else { tracing::Level::INFO };
    let logs = tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => fail(&reason),
    }
}

#[allow(clippy::print_stderr)]
fn fail(reason: &str) -> ExitCode {
    eprintln!("arbe-server: {reason}");
    ExitCode::FAILURE
}

async fn run(settings: Settings) -> Result<(), String> {
    let master = match &settings.master_key {
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
    for key in &settings.previous_master_keys {
        let key = MasterKey::from_base64(key.expose())
            .map_err(|_| "ARBE_PREVIOUS_MASTER_KEYS must hold 32-byte keys in base64, comma-separated")?;
        master_keys.previous.push(key);
    }
    let admin_path = settings.home.join("admin_token");
    let admin = settings::load_or_create_admin_token(&admin_path)?;

    // The runtimes this server can reach; one that cannot be reached is logged with why.
    let mut runtimes = RuntimeRegistry::new();
    let mut names = Vec::new();
    let docker_config = DockerConfig::from_pairs(settings.docker_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| e.to_string())?;
    let mut docker = None;
    match DockerRuntime::new(docker_config) {
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
    let mut store_config = StoreConfig::new(settings.database_url.clone());
    if settings.local_runtime_trusted {
        if !settings.listen.ip().is_loopback() {
            return Err(format!(
                "ARBE_LOCAL_RUNTIME=trusted runs agents' commands on this host as this user: it needs a loopback \
                 address to listen on, not {}",
                settings.listen.ip()
            ));
        }
        runtimes.register(Arc::new(LocalRuntime::new(LocalConfig::new(settings.home.join("sandboxes")))));
        // The host runtime serves one house: the store refuses a second.
        store_config.single_house = true;
        names.push("local (trusted, one house)");
    } else if settings.local_runtime_isolated {
        if settings.local_uids.is_some() {
            // Houses' uids must pass ~/.arbe to reach their workspaces under it (bubblewrap
            // binds them as that uid); they list nothing there, and every file of the server's
            // in it is 0600.
            settings::make_passable(&settings.home)?;
        }
        // The local runtime in bubblewrap namespaces, where this machine can make them.
        let bubblewrap = Bubblewrap {
            house_uids: settings.local_uids,
            executor: settings.sandboxd.clone(),
            cgroups: settings.cgroups.clone(),
            ..Bubblewrap::new()
        };
        let local = LocalRuntime::new(LocalConfig::isolated(settings.home.join("sandboxes"), bubblewrap));
        let diagnosis = local.diagnose().await;
        if diagnosis.is_ok() {
            runtimes.register(Arc::new(local));
            names.push(if settings.local_uids.is_some() {
                "local (isolated, a host uid per house)"
            } else {
                "local (isolated)"
            });
        } else {
            tracing::warn!(?diagnosis, "the isolated local runtime is unavailable");
        }
    }
    // The default runtime: the operator's choice, else docker, else the local runtime.
    let default_runtime = settings.default_runtime.clone().unwrap_or_else(|| {
        if docker.is_some() || names.iter().all(|n| !n.starts_with("local")) { "docker" } else { "local" }.to_owned()
    });
    let base_urls: HashMap<ProviderKind, String> = ProviderKind::ALL
        .into_iter()
        .filter_map(|kind| settings.base_url(kind.base_url_var()).map(|url| (kind, url)))
        .collect();
    let config = ServicesConfig {
        master_keys,
        runtimes,
        env: EnvConfig {
            default_runtime: arbe_core::RuntimeName::parse(&default_runtime).map_err(|e| e.to_string())?,
            github: match &settings.github {
                Some(config) => {
                    Some(Arc::new(arbe_env::GitHubApp::new(config).map_err(|e| format!("the GitHub App: {e}"))?))
                }
                None => None,
            },
            worker_keys: settings.worker_keys(),
            operator_keys: OperatorKeys::Every,
        },
        dispatch: DispatchConfig::default(),
        models: Arc::new(HttpModels { base_urls, ..HttpModels::default() }),
        admin_token: Some(AdminToken::new(&admin)),
    };
    let services = Arc::new(Services::build(&store_config, config).await.map_err(|e| format!("the store: {e}"))?);
    if let Some(path) = settings.database_url.strip_prefix("sqlite://") {
        // The database holds every house's sealed secrets: its owner's alone.
        settings::make_private(std::path::Path::new(path))?;
    }
    let workers = services.start_workers();
    let reaper = docker.map(|rt| rt.spawn_reaper(std::time::Duration::from_secs(60)));
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let store_kind = if settings.database_url.starts_with("postgres") { "postgresql" } else { "sqlite" };
    tracing::info!(
        url = %format!("http://{}", settings.listen),
        store = store_kind,
        runtimes = %if names.is_empty() { "none".to_owned() } else { names.join(", ") },
        default_runtime = %default_runtime,
        github = settings.github.is_some(),
        admin_token = %admin_path.display(),
        "arbe-server is listening"
    );
    let app = arbe_server::router(
        services,
        arbe_server::Options {
            verbose: settings.verbose,
            auth_failures_per_minute: settings.auth_failures_per_minute,
            workers: Some(workers.health()),
        },
    );
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(drain = ?settings.drain, "shutting down: no new dispatches; giving the ones in flight time to finish");
    if let Some(reaper) = reaper {
        reaper.abort();
    }
    workers.drain(settings.drain).await;
    Ok(())
}

async fn shutdown_signal() {
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
