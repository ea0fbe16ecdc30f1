//! `cargo xtask bench cli`: what a person waits for. `arbe env list --json` against `curl`
//! fetching the same endpoint with the same key, in the same run (target ≤ 1.5×: the CLI's
//! start-up, settings and printing cost little beside one HTTP round trip); and `arbe up`'s
//! first start on a fresh HOME until `/readyz` answers.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use arbe_testkit::bench::{Samples, Verdicts, scale, smoke};

const ARBE: &str = env!("CARGO_BIN_EXE_arbe");

struct Up {
    child: Child,
    url: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `arbe up --port 0` on `home`; returns once it printed its URL.
fn up(home: &Path) -> Up {
    let mut child = Command::new(ARBE)
        .args(["up", "--port", "0"])
        .env("HOME", home)
        .env("ARBE_DEFAULT_RUNTIME", "local")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("arbe starts");
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut url).expect("arbe up prints its URL");
    Up { child, url: url.trim().to_owned() }
}

fn ready(url: &str) -> bool {
    Command::new("curl").args(["-sf", "-o", "/dev/null", &format!("{url}/readyz")]).status().is_ok_and(|s| s.success())
}

fn timed(mut command: Command) -> Duration {
    let start = Instant::now();
    let out = command.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("runs");
    let took = start.elapsed();
    assert!(out.success(), "{command:?} failed");
    took
}

fn main() {
    let mut verdicts = Verdicts::new();

    // First start: a fresh HOME each time, until /readyz answers.
    let mut starts = Vec::new();
    for _ in 0..scale(5, 1) {
        let home = tempfile::tempdir().unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let start = Instant::now();
        let server = up(home.path());
        while !ready(&server.url) {
            std::thread::sleep(Duration::from_millis(2));
        }
        starts.push(start.elapsed());
    }
    let starts = Samples::from(starts);

    // The CLI against curl on one server, alternating, the house already selected (one request each).
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let server = up(home.path());
    let arbe = |args: &[&str]| {
        let mut c = Command::new(ARBE);
        c.args(args).env("HOME", home.path());
        c
    };
    assert!(arbe(&["env", "create", "work"]).stderr(Stdio::null()).status().unwrap().success());
    assert!(arbe(&["house", "select", "default"]).stderr(Stdio::null()).status().unwrap().success());
    let credentials = std::fs::read_to_string(home.path().join(".arbe/credentials")).unwrap();
    let key = credentials.lines().find_map(|l| l.strip_prefix("api_key = ")).unwrap().to_owned();
    let context = std::fs::read_to_string(home.path().join(".arbe/cli")).unwrap();
    let house = context.lines().find_map(|l| l.strip_prefix("house = ")).unwrap().to_owned();
    let endpoint = format!("{}/api/environments?house_id={house}", server.url);
    let (mut ours, mut reference) = (Vec::new(), Vec::new());
    for _ in 0..scale(60, 3) {
        ours.push(timed(arbe(&["env", "list", "--json"])));
        let mut curl = Command::new("curl");
        curl.args(["-sf", "-H", &format!("Authorization: Bearer {key}"), &endpoint]);
        reference.push(timed(curl));
    }
    let (ours, reference) = (Samples::from(ours), Samples::from(reference));

    println!("arbe CLI ({} run)\n", if smoke() { "smoke" } else { "full" });
    println!("{}", Verdicts::header());
    println!("{}", verdicts.compare("arbe env list --json vs curl, same endpoint and key", &ours, &reference, 1.5));
    println!(
        "\narbe up, first start on a fresh HOME to /readyz: p50 {:.1?}, max {:.1?} ({} starts)",
        starts.p50(),
        starts.percentile(100.0),
        starts.len()
    );
    verdicts.finish();
}
