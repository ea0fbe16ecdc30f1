//! Commands as frames to `arbe-sandboxd` (see its README for the protocol), over one byte
//! stream per sandbox: the docker runtime's attach stream to a container's executor, the local
//! runtime's pipes to an executor in a sandbox's namespaces. One [`Executor`] per stream routes
//! each command's frames to it; [`exec`] runs one command through it, a kill frame ending its
//! whole process group on a timeout or when the caller drops the future.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use arbe_core::ErrorKind;
use futures_util::{Stream as FuturesStream, StreamExt};
use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    sync::mpsc,
};

use crate::{Capture, Command, ExecOutcome, ExecRequest, OutputSink, Result, RuntimeError, Stream};

/// A frame from the executor about one command.
#[derive(Debug)]
pub struct Frame {
    /// `O`, `R`, `X` or `F`.
    pub kind: u8,
    /// Its bytes.
    pub payload: Vec<u8>,
}

type Waiters = Arc<Mutex<HashMap<u32, mpsc::Sender<Frame>>>>;

/// The largest frame the executor writes is 64 KiB of output; anything over this is not from it.
pub const MAX_FRAME: usize = 1024 * 1024;

/// The frames the executor writes: output (`O`, `R`), an end (`X`), a failure to start (`F`).
const FRAME_KINDS: [u8; 4] = [b'O', b'R', b'X', b'F'];

/// Frames queued per command before its stream waits for the reader.
const FRAMES_QUEUED: usize = 64;

/// How long a killed command has to report its end before [`exec`] stops waiting.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// One stream to an executor, shared by every command run through it.
pub struct Executor {
    input: tokio::sync::Mutex<Pin<Box<dyn AsyncWrite + Send>>>,
    waiters: Waiters,
    next: AtomicU32,
    alive: Arc<AtomicBool>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("alive", &self.is_alive()).finish_non_exhaustive()
    }
}

