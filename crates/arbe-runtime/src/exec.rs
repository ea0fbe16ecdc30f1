//! What a command is, what it returns, and the capped capture every adapter shares.

use std::time::Duration;

use arbe_core::{ErrorKind, InvalidInput, SecretValue};

use crate::RuntimeError;

/// Captured output is capped at this many bytes per stream unless the request says otherwise.
pub const DEFAULT_OUTPUT_CAP: usize = 1024 * 1024;

/// A command: a shell string (run by the sandbox's shell) or an argv (run as is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `sh -c`-style text.
    Shell(String),
    /// Program and arguments, no shell.
    Argv(Vec<String>),
}

/// One command to run in a sandbox.
#[derive(Clone)]
pub struct ExecRequest {
    /// What to run.
    pub command: Command,
    /// Variables for this command only. Values are [`SecretValue`]s, so no `Debug` or log line
    /// carries one; adapters expose them only while writing the bytes to the sandbox.
    pub env: Vec<(String, SecretValue)>,
    /// Working folder, relative to the workspace (or absolute inside the sandbox).
    pub cwd: Option<String>,
    /// Kill the command (and everything it started) after this long; `None` uses the adapter's
    /// default.
    pub timeout: Option<Duration>,
    /// Bytes for the command's standard input.
    pub stdin: Option<Vec<u8>>,
    /// Capture at most this many bytes per stream; the sink still sees everything.
    pub output_cap: usize,
}

impl ExecRequest {
    /// A shell command with no env, the default cap and the adapter's timeout.
    pub fn shell(text: impl Into<String>) -> Self {
        Self::new(Command::Shell(text.into()))
    }

    /// An argv command.
    pub fn argv<I: IntoIterator<Item = S>, S: Into<String>>(argv: I) -> Self {
        Self::new(Command::Argv(argv.into_iter().map(Into::into).collect()))
    }

    fn new(command: Command) -> Self {
        Self { command, env: Vec::new(), cwd: None, timeout: None, stdin: None, output_cap: DEFAULT_OUTPUT_CAP }
    }

    /// Adds a variable.
    pub fn env(mut self, name: impl Into<String>, value: SecretValue) -> Self {
        self.env.push((name.into(), value));
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets standard input.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Sets the working folder.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Checks env names (`[A-Za-z_][A-Za-z0-9_]*`) and the argv, before anything runs.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        for (name, value) in &self.env {
            let b = name.as_bytes();
            let ok = !b.is_empty()
                && (b[0].is_ascii_alphabetic() || b[0] == b'_')
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
            if !ok {
                return Err(InvalidInput::new("env var name", "must match [A-Za-z_][A-Za-z0-9_]*"));
            }
            if value.expose().contains('\0') {
                return Err(InvalidInput::new(format!("env var {name}"), "must not contain NUL"));
            }
        }
        let nul = match &self.command {
            Command::Shell(text) => text.contains('\0'),
            Command::Argv(argv) => argv.iter().any(|a| a.contains('\0')),
        };
        if nul || self.cwd.as_deref().is_some_and(|d| d.contains('\0')) {
            return Err(InvalidInput::new("command", "must not contain NUL (no process argument can)"));
        }
        match &self.command {
            Command::Argv(argv) if argv.is_empty() => Err(InvalidInput::new("command", "argv must not be empty")),
            Command::Shell(text) if text.trim().is_empty() => Err(InvalidInput::new("command", "must not be empty")),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for ExecRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecRequest")
            .field("command", &self.command)
            .field("env", &self.env.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .field("stdin_len", &self.stdin.as_ref().map(Vec::len))
            .finish()
    }
}

/// Quotes a word for a POSIX shell: `'…'`, with each `'` written as `'\''`.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A command's variables as a POSIX shell script (`export NAME='value'` lines), for adapters
/// that hand them to a wrapper on standard input rather than in a request body or an argv.
/// Wiped when dropped.
pub fn env_script(env: &[(String, arbe_core::SecretValue)]) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(env.iter().map(|(k, v)| format!("export {k}={}\n", shell_quote(v.expose()))).collect())
}

/// Which output stream a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives output as the command produces it.
pub trait OutputSink: Send {
    /// One chunk, in order per stream.
    fn output(&mut self, stream: Stream, chunk: &[u8]);
}

impl OutputSink for () {
    fn output(&mut self, _: Stream, _: &[u8]) {}
}

impl<F: FnMut(Stream, &[u8]) + Send> OutputSink for F {
    fn output(&mut self, stream: Stream, chunk: &[u8]) {
        self(stream, chunk)
    }
}

/// How a command ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutcome {
    /// The exit code, when it exited (not when a signal killed it).
    pub exit_code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// The timeout killed it (and its process tree).
    pub timed_out: bool,
    /// The kernel killed it for memory.
    pub oom_killed: bool,
    /// Captured standard output, at most the cap.
    pub stdout: Vec<u8>,
    /// Captured standard error, at most the cap.
    pub stderr: Vec<u8>,
    /// Output went past the cap and was cut.
    pub truncated: bool,
    /// Wall time.
    pub duration: Duration,
}

