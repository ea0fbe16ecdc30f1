//! `arbe-sandboxd`'s framed protocol, spoken to the real binary over pipes (no Docker needed):
//! start, stdin, end of stdin, kill, a start frame that is broken, and two commands whose
//! frames interleave.

use std::{
    collections::HashMap,
    io::{Read, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

struct Executor {
    child: Child,
    input: ChildStdin,
    frames: mpsc::Receiver<(u8, u32, Vec<u8>)>,
}

impl Executor {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_arbe-sandboxd"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run arbe-sandboxd");
        let input = child.stdin.take().unwrap();
        let output = child.stdout.take().unwrap();
        let (tx, frames) = mpsc::channel();
        std::thread::spawn(move || read_frames(output, tx));
        Self { child, input, frames }
    }

    fn send(&mut self, kind: u8, id: u32, payload: &[u8]) {
        let mut frame = vec![kind];
        frame.extend_from_slice(&id.to_be_bytes());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        self.input.write_all(&frame).unwrap();
        self.input.flush().unwrap();
    }

    fn run(&mut self, id: u32, argv: &[&str], env: &[(&str, &str)]) {
        let mut fields = vec!["/tmp".to_owned(), argv.len().to_string()];
        fields.extend(argv.iter().map(|a| (*a).to_owned()));
        fields.push(env.len().to_string());
        fields.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        self.send(b'S', id, fields.join("\0").as_bytes());
    }

    /// Frames until command `id` ends: its stdout, stderr and end payload.
    fn collect(&self, id: u32) -> (Vec<u8>, Vec<u8>, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            let (kind, of, payload) = self.frames.recv_timeout(Duration::from_secs(20)).expect("a frame");
            assert_eq!(of, id, "a frame of another command");
            match kind {
                b'O' => out.extend(payload),
                b'R' => err.extend(payload),
                b'X' | b'F' => return (out, err, format!("{}:{}", kind as char, String::from_utf8_lossy(&payload))),
                other => panic!("unexpected frame {other}"),
            }
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_frames(mut output: ChildStdout, tx: mpsc::Sender<(u8, u32, Vec<u8>)>) {
    let mut header = [0u8; 9];
    while output.read_exact(&mut header).is_ok() {
        let id = u32::from_be_bytes(header[1..5].try_into().unwrap());
        let len = u32::from_be_bytes(header[5..9].try_into().unwrap()) as usize;
        let mut payload = vec![0; len];
        if output.read_exact(&mut payload).is_err() || tx.send((header[0], id, payload)).is_err() {
            return;
        }
    }
}

#[test]
fn a_command_runs_with_its_env_and_reports_its_exit() {
    let mut ex = Executor::start();
    ex.run(7, &["sh", "-c", "printf '%s' \"$X\"; echo oops >&2; exit 3"], &[("X", "a=b c")]);
    let (out, err, end) = ex.collect(7);
    assert_eq!((out.as_slice(), err.as_slice()), (&b"a=b c"[..], &b"oops\n"[..]));
    assert_eq!(end, "X:3\0\0");
}

#[test]
fn stdin_frames_reach_the_command_and_end_of_stdin_closes_it() {
    let mut ex = Executor::start();
    ex.run(1, &["cat"], &[]);
    ex.send(b'I', 1, b"hello ");
    ex.send(b'I', 1, b"world");
    ex.send(b'E', 1, b"");
    let (out, _, end) = ex.collect(1);
    assert_eq!(out, b"hello world");
    assert_eq!(end, "X:0\0\0");
}

#[test]
fn a_kill_frame_ends_the_whole_process_group() {
    let mut ex = Executor::start();
    ex.run(2, &["sh", "-c", "sleep 30 & echo started; wait"], &[]);
    let (kind, id, payload) = ex.frames.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!((kind, id, payload.as_slice()), (b'O', 2, &b"started\n"[..]));
    ex.send(b'K', 2, b"");
    let (_, _, end) = ex.collect(2);
    assert_eq!(end, "X:\09\0", "killed by SIGKILL");
}

#[test]
fn a_broken_start_frame_is_refused_and_the_executor_goes_on() {
    let mut ex = Executor::start();
    ex.send(b'S', 3, b"/tmp\0two\0sh");
    assert_eq!(ex.collect(3).2, "F:bad argc");
    ex.send(b'S', 4, &[0xff, 0xfe, 0]);
    assert_eq!(ex.collect(4).2, "F:the start frame is not UTF-8");
    ex.send(b'S', 5, b"/tmp\x003\x00sh");
    assert_eq!(ex.collect(5).2, "F:the start frame is cut short");
    ex.run(6, &["/no/such/program"], &[]);
    assert!(ex.collect(6).2.starts_with("F:/no/such/program:"));
    ex.run(8, &["echo", "still here"], &[]);
    assert_eq!(ex.collect(8).0, b"still here\n");
}

#[test]
fn two_commands_at_once_keep_their_own_frames() {
    let mut ex = Executor::start();
    ex.run(10, &["sh", "-c", "for i in 1 2 3 4 5; do echo a$i; sleep 0.01; done"], &[]);
    ex.run(11, &["sh", "-c", "for i in 1 2 3 4 5; do echo b$i; sleep 0.01; done"], &[]);
    let mut out: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut ended = 0;
    while ended < 2 {
        let (kind, id, payload) = ex.frames.recv_timeout(Duration::from_secs(20)).unwrap();
        match kind {
            b'O' => out.entry(id).or_default().extend(payload),
            b'X' => ended += 1,
            other => panic!("unexpected frame {other}"),
        }
    }
    assert_eq!(String::from_utf8_lossy(&out[&10]), "a1\na2\na3\na4\na5\n");
    assert_eq!(String::from_utf8_lossy(&out[&11]), "b1\nb2\nb3\nb4\nb5\n");
}