impl Executor {
    /// An executor writing frames to `input` and reading them from `output` (chunks as they
    /// come; frames may be split anywhere). The stream comes from inside the sandbox: a
    /// protocol break drops it.
    pub fn new(
        input: Pin<Box<dyn AsyncWrite + Send>>,
        output: impl FuturesStream<Item = Vec<u8>> + Send + 'static,
    ) -> Arc<Self> {
        let waiters: Waiters = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let executor = Arc::new(Self {
            input: tokio::sync::Mutex::new(input),
            waiters: waiters.clone(),
            // Ids start at a random point: another process attached to the same stream sees
            // this one's frames too, and ignores ids it did not issue.
            next: AtomicU32::new(arbe_core::JobId::new().as_uuid().as_u128() as u32),
            alive: alive.clone(),
        });
        tokio::spawn(async move {
            let mut output = Box::pin(output);
            let mut reader = FrameReader::default();
            'stream: while let Some(bytes) = output.next().await {
                let Ok(frames) = reader.push(&bytes) else {
                    tracing::warn!("a sandbox's executor stream broke the protocol; dropping it");
                    break 'stream;
                };
                for (id, frame) in frames {
                    let end = matches!(frame.kind, b'X' | b'F');
                    let tx = {
                        let mut waiters = waiters.lock().unwrap_or_else(|e| e.into_inner());
                        if end { waiters.remove(&id) } else { waiters.get(&id).cloned() }
                    };
                    // A command whose reader falls behind holds this sandbox's stream (and only
                    // this sandbox's) until it catches up: memory stays bounded.
                    if let Some(tx) = tx {
                        let _ = tx.send(frame).await;
                    }
                }
            }
            // The stream ended: commands still waiting see their channel close, and the next
            // command opens a new stream.
            alive.store(false, Ordering::SeqCst);
            waiters.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        executor
    }

    /// Whether the stream is still open.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// A new command id and the channel its frames arrive on.
    fn register(&self) -> (u32, mpsc::Receiver<Frame>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(FRAMES_QUEUED);
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        (id, rx)
    }

    /// Stops routing frames of `id`.
    fn forget(&self, id: u32) {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Sends one frame (written whole, so frames of concurrent commands never interleave).
    async fn send(&self, kind: u8, id: u32, payload: &[u8]) -> std::io::Result<()> {
        // A start frame carries values: the copy is wiped too.
        let mut frame = zeroize::Zeroizing::new(Vec::with_capacity(9 + payload.len()));
        frame.push(kind);
        frame.extend_from_slice(&id.to_be_bytes());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        let mut input = self.input.lock().await;
        let res = async {
            input.write_all(&frame).await?;
            input.flush().await
        }
        .await;
        if res.is_err() {
            self.alive.store(false, Ordering::SeqCst);
        }
        res
    }
}

/// Sends a kill frame for a command whose exec future was dropped before its end frame came.
struct KillFrameOnDrop {
    executor: Option<Arc<Executor>>,
    cmd: u32,
}

impl Drop for KillFrameOnDrop {
    fn drop(&mut self) {
        let Some(executor) = self.executor.take() else { return };
        let cmd = self.cmd;
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        handle.spawn(async move {
            let _ = executor.send(b'K', cmd, &[]).await;
            executor.forget(cmd);
        });
    }
}

/// Runs `req` through `executor` (`runtime` names the adapter in errors): a start frame with
/// `cwd` and the command (a shell string runs under `shell`), stdin frames, then output frames
/// until its end frame. A timeout (`default_timeout` unless the request sets one) or a dropped
/// future sends a kill frame for its whole process group.
pub async fn exec(
    runtime: &'static str,
    executor: &Arc<Executor>,
    cwd: &str,
    shell: &[&str],
    req: ExecRequest,
    out: &mut (dyn OutputSink + '_),
    default_timeout: Duration,
) -> Result<ExecOutcome> {
    let started = Instant::now();
    let gone = |what: &str| {
        RuntimeError::new(runtime, "exec", ErrorKind::Unavailable, format!("the sandbox's executor went away {what}"))
    };
    let argv = match &req.command {
        Command::Shell(text) => shell.iter().map(|s| (*s).to_owned()).chain([text.clone()]).collect(),
        Command::Argv(args) => args.clone(),
    };
    let (cmd, mut frames) = executor.register();
    let mut guard = KillFrameOnDrop { executor: Some(executor.clone()), cmd };
    executor.send(b'S', cmd, &start_payload(cwd, &argv, &req.env)).await.map_err(|_| gone("before the start"))?;
    if let Some(bytes) = &req.stdin {
        for chunk in bytes.chunks(64 * 1024) {
            executor.send(b'I', cmd, chunk).await.map_err(|_| gone("while writing stdin"))?;
        }
    }
    executor.send(b'E', cmd, &[]).await.map_err(|_| gone("while writing stdin"))?;
    let mut capture = Capture::new(out, req.output_cap);
    let timeout = req.timeout.unwrap_or(default_timeout);
    let deadline = tokio::time::sleep(if timeout.is_zero() { Duration::from_secs(u64::MAX / 4) } else { timeout });
    tokio::pin!(deadline);
    let mut timed_out = false;
    let end = loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Some(frame) if frame.kind == b'O' => capture.push(Stream::Stdout, &frame.payload),
                Some(frame) if frame.kind == b'R' => capture.push(Stream::Stderr, &frame.payload),
                Some(frame) if frame.kind == b'X' || frame.kind == b'F' => break Some(frame),
                Some(_) => {}
                None => return Err(gone("while the command ran")),
            },
            () = &mut deadline => {
                if timed_out {
                    // Killed and still not ended: stop waiting (the guard kills it again).
                    break None;
                }
                timed_out = true;
                executor.send(b'K', cmd, &[]).await.map_err(|_| gone("while killing the command"))?;
                deadline.as_mut().reset(tokio::time::Instant::now() + KILL_GRACE);
            }
        }
    };
    let Some(end) = end else {
        return Ok(capture.finish(ExecOutcome { timed_out, duration: started.elapsed(), ..ExecOutcome::default() }));
    };
    guard.executor = None;
    let outcome = if end.kind == b'F' {
        // It could not start (no such program, say): what a shell reports, exit 127.
        capture.push(Stream::Stderr, &end.payload);
        capture.push(Stream::Stderr, b"\n");
        ExecOutcome { exit_code: Some(127), ..ExecOutcome::default() }
    } else {
        let text = String::from_utf8_lossy(&end.payload);
        let mut fields = text.split('\0');
        let code = fields.next().and_then(|f| f.parse::<i32>().ok());
        let signal = fields.next().and_then(|f| f.parse::<i32>().ok());
        let oom_killed = fields.next() == Some("1");
        ExecOutcome {
            // As a shell reports a command killed by a signal, so both paths agree.
            exit_code: code.or(signal.map(|s| 128 + s)),
            signal,
            timed_out,
            oom_killed: oom_killed && !timed_out,
            ..ExecOutcome::default()
        }
    };
    Ok(capture.finish(ExecOutcome { duration: started.elapsed(), ..outcome }))
}

