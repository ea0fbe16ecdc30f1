//! `cargo xtask bench server`: what the HTTP layer costs, each figure beside its anchor in the
//! same run (issue 15):
//!
//! - authenticated `GET /api/environments` (10 environments) requests/s at 64 connections, beside
//!   a bare axum handler running the same store query with no auth and no middleware (target
//!   ≥ 0.5×), and a handler answering fixed bytes, for scale;
//! - a posted entry → the first `tool.call` on the thread's SSE stream, p50/p99, with a
//!   zero-latency scripted model and the local runtime (target p50 ≤ 10 ms);
//! - the real `arbe-server` binary's RSS idle (target ≤ 30 MB) and with 1,000 open SSE tails
//!   (target ≤ 100 MB), and one entry reaching all 1,000 tails, p99 (target ≤ 200 ms).
//!
//! On SQLite. A full run exits non-zero on a miss; `cargo test --benches` runs a smoke run.

#![allow(clippy::print_stdout, missing_docs)]

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use arbe_core::{EnvironmentName, ParentRef, Role, RuntimeName, SandboxRef, SecretValue};
use arbe_dispatch::{CreateThread, DispatchConfig, OneProvider, Services, ServicesConfig};
use arbe_env::{CreateEnvironment, EnvConfig};
use arbe_llm::{ChatRequest, ChatResponse, FnProvider, Message, StopReason, ToolCall, Usage};
use arbe_runtime::RuntimeRegistry;
use arbe_runtime_local::{LocalConfig, LocalRuntime};
use arbe_store::testkit;
use arbe_testkit::bench::{Samples, Verdicts, scale, smoke};
use arbe_vault::{MasterKey, MasterKeys};
use axum::{Json, Router, extract::State, routing::get};
use futures_util::StreamExt;

fn script(request: &ChatRequest) -> ChatResponse {
    let done = matches!(request.messages.last(), Some(Message::Tool { .. }));
    let tool_calls = if done {
        vec![]
    } else {
        vec![ToolCall { id: "call_1".into(), name: "run_command".into(), arguments: r#"{"command":"true"}"#.into() }]
    };
    let stop = if done { StopReason::EndTurn } else { StopReason::ToolUse };
    ChatResponse { text: if done { "done".into() } else { String::new() }, tool_calls, stop, usage: Usage::default() }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
    });
    url
}

