//! `prodbench bench --traffic`: the load generator against a trivial HTTP server on
//! loopback, in this process, beside `oha` when one is given (`--oha PATH`).
//!
//! Two figures, as issue 11 asks. *A fixed rate*: p50 and p99 from the scheduled send
//! times (measured first, on a quiet server). *The peak*: an open-loop generator's peak is
//! the highest rate it sustains, so rates double from [`FIRST_STEP`] until fewer than 95 %
//! of a step's requests complete in time; the peak is the last step that kept up, as
//! completed requests per second. oha runs against the same server with the same number of
//! connections: `-q RATE --latency-correction` for the fixed rate (its
//! coordinated-omission-corrected figure), closed loop for its peak.
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use prodbench_traffic::{Arrival, Generator, Plan, RequestSpec, StopHandle, Target, Window, WindowSummary};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Connections both tools use.
const CONNECTIONS: usize = 64;
/// The first rate of the peak's doubling steps, and the last one tried.
const FIRST_STEP: f64 = 5_000.0;
const LAST_STEP: f64 = 320_000.0;
/// A step keeps up when this share of its scheduled requests completes.
const KEPT_UP: f64 = 0.95;
/// The fixed rate, well within what both tools sustain.
const FIXED_RATE: f64 = 2_000.0;

/// One tool's figures.
#[derive(Serialize)]
pub struct TrafficFigures {
    pub tool: String,
    /// Completed requests per second at the peak.
    pub peak_per_sec: f64,
    pub fixed_rate: f64,
    pub fixed_p50_ms: Option<f64>,
    pub fixed_p99_ms: Option<f64>,
}

/// prodbench's figures, and oha's when `oha` is given; each run lasts `seconds`.
pub async fn measure(oha: Option<&Path>, seconds: u64) -> Result<Vec<TrafficFigures>> {
    let server = serve().await?;
    let fixed = generate(server, FIXED_RATE, seconds).await;
    let peak_per_sec = peak(server, seconds).await;
    let mut figures = vec![TrafficFigures {
        tool: "prodbench".into(),
        peak_per_sec,
        fixed_rate: FIXED_RATE,
        fixed_p50_ms: fixed.latency.p50_ms,
        fixed_p99_ms: fixed.latency.p99_ms,
    }];
    if let Some(oha) = oha {
        figures.push(oha_figures(oha, server, seconds).await?);
    }
    Ok(figures)
}

/// The completed requests per second of the highest doubling step that kept up.
async fn peak(server: SocketAddr, seconds: u64) -> f64 {
    let mut best = 0.0;
    let mut rate = FIRST_STEP;
    while rate <= LAST_STEP {
        let step = generate(server, rate, seconds).await;
        let scheduled = rate * seconds as f64;
        if (step.counts.completed as f64) < KEPT_UP * scheduled {
            break;
        }
        best = step.counts.completed as f64 / seconds as f64;
        rate *= 2.0;
    }
    best
}

/// An HTTP/1.1 server that answers every request `200 ok`, keeping connections open. It
/// runs until the process ends (a benchmark's lifetime).
async fn serve() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the benchmark's server")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream));
        }
    });
    Ok(addr)
}

/// Answers each request on the connection (GETs: a request ends at its blank line).
async fn answer(mut stream: TcpStream) {
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            buffer.drain(..end + 4);
            if stream.write_all(RESPONSE).await.is_err() {
                return;
            }
        }
    }
}

/// One open-loop window at `rate` for `seconds` against `server`.
async fn generate(server: SocketAddr, rate: f64, seconds: u64) -> WindowSummary {
    let request = RequestSpec { weight: 1, method: "GET".into(), path: "/".into(), headers: Vec::new(), body: None, timeout: Duration::from_secs(5) };
    let plan = Plan {
        target: Target { addr: server, host: "bench".into() },
        seed: 1,
        arrival: Arrival::Constant { rate_per_sec: rate },
        mix: vec![request],
        windows: vec![Window { name: "bench".into(), duration: Duration::from_secs(seconds), arrival: None, mix: None }],
        max_connections: CONNECTIONS,
        max_requests: (rate * seconds as f64) as u64 + 1,
    };
    let generator = Generator::new(&plan).expect("the benchmark's plan is valid");
    let record = generator.run(&StopHandle::new()).await;
    record.summary.into_iter().next().expect("one window")
}

/// oha's peak (closed loop) and its latency-corrected figures at the fixed rate.
async fn oha_figures(oha: &Path, server: SocketAddr, seconds: u64) -> Result<TrafficFigures> {
    let url = format!("http://{server}/");
    let duration = format!("{seconds}s");
    let connections = CONNECTIONS.to_string();
    let rate = FIXED_RATE.to_string();
    let fixed = run_oha(oha, &["-z", &duration, "-c", &connections, "-q", &rate, "--latency-correction", &url]).await?;
    let peak = run_oha(oha, &["-z", &duration, "-c", &connections, &url]).await?;
    let seconds_at = |report: &OhaReport, p: &str| report.latency_percentiles.get(p).copied().flatten().map(|s| s * 1000.0);
    Ok(TrafficFigures {
        tool: "oha".into(),
        peak_per_sec: peak.summary.requests_per_sec,
        fixed_rate: FIXED_RATE,
        fixed_p50_ms: seconds_at(&fixed, "p50"),
        fixed_p99_ms: seconds_at(&fixed, "p99"),
    })
}

/// What the figures need of oha's `--json` output.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OhaReport {
    summary: OhaSummary,
    /// Seconds, by percentile name (`p50`, `p99`).
    latency_percentiles: std::collections::BTreeMap<String, Option<f64>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OhaSummary {
    requests_per_sec: f64,
}

async fn run_oha(oha: &Path, args: &[&str]) -> Result<OhaReport> {
    let output = tokio::process::Command::new(oha)
        .args(["--no-tui", "--output-format", "json"])
        .args(args)
        .output()
        .await
        .with_context(|| format!("running {}", oha.display()))?;
    anyhow::ensure!(output.status.success(), "{} failed: {}", oha.display(), String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).with_context(|| format!("reading {}'s JSON", oha.display()))
}
