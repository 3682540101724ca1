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
//! Spawned processes ([`Client::spawn`]) share the connection: a [`ProcessRequest`] (told
//! apart from an exec request by its `kind`) starts one in its own process group, feeds or
//! closes its stdin, or kills its group; the server answers with [`ProcessEvent`]s carrying
//! its stdout and stderr as they are read, then one `exit`. Bytes travel base64-encoded.
//!
//! A command's environment is the server's own (the container's, or empty under bwrap's
//! `--clearenv`) overlaid with the request's.
//!
//! The server is written with std threads, not async: it is tiny, starts fast, and must not
//! depend on anything the host crate set up.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::{oneshot, watch};

use crate::capture::HeadTail;
use crate::{ExecOutput, ExecRequest, ProcessExit, ProcessHandle, Result, SandboxError, SpawnedProcess, StderrTail};

/// Where the server binary is mounted inside every sandbox.
pub const INIT_PATH: &str = "/.prodbench/init";
/// The argument that makes the prodbench binary act as the server.
pub const INIT_ARG: &str = "__sandbox-init";
/// The server's first line, once it reads requests.
const READY: &str = "ready";

/// How long to wait for a command's output pipes to close after it exits. A background
/// process it started may hold them open forever; what it wrote so far is returned.
const PIPE_GRACE: Duration = Duration::from_millis(100);
/// Bytes read from a pipe at a time (and so the most one message carries).
const CHUNK: usize = 16 * 1024;

/// Runs one command to its end; answered by one [`InitResponse`].
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

/// Requests about a spawned process, named by the `id` of its `spawn`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProcessRequest {
    /// Answered by `stdout` and `stderr` events, then one `exit`.
    Spawn(SpawnRequest),
    /// Bytes (base64) for its stdin.
    Stdin {
        id: u64,
        data: String,
    },
    CloseStdin {
        id: u64,
    },
    /// Kills its process group.
    Kill {
        id: u64,
    },
}

/// Starts a process whose stdin and stdout stream over the connection.
#[derive(Debug, Serialize, Deserialize)]
pub struct SpawnRequest {
    pub id: u64,
    pub argv: Vec<String>,
    pub cwd: String,
    pub env: BTreeMap<String, String>,
    pub timeout_ms: Option<u64>,
}

/// What a spawned process did; bytes are base64.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProcessEvent {
    Stdout {
        id: u64,
        data: String,
    },
    Stderr {
        id: u64,
        data: String,
    },
    /// The last event of a process, after all of its output.
    Exit {
        id: u64,
        exit_code: Option<i32>,
        timed_out: bool,
    },
}

/// A line the server reads: a process request has a `kind`, an exec request none.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Request {
    Process(ProcessRequest),
    Exec(InitRequest),
}

/// A line the server writes, told apart the same way.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Response {
    Process(ProcessEvent),
    Exec(InitResponse),
}

/// The server's stdout, shared by every thread; one JSON line per message.
type Out = Arc<Mutex<std::io::Stdout>>;

fn send(out: &Out, message: &impl Serialize) {
    let json = serde_json::to_string(message).expect("message serializes");
    let mut out = out.lock().expect("stdout lock");
    let _ = writeln!(out, "{json}").and_then(|_| out.flush());
}

/// Serves requests until stdin closes (the host went away), then exits.
pub fn serve() -> std::io::Result<()> {
    let out = Out::new(Mutex::new(std::io::stdout()));
    // Announce readiness so the host knows the namespace is up before its first request.
    writeln!(out.lock().expect("stdout lock"), "{READY}")?;
    let processes = Arc::new(Processes::default());
    for line in std::io::stdin().lock().lines() {
        match serde_json::from_str::<Request>(&line?) {
            Ok(Request::Exec(request)) => {
                let out = Arc::clone(&out);
                std::thread::spawn(move || send(&out, &InitResponse { id: request.id, output: run(&request) }));
            }
            Ok(Request::Process(request)) => processes.handle(request, &out),
            // A line this server cannot read comes from no host of its own version, and it has
            // no id to answer. Nothing reads the server's stderr (the Docker backend drops it,
            // the local one reads it only when bwrap fails to start, and an unread pipe
            // would block the server once full), so the line is skipped.
            Err(_) => {}
        }
    }
    Ok(())
}

