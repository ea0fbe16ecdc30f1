//! `cargo xtask bench dispatch`: the overhead dispatch adds, with a zero-latency scripted model
//! and the local runtime. Prints, per backend, the time from a user entry being posted to its
//! first command really running in the sandbox (stamped when the command's first output reaches
//! the runtime), one dispatch at a time, beside the same command run straight on the runtime in
//! the same run (the floor no dispatch can beat), and sustained dispatches/s with 100 threads
//! dispatching at once. Targets (issue 7): p50 ≤ 5 ms and p99 ≤ 25 ms on SQLite, ≥ 200
//! dispatches/s. `BENCH_WORKERS` sets the workers (default 4). A full run exits non-zero on a
//! miss; `cargo test --benches` runs a smoke run.

#![allow(clippy::print_stdout, missing_docs)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use arbe_core::{
    Audience, EnvironmentName, EnvironmentRef, HouseId, JobId, Labels, ParentRef, RuntimeName, SecretValue,
};
use arbe_dispatch::{CreateThread, DispatchConfig, OneProvider, Services, ServicesConfig};
use arbe_env::{CreateEnvironment, EnvConfig};
use arbe_llm::{ChatRequest, ChatResponse, FnProvider, Message, StopReason, ToolCall, Usage};
use arbe_runtime::{
    Capabilities, Diagnosis, ExecOutcome, ExecRequest, ExternalId, OutputSink, Result, Runtime, RuntimeRegistry,
    SandboxInfo, SandboxSpec,
};
use arbe_runtime_local::{LocalConfig, LocalRuntime};
use arbe_store::{Actor, Store, testkit};
use arbe_testkit::bench::{Samples, Verdicts, scale};
use arbe_vault::{MasterKey, MasterKeys, SetOptions};

/// The local runtime, noting when each command's first output arrives: when it really ran.
#[derive(Debug)]
struct Timed {
    inner: LocalRuntime,
    starts: Mutex<Vec<Instant>>,
}

