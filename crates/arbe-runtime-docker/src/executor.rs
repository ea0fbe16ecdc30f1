//! Commands through `arbe-sandboxd`, the executor that images labelled `arbe.executor` run as
//! their main process: one attach stream per container, a frame per command (see the
//! arbe-sandboxd README for the protocol). A `docker exec` makes the engine and runc enter the
//! container's namespaces for every command; a frame on an open stream costs far less.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
};

use bollard::{Docker, container::LogOutput, errors::Error as BollardError, query_parameters::AttachContainerOptions};
use futures_util::StreamExt;
use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    sync::mpsc,
};

/// The image label naming the executor's path; containers created from such an image run it.
pub(crate) const EXECUTOR_LABEL: &str = "arbe.executor";

/// A frame from the executor about one command.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) kind: u8,
    pub(crate) payload: Vec<u8>,
}

type Waiters = Arc<Mutex<HashMap<u32, mpsc::Sender<Frame>>>>;

/// The largest frame the executor writes is 64 KiB of output; anything over this is not from it.
pub(crate) const MAX_FRAME: usize = 1024 * 1024;

/// The frames the executor writes: output (`O`, `R`), an end (`X`), a failure to start (`F`).
const FRAME_KINDS: [u8; 4] = [b'O', b'R', b'X', b'F'];

/// Frames queued per command before its stream waits for the reader.
const FRAMES_QUEUED: usize = 64;

/// One attach stream to a container's executor, shared by every command run in it.
pub(crate) struct Executor {
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
    /// Attaches to the container's executor and starts reading its frames.
    pub(crate) async fn attach(docker: &Docker, container: &str) -> Result<Arc<Self>, BollardError> {
        let options = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            ..Default::default()
        };
        let attached = docker.attach_container(container, Some(options)).await?;
        let mut output = attached.output;
        let waiters: Waiters = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let executor = Arc::new(Self {
            input: tokio::sync::Mutex::new(attached.input),
            waiters: waiters.clone(),
            // Ids start at a random point: another process attached to the same container sees
            // this one's frames too, and ignores ids it did not issue.
            next: AtomicU32::new(arbe_core::JobId::new().as_uuid().as_u128() as u32),
            alive: alive.clone(),
        });
        tokio::spawn(async move {
            let mut reader = FrameReader::default();
            'stream: while let Some(chunk) = output.next().await {
                let bytes = match chunk {
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => message,
                    Ok(_) => continue,
                    Err(_) => break,
                };
                let Ok(frames) = reader.push(&bytes) else {
                    tracing::warn!("the sandbox's executor stream broke the protocol; dropping it");
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
            // The stream ended (the container stopped, or the engine went away): commands still
            // waiting see their channel close, and the next command attaches again.
            alive.store(false, Ordering::SeqCst);
            waiters.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok(executor)
    }

    /// Whether the attach stream is still open.
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// A new command id and the channel its frames arrive on.
    pub(crate) fn register(&self) -> (u32, mpsc::Receiver<Frame>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(FRAMES_QUEUED);
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        (id, rx)
    }

    /// Stops routing frames of `id`.
    pub(crate) fn forget(&self, id: u32) {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// Sends one frame (written whole, so frames of concurrent commands never interleave).
    pub(crate) async fn send(&self, kind: u8, id: u32, payload: &[u8]) -> std::io::Result<()> {
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

/// The executor's stream broke the protocol.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Broken;

/// Cuts the executor's output stream into frames: a 9-byte header (kind, command id, length)
/// and the payload. The stream comes from inside the sandbox, so a frame the executor would
/// never write (over [`MAX_FRAME`], or of a kind it does not send) is refused rather than
/// buffered.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// Adds bytes; returns the whole frames they complete, with their command ids.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<(u32, Frame)>, Broken> {
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
pub(crate) fn start_payload(
    cwd: &str,
    argv: &[String],
    env: &[(String, arbe_core::SecretValue)],
) -> zeroize::Zeroizing<Vec<u8>> {
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
