//! The sandbox contract, checked the same way on both real backends: exec returns data,
//! background processes live between execs, `kill_all_processes` kills even detached ones
//! and keeps files, timeouts kill the command's tree, uploads and downloads round-trip, a
//! command that kills the in-sandbox exec server loses only its own output, and spawned
//! processes stream exact bytes both ways and die with their handle.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use prodbench_docker::DockerProvider;
use prodbench_sandbox::local::LocalProvider;
use prodbench_sandbox::{ExecRequest, ProcessExit, Provider, Sandbox, SandboxError, SpawnedProcess, StartSpec};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::timeout;

/// How long a spawned process's output may take to arrive.
const PROMPT: Duration = Duration::from_secs(5);

fn task(dir: &std::path::Path) -> prodbench_task::Task {
    write(dir, "task.toml", "[task]\nname = \"sandbox-contract\"\n");
    write(dir, "instruction.md", "x\n");
    write(dir, "environment/Dockerfile", "FROM debian:bookworm-slim\nWORKDIR /app\n");
    write(dir, "environment/seed.txt", "seed\n");
    write(dir, "tests/test.sh", "true\n");
    prodbench_task::load_task(dir).task.expect("valid task")
}

async fn start(provider: &dyn Provider, task: &prodbench_task::Task, trial: &str) -> Box<dyn Sandbox> {
    let env = provider.prepare(task, Duration::from_secs(600)).await.expect("prepare");
    let spec = StartSpec::for_task(task, "contract-test", trial, "agent", Duration::from_secs(60));
    provider.start(&env, &spec).await.expect("start")
}

async fn sh(sandbox: &dyn Sandbox, script: &str) -> prodbench_sandbox::ExecOutput {
    sandbox.exec(ExecRequest::shell(script).timeout(Duration::from_secs(30))).await.expect("exec")
}

/// How many live processes' command lines start with `prefix` (zombies have none).
async fn count_processes(sandbox: &dyn Sandbox, prefix: &str) -> usize {
    let script = format!("for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done | grep -c '^{prefix}' || true");
    sh(sandbox, &script).await.stdout.trim().parse().expect("a count")
}

/// Waits (a few seconds at most) until `count_processes` is `n`; returns the last count.
async fn await_count(sandbox: &dyn Sandbox, prefix: &str, n: usize) -> usize {
    let mut count = count_processes(sandbox, prefix).await;
    for _ in 0..50 {
        if count == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        count = count_processes(sandbox, prefix).await;
    }
    count
}

fn cat() -> ExecRequest {
    ExecRequest { argv: vec!["cat".into()], ..ExecRequest::shell("") }
}

/// Reads one line of a spawned process's stdout, failing if it does not come promptly.
async fn read_line(stdout: &mut BufReader<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut line = String::new();
    timeout(PROMPT, stdout.read_line(&mut line)).await.expect("a line arrives promptly").unwrap();
    line
}