/// Starts `argv` in its own process group. `Err` holds a message and the exit code of a
/// command that could not start (127: not found).
fn start(argv: &[String], cwd: &str, env: &BTreeMap<String, String>, stdin: Stdio) -> std::result::Result<Child, (String, i32)> {
    let Some((program, args)) = argv.split_first() else {
        return Err(("empty command".into(), 127));
    };
    let mut command = Command::new(program);
    command.args(args).envs(env).current_dir(cwd).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    command.spawn().map_err(|err| {
        let code = if err.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
        (format!("{program}: {err} (cwd {cwd})"), code)
    })
}

fn run(request: &InitRequest) -> ExecOutput {
    let started = Instant::now();
    let mut child = match start(&request.argv, &request.cwd, &request.env, Stdio::null()) {
        Ok(child) => child,
        Err((message, code)) => {
            return ExecOutput { stderr: message, exit_code: Some(code), duration: started.elapsed(), ..ExecOutput::default() };
        }
    };
    let (pipes_done, pipes_rx) = mpsc::channel();
    let stdout = capture(child.stdout.take().expect("piped"), request.output_cap, pipes_done.clone());
    let stderr = capture(child.stderr.take().expect("piped"), request.output_cap, pipes_done);
    let (status, timed_out) = wait_with_timeout(child, request.timeout_ms.map(Duration::from_millis));
    await_pipes(&pipes_rx, 2);
    let mut output = collect_output(&stdout, &stderr);
    output.exit_code = exit_code(status, timed_out);
    output.timed_out = timed_out;
    output.duration = started.elapsed();
    output
}

/// Waits for `child`, killing its process group once `timeout` has passed. Returns its exit
/// status, if known, and whether it timed out.
fn wait_with_timeout(mut child: Child, timeout: Option<Duration>) -> (Option<ExitStatus>, bool) {
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    match timeout.map(|limit| done_rx.recv_timeout(limit)) {
        Some(Ok(status)) => (status.ok(), false),
        Some(Err(_)) => {
            kill_group(pid);
            (done_rx.recv().ok().and_then(Result::ok), true)
        }
        None => (done_rx.recv().ok().and_then(Result::ok), false),
    }
}

fn exit_code(status: Option<ExitStatus>, timed_out: bool) -> Option<i32> {
    if timed_out {
        return None;
    }
    status.and_then(|s| s.code().or_else(|| s.signal().map(|sig| 128 + sig)))
}

fn kill_group(pid: u32) {
    // SAFETY: kill(2) on the process group of a child we started; no memory is touched.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
}

/// Reads `pipe` to its end on its own thread, handing each chunk to `sink`, then signals `done`.
fn read_pipe(mut pipe: impl Read + Send + 'static, done: mpsc::Sender<()>, mut sink: impl FnMut(&[u8]) + Send + 'static) {
    std::thread::spawn(move || {
        let mut buf = [0u8; CHUNK];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink(&buf[..n]),
            }
        }
        let _ = done.send(());
    });
}

/// Waits for `count` pipe readers to finish, at most [`PIPE_GRACE`] in all.
fn await_pipes(done: &mpsc::Receiver<()>, count: usize) {
    let deadline = Instant::now() + PIPE_GRACE;
    for _ in 0..count {
        if done.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_err() {
            break;
        }
    }
}

/// What one pipe produced so far; shared so that output is kept even when a background
/// process holds the pipe open past [`PIPE_GRACE`].
type SharedCapture = Arc<Mutex<HeadTail>>;

fn capture(pipe: impl Read + Send + 'static, cap: usize, done: mpsc::Sender<()>) -> SharedCapture {
    let captured = Arc::new(Mutex::new(HeadTail::new(cap)));
    let sink = Arc::clone(&captured);
    read_pipe(pipe, done, move |chunk| sink.lock().expect("capture lock").push(chunk));
    captured
}

