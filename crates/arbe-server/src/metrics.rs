//! `/metrics` in Prometheus's text format: requests by route, method and status with their
//! durations; dispatches by outcome and error class with their wall times; the queue depth;
//! sandboxes by runtime and state. Counters live in this process; the queue and the sandboxes
//! are counted in the store at scrape time, so every replica reports the same totals.

use std::{collections::BTreeMap, fmt::Write, sync::Mutex, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{ApiError, AppState};

/// Upper bounds of the request-duration buckets, in seconds.
const REQUEST_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0];

#[derive(Default)]
struct Requests {
    count: u64,
    sum_seconds: f64,
    buckets: [u64; REQUEST_BUCKETS.len()],
}

/// Request counters of this process.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Requests>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    fn record(&self, route: String, method: String, status: u16, seconds: f64) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let entry = requests.entry((route, method, status)).or_default();
        entry.count += 1;
        entry.sum_seconds += seconds;
        for (bucket, le) in entry.buckets.iter_mut().zip(REQUEST_BUCKETS) {
            if seconds <= le {
                *bucket += 1;
            }
        }
    }
}

/// Counts every request by its route's template (`/api/threads/{id}`, never the id itself).
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.record(route, method, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let value = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(out, "{key}=\"{value}\"");
    }
    out.push('}');
    out
}

fn histogram(
    out: &mut String,
    name: &str,
    base: &[(&str, &str)],
    bounds: &[f64],
    buckets: &[u64],
    count: u64,
    sum: f64,
) {
    for (le, n) in bounds.iter().zip(buckets) {
        let le = le.to_string();
        let mut pairs = base.to_vec();
        pairs.push(("le", &le));
        let _ = writeln!(out, "{name}_bucket{} {n}", labels(&pairs));
    }
    let mut pairs = base.to_vec();
    pairs.push(("le", "+Inf"));
    let _ = writeln!(out, "{name}_bucket{} {count}", labels(&pairs));
    let _ = writeln!(out, "{name}_sum{} {sum}", labels(base));
    let _ = writeln!(out, "{name}_count{} {count}", labels(base));
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut out = String::new();
    out.push_str("# HELP arbe_http_requests_total HTTP requests answered, by route template, method and status.\n");
    out.push_str("# TYPE arbe_http_requests_total counter\n");
    {
        let requests = state.metrics.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((route, method, status), r) in requests.iter() {
            let status = status.to_string();
            let _ = writeln!(
                out,
                "arbe_http_requests_total{} {}",
                labels(&[("route", route), ("method", method), ("status", &status)]),
                r.count
            );
        }
        out.push_str(
            "# HELP arbe_http_request_duration_seconds Time to answer a request (to its headers, for streams).\n",
        );
        out.push_str("# TYPE arbe_http_request_duration_seconds histogram\n");
        for ((route, method, status), r) in requests.iter() {
            let status = status.to_string();
            let base = [("route", route.as_str()), ("method", method.as_str()), ("status", status.as_str())];
            histogram(
                &mut out,
                "arbe_http_request_duration_seconds",
                &base,
                &REQUEST_BUCKETS,
                &r.buckets,
                r.count,
                r.sum_seconds,
            );
        }
    }
    out.push_str("# HELP arbe_dispatch_duration_seconds Wall time of dispatches this process ended, by outcome and error class.\n");
    out.push_str("# TYPE arbe_dispatch_duration_seconds histogram\n");
    for (status, class, outcome) in state.services.dispatcher.stats().snapshot() {
        let base = [("outcome", status), ("error_class", class.unwrap_or(""))];
        histogram(
            &mut out,
            "arbe_dispatch_duration_seconds",
            &base,
            &arbe_dispatch::BUCKETS,
            &outcome.buckets,
            outcome.count,
            outcome.sum_seconds,
        );
    }
    out.push_str("# HELP arbe_dispatch_jobs Dispatch jobs queued or running, across houses.\n");
    out.push_str("# TYPE arbe_dispatch_jobs gauge\n");
    let jobs = state.services.active_job_counts().await?;
    for state_name in ["queued", "running"] {
        let n = jobs.iter().find(|(s, _)| s == state_name).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "arbe_dispatch_jobs{} {n}", labels(&[("state", state_name)]));
    }
    out.push_str("# HELP arbe_sandboxes Sandboxes by runtime and state, across houses.\n");
    out.push_str("# TYPE arbe_sandboxes gauge\n");
    for (runtime, sandbox_state, n) in state.services.sandbox_counts().await? {
        let _ = writeln!(out, "arbe_sandboxes{} {n}", labels(&[("runtime", &runtime), ("state", &sandbox_state)]));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response())
}
