//! The sandbox contract, checked the same way on both real backends: exec returns data,
//! background processes live between execs, `kill_all_processes` kills even detached ones
//! and keeps files, timeouts kill the command's tree, uploads and downloads round-trip.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use prodbench_docker::DockerProvider;
use prodbench_sandbox::local::LocalProvider;
use prodbench_sandbox::{ExecRequest, Provider, Sandbox, StartSpec};

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

async fn check_contract(provider: Arc<dyn Provider>) {
    let dir = tempfile::tempdir().unwrap();
    let task = task(dir.path());
    let sandbox = start(provider.as_ref(), &task, &format!("contract-{}", provider.name())).await;

    // Exit codes, stdout, stderr, cwd and env are data.
    let out = sandbox.exec(ExecRequest::shell("echo out; echo err >&2; pwd; echo $FOO; exit 3").cwd("/tmp").envs(&[("FOO".to_string(), "bar".to_string())].into())).await.unwrap();
    assert_eq!(out.exit_code, Some(3));
    assert_eq!(out.stdout, "out\n/tmp\nbar\n");
    assert_eq!(out.stderr, "err\n");
    let missing = sandbox.exec(ExecRequest { argv: vec!["no-such-program".into()], ..ExecRequest::shell("") }).await.unwrap();
    assert_eq!(missing.exit_code, Some(127), "{missing:?}");

    // The workspace starts from the environment (COPY-less Docker image has WORKDIR only).
    assert_eq!(sandbox.workdir(), "/app");

    // Output is capped; the rest is counted.
    let mut big = ExecRequest::shell("head -c 100000 /dev/zero | tr '\\0' x");
    big.output_cap = 1000;
    let out = sandbox.exec(big).await.unwrap();
    assert_eq!(out.stdout.len(), 1000);
    assert_eq!(out.truncated_bytes, 99000);

    // A timeout kills the command and its children.
    let out = sandbox.exec(ExecRequest::shell("sleep 300 & sleep 300; echo never").timeout(Duration::from_millis(500))).await.unwrap();
    assert!(out.timed_out && out.exit_code.is_none(), "{out:?}");
    let left = sh(sandbox.as_ref(), "for p in /proc/[0-9]*; do cat $p/cmdline 2>/dev/null | tr '\\0' ' '; echo; done | grep -c '^sleep 300' || true").await;
    assert_eq!(left.stdout.trim(), "0", "timed-out command left processes");

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

    // Upload and download round-trip a directory.
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "a/b.txt", "hello");
    sandbox.upload(&src.path().join("a"), "/tests/up").await.unwrap();
    assert_eq!(sh(sandbox.as_ref(), "cat /tests/up/b.txt").await.stdout, "hello");
    let back = tempfile::tempdir().unwrap();
    sandbox.download("/tests/up", &back.path().join("down")).await.unwrap();
    assert_eq!(std::fs::read_to_string(back.path().join("down/b.txt")).unwrap(), "hello");

    sandbox.stop().await.unwrap();
    sandbox.stop().await.expect("stop is idempotent");
}

#[tokio::test]
async fn local_sandbox_keeps_the_contract() {
    let root = tempfile::tempdir().unwrap();
    check_contract(Arc::new(LocalProvider::new(root.path().to_path_buf(), bin()))).await;
}

#[tokio::test]
async fn docker_sandbox_keeps_the_contract() {
    if !docker_available() {
        return;
    }
    check_contract(Arc::new(DockerProvider::connect().await.unwrap())).await;
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
