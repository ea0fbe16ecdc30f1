//! `cargo xtask bench store`: 20,000 entries appended to one thread by 8 concurrent tasks, on
//! each backend; prints entries/s, p50 and p99 per append, and the sequence gaps and duplicates
//! found by reading the thread back. Targets (SPEC issue 2, 2 cores): ≥ 5,000/s on SQLite,
//! ≥ 3,000/s on PostgreSQL, zero gaps and duplicates.

#![allow(clippy::print_stdout, missing_docs)]

use std::time::{Duration, Instant};

use arbe_core::{EntryBody, ParentRef};
use arbe_store::{NewThread, Store, testkit};

const ENTRIES: usize = 20_000;
const TASKS: usize = 8;

struct Report {
    backend: &'static str,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    gaps: usize,
    duplicates: usize,
    target: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sqlite = testkit::sqlite().await;
    let sqlite = bench("sqlite", &sqlite.store, 5_000.0).await;
    let postgres = testkit::postgres().await;
    let postgres = bench("postgres", &postgres.store, 3_000.0).await;
    println!();
    println!(
        "{:<9} {:>10} {:>10} {:>10} {:>6} {:>10} {:>8} {:>6}",
        "backend", "entries/s", "p50", "p99", "gaps", "duplicates", "target", "met"
    );
    let mut all_met = true;
    for r in [sqlite, postgres] {
        let met = r.per_sec >= r.target && r.gaps == 0 && r.duplicates == 0;
        all_met &= met;
        println!(
            "{:<9} {:>10.0} {:>10.3?} {:>10.3?} {:>6} {:>10} {:>8.0} {:>6}",
            r.backend,
            r.per_sec,
            r.p50,
            r.p99,
            r.gaps,
            r.duplicates,
            r.target,
            if met { "yes" } else { "NO" }
        );
    }
    println!("\n{ENTRIES} appends to one thread from {TASKS} tasks per backend; all targets met: {all_met}");
}

async fn bench(backend: &'static str, store: &Store, target: f64) -> Report {
    let fx = arbe_store::testkit::house(store, "bench").await;
    let (house, member) = (fx.house, fx.owner.member().clone());
    let thread = store
        .create_thread(NewThread {
            house_id: house.id,
            author_id: member.id,
            parent: ParentRef::parse("bench").unwrap(),
            environment: None,
            model_override: None,
            agent_ids: vec![],
        })
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(ENTRIES / TASKS);
            for i in 0..ENTRIES / TASKS {
                let body = EntryBody::UserMessage { author_id: member.id, text: format!("task {task} entry {i}") };
                let t = Instant::now();
                store.append_entry(house.id, thread.id, body).await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(ENTRIES);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];

    // Read the thread back and count what is wrong with its numbering.
    let mut seqs = Vec::with_capacity(ENTRIES);
    let mut after = 0;
    loop {
        let page = store.entries(house.id, thread.id, after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        seqs.extend(page.iter().map(|e| e.seq));
    }
    let duplicates = seqs.windows(2).filter(|w| w[0] == w[1]).count();
    seqs.dedup();
    let gaps = (1..=ENTRIES as i64).filter(|n| seqs.binary_search(n).is_err()).count();
    let report = Report {
        backend,
        per_sec: ENTRIES as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        gaps,
        duplicates,
        target,
    };
    println!("{backend}: {ENTRIES} entries in {elapsed:.2?}");
    report
}
