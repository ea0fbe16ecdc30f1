//! `arbe up` (the embedded server), `arbe login`, and `arbe quickstart` (seed 000's workflow on a
//! temporary server, with a scripted demo model when there is no OpenRouter key).

use std::{
    io::{IsTerminal, Read},
    os::unix::fs::PermissionsExt,
    path::Path,
    sync::Arc,
    time::Duration,
};

use arbe_client::Client;
use arbe_core::{ErrorKind, Name};
use arbe_llm::{ChatRequest, ChatResponse, FnProvider, Message, StopReason, ToolCall, Usage};
use arbe_server::{
    launch::{Launch, Launched},
    settings::{Flags, MasterKeySource, Settings as ServerSettings},
};
use tokio::sync::oneshot;

use crate::{
    args::{LoginArgs, UpArgs},
    commands::thread,
    error::CliError,
    output::{Printer, Style},
    settings::{self, Settings},
};

/// The house `arbe up` creates on its first start.
const FIRST_HOUSE: &str = "default";

fn init_logs(verbose: bool) {
    let level = if verbose { tracing::Level::DEBUG } else { tracing::Level::ERROR };
    let ansi = std::io::stderr().is_terminal() && !settings::no_color();
    let _ = tracing_subscriber::fmt().with_max_level(level).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// Builds the server `launch` describes and binds its listener.
async fn start(launch: Launch) -> Result<(Launched, tokio::net::TcpListener), CliError> {
    let listen = launch.listen;
    let launched = arbe_server::launch::build(launch).await.map_err(|e| CliError::new(ErrorKind::Misconfigured, e))?;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        CliError::new(ErrorKind::Unavailable, format!("cannot listen on {listen}: {e}"))
            .hint("another server may hold the port: pick another with `arbe up --port N`")
    })?;
    Ok((launched, listener))
}

/// On a store with no house yet, creates house `default`, its owner and an owner key, and
/// returns the key.
async fn first_start(launched: &Launched, admin_token: &str) -> Result<Option<String>, CliError> {
    let services = &launched.services;
    let admin = services.admin(admin_token).map_err(|e| CliError::local(e.to_string()))?;
    if !services.access.admin_houses(&admin).await.map_err(|e| CliError::local(e.to_string()))?.is_empty() {
        return Ok(None);
    }
    let user = settings::user_name()
        .and_then(|u| Name::parse(&u).ok())
        .unwrap_or_else(|| Name::parse("owner").expect("a valid name"));
    let house = Name::parse(FIRST_HOUSE).expect("a valid name");
    let made = services
        .access
        .admin_bootstrap(&admin, &house, &user, "arbe up")
        .await
        .map_err(|e| CliError::local(format!("cannot create the first house: {e}")))?;
    Ok(Some(made.key.key.expose().to_owned()))
}

/// Runs `arbe up`: the server in the foreground until Ctrl-C or SIGTERM.
pub(crate) async fn up(out: &Printer, args: UpArgs) -> Result<(), CliError> {
    init_logs(args.verbose);
    let server = ServerSettings::resolve(Flags { port: args.port, bind: args.bind, verbose: args.verbose })
        .map_err(CliError::usage)?;
    let mut launch = server.launch().map_err(|e| CliError::new(ErrorKind::Misconfigured, e))?;
    launch.trusted_fallback = !server.local_runtime_chosen;
    let admin_token = launch.admin_token.clone();
    let (launched, listener) = start(launch).await?;
    server.protect_database().map_err(CliError::local)?;
    let addr = listener.local_addr().map_err(|e| CliError::local(e.to_string()))?;
    let url = format!("http://{addr}");
    let cli = Settings::resolve()?;
    match first_start(&launched, admin_token.expose()).await? {
        Some(key) => {
            settings::save_credentials(&server.home, &url, &key)?;
            out.note(&format!(
                "First start: created house `{FIRST_HOUSE}`, its owner, and an owner key in {}",
                server.home.join("credentials").display()
            ));
        }
        None => match &cli.api_key {
            // The same key at this run's address, if it is a key of this store (a login to
            // another server stays as it is).
            Some(key) if cli.url != url => {
                if launched.services.access.authenticate(key).await.is_ok() {
                    settings::save_credentials(&server.home, &url, key)?;
                }
            }
            Some(_) => {}
            None => out.warn("this store already has houses but ~/.arbe/credentials holds no key: use `arbe login`"),
        },
    }
    let runtimes = if launched.runtimes.is_empty() { "none".to_owned() } else { launched.runtimes.join(", ") };
    out.note(&format!(
        "arbe is up: store {} in {}, runtimes: {runtimes} (default {})",
        server.store_kind(),
        server.home.display(),
        launched.default_runtime
    ));
    if launched.runtimes.is_empty() {
        out.warn("no runtime is available: start Docker, or install bubblewrap for the isolated local runtime");
    } else if launched.runtimes.contains(&arbe_server::launch::TRUSTED_FALLBACK) {
        out.warn("agents' commands run as you on this machine, unisolated: install bubblewrap (or Docker with `cargo xtask sandbox-image`) to isolate them");
    } else if !launched.runtimes.contains(&"docker") {
        out.note(
            "docker: not used (no engine answers, or its image is missing: `cargo xtask sandbox-image` builds it)",
        );
    }
    out.line(&url);
    out.hint("in another shell: `arbe env create work --secret OPENROUTER_API_KEY`, then `arbe thread create general`; Ctrl-C stops");
    launched.serve(listener, arbe_server::launch::shutdown_signal()).await.map_err(CliError::local)
}

