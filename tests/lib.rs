//! Shared helpers of the cross-crate suites and benchmarks: timing and reporting.

use std::time::{Duration, Instant};

/// Latencies of repeated runs, sorted.
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
        samples.sort_unstable();
        Self(samples)
    }

    /// The `p`th percentile (0.0 to 1.0).
    pub fn percentile(&self, p: f64) -> Duration {
        self.0[((self.0.len() as f64 * p) as usize).min(self.0.len() - 1)]
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.percentile(0.5)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.percentile(0.99)
    }
}

/// One line of a comparison: ours against a reference, p50 ratio against a target.
pub fn report(name: &str, ours: &Samples, reference: &Samples, target: f64) -> String {
    let ratio = ours.p50().as_secs_f64() / reference.p50().as_secs_f64();
    format!(
        "{name:<44} {:>10.2?} {:>10.2?} {:>10.2?} {:>10.2?} {ratio:>7.3}x {:>6.2}x {}",
        ours.p50(),
        ours.p99(),
        reference.p50(),
        reference.p99(),
        target,
        if ratio <= target { "met" } else { "NOT met" }
    )
}

/// The header matching [`report`].
pub fn header() -> String {
    format!(
        "{:<44} {:>10} {:>10} {:>10} {:>10} {:>8} {:>7}",
        "comparison", "ours p50", "ours p99", "ref p50", "ref p99", "ratio", "target"
    )
}
