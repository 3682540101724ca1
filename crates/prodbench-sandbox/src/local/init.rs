//! The process that runs inside a local sandbox and executes commands for the host.
//!
//! Starting one `bwrap` per command would give every command its own PID namespace, so a
//! server started in one command would die before the next. Instead each sandbox runs one
//! `bwrap` whose command is this server: it reads [`InitRequest`]s as JSON lines on stdin,
//! runs each in its own thread and process group, and writes an [`InitResponse`] per request
//! on stdout. Killing the `bwrap` process tears down the PID namespace and with it every
//! process the sandbox ever started, detached or not.
//!
//! Written with std threads, not async: it is tiny, starts fast, and must not depend on
//! anything the host crate set up.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ExecOutput;

/// How long to wait for a command's output pipes to close after it exits. A background
/// process it started may hold them open forever; what it wrote so far is returned.
const PIPE_GRACE: Duration = Duration::from_millis(100);

#[derive(Debug, Serialize, Deserialize)]
pub struct InitRequest {
    pub id: u64,
    pub argv: Vec<String>,
    pub cwd: String,
    pub env: BTreeMap<String, String>,
    pub timeout_ms: Option<u64>,
    pub output_cap: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct InitResponse {
    pub id: u64,
    pub output: ExecOutput,
}

/// Serves requests until stdin closes (the host went away), then exits.
pub fn serve() -> std::io::Result<()> {
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    // Announce readiness so the host knows the namespace is up before its first request.
    writeln!(stdout.lock().expect("stdout lock"), "ready")?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let request: InitRequest = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(err) => {
                eprintln!("prodbench sandbox init: bad request: {err}");
                continue;
            }
        };
        let stdout = Arc::clone(&stdout);
        std::thread::spawn(move || {
            let response = InitResponse { id: request.id, output: run(&request) };
            let json = serde_json::to_string(&response).expect("response serializes");
            let mut out = stdout.lock().expect("stdout lock");
            let _ = writeln!(out, "{json}").and_then(|_| out.flush());
        });
    }
    Ok(())
}

fn run(request: &InitRequest) -> ExecOutput {
    let started = Instant::now();
    let Some((program, args)) = request.argv.split_first() else {
        return failed_to_start(started, "empty command".into(), 127);
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(&request.env)
        .current_dir(&request.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let code = if err.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            return failed_to_start(started, format!("{program}: {err} (cwd {})", request.cwd), code);
        }
    };
    let pid = child.id() as i32;
    let (pipes_done, pipes_rx) = mpsc::channel();
    let stdout = spawn_reader(child.stdout.take().expect("piped"), request.output_cap, pipes_done.clone());
    let stderr = spawn_reader(child.stderr.take().expect("piped"), request.output_cap, pipes_done);

    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let timeout = request.timeout_ms.map(Duration::from_millis);
    let (status, timed_out) = match timeout {
        Some(limit) => match done_rx.recv_timeout(limit) {
            Ok(status) => (status.ok(), false),
            Err(_) => {
                // SAFETY: kill(2) on our own child's process group; no memory is touched.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                (done_rx.recv().ok().and_then(Result::ok), true)
            }
        },
        None => (done_rx.recv().ok().and_then(Result::ok), false),
    };
    let mut output = collect_output(pipes_rx, &stdout, &stderr);
    output.exit_code = if timed_out { None } else { status.and_then(|s| s.code().or_else(|| s.signal().map(|sig| 128 + sig))) };
    output.timed_out = timed_out;
    output.duration = started.elapsed();
    output
}

fn failed_to_start(started: Instant, message: String, code: i32) -> ExecOutput {
    ExecOutput { stderr: message, exit_code: Some(code), duration: started.elapsed(), ..ExecOutput::default() }
}

/// What one pipe produced so far; shared so that output is kept even when a background
/// process holds the pipe open past [`PIPE_GRACE`].
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    dropped: u64,
}

type SharedCapture = Arc<Mutex<Captured>>;

fn spawn_reader(mut pipe: impl Read + Send + 'static, cap: usize, done: mpsc::Sender<()>) -> SharedCapture {
    let captured = SharedCapture::default();
    let sink = Arc::clone(&captured);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut c = sink.lock().expect("capture lock");
                    let room = cap.saturating_sub(c.bytes.len()).min(n);
                    c.bytes.extend_from_slice(&buf[..room]);
                    c.dropped += (n - room) as u64;
                }
            }
        }
        let _ = done.send(());
    });
    captured
}

fn collect_output(done: mpsc::Receiver<()>, stdout: &SharedCapture, stderr: &SharedCapture) -> ExecOutput {
    let deadline = Instant::now() + PIPE_GRACE;
    for _ in 0..2 {
        if done.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_err() {
            break;
        }
    }
    let (out, err) = (stdout.lock().expect("capture lock"), stderr.lock().expect("capture lock"));
    ExecOutput {
        stdout: String::from_utf8_lossy(&out.bytes).into_owned(),
        stderr: String::from_utf8_lossy(&err.bytes).into_owned(),
        truncated_bytes: out.dropped + err.dropped,
        ..ExecOutput::default()
    }
}
