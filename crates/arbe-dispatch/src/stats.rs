//! What this process's dispatches came to: counts and wall-time histograms by outcome and,
//! for failures, by error class. The server exposes them on `/metrics`.

use std::{collections::BTreeMap, sync::Mutex};

use arbe_core::{ErrorClass, ThreadStatus};

/// Upper bounds of the wall-time buckets, in seconds (Prometheus `le`).
pub const BUCKETS: [f64; 12] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Dispatches ended in this process with one outcome.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// How many.
    pub count: u64,
    /// Their wall times added up, in seconds.
    pub sum_seconds: f64,
    /// How many took at most each of [`BUCKETS`] (cumulative, as Prometheus counts them).
    pub buckets: [u64; BUCKETS.len()],
}

/// Outcomes by (terminal status, error class of a failure).
#[derive(Debug, Default)]
pub struct DispatchStats {
    outcomes: Mutex<BTreeMap<(&'static str, Option<&'static str>), Outcome>>,
}

impl DispatchStats {
    pub(crate) fn record(&self, status: ThreadStatus, class: Option<ErrorClass>, wall_ms: u64) {
        let seconds = wall_ms as f64 / 1000.0;
        let mut outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = outcomes.entry((status.as_str(), class.map(|c| c.as_str()))).or_default();
        outcome.count += 1;
        outcome.sum_seconds += seconds;
        for (bucket, le) in outcome.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *bucket += 1;
            }
        }
    }

    /// Every outcome seen so far: `(status, error class, what it came to)`.
    pub fn snapshot(&self) -> Vec<(&'static str, Option<&'static str>, Outcome)> {
        let outcomes = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        outcomes.iter().map(|((status, class), outcome)| (*status, *class, outcome.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_by_status_and_class_with_cumulative_buckets() {
        let stats = DispatchStats::default();
        stats.record(ThreadStatus::Succeeded, None, 40);
        stats.record(ThreadStatus::Succeeded, None, 2_000);
        stats.record(ThreadStatus::Failed, Some(ErrorClass::Billing), 5);
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.len(), 2);
        let (status, class, failed) = &snapshot[0];
        assert_eq!((*status, *class, failed.count), ("failed", Some("billing"), 1));
        let (_, _, ok) = &snapshot[1];
        assert_eq!(ok.count, 2);
        assert!((ok.sum_seconds - 2.04).abs() < 1e-9);
        assert_eq!(ok.buckets[0], 0, "40 ms is over 10 ms");
        assert_eq!(ok.buckets[1], 1, "40 ms is under 50 ms");
        assert_eq!(ok.buckets[6], 2, "both are under 2.5 s");
    }
}