fn collect_output(stdout: &SharedCapture, stderr: &SharedCapture) -> ExecOutput {
    let (out, err) = (stdout.lock().expect("capture lock"), stderr.lock().expect("capture lock"));
    ExecOutput { stdout: out.text(), stderr: err.text(), truncated_bytes: out.dropped() + err.dropped(), ..ExecOutput::default() }
}

/// The server's spawned processes that still run, by id.
#[derive(Default)]
struct Processes(Mutex<HashMap<u64, Spawned>>);

struct Spawned {
    pid: u32,
    /// Feeds its stdin; `None` once the host closed it.
    stdin: Option<mpsc::Sender<Vec<u8>>>,
}

impl Processes {
    fn handle(self: &Arc<Self>, request: ProcessRequest, out: &Out) {
        let mut running = self.0.lock().expect("processes lock");
        match request {
            ProcessRequest::Spawn(request) => {
                // Registered under the lock its end-of-process thread takes to remove it.
                let id = request.id;
                if let Some(spawned) = self.spawn(request, out) {
                    running.insert(id, spawned);
                }
            }
            ProcessRequest::Stdin { id, data } => {
                let stdin = running.get(&id).and_then(|p| p.stdin.as_ref());
                if let (Some(stdin), Ok(bytes)) = (stdin, BASE64.decode(data)) {
                    let _ = stdin.send(bytes);
                }
            }
            ProcessRequest::CloseStdin { id } => {
                if let Some(process) = running.get_mut(&id) {
                    process.stdin = None;
                }
            }
            ProcessRequest::Kill { id } => {
                if let Some(process) = running.get(&id) {
                    kill_group(process.pid);
                }
            }
        }
    }

    /// Streams a started process's output and reports its end on threads of its own; a
    /// process that could not start is reported at once.
    fn spawn(self: &Arc<Self>, request: SpawnRequest, out: &Out) -> Option<Spawned> {
        let id = request.id;
        let mut child = match start(&request.argv, &request.cwd, &request.env, Stdio::piped()) {
            Ok(child) => child,
            Err((message, code)) => {
                send(out, &ProcessEvent::Stderr { id, data: BASE64.encode(message) });
                send(out, &ProcessEvent::Exit { id, exit_code: Some(code), timed_out: false });
                return None;
            }
        };
        let (pipes_done, pipes_rx) = mpsc::channel();
        let stream = |kind: fn(u64, String) -> ProcessEvent| {
            let out = Arc::clone(out);
            move |chunk: &[u8]| send(&out, &kind(id, BASE64.encode(chunk)))
        };
        read_pipe(child.stdout.take().expect("piped"), pipes_done.clone(), stream(|id, data| ProcessEvent::Stdout { id, data }));
        read_pipe(child.stderr.take().expect("piped"), pipes_done, stream(|id, data| ProcessEvent::Stderr { id, data }));
        let spawned = Spawned { pid: child.id(), stdin: Some(feed(child.stdin.take().expect("piped"))) };
        let (processes, out) = (Arc::clone(self), Arc::clone(out));
        std::thread::spawn(move || {
            let pid = child.id();
            let (status, timed_out) = wait_with_timeout(child, request.timeout_ms.map(Duration::from_millis));
            kill_group(pid); // what it left behind
            await_pipes(&pipes_rx, 2);
            processes.0.lock().expect("processes lock").remove(&id);
            send(&out, &ProcessEvent::Exit { id, exit_code: exit_code(status, timed_out), timed_out });
        });
        Some(spawned)
    }
}

/// A thread writing what it is sent to `pipe`; dropping the sender closes the pipe.
fn feed(mut pipe: ChildStdin) -> mpsc::Sender<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        for chunk in rx {
            if pipe.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    tx
}

/// What the host holds for requests in flight; `closed` once the server is gone, so no
/// caller can start waiting on a server that will never answer.
#[derive(Default)]
struct Routes {
    /// Exec callers waiting for their output.
    waiting: HashMap<u64, oneshot::Sender<ExecOutput>>,
    processes: HashMap<u64, ProcessRoute>,
    closed: bool,
}