/// The executor's stream broke the protocol.
#[derive(Debug, PartialEq, Eq)]
pub struct Broken;

/// Cuts the executor's output stream into frames: a 9-byte header (kind, command id, length)
/// and the payload. The stream comes from inside the sandbox, so a frame the executor would
/// never write (over [`MAX_FRAME`], or of a kind it does not send) is refused rather than
/// buffered.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Adds bytes; returns the whole frames they complete, with their command ids.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<(u32, Frame)>, Broken> {
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut at = 0;
        while self.buf.len() - at >= 9 {
            let kind = self.buf[at];
            let len = u32::from_be_bytes(self.buf[at + 5..at + 9].try_into().expect("4 bytes")) as usize;
            if len > MAX_FRAME || !FRAME_KINDS.contains(&kind) {
                return Err(Broken);
            }
            if self.buf.len() - at < 9 + len {
                break;
            }
            let id = u32::from_be_bytes(self.buf[at + 1..at + 5].try_into().expect("4 bytes"));
            frames.push((id, Frame { kind, payload: self.buf[at + 9..at + 9 + len].to_vec() }));
            at += 9 + len;
        }
        self.buf.drain(..at);
        Ok(frames)
    }
}

/// The payload of a start frame: NUL-separated cwd, argc, argv…, envc, `NAME=value`…. It holds
/// values, so it is wiped when dropped.
fn start_payload(cwd: &str, argv: &[String], env: &[(String, arbe_core::SecretValue)]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut fields: Vec<&[u8]> = vec![cwd.as_bytes()];
    let argc = argv.len().to_string();
    fields.push(argc.as_bytes());
    fields.extend(argv.iter().map(|arg| arg.as_bytes()));
    let envc = env.len().to_string();
    fields.push(envc.as_bytes());
    let mut payload = zeroize::Zeroizing::new(fields.join(&0u8));
    for (name, value) in env {
        payload.push(0);
        payload.extend_from_slice(name.as_bytes());
        payload.push(b'=');
        payload.extend_from_slice(value.expose().as_bytes());
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, id: u32, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut stream = frame(b'O', 7, b"hello");
        stream.extend(frame(b'R', 8, b""));
        stream.extend(frame(b'X', 7, b"0\0\0"));
        for at in 0..=stream.len() {
            let mut reader = FrameReader::default();
            let mut got = reader.push(&stream[..at]).unwrap();
            got.extend(reader.push(&stream[at..]).unwrap());
            let got: Vec<(u32, u8, Vec<u8>)> = got.into_iter().map(|(id, f)| (id, f.kind, f.payload)).collect();
            assert_eq!(got, [(7, b'O', b"hello".to_vec()), (8, b'R', vec![]), (7, b'X', b"0\0\0".to_vec())]);
        }
    }

    #[test]
    fn a_header_claiming_more_than_a_frame_or_an_unknown_kind_breaks_the_stream_at_once() {
        // 4 GiB announced: refused from the header alone, nothing buffered for it.
        let mut reader = FrameReader::default();
        assert_eq!(reader.push(&[b'O', 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap_err(), Broken);
        let mut reader = FrameReader::default();
        let too_big = (MAX_FRAME as u32 + 1).to_be_bytes();
        assert_eq!(
            reader.push(&[b'O', 0, 0, 0, 1, too_big[0], too_big[1], too_big[2], too_big[3]]).unwrap_err(),
            Broken
        );
        // A start frame is the host's to send, never the executor's.
        let mut reader = FrameReader::default();
        assert_eq!(reader.push(&frame(b'S', 1, b"x")).unwrap_err(), Broken);
        // The largest frame the executor may write passes.
        let mut reader = FrameReader::default();
        assert_eq!(reader.push(&frame(b'O', 1, &vec![0; MAX_FRAME])).unwrap().len(), 1);
    }
}
