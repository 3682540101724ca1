//! The Docker sandbox, through the Docker Engine API (bollard), never the CLI.
//!
//! - Images are built from `environment/` and tagged `prodbench-env:<environment digest>`,
//!   so an unchanged environment builds once and is reused across trials and jobs; within a
//!   process, concurrent trials of one environment wait for a single build ([`image`]).
//! - Containers run a keep-alive loop as PID 1 with the task's CPU and memory limits and no
//!   network unless the task allows it, labelled with job, trial and owner so a job (or
//!   `gc`) can find and remove its own.
//! - `exec` goes to prodbench's own exec server ([`prodbench_sandbox::init`]) inside the
//!   container: the prodbench binary, bind-mounted read-only, started by one Engine exec whose
//!   stdin and stdout then carry every command (about 1 ms a round trip instead of 40). Where
//!   the server cannot run (an image without a compatible C library, a remote daemon) or a
//!   command asks for another user, `exec` falls back to one Engine exec per command, wrapped
//!   in `sh` so it reports its PID first (on stderr, stripped before the caller sees it); on
//!   timeout the whole process tree under that PID is killed. `spawn` has no such fallback:
//!   without the server it is an error.
//! - `kill_all_processes` kills the container (the kernel kills every process in its PID
//!   namespace) and starts it again: the filesystem is kept, nothing the agent ran survives.
//! - `upload` and `download` are tar streams through the Engine's archive API
//!   ([`prodbench_sandbox::archive`]).

pub mod bootstrap;
mod image;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, ContainerSummary, ExecConfig, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, KillContainerOptions, ListContainersOptions, RemoveContainerOptions, UploadToContainerOptions,
    WaitContainerOptions,
};
use futures_util::{StreamExt, TryStreamExt};
use prodbench_sandbox::capture::HeadTail;
use prodbench_sandbox::init::{Client, INIT_ARG, INIT_PATH};
use prodbench_sandbox::{
    ExecOutput, ExecRequest, LABEL_JOB, LABEL_MANAGED, LABEL_OWNER, NetworkHandle, PreparedEnvironment, Provider, Removed, RemovedKind, Result, Sandbox,
    SandboxError, SpawnedProcess, StartSpec, archive, label_value, owner_is_alive,
};
use prodbench_task::{DOCKERFILE, ENVIRONMENT_DIR, NetworkMode, Task};

const BACKEND: &str = "docker";
/// Where `svc` is in every container: on the PATH of any Debian-like image.
const SVC_PATH: &str = "/usr/local/bin/svc";
/// First line the exec wrapper writes on stderr: `prodbench-pid:<pid>`.
const PID_MARKER: &str = "prodbench-pid:";
/// PID 1 of every container: sleeps forever, exits at once on SIGTERM.
const KEEPALIVE: &str = "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done";
/// How long the in-container exec server may take to say it is ready.
const SERVER_READY_WITHIN: Duration = Duration::from_secs(10);

/// Connects to the Docker daemon and creates sandboxes.
pub struct DockerProvider {
    docker: Docker,
    images: image::ImageCache,
    exec_server: Option<PathBuf>,
}

impl DockerProvider {
    /// Connects to the daemon at `DOCKER_HOST` or the default socket and agrees on an API
    /// version, so an unreachable daemon is one clear error up front.
    ///
    /// `exec_server` is a binary that serves [`prodbench_sandbox::init::serve`] when given
    /// [`INIT_ARG`] (the prodbench binary itself); it is mounted into every container for fast
    /// exec. Without it every command is an Engine exec.
    pub async fn connect(exec_server: Option<PathBuf>) -> Result<Self> {
        let unavailable = |reason: String| SandboxError::Unavailable {
            backend: "the Docker daemon",
            reason,
            hint: "start dockerd (see README: Set-up), or run with --env local".into(),
        };
        let docker = Docker::connect_with_local_defaults().map_err(|e| unavailable(e.to_string()))?;
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| unavailable("no answer within 10 s".into()))?
            .map_err(|e| unavailable(e.to_string()))?;
        docker.ping().await.map_err(|e| unavailable(e.to_string()))?;
        Ok(DockerProvider { images: image::ImageCache::new(docker.clone()), docker, exec_server })
    }

    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Removes `containers`, returning what was removed.
    async fn remove_all(&self, containers: Vec<ContainerSummary>) -> Result<Vec<Removed>> {
        let mut removed = Vec::new();
        for c in containers {
            let id = c.id.unwrap_or_default();
            self.remove(&id).await?;
            let name = c.names.and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string())).unwrap_or(id);
            removed.push(Removed { kind: RemovedKind::Container, name });
        }
        Ok(removed)
    }

    async fn list_labelled(&self, label: &str) -> Result<Vec<ContainerSummary>> {
        let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        self.docker.list_containers(Some(options)).await.map_err(|e| SandboxError::op("listing containers", e))
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            // Someone else (a concurrent cleanup or `gc`) is removing it already.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, message }) if message.contains("already in progress") => Ok(()),
            Err(e) => Err(SandboxError::op("removing a container", e)),
        }
    }
}