/// Spawned processes: prompt, exact streams both ways, EOF when they exit, gone when killed,
/// dropped or timed out.
async fn check_spawn(sandbox: &dyn Sandbox) {
    // Each line written comes back at once, with stdin still open; closing stdin ends `cat`.
    let SpawnedProcess { mut stdin, stdout, handle } = sandbox.spawn(cat()).await.expect("spawn");
    let mut stdout = BufReader::new(stdout);
    for id in 0..5 {
        let line = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id}}}\n");
        stdin.write_all(line.as_bytes()).await.unwrap();
        assert_eq!(read_line(&mut stdout).await, line);
    }
    assert_eq!(sh(sandbox, "echo beside").await.stdout, "beside\n", "exec works beside a spawned process");
    stdin.shutdown().await.unwrap();
    let mut rest = Vec::new();
    timeout(PROMPT, stdout.read_to_end(&mut rest)).await.expect("stdout ends after stdin closes").unwrap();
    assert!(rest.is_empty());
    assert_eq!(timeout(PROMPT, handle.wait()).await.unwrap(), ProcessExit { exit_code: Some(0), timed_out: false });

    // A MiB of every byte value goes through and back intact.
    let data: Vec<u8> = (0..1u32 << 20).map(|i| (i ^ (i >> 8)) as u8).collect();
    let SpawnedProcess { mut stdin, mut stdout, handle: _alive } = sandbox.spawn(cat()).await.expect("spawn");
    let write = async {
        stdin.write_all(&data).await.unwrap();
        stdin.shutdown().await.unwrap();
    };
    let mut echoed = Vec::new();
    let (_, read) = timeout(Duration::from_secs(60), futures_util::future::join(write, stdout.read_to_end(&mut echoed))).await.expect("a MiB round trip");
    read.unwrap();
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "bytes changed on the way");

    // A process that exits on its own ends its stdout; cwd, env, exit code and stderr are kept.
    let request = ExecRequest::shell("pwd; echo $FOO; echo err >&2; exit 7").cwd("/tmp").envs(&[("FOO".to_string(), "bar".to_string())].into());
    let mut done = sandbox.spawn(request).await.expect("spawn");
    let mut out = String::new();
    timeout(PROMPT, done.stdout.read_to_string(&mut out)).await.expect("stdout ends when the process exits").unwrap();
    assert_eq!(out, "/tmp\nbar\n");
    assert_eq!(done.handle.wait().await, ProcessExit { exit_code: Some(7), timed_out: false });
    assert_eq!(done.handle.stderr_tail(), "err\n");

    // Killing a process kills its group.
    let mut killed = sandbox.spawn(ExecRequest::shell("sleep 3001 & echo started; sleep 3001")).await.expect("spawn");
    assert_eq!(read_line(&mut BufReader::new(&mut killed.stdout)).await, "started\n");
    assert_eq!(await_count(sandbox, "sleep 3001", 2).await, 2);
    killed.handle.kill();
    assert_eq!(timeout(PROMPT, killed.handle.wait()).await.unwrap(), ProcessExit { exit_code: Some(128 + 9), timed_out: false });
    assert_eq!(count_processes(sandbox, "sleep 3001").await, 0, "kill left processes");

    // So does dropping it.
    let mut dropped = sandbox.spawn(ExecRequest::shell("sleep 3002 & echo started; sleep 3002")).await.expect("spawn");
    assert_eq!(read_line(&mut BufReader::new(&mut dropped.stdout)).await, "started\n");
    assert_eq!(await_count(sandbox, "sleep 3002", 2).await, 2);
    drop(dropped);
    assert_eq!(await_count(sandbox, "sleep 3002", 0).await, 0, "dropping a spawned process left processes");

    // The request's timeout kills it.
    let slow = sandbox.spawn(ExecRequest::shell("sleep 3003").timeout(Duration::from_millis(300))).await.expect("spawn");
    assert_eq!(timeout(PROMPT, slow.handle.wait()).await.unwrap(), ProcessExit { exit_code: None, timed_out: true });
}

/// How a backend is expected to run commands.
#[derive(PartialEq)]
enum Exec {
    /// Through prodbench's exec server inside the sandbox.
    Server,
    /// One backend call per command (Docker without a server binary).
    PerCommand,
}

