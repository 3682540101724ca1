//! The sandbox contract (`prodbench_sandbox::testing::contract`) on both real backends, and
//! what is particular to each: Docker's users and image builds, the local sandbox's isolation.

mod common;

use std::time::Duration;

use common::*;
use prodbench_docker::DockerProvider;
use prodbench_sandbox::local::LocalProvider;
use prodbench_sandbox::testing::contract::{Exec, check_provider};
use prodbench_sandbox::testing::{sh, start, task, unique_job_id};
use prodbench_sandbox::{ExecRequest, Provider};

#[tokio::test]
async fn local_sandbox_keeps_the_contract() {
    let root = tempfile::tempdir().unwrap();
    check_provider(&LocalProvider::new(root.path().to_path_buf(), bin()), Exec::Server).await;
}

#[tokio::test]
async fn docker_sandbox_keeps_the_contract() {
    if !docker_available() {
        return;
    }
    check_provider(&DockerProvider::connect(Some(bin())).await.unwrap(), Exec::Server).await;
}

#[tokio::test]
async fn docker_sandbox_keeps_the_contract_without_an_exec_server() {
    if !docker_available() {
        return;
    }
    check_provider(&DockerProvider::connect(None).await.unwrap(), Exec::PerCommand).await;
}

#[tokio::test]
async fn docker_runs_a_command_as_another_user() {
    if !docker_available() {
        return;
    }
    let provider = DockerProvider::connect(Some(bin())).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start(&provider, &task(dir.path()), &unique_job_id("user"), "user").await;
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
    let sandbox = start(&provider, &task, &unique_job_id("isolation"), "isolation").await;
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
    let task = prodbench_task::scaffold::TaskFiles::new("build-once")
        .file("environment/nonce.txt", &nonce)
        .dockerfile("FROM debian:bookworm-slim\nCOPY nonce.txt /nonce.txt\nRUN sleep 1\n")
        .create(dir.path())
        .expect("valid task");
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