#[async_trait::async_trait]
impl Runtime for Timed {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn provision(&self, spec: &SandboxSpec) -> Result<SandboxInfo> {
        self.inner.provision(spec).await
    }
    async fn get(&self, id: &ExternalId) -> Result<SandboxInfo> {
        self.inner.get(id).await
    }
    async fn list(&self, labels: &Labels) -> Result<Vec<SandboxInfo>> {
        self.inner.list(labels).await
    }
    async fn start(&self, id: &ExternalId) -> Result<()> {
        self.inner.start(id).await
    }
    async fn stop(&self, id: &ExternalId) -> Result<()> {
        self.inner.stop(id).await
    }
    async fn destroy(&self, id: &ExternalId) -> Result<()> {
        self.inner.destroy(id).await
    }
    async fn exec(&self, id: &ExternalId, req: ExecRequest, out: &mut (dyn OutputSink + '_)) -> Result<ExecOutcome> {
        let mut first = true;
        let mut sink = |stream: arbe_runtime::Stream, chunk: &[u8]| {
            if first {
                first = false;
                self.starts.lock().unwrap().push(Instant::now());
            }
            out.output(stream, chunk);
        };
        self.inner.exec(id, req, &mut sink).await
    }
    async fn put_file(&self, id: &ExternalId, path: &str, contents: &[u8]) -> Result<()> {
        self.inner.put_file(id, path, contents).await
    }
    async fn get_file(&self, id: &ExternalId, path: &str) -> Result<Vec<u8>> {
        self.inner.get_file(id, path).await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    async fn diagnose(&self) -> Diagnosis {
        self.inner.diagnose().await
    }
}

/// A model that answers at once: a command first, then, with its output, a final answer.
fn script(request: &ChatRequest) -> ChatResponse {
    let done = matches!(request.messages.last(), Some(Message::Tool { .. }));
    let tool_calls = if done {
        vec![]
    } else {
        vec![ToolCall {
            id: "call_1".into(),
            name: "run_command".into(),
            arguments: r#"{"command":"echo started"}"#.into(),
        }]
    };
    let stop = if done { StopReason::EndTurn } else { StopReason::ToolUse };
    ChatResponse { text: if done { "done".into() } else { String::new() }, tool_calls, stop, usage: Usage::default() }
}

struct Bench {
    store: Store,
    services: Services,
    timed: Arc<Timed>,
    owner: Actor,
    env: arbe_core::Environment,
    house: HouseId,
}

async fn setup(store: Store, dir: &std::path::Path) -> Bench {
    let timed = Arc::new(Timed { inner: LocalRuntime::new(LocalConfig::new(dir)), starts: Mutex::default() });
    let mut runtimes = RuntimeRegistry::new();
    runtimes.register(timed.clone());
    let workers = std::env::var("BENCH_WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(4);
    let services = Services::with_store(
        store.clone(),
        ServicesConfig {
            master_keys: MasterKeys::new(MasterKey::generate()),
            runtimes,
            env: EnvConfig::new(RuntimeName::parse("local").unwrap()),
            dispatch: DispatchConfig { workers, poll: Duration::from_millis(100), ..DispatchConfig::default() },
            models: Arc::new(OneProvider(Arc::new(FnProvider::new("script", script)))),
            admin_token: None,
        },
    );
    let fx = testkit::house(&store, "bench").await;
    let owner = fx.owner;
    let options = SetOptions { audience: Some(Audience::Capability), shared: Some(true) };
    let name = arbe_core::SecretName::parse("OPENROUTER_API_KEY").unwrap();
    services.secrets.set(&owner, &name, &SecretValue::new("sk-bench".into()).unwrap(), options).await.unwrap();
    let create = CreateEnvironment::new(EnvironmentName::parse("bench").unwrap());
    let env = services.environments.create(&owner, create).await.unwrap();
    Bench { store, services, timed, owner, env, house: fx.house.id }
}

impl Bench {
    async fn thread(&self) -> arbe_core::ThreadId {
        let mut create = CreateThread::new(ParentRef::parse("bench").unwrap());
        create.environment = Some(EnvironmentRef::Id(self.env.id));
        self.services.threads.create(&self.owner, create).await.unwrap().id
    }

    /// Waits until every job has ended, checking the oldest still open first every `poll` (the
    /// observer must not take the CPU the dispatches need).
    async fn wait(&self, jobs: &[JobId], poll: Duration) {
        let mut open = 0;
        while open < jobs.len() {
            let job = self.store.job(self.house, jobs[open]).await.unwrap();
            if job.state.is_terminal() {
                assert_eq!(job.state, arbe_core::JobState::Succeeded, "a benchmark dispatch failed");
                open += 1;
            } else {
                tokio::time::sleep(poll).await;
            }
        }
    }
}

struct Figures {
    posted_to_started: Samples,
    bare: Samples,
    per_sec: f64,
}

async fn run(store: Store) -> Figures {
    let (sequential, threads_at_once, rounds) = (scale(300, 3), scale(100, 4), scale(3, 1));
    let dir = tempfile::tempdir().unwrap();
    let bench = setup(store, dir.path()).await;
    let workers = bench.services.dispatcher.start();
    // Warm up: connections, the default agent, the sandbox.
    for _ in 0..scale(20, 1) {
        let thread = bench.thread().await;
        let (_, job) = bench.services.dispatcher.post(&bench.owner, thread, "warm up").await.unwrap();
        bench.wait(&[job.id], Duration::from_millis(1)).await;
    }
    // Overhead: posted → first command started, one dispatch at a time.
    let mut latencies = Vec::with_capacity(sequential);
    for _ in 0..sequential {
        let thread = bench.thread().await;
        bench.timed.starts.lock().unwrap().clear();
        let posted = Instant::now();
        let (_, job) = bench.services.dispatcher.post(&bench.owner, thread, "run true").await.unwrap();
        bench.wait(&[job.id], Duration::from_millis(1)).await;
        let started = bench.timed.starts.lock().unwrap()[0];
        latencies.push(started - posted);
    }
    // The floor: the same command straight on the runtime, to its first output.
    let sandbox = bench.services.sandboxes.view(&bench.owner, &arbe_core::SandboxRef::Id(bench.env.sandbox_id)).await;
    let external = ExternalId(sandbox.unwrap().external_id.unwrap());
    let mut bare = Vec::with_capacity(sequential);
    for _ in 0..sequential {
        bench.timed.starts.lock().unwrap().clear();
        let asked = Instant::now();
        bench.timed.exec(&external, ExecRequest::shell("echo started"), &mut ()).await.unwrap();
        bare.push(bench.timed.starts.lock().unwrap()[0] - asked);
    }
    // Throughput: 100 threads dispatching at once, a few rounds.
    let mut threads = Vec::with_capacity(threads_at_once);
    for _ in 0..threads_at_once {
        threads.push(bench.thread().await);
    }
    let began = Instant::now();
    for _ in 0..rounds {
        let mut jobs = Vec::with_capacity(threads_at_once);
        for thread in &threads {
            jobs.push(bench.services.dispatcher.post(&bench.owner, *thread, "run true").await.unwrap().1.id);
        }
        bench.wait(&jobs, Duration::from_millis(5)).await;
    }
    let per_sec = (threads_at_once * rounds) as f64 / began.elapsed().as_secs_f64();
    workers.shutdown(Duration::from_secs(10)).await;
    Figures { posted_to_started: Samples::from(latencies), bare: Samples::from(bare), per_sec }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut verdicts = Verdicts::new();
    let sqlite = testkit::sqlite().await;
    let s = run(sqlite.store.clone()).await;
    let postgres = testkit::postgres().await;
    let p = run(postgres.store.clone()).await;
    println!(
        "posted -> first command running, one dispatch at a time (beside the same command run straight on the runtime), \
         and dispatches/s with many threads at once"
    );
    println!(
        "{:<10} {:>10} {:>10} {:>12} {:>12} {:>14}   targets",
        "backend", "p50", "p99", "bare p50", "overhead", "dispatches/s"
    );
    for (backend, f) in [("sqlite", &s), ("postgres", &p)] {
        let (p50, p99) = (f.posted_to_started.p50(), f.posted_to_started.p99());
        let overhead = p50.saturating_sub(f.bare.p50());
        let target = if backend == "sqlite" {
            let ok = p50 <= Duration::from_millis(5) && p99 <= Duration::from_millis(25) && f.per_sec >= 200.0;
            format!("p50 <= 5ms, p99 <= 25ms, >= 200/s: {}", verdicts.judge("dispatch on sqlite", ok))
        } else {
            "(no target)".to_owned()
        };
        println!(
            "{backend:<10} {p50:>10.2?} {p99:>10.2?} {:>12.2?} {overhead:>12.2?} {:>14.0}   {target}",
            f.bare.p50(),
            f.per_sec
        );
    }
    verdicts.finish();
}
