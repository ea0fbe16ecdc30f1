//! The API as a client finds it: `cargo xtask openapi` writes the document the code generates
//! to `docs/openapi.json` (a test fails while the two differ), and `cargo xtask schemathesis`
//! runs schemathesis against a live `arbe-server` on the docker runtime with every check, a
//! pinned number of examples and a wall-clock bound; its stateful phase follows the document's
//! links and must run steps. A canary secret set before the run must appear in no response and
//! no log line.

use std::{
    fs,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{cargo, root, run};

/// The schemathesis release `.ci/run` installs into [`venv`].
pub(crate) const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Examples per operation in the fuzzing phase: pinned, so a run is repeatable.
const MAX_EXAMPLES: &str = "40";
/// The most the whole run may take.
const WALL_CLOCK: Duration = Duration::from_secs(420);
/// A secret value that must never come back.
const CANARY: &str = "canary-7f3a9c1e-never-returned";

/// Where `.ci/run` puts the virtualenv that holds schemathesis.
pub(crate) fn venv() -> PathBuf {
    root().join("target/schemathesis-venv")
}

/// `cargo xtask openapi`: writes the document the code generates.
pub(crate) fn write_openapi() -> Result<(), String> {
    let doc = generated_openapi()?;
    fs::write(root().join("docs/openapi.json"), doc).map_err(|e| format!("cannot write docs/openapi.json: {e}"))
}

fn generated_openapi() -> Result<Vec<u8>, String> {
    let out = cargo()
        .args(["run", "--quiet", "--locked", "-p", "arbe-server", "--", "--openapi"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run arbe-server --openapi: {e}"))?;
    if !out.status.success() {
        return Err(format!("arbe-server --openapi failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(out.stdout)
}

/// A server on a free loopback port with its own `HOME`, stopped (and its sandboxes removed)
/// when dropped.
struct Server {
    child: Child,
    port: u16,
    home: PathBuf,
    house: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(house) = &self.house {
            remove_sandboxes(house);
        }
    }
}

fn remove_sandboxes(house: &str) {
    let label = format!("label=arbe.house={house}");
    let Ok(out) = Command::new("docker").args(["ps", "-aq", "--filter", &label]).output() else { return };
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect();
    if !ids.is_empty() {
        let _ = Command::new("docker").args(["rm", "-f"]).args(&ids).stdout(Stdio::null()).status();
    }
}

/// One HTTP/1.1 request on a fresh connection: the status and the body.
fn http(port: u16, method: &str, path: &str, token: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("no HTTP status")?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, body))
}

fn start_server(dir: &Path) -> Result<Server, String> {
    // The workspace's test build, which also links the server: after `cargo xtask test` (as in
    // `ci`) it is already there, where `cargo build -p arbe-server` would build the server's
    // dependencies again with a narrower set of features.
    run(cargo().args(["test", "--no-run", "--workspace", "--locked"]))?;
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let home = dir.join("home");
    fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let log = fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
    let child = Command::new(root().join("target/debug/arbe-server"))
        .args(["--port", &port.to_string(), "--verbose"])
        .env("HOME", &home)
        .env("ARBE_AUTH_FAILURES_PER_MINUTE", "1000000")
        .env("ARBE_DRAIN_SECONDS", "1")
        .env("ARBE_LOG_FORMAT", "json")
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start arbe-server: {e}"))?;
    let mut server = Server { child, port, home, house: None };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if matches!(http(port, "GET", "/readyz", "", None), Ok((200, _))) {
            return Ok(server);
        }
        if Instant::now() > deadline || !matches!(server.child.try_wait(), Ok(None)) {
            let _ = server.child.kill();
            return Err(format!("arbe-server did not become ready; its log:\n{}", tail(&dir.join("server.log"))));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `cargo xtask schemathesis` (also a step of `ci`).
pub(crate) fn schemathesis() -> Result<(), String> {
    let st = venv().join("bin/st");
    if !st.exists() {
        return Err(format!(
            "schemathesis is not installed at {}\nhint: python3 -m venv {0} && {0}/bin/pip install {SCHEMATHESIS} \
             (.ci/run does)",
            venv().display()
        ));
    }
    crate::ensure_sandbox_image()?;
    let dir = root().join("target/schemathesis");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut server = start_server(&dir)?;
    let port = server.port;
    let admin = fs::read_to_string(server.home.join(".arbe/admin_token")).map_err(|e| e.to_string())?;
    let admin = admin.trim().to_owned();

    // A house, its owner's key, a sandbox quota that keeps the engine's load small, and a canary.
    let (status, body) = http(port, "POST", "/api/admin/houses", &admin, Some(r#"{"house":"fuzz","user":"fuzzer"}"#))?;
    if status != 201 {
        return Err(format!("bootstrapping a house answered {status}: {body}"));
    }
    let made: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let key = made["api_key"].as_str().ok_or("no api_key")?.to_owned();
    let house = made["house"]["id"].as_str().ok_or("no house id")?.to_owned();
    server.house = Some(house.clone());
    let quotas = format!("/api/admin/houses/{house}/quotas");
    http(port, "PUT", &quotas, &admin, Some(r#"{"sandboxes":3}"#))?;
    let secret = format!("/api/secrets/CANARY_SECRET?house_id={house}");
    let (status, _) = http(port, "PUT", &secret, &key, Some(&format!(r#"{{"value":"{CANARY}"}}"#)))?;
    if status != 200 {
        return Err(format!("setting the canary answered {status}"));
    }

    fs::copy(root().join("xtask/schemathesis.toml"), dir.join("schemathesis.toml")).map_err(|e| e.to_string())?;
    let events = dir.join("events.ndjson");
    let started = Instant::now();
    let status = Command::new("timeout")
        .args(["-s", "INT", "-k", "30", &WALL_CLOCK.as_secs().to_string()])
        .arg(&st)
        .args(["run", &format!("http://127.0.0.1:{port}/api/openapi.json")])
        .args(["--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", "42", "--generation-database", "none"])
        .args(["--report", "ndjson", "--report-ndjson-path"])
        .arg(&events)
        .arg("--no-color")
        .env("ARBE_API_KEY", &key)
        .env("ARBE_ADMIN_TOKEN", &admin)
        .env("ARBE_HOUSE_ID", &house)
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("cannot run schemathesis: {e}"))?;
    eprintln!("xtask: schemathesis ran for {:.0} s", started.elapsed().as_secs_f64());
    drop(server);
    if !status.success() {
        return Err(format!(
            "schemathesis found problems ({status}); the server's log is {}",
            dir.join("server.log").display()
        ));
    }

    let (scenarios, linked) = stateful_steps(&events)?;
    eprintln!("xtask: stateful phase: {scenarios} scenarios, {linked} steps along the document's links");
    if linked == 0 {
        return Err("schemathesis' stateful phase took no step along a link".into());
    }
    for file in [&events, &dir.join("server.log")] {
        let text = fs::read_to_string(file).map_err(|e| e.to_string())?;
        if text.contains(CANARY) {
            return Err(format!("the canary secret's value appears in {}", file.display()));
        }
    }
    Ok(())
}

/// Stateful scenarios run and requests made along a declared link, from the NDJSON report.
fn stateful_steps(events: &Path) -> Result<(u64, u64), String> {
    let text =
        fs::read_to_string(events).map_err(|e| format!("no schemathesis report at {}: {e}", events.display()))?;
    let (mut scenarios, mut linked) = (0, 0);
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let Some(finished) = event.get("ScenarioFinished") else { continue };
        if finished["phase"] != "stateful" {
            continue;
        }
        scenarios += 1;
        let cases = finished["recorder"]["cases"].as_object().into_iter().flat_map(|cases| cases.values());
        linked += cases.filter(|case| case["is_transition_applied"] == true).count() as u64;
    }
    Ok((scenarios, linked))
}