async fn check_contract(provider: Arc<dyn Provider>, exec: Exec) {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path());
    let trial = format!("contract-{}-{}", provider.name(), if exec == Exec::Server { "server" } else { "per-command" });
    let sandbox = start(provider.as_ref(), &task, &trial).await;

    // Commands run where they are expected to (a silent fallback would hide a slow path).
    let parent = sh(sandbox.as_ref(), "tr '\\0' ' ' < /proc/$PPID/cmdline").await.stdout;
    assert_eq!(parent.contains("__sandbox-init"), exec == Exec::Server, "parent of a command: {parent:?}");

    // Exit codes, stdout, stderr, cwd and env are data.
    let out = sandbox
        .exec(ExecRequest::shell("echo out; echo err >&2; pwd; echo $FOO; exit 3").cwd("/tmp").envs(&[("FOO".to_string(), "bar".to_string())].into()))
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(3));
    assert_eq!(out.stdout, "out\n/tmp\nbar\n");
    assert_eq!(out.stderr, "err\n");
    let missing = sandbox.exec(ExecRequest { argv: vec!["no-such-program".into()], ..ExecRequest::shell("") }).await.unwrap();
    assert_eq!(missing.exit_code, Some(127), "{missing:?}");

    // The workspace starts from the environment (COPY-less Docker image has WORKDIR only).
    assert_eq!(sandbox.workdir(), "/app");

    // Output is capped to its head and tail; the cut is counted and marked where it is.
    let mut big = ExecRequest::shell("head -c 100000 /dev/zero | tr '\\0' x; echo END");
    big.output_cap = 1000;
    let out = sandbox.exec(big).await.unwrap();
    let kept = |n| "x".repeat(n);
    assert_eq!(out.stdout, format!("{}{}{}END\n", kept(500), prodbench_sandbox::capture::cut_marker(99004), kept(496)));
    assert_eq!(out.truncated_bytes, 99004);

    // A timeout kills the command and its children.
    let out = sandbox.exec(ExecRequest::shell("sleep 300 & sleep 300; echo never").timeout(Duration::from_millis(500))).await.unwrap();
    assert!(out.timed_out && out.exit_code.is_none(), "{out:?}");
    assert_eq!(count_processes(sandbox.as_ref(), "sleep 300").await, 0, "timed-out command left processes");

    // Processes spawned with their streams connected to the host (only through the server).
    let survivor = if exec == Exec::Server {
        check_spawn(sandbox.as_ref()).await;
        Some(sandbox.spawn(cat()).await.expect("spawn"))
    } else {
        assert!(matches!(sandbox.spawn(cat()).await.err(), Some(SandboxError::Operation { .. })));
        None
    };

    // A detached background process survives between execs...
    sh(sandbox.as_ref(), "setsid sh -c 'while true; do date +%s%N > /tmp/alive; sleep 0.05; done' >/dev/null 2>&1 &").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = sh(sandbox.as_ref(), "cat /tmp/alive").await.stdout;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = sh(sandbox.as_ref(), "cat /tmp/alive").await.stdout;
    assert_ne!(first, second, "background process should still be running");

    // ...and kill_all_processes kills it while keeping the files.
    sandbox.kill_all_processes().await.unwrap();
    let after_kill = sh(sandbox.as_ref(), "cat /tmp/alive").await.stdout;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = sh(sandbox.as_ref(), "cat /tmp/alive").await.stdout;
    assert_eq!(after_kill, later, "the writer survived kill_all_processes");
    assert!(!later.is_empty(), "files must survive kill_all_processes");
    if let Some(mut cat) = survivor {
        let mut rest = Vec::new();
        timeout(PROMPT, cat.stdout.read_to_end(&mut rest)).await.expect("kill_all_processes ends a spawned process's stdout").unwrap();
        timeout(PROMPT, cat.handle.wait()).await.expect("kill_all_processes ends a spawned process");
        assert!(cat.handle.stderr_tail().contains("went away"), "{:?}", cat.handle.stderr_tail());
    }

    // Upload and download round-trip a directory.
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "a/b.txt", "hello");
    sandbox.upload(&src.path().join("a"), "/tests/up").await.unwrap();
    assert_eq!(sh(sandbox.as_ref(), "cat /tests/up/b.txt").await.stdout, "hello");
    let back = tempfile::tempdir().unwrap();
    sandbox.download("/tests/up", &back.path().join("down")).await.unwrap();
    assert_eq!(std::fs::read_to_string(back.path().join("down/b.txt")).unwrap(), "hello");

    // A command that kills the exec server loses its own output, not the sandbox.
    let killer = sh(sandbox.as_ref(), "echo lost; kill -9 $PPID; sleep 1").await;
    if exec == Exec::Server {
        assert!(killer.exit_code.is_none() && killer.stderr.contains("exec server was killed"), "{killer:?}");
    }
    assert_eq!(sh(sandbox.as_ref(), "cat /tests/up/b.txt").await.stdout, "hello", "the sandbox works after its server was killed");

    sandbox.stop().await.unwrap();
    sandbox.stop().await.expect("stop is idempotent");
}

#[tokio::test]
async fn local_sandbox_keeps_the_contract() {
    let root = tempfile::tempdir().unwrap();
    check_contract(Arc::new(LocalProvider::new(root.path().to_path_buf(), bin())), Exec::Server).await;
}

