#![doc = include_str!("../README.md")]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::{
    future::Future,
    io::Write,
    net::SocketAddr,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Polls `check` until it returns `Some`, at most for `timeout`; panics naming `what` when it
/// never does. Polls quickly at first and backs off to every 100 ms.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A server on a loopback port, stopped when dropped.
#[derive(Debug)]
pub struct Loopback {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on a fresh loopback port. The listener is bound here and handed to the
/// server, so nothing else can take the port in between.
pub async fn serve(router: axum::Router) -> Loopback {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("the loopback server runs");
    });
    Loopback { url: format!("http://{addr}"), addr, task }
}

/// Everything logged in this process at trace level, through a global subscriber installed on
/// first use. Each nextest test is its own process, so one test sees only its own lines.
#[derive(Clone, Debug)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// The process's capture (installed the first time).
    pub fn install() -> LogCapture {
        static LOGS: OnceLock<LogCapture> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Arc::new(Mutex::new(Vec::new()));
            let sink = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || SharedWriter(sink.clone()))
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other subscriber is installed in a test process");
            LogCapture(logs)
        })
        .clone()
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Panics when any logged line contains `needle` (a secret value), naming `what` it is.
    #[track_caller]
    pub fn assert_absent(&self, needle: &str, what: &str) {
        let text = self.text();
        assert!(!text.is_empty(), "the log capture saw nothing: it cannot prove {what} is absent");
        assert!(!text.contains(needle), "{what} appeared in a log line");
    }
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub mod bench;

/// A loopback proxy to `target` that cuts the first entry tail (`/entries/stream`) it carries
/// once the event with id 1 has passed; `tails` counts the tails it carried. Every other
/// connection passes whole.
pub async fn cutting_proxy(target: std::net::SocketAddr, tails: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else { return };
            let tails = tails.clone();
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                let mut request = vec![0u8; 64 * 1024];
                let n = inbound.read(&mut request).await.unwrap_or(0);
                let is_tail = String::from_utf8_lossy(&request[..n]).contains("/entries/stream");
                let cut = is_tail && tails.fetch_add(1, Ordering::SeqCst) == 0;
                outbound.write_all(&request[..n]).await.unwrap();
                if !cut {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    return;
                }
                // Pass the headers and the first event, then drop both sides.
                let mut seen = Vec::new();
                let mut buf = vec![0u8; 4096];
                loop {
                    let Ok(n) = outbound.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    let _ = inbound.write_all(&buf[..n]).await;
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen);
                    if text.contains("\r\n\r\n") && text.contains("id: 1") {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// The `p`-th percentile (0–100) of `samples` by the nearest-rank method: the smallest sample
/// at or below which `p` percent of the samples lie. Sorts `samples`. Every benchmark prints
/// its p50 and p99 with this, so the figures mean the same thing everywhere.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    assert!(!samples.is_empty(), "a percentile of no samples");
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil().max(1.0) as usize;
    samples[rank.min(samples.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&mut samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&mut samples, 100.0), Duration::from_millis(100));
        let mut one = vec![Duration::from_millis(7)];
        assert_eq!(percentile(&mut one, 99.0), Duration::from_millis(7));
    }

    #[tokio::test]
    async fn eventually_returns_the_first_answer() {
        let mut calls = 0;
        let got = eventually("the third call", Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { (n >= 3).then_some(n) }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn a_loopback_server_answers_until_dropped() {
        let server = serve(axum::Router::new().route("/", axum::routing::get(|| async { "hi" }))).await;
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.ends_with("hi"), "{answer}");
    }
}