/// Where a spawned process's events go.
struct ProcessRoute {
    stdout: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    stderr: StderrTail,
    exit: watch::Sender<Option<ProcessExit>>,
}

type Pending = Arc<Mutex<Routes>>;

impl Routes {
    fn deliver(&mut self, response: Response) {
        let decode = |data: String| BASE64.decode(data).ok();
        match response {
            Response::Exec(response) => {
                if let Some(reply) = self.waiting.remove(&response.id) {
                    let _ = reply.send(response.output);
                }
            }
            Response::Process(ProcessEvent::Stdout { id, data }) => {
                if let (Some(route), Some(bytes)) = (self.processes.get(&id), decode(data)) {
                    let _ = route.stdout.send(bytes);
                }
            }
            Response::Process(ProcessEvent::Stderr { id, data }) => {
                if let (Some(route), Some(bytes)) = (self.processes.get(&id), decode(data)) {
                    route.stderr.push(&bytes);
                }
            }
            Response::Process(ProcessEvent::Exit { id, exit_code, timed_out }) => {
                // Dropping the route ends the host's stdout once it has what came before.
                if let Some(route) = self.processes.remove(&id) {
                    let _ = route.exit.send(Some(ProcessExit { exit_code, timed_out }));
                }
            }
        }
    }

    /// The server is gone: every waiting exec fails, every spawned process ends.
    fn close(&mut self) {
        self.closed = true;
        self.waiting.clear();
        for route in self.processes.values() {
            route.stderr.push(b"\nprodbench: the sandbox's exec server went away while this process ran\n");
        }
        self.processes.clear();
    }

    fn forget(&mut self, id: u64) {
        self.waiting.remove(&id);
        self.processes.remove(&id);
    }
}

/// The server's stdin, shared by every caller.
#[derive(Clone)]
struct Requests(Arc<tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>>);

impl Requests {
    async fn send(&self, message: &impl Serialize) -> std::io::Result<()> {
        let mut line = serde_json::to_string(message).expect("request serializes");
        line.push('\n');
        let mut requests = self.0.lock().await;
        requests.write_all(line.as_bytes()).await?;
        requests.flush().await
    }
}

/// The host's end of one running server.
pub struct Client {
    requests: Requests,
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
                if let Ok(response) = serde_json::from_str::<Response>(&line) {
                    routes.lock().expect("pending lock").deliver(response);
                }
            }
            routes.lock().expect("pending lock").close();
        });
        let requests = Requests(Arc::new(tokio::sync::Mutex::new(Box::new(requests))));
        Ok(Client { requests, pending, next_id: AtomicU64::new(1) })
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
        self.send_routed("exec", request.id, &request, |routes| {
            routes.waiting.insert(request.id, reply);
        })
        .await?;
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

    /// Starts a process with its stdin and stdout connected to the host (see
    /// [`SpawnedProcess`]); a request without a cwd runs in `workdir`. `request.user` and
    /// `request.output_cap` do not apply.
    pub async fn spawn(&self, request: ExecRequest, workdir: &str) -> Result<SpawnedProcess> {
        let request = SpawnRequest {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            argv: request.argv,
            cwd: request.cwd.unwrap_or_else(|| workdir.to_string()),
            env: request.env,
            timeout_ms: request.timeout.map(|t| t.as_millis() as u64),
        };
        let id = request.id;
        let (stdout_tx, stdout_rx) = tokio::sync::mpsc::unbounded_channel();
        let (exit_tx, exit_rx) = watch::channel(None);
        let stderr = StderrTail::default();
        let route = ProcessRoute { stdout: stdout_tx, stderr: stderr.clone(), exit: exit_tx };
        self.send_routed("spawn", id, &ProcessRequest::Spawn(request), |routes| {
            routes.processes.insert(id, route);
        })
        .await?;
        let (stdin, stdin_end) = tokio::io::duplex(CHUNK);
        let (stdout, stdout_end) = tokio::io::duplex(CHUNK);
        let (kill_switch, killed) = oneshot::channel();
        tokio::spawn(forward_stdout(stdout_rx, stdout_end));
        tokio::spawn(forward_stdin(self.requests.clone(), id, stdin_end, killed, exit_rx.clone()));
        Ok(SpawnedProcess { stdin: Box::new(stdin), stdout: Box::new(stdout), handle: ProcessHandle::new(kill_switch, exit_rx, stderr) })
    }

    /// Registers where the answers to request `id` go, then sends `message`.
    async fn send_routed(&self, operation: &'static str, id: u64, message: &impl Serialize, register: impl FnOnce(&mut Routes)) -> Result<()> {
        {
            let mut routes = self.pending.lock().expect("pending lock");
            if routes.closed {
                return Err(SandboxError::op(operation, "the sandbox's exec server is gone"));
            }
            register(&mut routes);
        }
        if let Err(e) = self.requests.send(message).await {
            self.pending.lock().expect("pending lock").forget(id);
            return Err(SandboxError::op(operation, format!("the sandbox's exec server is gone: {e}")));
        }
        Ok(())
    }
}

