//! The cross-crate suites and benchmarks (layer 7). The benchmarks' shared pieces (samples,
//! comparisons, verdicts, the smoke mode) are in `arbe_testkit::bench`.