/// Runs `arbe login`: checks a key (from stdin) against the server and saves both.
pub(crate) async fn login(out: &Printer, args: LoginArgs) -> Result<(), CliError> {
    let cli = Settings::resolve()?;
    let url = args.url.unwrap_or_else(|| cli.url.clone()).trim_end_matches('/').to_owned();
    let stdin = std::io::stdin();
    let mut key = String::new();
    if stdin.is_terminal() {
        key = super::secret::prompt_hidden("API key (arbe_…, hidden): ").await?;
    } else {
        stdin.lock().read_to_string(&mut key).map_err(|e| CliError::usage(format!("cannot read the key: {e}")))?;
    }
    let key = key.trim();
    if key.is_empty() {
        return Err(CliError::usage("api key: nothing on stdin; the key is read from stdin")
            .hint("printf '%s' \"$ARBE_API_KEY\" | arbe login --url URL"));
    }
    let client = Client::new(&url, key)?;
    let houses = client.houses().await?;
    settings::save_credentials(&cli.home, &url, key)?;
    if out.json {
        out.json(&houses);
    } else {
        out.note(&format!("Logged in to {url}: a member of {} house(s)", houses.len()));
    }
    Ok(())
}

/// Runs `arbe quickstart`: a temporary server, seed 000's workflow, and the live tail.
pub(crate) async fn quickstart(out: &Printer) -> Result<u8, CliError> {
    init_logs(false);
    let temp = tempfile::Builder::new()
        .prefix("arbe-quickstart-")
        .tempdir()
        .map_err(|e| CliError::local(format!("cannot make a temporary folder: {e}")))?;
    // Run as root, houses' own uids must pass through to their sandboxes' folders.
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o711))
        .map_err(|e| CliError::local(e.to_string()))?;
    let mut server =
        ServerSettings::resolve(Flags { port: Some(0), bind: None, verbose: false }).map_err(CliError::usage)?;
    point_at(&mut server, temp.path());
    let real_key = settings::openrouter_key();
    let mut launch = server.launch().map_err(|e| CliError::new(ErrorKind::Misconfigured, e))?;
    launch.drain = Duration::ZERO;
    launch.trusted_fallback = !server.local_runtime_chosen;
    if real_key.is_none() {
        launch.models = Some(Arc::new(arbe_dispatch::OneProvider(Arc::new(FnProvider::new("demo", demo_model)))));
    }
    let admin_token = launch.admin_token.clone();
    let spinner = out.spinner("starting a temporary arbe server…");
    let started = start(launch).await;
    drop(spinner);
    let (launched, listener) = started?;
    let key = first_start(&launched, admin_token.expose())
        .await?
        .ok_or_else(|| CliError::local("a new store already had a house"))?;
    let addr = listener.local_addr().map_err(|e| CliError::local(e.to_string()))?;
    let url = format!("http://{addr}");
    let runtimes = launched.runtimes.join(", ");
    let default_runtime = launched.default_runtime.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(launched.serve(listener, async move {
        let _ = stopped.await;
    }));
    out.note(&format!(
        "A temporary arbe server is up at {url} (runtimes: {runtimes}; environments use {default_runtime})."
    ));
    let client = Client::new(&url, &key)?;
    let result = tokio::select! {
        result = workflow(out, &client, real_key) => result,
        _ = tokio::signal::ctrl_c() => {
            out.note("\ninterrupted: cleaning up");
            Ok(130)
        }
    };
    // The run's sandboxes go with it (a docker container would outlive the server).
    let house = client.houses().await.ok().and_then(|houses| houses.first().map(|h| h.house.id));
    if let Some(house) = house {
        for sandbox in client.sandboxes(house, None).await.unwrap_or_default() {
            let _ = client.destroy_sandbox(house, &sandbox.id.to_string()).await;
        }
    }
    let _ = stop.send(());
    let _ = serving.await;
    drop(temp);
    let code = result?;
    if code == 130 {
        return Ok(code);
    }
    out.note("");
    out.note("That was a temporary server: its house, secrets and sandbox are gone.");
    out.hint(
        "`arbe up` runs a lasting one on ~/.arbe/; then the same commands work in any shell (README: \"Use it\").",
    );
    Ok(code)
}

