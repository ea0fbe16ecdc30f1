//! `arbe-server`: reads its settings (flags, `ARBE_*`, `~/.arbe/`), opens the store, builds the
//! runtimes it can reach, starts the dispatch workers and serves the API until SIGTERM or
//! Ctrl-C, then drains.

use std::{net::IpAddr, process::ExitCode};

use arbe_server::settings::{Flags, LogFormat, Settings};
use clap::Parser;

/// arbe's HTTP API.
#[derive(Debug, Parser)]
#[command(name = "arbe-server", version, about)]
struct Args {
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
    openapi: bool,
}

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
    let settings = match Settings::resolve(Flags { port: args.port, bind: args.bind, verbose: args.verbose }) {
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
    let launched = arbe_server::launch::build(settings.launch()?).await?;
    settings.protect_database()?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let runtimes = if launched.runtimes.is_empty() { "none".to_owned() } else { launched.runtimes.join(", ") };
    tracing::info!(
        url = %format!("http://{}", settings.listen),
        store = settings.store_kind(),
        runtimes = %runtimes,
        default_runtime = %launched.default_runtime,
        github = settings.github.is_some(),
        admin_token = %settings.admin_token_path().display(),
        "arbe-server is listening"
    );
    launched.serve(listener, arbe_server::launch::shutdown_signal()).await
}