impl ExecOutcome {
    /// Exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Forwards every chunk to a sink and keeps up to `cap` bytes per stream.
pub struct Capture<'a> {
    sink: &'a mut (dyn OutputSink + 'a),
    cap: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    truncated: bool,
}

impl<'a> Capture<'a> {
    /// A capture that forwards to `sink`.
    pub fn new(sink: &'a mut (dyn OutputSink + 'a), cap: usize) -> Self {
        Self { sink, cap, stdout: Vec::new(), stderr: Vec::new(), truncated: false }
    }

    /// One chunk.
    pub fn push(&mut self, stream: Stream, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        self.sink.output(stream, chunk);
        let buf = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        let room = self.cap.saturating_sub(buf.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// The captured output, folded into an outcome.
    pub fn finish(self, outcome: ExecOutcome) -> ExecOutcome {
        ExecOutcome { stdout: self.stdout, stderr: self.stderr, truncated: self.truncated, ..outcome }
    }
}

/// Checks a file path a caller gives: relative to the workspace, no `..`, no NUL, not empty.
/// Spaces, quotes and newlines are fine.
pub fn check_workspace_path(runtime: &'static str, operation: &'static str, path: &str) -> Result<(), RuntimeError> {
    let bad =
        |rule: &str| RuntimeError::new(runtime, operation, ErrorKind::InvalidInput, format!("invalid path: {rule}"));
    if path.is_empty() {
        return Err(bad("must not be empty"));
    }
    if path.starts_with('/') {
        return Err(bad("must be relative to the workspace"));
    }
    if path.contains('\0') {
        return Err(bad("must not contain NUL"));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(bad("must not contain `..`"));
    }
    if path.split('/').all(|part| part.is_empty() || part == ".") {
        return Err(bad("must name a file"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_caps_each_stream_and_marks_truncation() {
        let mut seen = 0;
        let mut sink = |_: Stream, chunk: &[u8]| seen += chunk.len();
        let mut capture = Capture::new(&mut sink, 4);
        capture.push(Stream::Stdout, b"abc");
        capture.push(Stream::Stdout, b"def");
        capture.push(Stream::Stderr, b"xy");
        let outcome = capture.finish(ExecOutcome::default());
        assert_eq!(
            (outcome.stdout.as_slice(), outcome.stderr.as_slice(), outcome.truncated),
            (&b"abcd"[..], &b"xy"[..], true)
        );
        assert_eq!(seen, 8, "the sink sees everything");
    }

    #[test]
    fn debug_never_shows_env_values() {
        let value = |v: &str| SecretValue::new(v.to_owned()).unwrap();
        let req = ExecRequest::shell("echo").env("TOKEN", value("ghp_secret"));
        assert!(!format!("{req:?}").contains("ghp_secret"));
        assert!(ExecRequest::shell("x").env("1BAD", value("v")).validate().is_err());
        assert!(ExecRequest::shell("x").env("NUL", value("a\0b")).validate().is_err());
        assert!(ExecRequest::argv(Vec::<String>::new()).validate().is_err());
    }

    #[test]
    fn workspace_paths() {
        for ok in ["a", "dir/a file 'q' \"d\"\nnl.txt", "./x"] {
            assert!(check_workspace_path("t", "put_file", ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "/etc/passwd", "a/../../b", "..", ".", "a\0b"] {
            assert!(check_workspace_path("t", "put_file", bad).is_err(), "{bad:?}");
        }
    }
}
