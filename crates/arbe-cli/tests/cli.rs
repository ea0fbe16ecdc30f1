//! The `arbe` binary as people and scripts use it: `arbe up` on a fresh `HOME`, then every
//! command's human and `--json` output and exit code (snapshots, ids and times filtered), seed
//! 000's workflow as a shell script, bad input, and a tail whose stream is cut mid-dispatch.
//! Sandboxes run on the isolated local runtime; the model is the strict fake OpenRouter.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::Stdio,
    sync::{Arc, atomic::AtomicUsize},
    time::Duration,
};

use arbe_llm::testkit::{FakeModel, Reply};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, Command},
};

const ARBE: &str = env!("CARGO_BIN_EXE_arbe");

/// The fake model's key, set as the house's OPENROUTER_API_KEY.
const MODEL_KEY: &str = "sk-or-cli-test-key-0123";

/// An `arbe up` on a fresh HOME.
struct Up {
    url: String,
    home: tempfile::TempDir,
    _server: Child,
}

impl Up {
    async fn start(model: &FakeModel) -> Self {
        let home = tempfile::tempdir().unwrap();
        // Run as root, houses' own uids must pass through to their sandboxes' folders.
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let log = std::fs::File::create(home.path().join("up.log")).unwrap();
        let mut server = Command::new(ARBE)
            .args(["up", "--port", "0"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", home.path())
            .env("OPENROUTER_BASE_URL", &model.url)
            .env("ARBE_DEFAULT_RUNTIME", "local")
            .env("ARBE_DRAIN_SECONDS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("arbe up prints its URL")
            .unwrap()
            .unwrap_or_else(|| {
                panic!("arbe up ended: {}", std::fs::read_to_string(home.path().join("up.log")).unwrap())
            });
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Self { url, home, _server: server }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// Runs `arbe args…` on this HOME with `stdin`.
    async fn arbe(&self, args: &[&str], stdin: &str) -> Run {
        run(self.home(), args, stdin, &[]).await
    }
}

/// What a command did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run(home: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(ARBE);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out =
        tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await.expect("arbe ends").unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A transcript of commands, for one snapshot.
#[derive(Default)]
struct Transcript(String);

impl Transcript {
    fn add(&mut self, args: &[&str], run: &Run) {
        self.0.push_str(&format!("$ arbe {}\n[exit {}]\n", args.join(" "), run.code));
        if !run.stdout.is_empty() {
            self.0.push_str(&format!("--- stdout\n{}", run.stdout));
            if !run.stdout.ends_with('\n') {
                self.0.push('\n');
            }
        }
        if !run.stderr.is_empty() {
            self.0.push_str(&format!("--- stderr\n{}", run.stderr));
        }
        self.0.push('\n');
    }

    /// Runs and records; panics unless the exit code is `code`.
    async fn step(&mut self, up: &Up, args: &[&str], stdin: &str, code: i32) -> Run {
        let run = up.arbe(args, stdin).await;
        assert_eq!(run.code, code, "arbe {args:?}: {run:?}");
        self.add(args, &run);
        run
    }
}

/// Ids, times, ports and keys vary between runs; the snapshot holds their shape.
fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[id]");
    settings.add_filter(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)?", "[time]");
    settings.add_filter(r"127\.0\.0\.1:\d+", "[addr]");
    settings.add_filter(r"arbe_[A-Za-z0-9_\-]{16,}", "[api key]");
    settings.add_filter(r"-[0-9a-f]{8}\b", "-[short]");
    settings.add_filter(r"took \d+(\.\d+)? ms", "took [ms]");
    settings.add_filter(r#""round_trip_ms": [0-9.]+"#, r#""round_trip_ms": [ms]"#);
    settings.add_filter(r#""wall_ms":\d+"#, r#""wall_ms":[ms]"#);
    // Column widths follow the ids' and names' lengths; collapse runs of spaces.
    settings.add_filter(r"(\S)  +", "$1  ");
    settings
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

/// The fake model's script for one dispatch: a command, then an answer.
fn one_command(command: &str, answer: &str) -> Vec<Reply> {
    vec![Reply::tools([("run_command", json!({ "command": command }))]), Reply::text_answer(answer)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000s_workflow_runs_as_written() {
    let model =
        FakeModel::start(one_command("echo implemented > login.txt && cat login.txt", "The login page is done."))
            .await
            .expect_key(MODEL_KEY);
    let up = Up::start(&model).await;
    let credentials = up.home().join(".arbe/credentials");
    assert_eq!(std::fs::metadata(&credentials).unwrap().permissions().mode() & 0o777, 0o600);

    // Seed 000's "Typical setup workflow", verbatim (the parent reference filled in).
    let script = r#"set -eu
# 1. Store credentials (values come from stdin)
printf '%s' "$OPENROUTER_API_KEY" | arbe secret set OPENROUTER_API_KEY --shared
printf '%s' "$GITHUB_TOKEN" | arbe secret set GITHUB_TOKEN --shared
# 2. Create the environment — daytona auto-provisions the sandbox
arbe env create prod --repo https://github.com/org/repo \
--secret OPENROUTER_API_KEY --secret GITHUB_TOKEN
# 3. Dispatch work
arbe env use prod # set active env once
THREAD_ID=$(arbe thread create general) # active env fills in --env
arbe thread entries create "$THREAD_ID" "implement the login page"
arbe thread entries read "$THREAD_ID"
"#;
    let bin = Path::new(ARBE).parent().unwrap();
    let out = Command::new("bash")
        .args(["-c", script])
        .env_clear()
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
        .env("HOME", up.home())
        .env("NO_COLOR", "1")
        .env("OPENROUTER_API_KEY", MODEL_KEY)
        .env("GITHUB_TOKEN", "ghp-cli-test-token-4567")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "the workflow failed:\n{stdout}\n{stderr}");
    for line in [
        "you: implement the login page",
        "$ echo implemented > login.txt && cat login.txt",
        "implemented",
        "agent: The login page is done.",
        "✓ succeeded",
    ] {
        assert!(stdout.lines().any(|l| l == line), "missing `{line}` in:\n{stdout}");
    }
    for secret in [MODEL_KEY, "ghp-cli-test-token-4567"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret), "a secret was printed");
    }
    let log = std::fs::read_to_string(up.home().join("up.log")).unwrap();
    assert!(!log.contains(MODEL_KEY) && !log.contains("ghp-cli-test-token-4567"), "a secret was logged");
    // The house's key reached the provider, and the run used the environment's sandbox.
    assert_eq!(model.received().len(), 2);
    assert_eq!(model.received()[0].key(), Some(MODEL_KEY));
    let envs = json(&up.arbe(&["env", "list", "--json"], "").await);
    assert_eq!(envs[0]["default_repo"], "https://github.com/org/repo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_shows_an_agent_succeed_without_a_key() {
    // README's first command on a fresh HOME with no model key: the demo model, every command
    // of it succeeding in whichever sandbox this machine offers (docker's busybox, or a local one).
    let home = tempfile::tempdir().unwrap();
    let run = run(home.path(), &["quickstart"], "", &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    for line in ["✓ succeeded", "OPENROUTER_API_KEY is set", "GITHUB_TOKEN is set", "</form>"] {
        assert!(run.stdout.lines().any(|l| l == line), "missing `{line}` in:\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("[exit"), "a demo command failed:\n{}", run.stdout);
    assert!(run.stdout.contains("[demo model]") && run.stderr.contains("scripted demo model"), "{run:?}");
    // It kept nothing: no ~/.arbe, and its sandbox is gone with its temporary server.
    assert!(!home.path().join(".arbe").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_prints_for_people_and_for_scripts() {
    let model = FakeModel::start(one_command("printf 'hello\\n'", "Said hello.")).await.expect_key(MODEL_KEY);
    let up = Up::start(&model).await;
    let mut t = Transcript::default();

    t.step(&up, &["house", "list"], "", 0).await;
    t.step(&up, &["house", "list", "--json"], "", 0).await;
    t.step(&up, &["secret", "list"], "", 0).await;
    t.step(&up, &["secret", "set", "DEMO_TOKEN"], "not-a-real-token-1\n", 0).await;
    t.step(&up, &["secret", "set", "DEMO_TOKEN", "--shared"], "not-a-real-token-2", 0).await;
    t.step(&up, &["secret", "ls"], "", 0).await;
    t.step(&up, &["secret", "list", "--json"], "", 0).await;
    t.step(&up, &["secret", "view", "DEMO_TOKEN"], "", 0).await;
    t.step(&up, &["env", "list"], "", 0).await;
    t.step(&up, &["env", "create", "work", "--secret", "OPENROUTER_API_KEY", "--optional-secret", "DEMO_TOKEN"], "", 0)
        .await;
    t.step(&up, &["env", "diagnose", "work"], "", 12).await;
    t.step(&up, &["secret", "set", "OPENROUTER_API_KEY", "--shared"], MODEL_KEY, 0).await;
    t.step(&up, &["secret", "set", "CONTROL_PLANE_KEY", "--audience", "capability"], "not-a-real-token-3", 0).await;
    t.step(&up, &["env", "diagnose", "work", "--json"], "", 0).await;
    t.step(&up, &["env", "bind-secret", "work", "GITHUB_TOKEN", "--optional"], "", 0).await;
    t.step(&up, &["env", "bind-secret", "work", "GITHUB_TOKEN", "--optional"], "", 0).await;
    t.step(&up, &["env", "bind-secret", "work", "GITHUB_TOKEN"], "", 0).await;
    t.step(&up, &["env", "unbind-secret", "work", "GITHUB_TOKEN"], "", 0).await;
    t.step(&up, &["env", "unbind-secret", "work", "GITHUB_TOKEN", "--json"], "", 0).await;
    t.step(&up, &["env", "use", "WORK"], "", 0).await;
    t.step(&up, &["env", "l"], "", 0).await;
    t.step(&up, &["env", "view"], "", 0).await;
    let env = json(&t.step(&up, &["env", "view", "work", "--json"], "", 0).await);
    t.step(&up, &["env", "list", "--json"], "", 0).await;
    t.step(&up, &["env", "use", "work", "--json"], "", 0).await;
    t.step(&up, &["env", "bind-secret", "work", "GITHUB_TOKEN", "--json"], "", 0).await;
    up.arbe(&["env", "unbind-secret", "work", "GITHUB_TOKEN"], "").await;
    t.step(&up, &["env", "create", "spare", "--json"], "", 0).await;
    t.step(&up, &["env", "delete", "spare", "--json"], "", 0).await;
    t.step(&up, &["secret", "set", "SPARE_TOKEN", "--json"], "not-a-real-token-4", 0).await;
    t.step(&up, &["secret", "view", "SPARE_TOKEN", "--json"], "", 0).await;
    t.step(&up, &["secret", "delete", "SPARE_TOKEN", "--json"], "", 0).await;
    let sandbox = env["sandbox_id"].as_str().unwrap().to_owned();
    t.step(&up, &["sandbox", "list"], "", 0).await;
    t.step(&up, &["sandbox", "list", "--runtime", "docker"], "", 0).await;
    t.step(&up, &["sandbox", &sandbox], "", 0).await;
    t.step(&up, &["sandbox", "view", &sandbox, "--json"], "", 0).await;
    t.step(&up, &["sandbox", "env", &sandbox], "", 0).await;
    t.step(&up, &["sandbox", "stop", &sandbox], "", 0).await;
    t.step(&up, &["sandbox", "ping", &sandbox], "", 0).await;
    t.step(&up, &["sandbox", "start", &sandbox, "--runtime", "local"], "", 0).await;
    t.step(&up, &["sandbox", "ping", &sandbox, "--json"], "", 0).await;
    let thread = t.step(&up, &["thread", "create", "general"], "", 0).await.stdout.trim().to_owned();
    t.step(&up, &["thread", "entries", "create", &thread, "say hello"], "", 0).await;
    t.step(&up, &["thread", "entries", "read", &thread], "", 0).await;
    t.step(&up, &["thread", "entries", "read", &thread, "--after", "3", "--json"], "", 0).await;
    t.step(&up, &["thread", "view", &thread], "", 0).await;
    t.step(&up, &["thread", "list"], "", 0).await;
    t.step(&up, &["thread", "cancel", &thread], "", 0).await;
    t.step(&up, &["thread", "cancel", &thread, "--json"], "", 0).await;
    t.step(&up, &["thread", "view", &thread, "--json"], "", 0).await;
    t.step(&up, &["thread", "list", "--json"], "", 0).await;
    model.push([Reply::text_answer("Said it again.")]);
    t.step(&up, &["thread", "entries", "create", &thread, "again", "--json"], "", 0).await;
    t.step(&up, &["thread", "entries", "read", &thread, "--after", "7"], "", 0).await;
    t.step(&up, &["thread", "create", "general", "--json"], "", 0).await;
    t.step(&up, &["agent", "list"], "", 0).await;
    t.step(
        &up,
        &[
            "agent",
            "create",
            "reviewer",
            "--model",
            "openrouter/openai/gpt-5-mini",
            "--system-prompt",
            "Review the change.",
        ],
        "",
        0,
    )
    .await;
    t.step(&up, &["agent", "view", "reviewer"], "", 0).await;
    t.step(&up, &["agent", "rm", "reviewer"], "", 0).await;
    t.step(&up, &["agent", "create", "helper", "--json"], "", 0).await;
    t.step(&up, &["agent", "view", "helper", "--json"], "", 0).await;
    t.step(&up, &["agent", "list", "--json"], "", 0).await;
    t.step(&up, &["agent", "delete", "helper", "--json"], "", 0).await;
    t.step(&up, &["key", "list"], "", 0).await;
    let made = json(&t.step(&up, &["key", "create", "ci", "--json"], "", 0).await);
    let key_id = made["id"].as_str().unwrap().to_owned();
    t.step(&up, &["key", "revoke", &key_id], "", 0).await;
    t.step(&up, &["key", "list", "--json"], "", 0).await;
    let printed = up.arbe(&["key", "create", "ci2"], "").await;
    assert!(printed.stdout.trim().starts_with("arbe_") && printed.stdout.lines().count() == 1, "{printed:?}");
    let keys = json(&up.arbe(&["key", "list", "--json"], "").await);
    let ci2 = keys.as_array().unwrap().iter().find(|k| k["label"] == "ci2").unwrap()["id"].as_str().unwrap().to_owned();
    t.step(&up, &["key", "revoke", &ci2, "--json"], "", 0).await;
    t.step(&up, &["house", "create", "second"], "", 0).await;
    t.step(&up, &["house", "select", "second"], "", 0).await;
    t.step(&up, &["house", "select", "default", "--json"], "", 0).await;
    t.step(&up, &["house", "create", "third", "--json"], "", 0).await;
    t.step(&up, &["sandbox", "list", "--json"], "", 0).await;
    t.step(&up, &["sandbox", "env", &sandbox, "--json"], "", 0).await;
    t.step(&up, &["sandbox", "stop", &sandbox, "--json"], "", 0).await;
    t.step(&up, &["sandbox", "destroy", &sandbox], "", 0).await;
    t.step(&up, &["env", "delete", "work"], "", 0).await;
    t.step(&up, &["secret", "del", "DEMO_TOKEN"], "", 0).await;
    // Another HOME logs in with the key `arbe up` saved.
    let credentials = std::fs::read_to_string(up.home().join(".arbe/credentials")).unwrap();
    let key = credentials.lines().find_map(|l| l.strip_prefix("api_key = ")).unwrap().to_owned();
    let other = tempfile::tempdir().unwrap();
    let login = run(other.path(), &["login", "--url", &up.url], &key, &[]).await;
    assert_eq!(login.code, 0, "{login:?}");
    t.add(&["login", "--url", "URL", "(the key on stdin, another HOME)"], &login);
    let listed = run(other.path(), &["house", "list"], "", &[]).await;
    t.add(&["house", "list", "(that HOME)"], &listed);
    let completions = up.arbe(&["completions", "bash"], "").await;
    assert_eq!(completions.code, 0);
    assert!(
        completions.stdout.contains("arbe__subcmd__thread__subcmd__entries__subcmd__read"),
        "bash completions cover nested verbs"
    );
    snapshot_settings().bind(|| insta::assert_snapshot!("every_command", t.0));
    assert!(!t.0.contains(MODEL_KEY) && !t.0.contains("not-a-real-token"), "a secret value was printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_message_and_an_exit_code_and_changes_nothing() {
    let model = FakeModel::start(vec![]).await;
    let up = Up::start(&model).await;
    up.arbe(&["secret", "set", "KEEP_TOKEN"], "a-kept-value-123").await;
    up.arbe(&["env", "create", "work"], "").await;
    let before =
        (up.arbe(&["secret", "list", "--json"], "").await.stdout, up.arbe(&["env", "list", "--json"], "").await.stdout);
    let env_id = json(&up.arbe(&["env", "view", "work", "--json"], "").await)["id"].as_str().unwrap().to_owned();

    let mut t = Transcript::default();
    t.step(&up, &["secret", "set", "NEW_TOKEN"], "", 2).await;
    let echoed = t.step(&up, &["secret", "set", "NEW_TOKEN", "sk-on-the-command-line"], "", 2).await;
    assert!(!echoed.stdout.contains("sk-on-the") && !echoed.stderr.contains("sk-on-the"), "the value was echoed");
    t.step(&up, &["secret", "set", "lower-case"], "a-value-12345", 2).await;
    t.step(&up, &["secret", "set", "SHORT_TOKEN"], "abc", 2).await;
    t.step(&up, &["secret", "set", "KEEP_TOKEN", "--audience", "everyone"], "another-value-123", 2).await;
    t.step(&up, &["secret", "view", "NO_SUCH"], "", 3).await;
    t.step(&up, &["env", "view", "nope"], "", 3).await;
    t.step(&up, &["env", "create", "work"], "", 4).await;
    t.step(&up, &["env", "create", "bad name!"], "", 2).await;
    t.step(&up, &["--env", "nope", "thread", "create", "general"], "", 3).await;
    t.step(&up, &["thread", "view", "not-a-uuid"], "", 2).await;
    t.step(&up, &["thread", "view", "01a22c8e-0000-7000-8000-000000000000"], "", 3).await;
    t.step(&up, &["thread", "entries", "create", "01a22c8e-0000-7000-8000-000000000000", "hi"], "", 3).await;
    t.step(&up, &["sandbox", "view", "nope", "--runtime", "docker"], "", 3).await;
    t.step(&up, &["env", "frobnicate"], "", 2).await;
    // `..` would resolve to another route (`DELETE /api/secrets/KEEP_TOKEN`): refused.
    t.step(&up, &["env", "unbind-secret", "..", "KEEP_TOKEN"], "", 2).await;
    // A dispatch that fails (the house holds no model key) exits 10, however far the tail starts.
    let thread = up.arbe(&["--env", "work", "thread", "create", "general"], "").await.stdout.trim().to_owned();
    up.arbe(&["thread", "entries", "create", &thread, "fix the bug"], "").await;
    t.step(&up, &["thread", "entries", "read", &thread], "", 10).await;
    t.step(&up, &["thread", "entries", "read", &thread, "--after", "99"], "", 10).await;
    // Another house's object is not there.
    t.step(&up, &["house", "create", "other"], "", 0).await;
    t.step(&up, &["house", "select", "other"], "", 0).await;
    t.step(&up, &["env", "view", &env_id], "", 3).await;
    t.step(&up, &["house", "select", "default"], "", 0).await;
    // A revoked key, and no key at all.
    let made = json(&up.arbe(&["key", "create", "short-lived", "--json"], "").await);
    up.arbe(&["key", "revoke", made["id"].as_str().unwrap()], "").await;
    let revoked = run(up.home(), &["env", "list"], "", &[("ARBE_API_KEY", made["api_key"].as_str().unwrap())]).await;
    assert_eq!(revoked.code, 5, "{revoked:?}");
    t.add(&["env", "list", "(ARBE_API_KEY=<a revoked key>)"], &revoked);
    let empty = tempfile::tempdir().unwrap();
    let nobody = run(empty.path(), &["env", "list"], "", &[("ARBE_URL", &up.url)]).await;
    assert_eq!(nobody.code, 5, "{nobody:?}");
    t.add(&["env", "list", "(a fresh HOME)"], &nobody);
    // The server is down.
    let down = run(up.home(), &["env", "list"], "", &[("ARBE_URL", "http://127.0.0.1:9")]).await;
    assert_eq!(down.code, 8, "{down:?}");
    t.add(&["env", "list", "(ARBE_URL=http://127.0.0.1:9)"], &down);

    snapshot_settings().bind(|| insta::assert_snapshot!("bad_input", t.0));
    let after =
        (up.arbe(&["secret", "list", "--json"], "").await.stdout, up.arbe(&["env", "list", "--json"], "").await.stdout);
    assert_eq!(before, after, "a refused command changed something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_cut_mid_dispatch_reconnects_and_prints_every_entry_once() {
    // The second model call waits at a gate, so the dispatch is in flight when the tail is cut.
    let gate = Arc::new(tokio::sync::Notify::new());
    let replies = vec![
        Reply::tools([("run_command", json!({ "command": "echo one" }))]),
        Reply::Gated(gate.clone(), Box::new(Reply::tools([("run_command", json!({ "command": "echo two" }))]))),
        Reply::text_answer("Counted."),
    ];
    let model = FakeModel::start(replies).await.expect_key(MODEL_KEY);
    let up = Up::start(&model).await;
    up.arbe(&["secret", "set", "OPENROUTER_API_KEY", "--shared"], MODEL_KEY).await;
    up.arbe(&["env", "create", "work", "--secret", "OPENROUTER_API_KEY"], "").await;
    let thread = up.arbe(&["--env", "work", "thread", "create", "general"], "").await.stdout.trim().to_owned();
    let target = up.url.trim_start_matches("http://").parse().unwrap();
    let tails = Arc::new(AtomicUsize::new(0));
    let proxy = arbe_testkit::cutting_proxy(target, tails.clone()).await;
    let posted = up.arbe(&["thread", "entries", "create", &thread, "count"], "").await;
    assert_eq!(posted.code, 0, "{posted:?}");
    // With a selected house the tail's first request is the stream itself (the proxy judges a
    // connection by its first request, and reqwest reuses connections).
    up.arbe(&["house", "select", "default"], "").await;
    let (home, id) = (up.home().to_owned(), thread.clone());
    let tail = tokio::spawn(async move {
        run(&home, &["thread", "entries", "read", &id, "--json"], "", &[("ARBE_URL", &proxy)]).await
    });
    let counted = tails.clone();
    arbe_testkit::eventually("the tail is cut and resumed", Duration::from_secs(60), || {
        let n = counted.load(std::sync::atomic::Ordering::SeqCst);
        async move { (n >= 2).then_some(()) }
    })
    .await;
    gate.notify_one();
    let tail = tail.await.unwrap();
    assert_eq!(tail.code, 0, "{tail:?}");
    let seqs: Vec<i64> =
        tail.stdout.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "every entry once, in order");
    let last: Value = serde_json::from_str(tail.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "succeeded");
    let human = up.arbe(&["thread", "entries", "read", &thread], "").await;
    assert_eq!(human.stdout.matches("$ echo").count(), 2, "{}", human.stdout);
}