/// Requests/s that `connections` clients get from `url` for `duration`.
async fn rate(url: &str, key: &str, connections: usize, duration: Duration) -> f64 {
    let http = reqwest::Client::builder().pool_max_idle_per_host(connections).build().unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, url, key, done) = (http.clone(), url.to_owned(), key.to_owned(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let res = http.get(&url).bearer_auth(&key).send().await.unwrap();
                assert!(res.status().is_success(), "{}", res.status());
                res.bytes().await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let began = Instant::now();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / began.elapsed().as_secs_f64()
}

struct InProcess {
    connections: usize,
    rate_api: f64,
    rate_bare: f64,
    rate_fixed: f64,
    to_tool_call: Samples,
}

async fn in_process() -> InProcess {
    let test = testkit::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let mut runtimes = RuntimeRegistry::new();
    runtimes.register(Arc::new(LocalRuntime::new(LocalConfig::new(dir.path()))));
    let services = Arc::new(Services::with_store(
        test.store.clone(),
        ServicesConfig {
            master_keys: MasterKeys::new(MasterKey::generate()),
            runtimes,
            env: EnvConfig::new(RuntimeName::parse("local").unwrap()),
            dispatch: DispatchConfig { poll: Duration::from_millis(100), ..DispatchConfig::default() },
            models: Arc::new(OneProvider(Arc::new(FnProvider::new("script", script)))),
            admin_token: None,
        },
    ));
    let fx = testkit::house(&test.store, "bench").await;
    let (owner, key) = testkit::member(&test.store, &fx.house, "bencher", Role::Owner).await;
    let key = key.expose().to_owned();
    let name = arbe_core::SecretName::parse("OPENROUTER_API_KEY").unwrap();
    let options = arbe_vault::SetOptions { audience: Some(arbe_core::Audience::Capability), shared: Some(true) };
    services.secrets.set(&owner, &name, &SecretValue::new("sk-bench-key".into()).unwrap(), options).await.unwrap();
    let first = services
        .environments
        .create(&owner, CreateEnvironment::new(EnvironmentName::parse("env-0").unwrap()))
        .await
        .unwrap();
    for i in 1..10 {
        let mut create = CreateEnvironment::new(EnvironmentName::parse(&format!("env-{i}")).unwrap());
        create.sandbox = Some(SandboxRef::Id(first.sandbox_id));
        services.environments.create(&owner, create).await.unwrap();
    }
    let workers = services.start_workers();
    let api = serve(arbe_server::router(services.clone(), arbe_server::Options::default())).await;
    let house = fx.house.id;
    // The anchors: the same store query with nothing around it, and fixed bytes.
    let store = test.store.clone();
    let bare = serve(
        Router::new().route(
            "/api/environments",
            get(move |State(store): State<arbe_store::Store>| async move {
                Json(store.list_environments(house).await.unwrap())
            })
            .with_state(store),
        ),
    )
    .await;
    let body = reqwest::get(format!("{bare}/api/environments")).await.unwrap().bytes().await.unwrap();
    let fixed = serve(Router::new().route("/api/environments", get(move || async move { body.clone() }))).await;

    let (connections, duration) = (scale(64, 4), Duration::from_millis(scale(3_000, 200) as u64));
    let list = format!("/api/environments?house_id={house}");
    let rate_api = rate(&format!("{api}{list}"), &key, connections, duration).await;
    let rate_bare = rate(&format!("{bare}{list}"), &key, connections, duration).await;
    let rate_fixed = rate(&format!("{fixed}{list}"), &key, connections, duration).await;

    // Posted entry -> the first tool.call on the thread's stream.
    let http = reqwest::Client::new();
    let mut latencies = Vec::new();
    for _ in 0..scale(100, 3) {
        let mut create = CreateThread::new(ParentRef::parse("bench").unwrap());
        create.environment = Some(arbe_core::EnvironmentRef::Id(first.id));
        let thread = services.threads.create(&owner, create).await.unwrap().id;
        let stream = format!("{api}/api/threads/{thread}/entries/stream?house_id={house}&follow=true");
        let mut events = http.get(&stream).bearer_auth(&key).send().await.unwrap().bytes_stream();
        let posted = Instant::now();
        let res = http
            .post(format!("{api}/api/threads/{thread}/entries?house_id={house}"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"text": "run true"}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        let mut seen = String::new();
        while !seen.contains("event: tool.call") {
            let chunk = tokio::time::timeout(Duration::from_secs(30), events.next()).await.unwrap().unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        latencies.push(posted.elapsed());
        // Let the dispatch finish before the next one.
        while !seen.contains("\"succeeded\"") {
            let chunk = tokio::time::timeout(Duration::from_secs(30), events.next()).await.unwrap().unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    workers.shutdown(Duration::from_secs(5)).await;
    InProcess { connections, rate_api, rate_bare, rate_fixed, to_tool_call: Samples::from(latencies) }
}

/// The real binary, on SQLite, with a house and its owner's key.
struct Binary {
    child: Child,
    url: String,
    _home: tempfile::TempDir,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        kb * 1024
    }
}

async fn binary() -> Binary {
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_arbe-server"))
        .args(["--port", &port.to_string()])
        .env("HOME", home.path())
        .env("ARBE_LOCAL_RUNTIME", "trusted")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(30);
    while !reqwest::get(format!("{url}/readyz")).await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < until, "arbe-server became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Binary { child, url, _home: home }
}

struct Tails {
    idle_rss: u64,
    tails_rss: u64,
    tails: usize,
    fan_out: Samples,
}

async fn tails() -> Tails {
    let server = binary().await;
    let admin = std::fs::read_to_string(server._home.path().join(".arbe/admin_token")).unwrap();
    let http = reqwest::Client::new();
    let post = |path: String, token: String, body: serde_json::Value| {
        let request = http.post(format!("{}{path}", server.url)).bearer_auth(token).json(&body);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let made = post(
        "/api/admin/houses".into(),
        admin.trim().to_owned(),
        serde_json::json!({"house": "bench", "user": "bench"}),
    )
    .await;
    let (key, house) = (made["api_key"].as_str().unwrap().to_owned(), made["house"]["id"].as_str().unwrap().to_owned());
    let thread =
        post(format!("/api/threads?house_id={house}"), key.clone(), serde_json::json!({"parent": "bench"})).await;
    let thread = thread["id"].as_str().unwrap().to_owned();
    for _ in 0..20 {
        http.get(format!("{}/api/threads?house_id={house}", server.url)).bearer_auth(&key).send().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = server.rss_bytes();

    let count = scale(1_000, 20);
    let stream = format!("{}/api/threads/{thread}/entries/stream?house_id={house}&follow=true", server.url);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(count);
    let posted_at = Arc::new(tokio::sync::OnceCell::<Instant>::new());
    let mut tasks = Vec::new();
    for _ in 0..count {
        let (stream, key, ready_tx, posted_at) = (stream.clone(), key.clone(), ready_tx.clone(), posted_at.clone());
        // One connection per tail, as separate browsers or CLIs would hold.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        tasks.push(tokio::spawn(async move {
            let res = http.get(&stream).bearer_auth(&key).send().await.unwrap();
            assert!(res.status().is_success());
            let mut events = res.bytes_stream();
            ready_tx.send(()).await.unwrap();
            let mut seen = String::new();
            while !seen.contains("event: user.message") {
                let chunk =
                    tokio::time::timeout(Duration::from_secs(60), events.next()).await.unwrap().unwrap().unwrap();
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            let arrived = Instant::now();
            arrived - *posted_at.get().expect("posted before it arrived")
        }));
    }
    for _ in 0..count {
        ready_rx.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tails_rss = server.rss_bytes();
    let entries = format!("{}/api/threads/{thread}/entries?house_id={house}", server.url);
    posted_at.set(Instant::now()).unwrap();
    let res = http.post(&entries).bearer_auth(&key).json(&serde_json::json!({"text": "to every tail"})).send().await;
    assert!(res.unwrap().status().is_success());
    let mut fan_out = Vec::with_capacity(count);
    for task in tasks {
        fan_out.push(task.await.unwrap());
    }
    Tails { idle_rss, tails_rss, tails: count, fan_out: Samples::from(fan_out) }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut verdicts = Verdicts::new();
    let p = in_process().await;
    let t = tails().await;
    let ratio = p.rate_api / p.rate_bare;
    println!("server (SQLite){}", if smoke() { ", smoke run" } else { "" });
    println!(
        "GET /api/environments (10), {} connections: {:.0}/s through the API, {:.0}/s bare handler, {:.0}/s fixed bytes",
        p.connections, p.rate_api, p.rate_bare, p.rate_fixed
    );
    println!("  API / bare = {ratio:.2}x   target >= 0.5x: {}", verdicts.judge("API vs bare handler", ratio >= 0.5));
    let (p50, p99) = (p.to_tool_call.p50(), p.to_tool_call.p99());
    println!(
        "posted entry -> first tool.call on its SSE stream: p50 {p50:.2?}, p99 {p99:.2?}   target p50 <= 10ms: {}",
        verdicts.judge("posted -> tool.call", p50 <= Duration::from_millis(10))
    );
    let mb = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "arbe-server RSS idle: {:.1} MB   target <= 30 MB: {}",
        mb(t.idle_rss),
        verdicts.judge("RSS idle", t.idle_rss <= 30 * 1024 * 1024)
    );
    println!(
        "arbe-server RSS with {} open SSE tails: {:.1} MB   target <= 100 MB: {}",
        t.tails,
        mb(t.tails_rss),
        verdicts.judge("RSS with tails", t.tails_rss <= 100 * 1024 * 1024)
    );
    println!(
        "one entry reaching all {} tails: p50 {:.2?}, p99 {:.2?}   target p99 <= 200ms: {}",
        t.tails,
        t.fan_out.p50(),
        t.fan_out.p99(),
        verdicts.judge("fan-out p99", t.fan_out.p99() <= Duration::from_millis(200))
    );
    verdicts.finish();
}
