//! The exec server that runs inside a sandbox, and the host's client for it.
//!
//! Starting a process per command through the backend is slow (a Docker exec costs three
//! Engine API calls and a runc start, about 40 ms) and, for bubblewrap, would give every
//! command its own PID namespace, so a server started in one command would die before the
//! next. Instead each sandbox runs one long-lived server, the prodbench binary itself started
//! with [`INIT_ARG`] from a read-only mount at [`INIT_PATH`]. It reads [`InitRequest`]s as JSON
//! lines on stdin, runs each in its own thread and process group (killed as a group on
//! timeout), and writes an [`InitResponse`] per request on stdout. The host side is
//! [`Client`], which numbers requests and routes responses back to their callers.
//!
//! A command's environment is the server's own (the container's, or empty under bwrap's
//! `--clearenv`) overlaid with the request's.
//!
//! The server is written with std threads, not async: it is tiny, starts fast, and must not
//! depend on anything the host crate set up.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

use crate::{ExecOutput, ExecRequest, Result, SandboxError};

/// Where the server binary is mounted inside every sandbox.
pub const INIT_PATH: &str = "/.prodbench/init";
/// The argument that makes the prodbench binary act as the server.
pub const INIT_ARG: &str = "__sandbox-init";
/// The server's first line, once it reads requests.
const READY: &str = "ready";

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
    writeln!(stdout.lock().expect("stdout lock"), "{READY}")?;
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

/// Callers waiting for a response, by request id; `closed` once the server is gone, so no
/// caller can start waiting on a server that will never answer.
#[derive(Default)]
struct Routes {
    waiting: HashMap<u64, oneshot::Sender<ExecOutput>>,
    closed: bool,
}

type Pending = Arc<Mutex<Routes>>;

/// The host's end of one running server.
pub struct Client {
    requests: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    pending: Pending,
    next_id: AtomicU64,
}

impl Client {
    /// Waits for the server's ready line on `responses`, then routes every later line to the
    /// request it answers. When `responses` ends (the server died), every waiting and later
    /// call fails. `Err` carries the first line the server wrote instead, if any.
    pub async fn connect(
        requests: impl AsyncWrite + Send + Unpin + 'static,
        responses: impl AsyncRead + Send + Unpin + 'static,
        ready_within: Duration,
    ) -> std::result::Result<Client, String> {
        let mut lines = BufReader::new(responses).lines();
        match tokio::time::timeout(ready_within, lines.next_line()).await {
            Ok(Ok(Some(line))) if line == READY => {}
            Ok(Ok(Some(line))) => return Err(format!("unexpected first line {line:?}")),
            Ok(Ok(None)) => return Err("it exited before it was ready".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("not ready within {ready_within:?}")),
        }
        let pending = Pending::default();
        let routes = Arc::clone(&pending);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(response) = serde_json::from_str::<InitResponse>(&line) else { continue };
                if let Some(reply) = routes.lock().expect("pending lock").waiting.remove(&response.id) {
                    let _ = reply.send(response.output);
                }
            }
            // The server is gone: dropping the senders fails every waiting exec.
            let mut routes = routes.lock().expect("pending lock");
            routes.closed = true;
            routes.waiting.clear();
        });
        Ok(Client { requests: tokio::sync::Mutex::new(Box::new(requests)), pending, next_id: AtomicU64::new(1) })
    }

    /// Whether the server has gone away (then every exec fails; start a new one).
    pub fn is_closed(&self) -> bool {
        self.pending.lock().expect("pending lock").closed
    }

    /// Runs one command; a request without a cwd runs in `workdir`. `request.user` is not
    /// supported (the server runs every command as its own user).
    pub async fn exec(&self, request: ExecRequest, workdir: &str) -> Result<ExecOutput> {
        let request = InitRequest {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            argv: request.argv,
            cwd: request.cwd.unwrap_or_else(|| workdir.to_string()),
            env: request.env,
            timeout_ms: request.timeout.map(|t| t.as_millis() as u64),
            output_cap: request.output_cap,
        };
        let started = Instant::now();
        let (reply, response) = oneshot::channel();
        {
            let mut routes = self.pending.lock().expect("pending lock");
            if routes.closed {
                return Err(SandboxError::op("exec", "the sandbox's exec server is gone"));
            }
            routes.waiting.insert(request.id, reply);
        }
        let mut line = serde_json::to_string(&request).expect("request serializes");
        line.push('\n');
        {
            let mut requests = self.requests.lock().await;
            let sent = async {
                requests.write_all(line.as_bytes()).await?;
                requests.flush().await
            };
            if let Err(e) = sent.await {
                self.pending.lock().expect("pending lock").waiting.remove(&request.id);
                return Err(SandboxError::op("exec", format!("the sandbox's exec server is gone: {e}")));
            }
        }
        match response.await {
            Ok(output) => Ok(output),
            // The server died with the command running. Usually the command killed it (an
            // agent's `kill -9 -1`), so this is the command's outcome, not an infrastructure
            // failure; if the sandbox itself is gone, the next exec says so.
            Err(_) => Ok(ExecOutput {
                stderr: "prodbench: the sandbox's exec server was killed while this command ran; its output is lost".into(),
                duration: started.elapsed(),
                ..ExecOutput::default()
            }),
        }
    }
}
