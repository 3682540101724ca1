//! `prodbench bench --live`: what a live environment costs beyond the services' own work.
//!
//! - *Harness cost of a two-container trial*: a `nop` trial of a Harbor compose task, `main`
//!   and one sidecar that is up as soon as it starts (the base image sleeping), start to
//!   teardown: the trial's network, both containers, the verifier, removal. Docker only.
//! - *Harness cost of a two-service trial*: a `nop` trial of a task with two `[[services]]`
//!   (one depending on the other, both ready as soon as started) and no traffic, start to
//!   teardown. The services do nothing, so the whole trial is harness cost: the sandbox, the
//!   supervisor, the agent's reaping, the verifier joined to the agent's network, teardown.
//! - *Scale*: N trials at once of a two-service HTTP task (an API calling its backend)
//!   under traffic in every window, with a grading-window latency fault on the backend:
//!   wall time, how many ended without an infrastructure error, the prodbench process's peak
//!   resident memory, and the machine's peak memory in use beyond what it used before.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use prodbench_sandbox::Provider;
use prodbench_store::{Phase, TrialRecord, TrialStatus};
use prodbench_task::Task;
use prodbench_task::scaffold::TaskFiles;
use serde::Serialize;

use super::{Stats, nop_trial, nop_trials};

#[derive(Serialize)]
pub(super) struct LiveFigures {
    pub(super) backend: &'static str,
    /// A whole `nop` trial of the compose task (docker only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) two_container_trial_ms: Option<Stats>,
    /// A whole `nop` trial of the two-service task, start to teardown.
    pub(super) two_service_trial_ms: Stats,
    /// Of which the `services_start` phase (supervisor up, both services started and ready).
    pub(super) services_start_ms: Stats,
    pub(super) concurrent: Concurrent,
}

#[derive(Serialize)]
pub(super) struct Concurrent {
    pub(super) trials: usize,
    /// Trials that ended scored (no infrastructure error).
    pub(super) scored: usize,
    pub(super) wall_s: f64,
    pub(super) peak_rss_mb: f64,
    pub(super) peak_machine_used_mb: f64,
}

/// `main` and one sidecar of the base image, up as soon as it starts.
fn compose_task(dir: &Path) -> Result<Task> {
    let compose = "services:\n  main:\n    depends_on: [sidecar]\n  sidecar:\n    image: debian:bookworm-slim\n    command: [\"sleep\", \"infinity\"]\n";
    TaskFiles::new("bench-two-containers")
        .toml("[agent]\ntimeout_sec = 60\n[verifier]\ntimeout_sec = 60\n")
        .instruction("Do nothing.\n")
        .file("environment/docker-compose.yaml", compose)
        .tests("echo 0 > /logs/verifier/reward.txt\n")
        .create(&dir.join("two-containers"))
        .map_err(|diagnostics| anyhow::anyhow!("the benchmark task is invalid: {diagnostics:?}"))
}

/// Two services that start at once and serve nothing; tests that write 0.
fn two_service_task(dir: &Path) -> Result<Task> {
    let toml = "[agent]\ntimeout_sec = 60\n[verifier]\ntimeout_sec = 60\n\
                [[services]]\nname = \"db\"\ncommand = \"sleep 100000\"\n\
                [[services]]\nname = \"app\"\ncommand = \"sleep 100000\"\ndepends_on = [\"db\"]\n";
    TaskFiles::new("bench-two-services")
        .toml(toml)
        .instruction("Do nothing.\n")
        .tests("echo 0 > /logs/verifier/reward.txt\n")
        .create(&dir.join("two-services"))
        .map_err(|diagnostics| anyhow::anyhow!("the benchmark task is invalid: {diagnostics:?}"))
}

const API: &str = r#"import os, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        upstream = os.environ.get("UPSTREAM")
        data = urllib.request.urlopen(upstream, timeout=2).read() if upstream else b"ok"
        self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// An API calling its backend, under traffic in all three windows, with the backend slowed