#[tokio::test]
async fn docker_sandbox_keeps_the_contract() {
    if !docker_available() {
        return;
    }
    check_contract(Arc::new(DockerProvider::connect(Some(bin())).await.unwrap()), Exec::Server).await;
}

#[tokio::test]
async fn docker_sandbox_keeps_the_contract_without_an_exec_server() {
    if !docker_available() {
        return;
    }
    check_contract(Arc::new(DockerProvider::connect(None).await.unwrap()), Exec::PerCommand).await;
}

#[tokio::test]
async fn docker_runs_a_command_as_another_user() {
    if !docker_available() {
        return;
    }
    let provider = DockerProvider::connect(Some(bin())).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start(&provider, &task(dir.path()), "user").await;
    let mut request = ExecRequest::shell("id -u; pwd").cwd("/tmp");
    request.user = Some("nobody".into());
    assert_eq!(sandbox.exec(request).await.unwrap().stdout, "65534\n/tmp\n");
    assert_eq!(sh(sandbox.as_ref(), "id -u").await.stdout, "0\n");
    sandbox.stop().await.unwrap();
}

#[tokio::test]
async fn local_sandbox_hides_the_host_and_has_no_network() {
    let root = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(root.path().to_path_buf(), bin());
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path());
    let sandbox = start(&provider, &task, "isolation").await;
    assert_eq!(sh(sandbox.as_ref(), "cat /app/seed.txt").await.stdout, "seed\n", "environment files are copied in");
    let host_dir = repo_root().display().to_string();
    let out = sh(sandbox.as_ref(), &format!("ls {host_dir} 2>&1; touch /usr/x 2>&1; echo $$")).await;
    assert!(out.stdout.contains("No such file"), "the repository is visible: {out:?}");
    assert!(out.stdout.contains("Read-only"), "/usr is writable: {out:?}");
    let net = sh(sandbox.as_ref(), "ls /sys/class/net 2>/dev/null || cat /proc/net/dev").await;
    assert!(!net.stdout.contains("eth") && !net.stdout.contains("ens"), "network devices visible: {net:?}");
    sandbox.stop().await.unwrap();
    assert!(std::fs::read_dir(root.path()).unwrap().flatten().all(|job| std::fs::read_dir(job.path()).unwrap().count() <= 1));
}

#[tokio::test]
async fn docker_builds_an_environment_once_for_concurrent_trials() {
    if !docker_available() {
        return;
    }
    let provider = DockerProvider::connect(Some(bin())).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A fresh environment digest, so no earlier run cached its image.
    let nonce = format!("{:?}", std::time::SystemTime::now());
    write(dir.path(), "task.toml", "[task]\nname = \"build-once\"\n");
    write(dir.path(), "instruction.md", "x\n");
    write(dir.path(), "tests/test.sh", "true\n");
    write(dir.path(), "environment/nonce.txt", &nonce);
    write(dir.path(), "environment/Dockerfile", "FROM debian:bookworm-slim\nCOPY nonce.txt /nonce.txt\nRUN sleep 1\n");
    let task = prodbench_task::load_task(dir.path()).task.expect("valid task");
    let since = unix_seconds();

    let prepares = (0..4).map(|_| provider.prepare(&task, Duration::from_secs(600)));
    let prepared = futures_util::future::join_all(prepares).await;
    let references: Vec<String> = prepared.into_iter().map(|p| p.expect("prepare").reference).collect();
    assert!(references.windows(2).all(|w| w[0] == w[1]), "{references:?}");

    // The daemon's own event log, read through the docker CLI, counts the builds.
    let until = unix_seconds() + 1;
    let events = std::process::Command::new("docker")
        .args(["events", "--since", &since.to_string(), "--until", &until.to_string()])
        .args(["--filter", "type=image", "--filter", "event=tag", "--format", "{{.Actor.Attributes.name}}"])
        .output()
        .expect("docker events");
    let tags = String::from_utf8_lossy(&events.stdout).lines().filter(|name| *name == references[0]).count();
    let _ = std::process::Command::new("docker").args(["rmi", "-f", &references[0]]).output();
    assert_eq!(tags, 1, "four concurrent prepares of one environment must build it once");
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}
