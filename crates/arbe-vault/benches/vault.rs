//! `cargo xtask bench vault`: what sealing costs a dispatch.
//!
//! 1. Resolve 10 secrets (one query plus ten opens), p50 and p99, on SQLite and PostgreSQL.
//! 2. Seal and open throughput of 1 KiB values through the vault's primitive, in memory, beside
//!    `openssl speed -aead -evp aes-256-gcm` at 1024 bytes measured in the same run: like the
//!    vault, it seals whole messages (IV, associated data and tag per message), not one stream.
//!    Target: seal at ≥ 0.5× openssl's bytes/s.
//!
//! A full run exits non-zero on a missed target (or without openssl to compare with);
//! `cargo test --benches` runs a smoke run.

#![allow(clippy::print_stdout, missing_docs)]

use std::{
    process::Command,
    time::{Duration, Instant},
};

use arbe_core::{SecretName, SecretValue};
use arbe_store::{Store, testkit};
use arbe_testkit::bench::{Samples, Verdicts, scale};
use arbe_vault::{
    MasterKey, MasterKeys, SetOptions, Vault,
    aead::{Cipher, generate_key},
};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let resolves = scale(2_000, 20);
    let mut verdicts = Verdicts::new();
    println!("resolve 10 secrets ({resolves} times, one after another)");
    println!("{:<9} {:>10} {:>10} {:>12}", "backend", "p50", "p99", "resolves/s");
    let sqlite = testkit::sqlite().await;
    resolve_bench("sqlite", &sqlite.store, resolves).await;
    let postgres = testkit::postgres().await;
    resolve_bench("postgres", &postgres.store, resolves).await;

    println!("\nseal/open 1 KiB in memory (AES-256-GCM, fresh random nonce per seal)");
    let (seal, open) = primitive_throughput();
    let openssl = openssl_speed();
    println!("{:<28} {:>12}", "", "MB/s");
    println!("{:<28} {:>12.1}", "arbe-vault seal", seal / 1e6);
    println!("{:<28} {:>12.1}", "arbe-vault open", open / 1e6);
    match openssl {
        Some(openssl) => {
            println!("{:<28} {:>12.1}", "openssl speed -aead (seal)", openssl / 1e6);
            let ratio = seal / openssl;
            let verdict = verdicts.judge("seal vs openssl", ratio >= 0.5);
            println!("\nseal / openssl = {ratio:.2}x (target >= 0.50x): {verdict}");
        }
        None => {
            println!("openssl speed did not run; install openssl to compare");
            verdicts.judge("seal vs openssl (openssl missing)", false);
        }
    }
    verdicts.finish();
}

async fn resolve_bench(backend: &str, store: &Store, resolves: usize) {
    let fx = testkit::house(store, "bench").await;
    let (house, owner) = (fx.house, fx.owner);
    let claim = testkit::claim(store, house.id).await;
    let vault = Vault::new(store.clone(), MasterKeys::new(MasterKey::generate()));
    let names: Vec<SecretName> = (0..10).map(|i| SecretName::parse(&format!("SECRET_{i}")).unwrap()).collect();
    for name in &names {
        let value = SecretValue::new(format!("{name}-value-{}", "x".repeat(48))).unwrap();
        vault.set(&owner, name, &value, SetOptions::default()).await.unwrap();
    }
    for _ in 0..50 {
        vault.resolve(&claim, &names).await.unwrap();
    }
    let mut latencies = Vec::with_capacity(resolves);
    let started = Instant::now();
    for _ in 0..resolves {
        let t = Instant::now();
        let resolved = vault.resolve(&claim, &names).await.unwrap();
        latencies.push(t.elapsed());
        assert_eq!(resolved.len(), 10);
    }
    let elapsed = started.elapsed();
    let samples = Samples::from(latencies);
    println!(
        "{:<9} {:>10.3?} {:>10.3?} {:>12.0}",
        backend,
        samples.p50(),
        samples.p99(),
        resolves as f64 / elapsed.as_secs_f64()
    );
}

/// Bytes per second sealing and opening 1 KiB values for about a second each.
fn primitive_throughput() -> (f64, f64) {
    let cipher = Cipher::new(&generate_key());
    let aad = [7u8; 40];
    let value = vec![0x5a; 1024];
    let window = if arbe_testkit::bench::smoke() { Duration::from_millis(50) } else { Duration::from_secs(1) };
    let run = |mut op: Box<dyn FnMut() + '_>| {
        for _ in 0..10_000 {
            op();
        }
        let (started, mut n) = (Instant::now(), 0u64);
        while started.elapsed() < window {
            for _ in 0..1_000 {
                op();
            }
            n += 1_000;
        }
        (n * 1024) as f64 / started.elapsed().as_secs_f64()
    };
    let seal = run(Box::new(|| {
        std::hint::black_box(cipher.seal(&aad, std::hint::black_box(&value)));
    }));
    let (nonce, sealed) = cipher.seal(&aad, &value);
    let open = run(Box::new(|| {
        std::hint::black_box(cipher.open(&nonce, &aad, std::hint::black_box(&sealed)).unwrap());
    }));
    (seal, open)
}

/// `openssl speed -aead -evp aes-256-gcm` at 1024 bytes: bytes per second, from its `+F:` line.
fn openssl_speed() -> Option<f64> {
    let seconds = if arbe_testkit::bench::smoke() { "1" } else { "2" };
    let out = Command::new("openssl")
        .args(["speed", "-mr", "-seconds", seconds, "-bytes", "1024", "-aead", "-evp", "aes-256-gcm"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find(|l| l.starts_with("+F:")).and_then(|l| l.rsplit(':').next()?.trim().parse().ok())
}
