//! What every benchmark shares: samples with one percentile rule, a comparison line (ours
//! against a reference measured in the same run), verdicts that fail a full run when a target is
//! missed, and the smoke mode CI runs.
//!
//! `cargo bench` (what `cargo xtask bench <area>` runs) passes `--bench`: a full run, with
//! targets judged. `cargo test --benches` (what `cargo xtask ci` runs) does not: a smoke run, a
//! few iterations in the test profile to prove the bench runs and prints, with nothing judged.

use std::time::{Duration, Instant};

use crate::percentile;

/// Whether this is the smoke run (`cargo test --benches`) rather than a full one (`cargo bench`).
pub fn smoke() -> bool {
    !std::env::args().any(|arg| arg == "--bench")
}

/// `full` in a full run, `smoke` in a smoke run.
pub fn scale(full: usize, smoke: usize) -> usize {
    if self::smoke() { smoke } else { full }
}

/// Latencies of repeated runs.
#[derive(Debug, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Times `n` runs of `f`.
    pub async fn collect<F, Fut>(n: usize, mut f: F) -> Self
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            f().await;
            samples.push(started.elapsed());
        }
        Self(samples)
    }

    /// Samples measured elsewhere.
    pub fn from(samples: Vec<Duration>) -> Self {
        Self(samples)
    }

    /// The `p`-th percentile (0–100), nearest rank.
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&mut self.0.clone(), p)
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.percentile(50.0)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.percentile(99.0)
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The targets of one benchmark run: printed as they are judged, and failing a full run that
/// missed one.
#[derive(Debug, Default)]
pub struct Verdicts {
    missed: Vec<String>,
}

impl Verdicts {
    /// No verdict yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records whether `what` met its target; returns the word to print.
    pub fn judge(&mut self, what: &str, met: bool) -> &'static str {
        if smoke() {
            return "(smoke run: not judged)";
        }
        if met {
            "met"
        } else {
            self.missed.push(what.to_owned());
            "NOT met"
        }
    }

    /// A comparison line: ours against the reference measured in the same run, the p50 ratio
    /// against `target` (at most that many times the reference).
    pub fn compare(&mut self, name: &str, ours: &Samples, reference: &Samples, target: f64) -> String {
        let ratio = ours.p50().as_secs_f64() / reference.p50().as_secs_f64();
        let verdict = self.judge(name, ratio <= target);
        format!(
            "{name:<52} {:>10.2?} {:>10.2?} {:>10.2?} {:>10.2?} {ratio:>7.3}x {:>6.2}x {verdict}",
            ours.p50(),
            ours.p99(),
            reference.p50(),
            reference.p99(),
            target,
        )
    }

    /// The header matching [`Verdicts::compare`].
    pub fn header() -> String {
        format!(
            "{:<52} {:>10} {:>10} {:>10} {:>10} {:>8} {:>7}",
            "comparison", "ours p50", "ours p99", "ref p50", "ref p99", "ratio", "target"
        )
    }

    /// Ends the run: in a full run, exits non-zero naming each missed target.
    pub fn finish(self) {
        if smoke() {
            println!("\nsmoke run: every step ran; no target was judged (run `cargo xtask bench <area>` for that)");
            return;
        }
        if self.missed.is_empty() {
            println!("\nevery target met");
        } else {
            eprintln!("\ntargets missed: {}", self.missed.join("; "));
            std::process::exit(1);
        }
    }
}