#[async_trait]
impl Provider for DockerProvider {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn unsupported_reason(&self, task: &Task) -> Option<String> {
        (!task.has_docker_environment()).then(|| format!("no {ENVIRONMENT_DIR}/{DOCKERFILE} and no [environment] docker_image: it runs only with --env local"))
    }

    async fn prepare(&self, task: &Task, build_timeout: Duration) -> Result<PreparedEnvironment> {
        self.images.prepare(task, build_timeout).await
    }

    async fn start(&self, env: &PreparedEnvironment, spec: &StartSpec) -> Result<Box<dyn Sandbox>> {
        let name = container_name(spec);
        let body = ContainerCreateBody {
            image: Some(env.reference.clone()),
            entrypoint: Some(vec!["/bin/sh".into(), "-c".into(), KEEPALIVE.into()]),
            cmd: Some(vec![]),
            working_dir: Some(env.workdir.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(spec.labels().into_iter().collect()),
            // A container in another's network namespace shares its hostname too.
            hostname: spec.join_network.is_none().then(|| "prodbench".into()),
            host_config: Some(HostConfig {
                nano_cpus: Some((spec.cpus * 1e9) as i64),
                memory: Some(spec.memory_mb as i64 * 1024 * 1024),
                network_mode: Some(match (&spec.join_network, spec.network) {
                    (Some(NetworkHandle { container: Some(id), .. }), _) => format!("container:{id}"),
                    (_, NetworkMode::None) => "none".into(),
                    (_, NetworkMode::Bridge) => "bridge".into(),
                }),
                // The exec server, and `svc` (the agent's command for its services): the
                // same binary under that name.
                binds: self
                    .exec_server
                    .as_ref()
                    .map(|program| vec![format!("{}:{INIT_PATH}:ro", program.display()), format!("{}:{SVC_PATH}:ro", program.display())]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let create = async {
            let options = CreateContainerOptions { name: Some(name.clone()), ..Default::default() };
            let created =
                self.docker.create_container(Some(options), body).await.map_err(|e| SandboxError::StartFailed(format!("creating container {name}: {e}")))?;
            let sandbox = DockerSandbox {
                docker: self.docker.clone(),
                id: created.id,
                workdir: env.workdir.clone(),
                server: tokio::sync::Mutex::new(if self.exec_server.is_some() { Server::NotStarted } else { Server::Unavailable }),
            };
            if let Err(e) = self.docker.start_container(&sandbox.id, None::<bollard::query_parameters::StartContainerOptions>).await {
                let _ = sandbox.stop().await;
                return Err(SandboxError::StartFailed(format!("starting container {name}: {e}")));
            }
            Ok(sandbox)
        };
        let sandbox = tokio::time::timeout(spec.start_timeout, create).await.map_err(|_| SandboxError::StartTimeout(spec.start_timeout))??;
        Ok(Box::new(sandbox))
    }

    async fn cleanup_job(&self, job_id: &str) -> Result<Vec<Removed>> {
        let containers = self.list_labelled(&format!("{LABEL_JOB}={}", label_value(job_id))).await?;
        self.remove_all(containers).await
    }

    async fn gc(&self, all: bool) -> Result<Vec<Removed>> {
        let containers = self.list_labelled(&format!("{LABEL_MANAGED}=true")).await?;
        let owner = |c: &ContainerSummary| c.labels.as_ref().and_then(|l| l.get(LABEL_OWNER)).cloned().unwrap_or_default();
        self.remove_all(containers.into_iter().filter(|c| all || !owner_is_alive(&owner(c))).collect()).await
    }
}

/// `prodbench-<job>-<trial>-<role>`, cut to Docker's limits.
fn container_name(spec: &StartSpec) -> String {
    let raw = format!("prodbench-{}-{}-{}", spec.job_id, spec.trial_id, spec.role);
    let clean: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    clean.chars().take(200).collect()
}

pub struct DockerSandbox {
    docker: Docker,
    id: String,
    workdir: String,
    server: tokio::sync::Mutex<Server>,
}

/// The state of a container's exec server.
enum Server {
    /// Not started yet, or its process was killed: start one on the next exec.
    NotStarted,
    Running(Arc<Client>),
    /// It cannot run in this container: every command is an Engine exec.
    Unavailable,
}

impl DockerSandbox {
    /// One Engine exec for one command: the fallback when the exec server cannot be used.
    async fn engine_exec(&self, request: ExecRequest) -> Result<ExecOutput> {
        let started = Instant::now();
        let mut cmd = vec!["/bin/sh".to_string(), "-c".into(), format!("echo {PID_MARKER}$$ >&2; exec \"$@\""), "prodbench-exec".into()];
        cmd.extend(request.argv);
        let config = ExecConfig {
            cmd: Some(cmd),
            env: Some(request.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            user: request.user.clone(),
            working_dir: Some(request.cwd.clone().unwrap_or_else(|| self.workdir.clone())),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.docker.create_exec(&self.id, config).await.map_err(|e| SandboxError::op("exec", e))?;
        let StartExecResults::Attached { mut output, .. } =
            self.docker.start_exec(&exec.id, None::<StartExecOptions>).await.map_err(|e| SandboxError::op("exec", e))?
        else {
            return Err(SandboxError::op("exec", "the daemon detached the exec"));
        };
        let mut collected = Collected::new(request.output_cap);
        let read = async {
            while let Some(chunk) = output.next().await {
                collected.push(chunk.map_err(|e| SandboxError::op("exec output", e))?);
            }
            Ok::<(), SandboxError>(())
        };
        let timed_out = match request.timeout {
            Some(limit) => match tokio::time::timeout(limit, read).await {
                Ok(result) => {
                    result?;
                    false
                }
                Err(_) => true,
            },
            None => {
                read.await?;
                false
            }
        };
        if let Some(pid) = collected.pid.filter(|_| timed_out) {
            self.kill_tree(pid).await;
        }
        let inspect = self.docker.inspect_exec(&exec.id).await.map_err(|e| SandboxError::op("exec inspect", e))?;
        Ok(ExecOutput {
            stdout: collected.stdout.text(),
            stderr: collected.stderr.text(),
            exit_code: if timed_out { None } else { inspect.exit_code.map(|c| c as i32) },
            timed_out,
            truncated_bytes: collected.stdout.dropped() + collected.stderr.dropped(),
            duration: started.elapsed(),
        })
    }

    /// The running exec server, started if need be; `None` when it cannot run here.
    async fn server(&self) -> Option<Arc<Client>> {
        let mut server = self.server.lock().await;
        match &*server {
            Server::Running(client) if !client.is_closed() => return Some(Arc::clone(client)),
            Server::Unavailable => return None,
            _ => {}
        }
        match self.start_server().await {
            Ok(client) => {
                let client = Arc::new(client);
                *server = Server::Running(Arc::clone(&client));
                Some(client)
            }
            Err(_) => {
                *server = Server::Unavailable;
                None
            }
        }
    }

    /// One Engine exec running the server; its attached stdin and stdout become the client.
    async fn start_server(&self) -> std::result::Result<Client, String> {
        let config = ExecConfig {
            cmd: Some(vec![INIT_PATH.into(), INIT_ARG.into()]),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            working_dir: Some("/".into()),
            ..Default::default()
        };
        let exec = self.docker.create_exec(&self.id, config).await.map_err(|e| e.to_string())?;
        let started = self.docker.start_exec(&exec.id, None::<StartExecOptions>).await.map_err(|e| e.to_string())?;
        let StartExecResults::Attached { mut output, input } = started else {
            return Err("the daemon detached the exec".into());
        };
        // The Engine multiplexes stdout and stderr on one stream: pass stdout on as bytes.
        let (mut to_client, from_server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Some(Ok(chunk)) = output.next().await {
                let LogOutput::StdOut { message } = chunk else { continue };
                if to_client.write_all(&message).await.is_err() {
                    break;
                }
            }
        });
        Client::connect(input, from_server, SERVER_READY_WITHIN).await
    }

    /// Kills the process tree rooted at `pid` (a PID inside the container), children first
    /// stopped so none can fork away.
    async fn kill_tree(&self, pid: u32) {
        let script = format!(
            "kill_tree() {{ kill -STOP \"$1\" 2>/dev/null; for t in /proc/$1/task/*; do for c in $(cat \"$t/children\" 2>/dev/null); do kill_tree \"$c\"; done; done; kill -KILL \"$1\" 2>/dev/null; }}; kill_tree {pid}"
        );
        let config = ExecConfig {
            cmd: Some(vec!["/bin/sh".into(), "-c".into(), script]),
            user: Some("0".into()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let Ok(exec) = self.docker.create_exec(&self.id, config).await else { return };
        if let Ok(StartExecResults::Attached { mut output, .. }) = self.docker.start_exec(&exec.id, None::<StartExecOptions>).await {
            while output.next().await.is_some() {}
        }
    }
}

/// Output collected from an exec stream, capped (head and tail, [`HeadTail`]).
struct Collected {
    stdout: HeadTail,
    stderr: HeadTail,
    pid: Option<u32>,
}

impl Collected {
    fn new(cap: usize) -> Self {
        Collected { stdout: HeadTail::new(cap), stderr: HeadTail::new(cap), pid: None }
    }

    fn push(&mut self, chunk: LogOutput) {
        let (is_stderr, message) = match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => (false, message),
            LogOutput::StdErr { message } => (true, message),
            LogOutput::StdIn { .. } => return,
        };
        let mut bytes = &message[..];
        if is_stderr && self.pid.is_none() {
            // The wrapper's marker line comes first on stderr.
            if let Some(rest) = bytes.strip_prefix(PID_MARKER.as_bytes()) {
                let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
                self.pid = std::str::from_utf8(&rest[..end]).ok().and_then(|p| p.trim().parse().ok());
                bytes = rest.get(end + 1..).unwrap_or_default();
            }
        }
        if is_stderr { &mut self.stderr } else { &mut self.stdout }.push(bytes);
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn id(&self) -> &str {
        &self.id
    }

    fn workdir(&self) -> &str {
        &self.workdir
    }

    async fn exec(&self, request: ExecRequest) -> Result<ExecOutput> {
        let server = if request.user.is_none() { self.server().await } else { None };
        if let Some(server) = server {
            return server.exec(request, &self.workdir).await;
        }
        self.engine_exec(request).await
    }

    async fn spawn(&self, request: ExecRequest) -> Result<SpawnedProcess> {
        if request.user.is_some() {
            return Err(SandboxError::op("spawn", "a spawned process runs through prodbench's exec server, which cannot change user"));
        }
        let Some(server) = self.server().await else {
            return Err(SandboxError::op("spawn", "spawning a process needs prodbench's exec server, which cannot run in this container"));
        };
        server.spawn(request, &self.workdir).await
    }

    async fn upload(&self, source: &Path, dest: &str) -> Result<()> {
        let bytes = archive::pack(source, dest).map_err(|e| SandboxError::op("upload", format!("{}: {e}", source.display())))?;
        let options = UploadToContainerOptions { path: "/".into(), ..Default::default() };
        self.docker
            .upload_to_container(&self.id, Some(options), bollard::body_full(bytes.into()))
            .await
            .map_err(|e| SandboxError::op("upload", format!("{} -> {dest}: {e}", source.display())))
    }

    async fn download(&self, source: &str, dest: &Path) -> Result<()> {
        let options = DownloadFromContainerOptions { path: source.into() };
        let chunks: Vec<bytes::Bytes> = self
            .docker
            .download_from_container(&self.id, Some(options))
            .try_collect()
            .await
            .map_err(|e| SandboxError::op("download", format!("{source}: {e}")))?;
        let bytes = chunks.concat();
        archive::unpack(&bytes, dest).map_err(|e| SandboxError::op("download", format!("{source} -> {}: {e}", dest.display())))
    }

    async fn kill_all_processes(&self) -> Result<()> {
        let mut server = self.server.lock().await;
        if matches!(*server, Server::Running(_)) {
            // It dies with the container; the next exec starts a fresh one.
            *server = Server::NotStarted;
        }
        drop(server);
        let kill = KillContainerOptions { signal: "SIGKILL".into() };
        match self.docker.kill_container(&self.id, Some(kill)).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {}
            Err(e) => return Err(SandboxError::op("killing the container's processes", e)),
        }
        let wait = WaitContainerOptions { condition: "not-running".into() };
        let mut waiting = self.docker.wait_container(&self.id, Some(wait));
        while let Some(next) = waiting.next().await {
            // A non-zero exit (137, killed) arrives as an error: either way it has stopped.
            if next.is_err() {
                break;
            }
        }
        self.docker
            .start_container(&self.id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(|e| SandboxError::op("restarting the container", e))
    }

    async fn network(&self) -> Result<NetworkHandle> {
        let inspect = self
            .docker
            .inspect_container(&self.id, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
            .map_err(|e| SandboxError::op("inspecting the container", e))?;
        let pid =
            inspect.state.and_then(|s| s.pid).filter(|p| *p > 0).ok_or_else(|| SandboxError::op("finding the container's network", "it is not running"))?;
        Ok(NetworkHandle { pid: pid as u32, container: Some(self.id.clone()) })
    }

    async fn stop(&self) -> Result<()> {
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match self.docker.remove_container(&self.id, Some(options)).await {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(e) => Err(SandboxError::op("removing the container", e)),
        }
    }
}
