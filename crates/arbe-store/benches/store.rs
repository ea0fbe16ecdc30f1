//! `cargo xtask bench store`: 20,000 entries appended to one thread by 8 concurrent tasks, on
//! each backend; prints entries/s, p50 and p99 per append, and the sequence numbers handed to
//! the callers that were duplicated or skipped. Beside it, in the same run, the same number of
//! plain `INSERT`s of an entry-sized row (no sequence number, no fence, no trigger) through the
//! store's own writer pool: what the numbering and its guarantees cost. PostgreSQL runs with
//! `fsync` on (`cargo xtask bench` starts it durable).
//!
//! Targets (issue 2, 2 cores): ≥ 5,000 appends/s on SQLite, ≥ 3,000/s on PostgreSQL, zero gaps
//! and duplicates. A full run exits non-zero on a miss; `cargo test --benches` runs a smoke run.

#![allow(clippy::print_stdout, missing_docs)]

use std::time::{Duration, Instant};

use arbe_core::{EntryBody, ParentRef};
use arbe_store::{NewThread, testkit};
use arbe_testkit::bench::{Samples, Verdicts, scale};

const TASKS: usize = 8;

struct Report {
    per_sec: f64,
    samples: Samples,
    gaps: usize,
    duplicates: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let entries = scale(20_000, 80);
    let mut verdicts = Verdicts::new();
    println!(
        "{:<9} {:<14} {:>10} {:>10} {:>10} {:>6} {:>10}   target",
        "backend", "", "rows/s", "p50", "p99", "gaps", "duplicates"
    );
    for (backend, target) in [("sqlite", 5_000.0), ("postgres", 3_000.0)] {
        let test = if backend == "sqlite" { testkit::sqlite().await } else { testkit::postgres().await };
        let ours = appends(&test, entries).await;
        let reference = plain_inserts(&test, entries).await;
        let met = ours.per_sec >= target && ours.gaps == 0 && ours.duplicates == 0;
        let verdict = verdicts.judge(&format!("{backend} appends"), met);
        println!(
            "{backend:<9} {:<14} {:>10.0} {:>10.3?} {:>10.3?} {:>6} {:>10}   >= {target}/s, no gaps or duplicates: {verdict}",
            "appends",
            ours.per_sec,
            ours.samples.p50(),
            ours.samples.p99(),
            ours.gaps,
            ours.duplicates,
        );
        println!(
            "{backend:<9} {:<14} {:>10.0} {:>10.3?} {:>10.3?}   (reference; appends run at {:.2}x its rate)",
            "plain INSERT",
            reference.per_sec,
            reference.samples.p50(),
            reference.samples.p99(),
            ours.per_sec / reference.per_sec
        );
    }
    println!("\n{entries} rows per backend from {TASKS} tasks");
    verdicts.finish();
}

async fn appends(test: &testkit::TestStore, entries: usize) -> Report {
    let store = &test.store;
    let fx = testkit::house(store, "bench").await;
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
            let mut latencies = Vec::with_capacity(entries / TASKS);
            let mut seqs = Vec::with_capacity(entries / TASKS);
            for i in 0..entries / TASKS {
                let body = EntryBody::UserMessage { author_id: member.id, text: format!("task {task} entry {i}") };
                let t = Instant::now();
                let entry = store.append_entry(house.id, thread.id, body).await.unwrap();
                latencies.push(t.elapsed());
                seqs.push(entry.seq);
            }
            (latencies, seqs)
        }));
    }
    let (mut latencies, mut seqs) = (Vec::with_capacity(entries), Vec::with_capacity(entries));
    for task in tasks {
        let (l, s) = task.await.unwrap();
        latencies.extend(l);
        seqs.extend(s);
    }
    let elapsed = started.elapsed();
    // The numbers the callers were handed: each of 1..=n exactly once.
    seqs.sort_unstable();
    let duplicates = seqs.windows(2).filter(|w| w[0] == w[1]).count();
    seqs.dedup();
    let total = (entries / TASKS * TASKS) as i64;
    let gaps = (1..=total).filter(|n| seqs.binary_search(n).is_err()).count();
    Report { per_sec: total as f64 / elapsed.as_secs_f64(), samples: Samples::from(latencies), gaps, duplicates }
}

async fn plain_inserts(test: &testkit::TestStore, entries: usize) -> Report {
    test.tamper().prepare_plain_inserts().await;
    let started = Instant::now();
    let mut latencies: Vec<Duration> = Vec::with_capacity(entries);
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = test.store.clone();
        tasks.push(tokio::spawn(async move {
            let tamper = arbe_store::testkit::Tamper::of(&store);
            let mut latencies = Vec::with_capacity(entries / TASKS);
            for i in 0..entries / TASKS {
                let t = Instant::now();
                tamper.plain_insert(&format!("task {task} entry {i}")).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let total = entries / TASKS * TASKS;
    Report {
        per_sec: total as f64 / started.elapsed().as_secs_f64(),
        samples: Samples::from(latencies),
        gaps: 0,
        duplicates: 0,
    }
}