/// Makes the server's settings use `dir` instead of `~/.arbe/`.
fn point_at(server: &mut ServerSettings, dir: &Path) {
    let home = dir.join(".arbe");
    server.database_url = format!("sqlite://{}", home.join("arbe.db").display());
    server.master_key = MasterKeySource::File(home.join("master.key"));
    server.home = home;
}

/// Seed 000's "Typical setup workflow", each step printed as the command it stands for.
async fn workflow(out: &Printer, client: &Client, real_key: Option<String>) -> Result<u8, CliError> {
    let house = client.houses().await?[0].house.id;
    let step = |command: &str| out.note(&out.paint_err(Style::Cyan, &format!("$ {command}")));
    let demo = real_key.is_none();
    if demo {
        out.warn("OPENROUTER_API_KEY is not set: this run stores clearly fake demo secrets and a scripted demo model answers in place of an LLM");
    }
    let openrouter = real_key.unwrap_or_else(|| "demo-openrouter-key-not-real".to_owned());
    let github = "demo-github-token-not-real".to_owned();
    step("printf '%s' \"$OPENROUTER_API_KEY\" | arbe secret set OPENROUTER_API_KEY --shared");
    let secret = |value: String| arbe_api::SetSecret { value, audience: None, shared: Some(true) };
    client.set_secret(house, "OPENROUTER_API_KEY", &secret(openrouter)).await?;
    step("printf '%s' \"$GITHUB_TOKEN\" | arbe secret set GITHUB_TOKEN --shared");
    client.set_secret(house, "GITHUB_TOKEN", &secret(github)).await?;
    step("arbe env create prod --repo https://github.com/org/repo --secret OPENROUTER_API_KEY --secret GITHUB_TOKEN");
    let body = arbe_api::CreateEnvironment {
        name: "prod".into(),
        runtime: None,
        sandbox_id: None,
        repo: Some("https://github.com/org/repo".into()),
        allowed_repos: vec![],
        github_installation_id: None,
        secret_bindings: ["OPENROUTER_API_KEY", "GITHUB_TOKEN"]
            .into_iter()
            .map(|name| arbe_api::Binding { name: name.into(), required: true })
            .collect(),
    };
    let spinner = out.spinner("provisioning the sandbox…");
    let env = client.create_environment(house, &body).await;
    drop(spinner);
    let env = env?;
    out.note(&format!("  environment {} on {}, sandbox {}", env.name, env.runtime, env.sandbox_id));
    step("arbe env use prod");
    step("THREAD_ID=$(arbe thread create general)");
    let create = arbe_api::CreateThread {
        parent: "general".into(),
        environment: Some("prod".into()),
        model: None,
        agents: vec![],
    };
    let thread = client.create_thread(house, &create).await?;
    step("arbe thread entries create \"$THREAD_ID\" \"implement the login page\"");
    client.post_entry(house, thread.id, "implement the login page").await?;
    step("arbe thread entries read \"$THREAD_ID\"");
    let code = thread::tail(out, client, house, thread.id, 0, true).await?;
    if demo {
        out.note(&out.paint_err(
            Style::Dim,
            "(the agent above was arbe's scripted demo model; set OPENROUTER_API_KEY for a real one)",
        ));
    }
    Ok(code)
}

/// The scripted demo model: three commands in the sandbox, then a closing message that says
/// plainly what it was.
fn demo_model(request: &ChatRequest) -> ChatResponse {
    const STEPS: [(&str, &str); 3] = [
        (
            "[demo model] I am arbe's scripted demo model, not an LLM. First, a look around the sandbox.",
            "uname -sm; id -u; pwd; ls -A",
        ),
        (
            "[demo model] Now the login page.",
            "mkdir -p app && printf '<form action=\"/login\" method=\"post\">\\n  <input name=\"user\">\\n  <input name=\"password\" type=\"password\">\\n  <button>Sign in</button>\\n</form>\\n' > app/login.html && cat app/login.html",
        ),
        (
            "[demo model] The environment's secrets reach commands as variables (shown here only by name):",
            "ls -l app; [ -n \"$OPENROUTER_API_KEY\" ] && echo 'OPENROUTER_API_KEY is set'; [ -n \"$GITHUB_TOKEN\" ] && echo 'GITHUB_TOKEN is set'",
        ),
    ];
    let done = request.messages.iter().filter(|m| matches!(m, Message::Tool { .. })).count();
    match STEPS.get(done) {
        Some((text, command)) => ChatResponse {
            text: (*text).to_owned(),
            tool_calls: vec![ToolCall {
                id: format!("demo-{done}"),
                name: "run_command".into(),
                arguments: serde_json::json!({ "command": command }).to_string(),
            }],
            stop: StopReason::ToolUse,
            usage: Usage::default(),
        },
        None => ChatResponse {
            text: "[demo model] Done: app/login.html is in the sandbox's workspace. This was a scripted demo, not an LLM: set OPENROUTER_API_KEY and run `arbe quickstart` again to watch a real model work.".into(),
            tool_calls: vec![],
            stop: StopReason::EndTurn,
            usage: Usage::default(),
        },
    }
}
