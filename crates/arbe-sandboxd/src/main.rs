//! The executor in the docker sandbox image: reads command frames on stdin, runs each command in
//! its own process group, and writes its output and end as frames on stdout.
#![doc = include_str!("../README.md")]

use std::{
    collections::HashMap,
    io::{self, Read, Write},
    os::unix::process::{CommandExt, ExitStatusExt},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread,
    time::Duration,
};

mod settings;

use settings::RunAs;

type Out = Arc<Mutex<io::Stdout>>;
type Running = Arc<Mutex<HashMap<u32, Job>>>;

/// One frame to the host. Frames are written whole under the lock, so they never interleave.
fn send(out: &Out, kind: u8, id: u32, payload: &[u8]) {
    let mut header = [0u8; 9];
    header[0] = kind;
    header[1..5].copy_from_slice(&id.to_be_bytes());
    header[5..9].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
    let _ = out.write_all(&header).and_then(|()| out.write_all(payload)).and_then(|()| out.flush());
}

/// The cgroup's OOM-kill count (cgroup v2 or v1), 0 when unknown.
fn oom_kills() -> u64 {
    ["/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .find_map(|line| line.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

/// Copies a child's output into frames until it closes.
fn pump(out: Out, kind: u8, id: u32, mut from: impl Read + Send + 'static) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            send(&out, kind, id, &buf[..n]);
        }
    })
}

/// A running command.
struct Job {
    pgid: u32,
    stdin: Option<mpsc::Sender<Option<Vec<u8>>>>,
}

/// Parses a start frame and spawns its command.
fn start(out: &Out, id: u32, payload: &[u8], running: &Running, run_as: Option<RunAs>) -> Result<(), String> {
    let text = std::str::from_utf8(payload).map_err(|_| "the start frame is not UTF-8".to_owned())?;
    let mut fields = text.split('\0');
    let mut next = || fields.next().ok_or_else(|| "the start frame is cut short".to_owned());
    let cwd = next()?.to_owned();
    let argc: usize = next()?.parse().map_err(|_| "bad argc")?;
    let argv: Vec<String> = (0..argc).map(|_| next().map(str::to_owned)).collect::<Result<_, _>>()?;
    let envc: usize = next()?.parse().map_err(|_| "bad envc")?;
    let env: Vec<(String, String)> = (0..envc)
        .map(|_| next().map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    let program = argv.first().ok_or("empty argv")?;
    let before = oom_kills();
    let mut command = Command::new(program);
    command
        .args(&argv[1..])
        .envs(env)
        .current_dir(&cwd)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(RunAs { uid, gid }) = run_as {
        // std drops supplementary groups, then sets the gid and the uid, in the child.
        command.uid(uid).gid(gid);
    }
    let mut child: Child = command.spawn().map_err(|e| format!("{program}: {e}"))?;
    let pgid = child.id();
    let stdout = pump(out.clone(), b'O', id, child.stdout.take().expect("piped"));
    let stderr = pump(out.clone(), b'R', id, child.stderr.take().expect("piped"));
    let (tx, rx) = mpsc::channel::<Option<Vec<u8>>>();
    let mut stdin: Option<ChildStdin> = child.stdin.take();
    // Standard input is written on its own thread: a command that does not read it must not
    // stall the others.
    thread::spawn(move || {
        while let Ok(Some(bytes)) = rx.recv() {
            if stdin.as_mut().is_some_and(|s| s.write_all(&bytes).is_err()) {
                break;
            }
        }
        drop(stdin.take());
    });
    running.lock().unwrap_or_else(|e| e.into_inner()).insert(id, Job { pgid, stdin: Some(tx) });
    let (out, running) = (out.clone(), running.clone());
    thread::spawn(move || {
        let status = child.wait();
        // Output that processes left behind still hold may trail the exit: give it a moment,
        // then report the end (a background process keeping the pipe open must not hold it).
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = stdout.join();
            let _ = stderr.join();
            let _ = done_tx.send(());
        });
        let _ = done_rx.recv_timeout(Duration::from_secs(1));
        running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        let (code, signal) = match &status {
            Ok(s) => (s.code(), s.signal()),
            Err(_) => (None, None),
        };
        // Killed outright, or a shell reporting its child killed (128 + 9): was it the memory cap?
        let killed = signal == Some(9) || code == Some(137);
        let oom = killed && oom_kills() > before;
        let show = |v: Option<i32>| v.map(|v| v.to_string()).unwrap_or_default();
        let payload = format!("{}\0{}\0{}", show(code), show(signal), if oom { "1" } else { "" });
        send(&out, b'X', id, payload.as_bytes());
    });
    Ok(())
}

/// SIGKILLs process group `pgid` through kill(2) itself: no `kill` program from the sandbox's
/// PATH (which a command could replace, and whose procps version reads `kill -9 -N` as "every
/// process"). Groups 0 and 1 (this one's own, and init's) are never signalled.
fn kill_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else { return };
    if pgid <= 1 {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: kill(2) takes two integers and reads or writes no memory of this process; a
    // negative pid names a process group, and `pgid > 1` keeps it from meaning "every process"
    // (-1) or "this process's group" (0).
    unsafe {
        unsafe extern "C" {
            fn kill(pid: i32, sig: i32) -> i32;
        }
        let _ = kill(-pgid, 9);
    }
}

fn main() {
    let run_as = match RunAs::from_env() {
        Ok(run_as) => run_as,
        Err(reason) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("arbe-sandboxd: {reason}");
            }
            std::process::exit(2);
        }
    };
    let out: Out = Arc::new(Mutex::new(io::stdout()));
    let running: Running = Arc::default();
    let mut input = io::stdin().lock();
    let mut header = [0u8; 9];
    // End of standard input (the container's stdin closed) ends the executor.
    while input.read_exact(&mut header).is_ok() {
        let kind = header[0];
        let id = u32::from_be_bytes(header[1..5].try_into().expect("4 bytes"));
        let len = u32::from_be_bytes(header[5..9].try_into().expect("4 bytes")) as usize;
        let mut payload = vec![0u8; len];
        if input.read_exact(&mut payload).is_err() {
            break;
        }
        match kind {
            b'S' => {
                if let Err(reason) = start(&out, id, &payload, &running, run_as) {
                    send(&out, b'F', id, reason.as_bytes());
                }
            }
            b'I' | b'E' => {
                let mut running = running.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(job) = running.get_mut(&id) {
                    let item = if kind == b'I' { Some(payload) } else { None };
                    let done = item.is_none();
                    if let Some(tx) = &job.stdin {
                        let _ = tx.send(item);
                    }
                    if done {
                        job.stdin = None;
                    }
                }
            }
            b'K' => {
                let pgid = running.lock().unwrap_or_else(|e| e.into_inner()).get(&id).map(|job| job.pgid);
                if let Some(pgid) = pgid {
                    kill_group(pgid);
                }
            }
            _ => {}
        }
    }
}