/// in the grading window.
fn traffic_task(dir: &Path) -> Result<Task> {
    let toml = "[agent]\ntimeout_sec = 5\n[verifier]\ntimeout_sec = 60\n\
                [[services]]\nname = \"backend\"\ncommand = \"python3 /app/serve.py\"\nport = 9000\nready = { http = \"/\" }\n\
                [[services]]\nname = \"api\"\ncommand = \"python3 /app/serve.py\"\nport = 8080\nready = { http = \"/\" }\n\
                depends_on = [\"backend\"]\nenv = { UPSTREAM = \"http://127.0.0.1:9000/\" }\n\
                [traffic]\ntarget = \"api\"\nrate = 20\narrival = \"poisson\"\n[[traffic.requests]]\npath = \"/{int:1-100}\"\n\
                [traffic.warmup]\nduration_sec = 2\n[traffic.grading]\nduration_sec = 3\n\
                [[faults]]\nkind = \"latency\"\nservice = \"backend\"\nlatency_ms = 50\n";
    let dockerfile = "FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*\n\
                      WORKDIR /app\nCOPY serve.py /app/\n";
    TaskFiles::new("bench-live-traffic")
        .toml(toml)
        .instruction("Do nothing.\n")
        .dockerfile(dockerfile)
        .file("environment/serve.py", API)
        .tests("echo 0 > /logs/verifier/reward.txt\n")
        .create(&dir.join("live-traffic"))
        .map_err(|diagnostics| anyhow::anyhow!("the benchmark task is invalid: {diagnostics:?}"))
}

pub(super) async fn measure(provider: &dyn Provider, backend: &'static str, scratch: &Path, trials: u32, concurrency: usize) -> Result<LiveFigures> {
    let compose = compose_task(scratch)?;
    let two_container_trial_ms = match provider.unsupported_reason(&compose) {
        None => Some(Stats::of(nop_trials(provider, &compose, scratch, trials).await?.into_iter().map(|(elapsed, _)| elapsed).collect())),
        Some(_) => None,
    };
    let timed = nop_trials(provider, &two_service_task(scratch)?, scratch, trials).await?;
    let services_start = |record: &TrialRecord| record.phases.iter().find(|p| p.name == Phase::ServicesStart).map(|p| Duration::from_millis(p.duration_ms));
    let services = timed.iter().filter_map(|(_, record)| services_start(record)).collect();
    let whole = timed.into_iter().map(|(elapsed, _)| elapsed).collect();
    let concurrent = at_once(provider, &traffic_task(scratch)?, scratch, concurrency).await?;
    Ok(LiveFigures { backend, two_container_trial_ms, two_service_trial_ms: Stats::of(whole), services_start_ms: Stats::of(services), concurrent })
}

/// `concurrency` trials of `task` at once (after one that warms the image cache), with the
/// machine's memory sampled throughout.
async fn at_once(provider: &dyn Provider, task: &Task, scratch: &Path, concurrency: usize) -> Result<Concurrent> {
    let (_, warm) = nop_trial(provider, task, &scratch.join("warm"), 0).await?;
    if let Some(error) = warm.error.filter(|_| warm.status == Some(TrialStatus::InfraError)) {
        anyhow::bail!("the warm-up trial failed: {error}");
    }
    let baseline = machine_used_mb().context("reading /proc/meminfo")?;
    let (peak, sampling) = (Arc::new(AtomicU64::new(baseline.to_bits())), Arc::new(AtomicBool::new(true)));
    let sampler = tokio::spawn({
        let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
        async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(used) = machine_used_mb() {
                    peak.fetch_max(used.to_bits(), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let clock = Instant::now();
    let runs = (1..=concurrency).map(|i| {
        let dir = scratch.join(format!("live-{i}"));
        async move { nop_trial(provider, task, &dir, i as u32).await }
    });
    let records = futures_util::future::join_all(runs).await;
    let wall_s = clock.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let mut scored = 0;
    for record in records {
        let (_, record) = record?;
        if record.status != Some(TrialStatus::InfraError) {
            scored += 1;
        }
    }
    Ok(Concurrent {
        trials: concurrency,
        scored,
        wall_s: (wall_s * 10.0).round() / 10.0,
        peak_rss_mb: peak_rss_mb(),
        peak_machine_used_mb: ((f64::from_bits(peak.load(Ordering::Relaxed)) - baseline) * 10.0).round() / 10.0,
    })
}

/// Memory in use on the machine (total minus available), in MiB.
fn machine_used_mb() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| meminfo.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse::<f64>().ok();
    Some((field("MemTotal:")? - field("MemAvailable:")?) / 1024.0)
}

/// This process's peak resident memory, in MiB.
fn peak_rss_mb() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    (usage.ru_maxrss as f64 / 1024.0 * 10.0).round() / 10.0
}
