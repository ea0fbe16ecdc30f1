//! `arbe-server`: reads its settings (flags, `ARBE_*`, `~/.arbe/`), opens the store, builds the
//! runtimes it can reach, starts the dispatch workers and serves the API until SIGTERM or
//! Ctrl-C, then drains.

mod settings;

use std::{collections::HashMap, process::ExitCode};

use arbe_llm::ProviderKind;
use arbe_runtime_docker::DockerConfig;
use arbe_server::launch::{Launch, LocalMode};
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
    let admin_token = settings::load_or_create_admin_token(&admin_path)?;
    let docker = DockerConfig::from_pairs(settings.docker_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| e.to_string())?;
    let local = if settings.local_runtime_trusted {
        LocalMode::Trusted
    } else if settings.local_runtime_isolated {
        if settings.local_uids.is_some() {
            // Houses' uids must pass ~/.arbe to reach their workspaces under it (bubblewrap
            // binds them as that uid); they list nothing there, and every file of the server's
            // in it is 0600.
            settings::make_passable(&settings.home)?;
        }
        LocalMode::Isolated {
            uids: settings.local_uids,
            sandboxd: settings.sandboxd.clone(),
            cgroups: settings.cgroups.clone(),
        }
    } else {
        LocalMode::Off
    };
    let base_urls: HashMap<ProviderKind, String> = ProviderKind::ALL
        .into_iter()
        .filter_map(|kind| settings.base_url(kind.base_url_var()).map(|url| (kind, url)))
        .collect();
    let launch = Launch {
        listen: settings.listen,
        database_url: settings.database_url.clone(),
        master_keys,
        admin_token,
        sandboxes: settings.home.join("sandboxes"),
        local,
        docker,
        default_runtime: settings.default_runtime.clone(),
        github: settings.github.clone(),
        worker_keys: settings.worker_keys(),
        base_urls,
        drain: settings.drain,
        options: arbe_server::Options {
            verbose: settings.verbose,
            auth_failures_per_minute: settings.auth_failures_per_minute,
            workers: None,
        },
    };
    let launched = arbe_server::launch::build(launch).await?;
    if let Some(path) = settings.database_url.strip_prefix("sqlite://") {
        // The database holds every house's sealed secrets: its owner's alone.
        settings::make_private(std::path::Path::new(path))?;
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let store_kind = if settings.database_url.starts_with("postgres") { "postgresql" } else { "sqlite" };
    let runtimes = if launched.runtimes.is_empty() { "none".to_owned() } else { launched.runtimes.join(", ") };
    tracing::info!(
        url = %format!("http://{}", settings.listen),
        store = store_kind,
        runtimes = %runtimes,
        default_runtime = %launched.default_runtime,
        github = settings.github.is_some(),
        admin_token = %admin_path.display(),
        "arbe-server is listening"
    );
    launched.serve(listener, shutdown_signal()).await
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