/// Writes a spawned process's stdout to the host's end as it arrives, until the process ends.
async fn forward_stdout(mut chunks: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>, mut stdout: DuplexStream) {
    while let Some(chunk) = chunks.recv().await {
        if stdout.write_all(&chunk).await.is_err() {
            return;
        }
    }
}

/// Sends what the host writes to a spawned process's stdin, until the process ends. Closes
/// its stdin when the host's end is shut down or dropped, and kills it when `killed` resolves
/// (its handle was dropped or killed).
async fn forward_stdin(
    requests: Requests,
    id: u64,
    mut stdin: DuplexStream,
    mut killed: oneshot::Receiver<()>,
    mut exit: watch::Receiver<Option<ProcessExit>>,
) {
    let mut buf = vec![0u8; CHUNK];
    let mut open = true;
    loop {
        let message = tokio::select! {
            read = stdin.read(&mut buf), if open => match read {
                Ok(n) if n > 0 => ProcessRequest::Stdin { id, data: BASE64.encode(&buf[..n]) },
                _ => {
                    open = false;
                    ProcessRequest::CloseStdin { id }
                }
            },
            _ = &mut killed => ProcessRequest::Kill { id },
            _ = exit.wait_for(Option::is_some) => return,
        };
        let last = matches!(message, ProcessRequest::Kill { .. });
        if requests.send(&message).await.is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_lines_keep_their_format_beside_process_messages() {
        let exec = r#"{"id":1,"argv":["true"],"cwd":"/","env":{},"timeout_ms":null,"output_cap":10}"#;
        assert!(matches!(serde_json::from_str(exec), Ok(Request::Exec(InitRequest { id: 1, .. }))));
        let kill = serde_json::to_string(&ProcessRequest::Kill { id: 2 }).unwrap();
        assert_eq!(kill, r#"{"kind":"kill","id":2}"#);
        assert!(matches!(serde_json::from_str(&kill), Ok(Request::Process(ProcessRequest::Kill { id: 2 }))));
        let spawn = ProcessRequest::Spawn(SpawnRequest { id: 3, argv: vec!["cat".into()], cwd: "/".into(), env: BTreeMap::new(), timeout_ms: None });
        let spawn = serde_json::to_string(&spawn).unwrap();
        assert!(matches!(serde_json::from_str(&spawn), Ok(Request::Process(ProcessRequest::Spawn(SpawnRequest { id: 3, .. })))), "{spawn}");

        let output = serde_json::to_string(&InitResponse { id: 4, output: ExecOutput::default() }).unwrap();
        assert!(matches!(serde_json::from_str(&output), Ok(Response::Exec(InitResponse { id: 4, .. }))));
        let exit = serde_json::to_string(&ProcessEvent::Exit { id: 5, exit_code: Some(0), timed_out: false }).unwrap();
        assert!(matches!(serde_json::from_str(&exit), Ok(Response::Process(ProcessEvent::Exit { id: 5, .. }))));
    }
}
