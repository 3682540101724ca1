//! `prodbench bench`: the harness's own speed, measured the way users pay for it.
//!
//! - *Trial overhead*: a whole `nop` trial of a trivial task on a cached image, start to
//!   teardown (environment start, agent phases, verification with its process kill and
//!   reward checks, teardown). Everything in it is harness cost.
//! - *Exec round trip*: `true` run in a started sandbox, request to result. On Docker also
//!   through the Engine-exec fallback (no exec server), to show what the server saves.
//! - *Agent tool calls*: the built-in agent's `bash` (`true`, through the persistent-session
//!   wrapper) and `read_file`, call to observation: the harness's cost per agent step, apart
//!   from the model's.
//!
//! - *Traffic* (`--traffic`, `traffic.rs`): the load generator's peak and its latency at a
//!   fixed rate, beside oha's.
//! - *Live environments* (`--live`, `live.rs`): a two-service trial's harness cost, and many
//!   two-service trials under traffic at once, with their memory.
//!
//! Medians (and p90) over many runs, since the machines are noisy. Results go in
//! docs/PERFORMANCE.md with the command that produced them.

mod live;
mod traffic;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use prodbench_agent::NopAgent;
use prodbench_agent::builtin::tools::{ToolOutcome, Toolbox};
use prodbench_run::{TrialContext, run_trial};
use prodbench_sandbox::{Backend, ExecRequest, Provider, Role, StartSpec};
use prodbench_store::TrialRecord;
use prodbench_task::Task;
use prodbench_task::scaffold::TaskFiles;
use serde::Serialize;

use prodbench_docker::DockerProvider;

use super::provider;
use crate::cli::BenchArgs;
use crate::output::{Printer, table};

#[derive(Serialize)]
struct Figures {
    backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trial_overhead_ms: Option<Stats>,
    exec_round_trip_ms: Stats,
    #[serde(skip_serializing_if = "Option::is_none")]
    bash_tool_ms: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_file_tool_ms: Option<Stats>,
}

#[derive(Serialize)]
struct Stats {
    runs: usize,
    min: f64,
    p50: f64,
    p90: f64,
    max: f64,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
        Stats { runs: samples.len(), min: at(0.0), p50: at(0.5), p90: at(0.9), max: at(1.0) }
    }
}

pub async fn bench(printer: &Printer, args: BenchArgs) -> Result<ExitCode> {
    if args.traffic {
        return bench_traffic(printer, &args).await;
    }
    if args.live {
        return bench_live(printer, &args).await;
    }
    let workdir = tempfile::tempdir().context("creating a scratch directory")?;
    let task = trivial_task(workdir.path())?;
    let mut results = Vec::new();
    for backend in args.env {
        let provider = provider(backend).await?;
        printer.status(format_args!("{}: warming up (building the image if needed)", backend.name()));
        let overhead = nop_trials(provider.as_ref(), &task, workdir.path(), args.trials).await?.into_iter().map(|(elapsed, _)| elapsed).collect();
        let exec = exec_round_trip(provider.as_ref(), &task, args.execs).await?;
        let (bash, read) = tool_round_trips(provider.as_ref(), &task, args.execs).await?;
        results.push(Figures {
            backend: backend.name(),
            trial_overhead_ms: Some(Stats::of(overhead)),
            exec_round_trip_ms: Stats::of(exec),
            bash_tool_ms: Some(Stats::of(bash)),
            read_file_tool_ms: Some(Stats::of(read)),
        });
        if backend == Backend::Docker {
            let engine_only = DockerProvider::connect(None).await?;
            let exec = exec_round_trip(&engine_only, &task, args.execs).await?;
            results.push(Figures {
                backend: "docker (engine exec)",
                trial_overhead_ms: None,
                exec_round_trip_ms: Stats::of(exec),
                bash_tool_ms: None,
                read_file_tool_ms: None,
            });
        }
    }
    printer.json("bench", &serde_json::json!({ "results": results }));
    if !printer.is_json() {
        let rows: Vec<Vec<String>> = results
            .iter()
            .flat_map(|f| {
                let overhead = f.trial_overhead_ms.as_ref().map(|s| ("nop trial, start to teardown", s));
                let bash = f.bash_tool_ms.as_ref().map(|s| ("agent bash tool (true)", s));
                let read = f.read_file_tool_ms.as_ref().map(|s| ("agent read_file tool", s));
                let exec = Some(("exec round trip (true)", &f.exec_round_trip_ms));
                overhead.into_iter().chain(exec).chain(bash).chain(read).map(|(what, s)| {
                    vec![
                        f.backend.to_string(),
                        what.to_string(),
                        s.runs.to_string(),
                        format!("{:.1}", s.p50),
                        format!("{:.1}", s.p90),
                        format!("{:.1}", s.min),
                        format!("{:.1}", s.max),
                    ]
                })
            })
            .collect();
        printer.data(table(&["BACKEND", "MEASURE", "RUNS", "P50 MS", "P90 MS", "MIN MS", "MAX MS"], &rows));
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench_traffic(printer: &Printer, args: &BenchArgs) -> Result<ExitCode> {
    printer.status(format_args!("traffic: {} s at the peak rate, then {} s at the fixed rate, per tool", args.traffic_seconds, args.traffic_seconds));
    let figures = traffic::measure(args.oha.as_deref(), args.traffic_seconds).await?;
    printer.json("bench", &serde_json::json!({ "traffic": figures }));
    let ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.2}"));
    let rows: Vec<Vec<String>> = figures
        .iter()
        .map(|f| vec![f.tool.clone(), format!("{:.0}", f.peak_per_sec), format!("{:.0}", f.fixed_rate), ms(f.fixed_p50_ms), ms(f.fixed_p99_ms)])
        .collect();
    printer.data(table(&["TOOL", "PEAK REQ/S", "FIXED RATE", "P50 MS", "P99 MS"], &rows));
    Ok(ExitCode::SUCCESS)
}

async fn bench_live(printer: &Printer, args: &BenchArgs) -> Result<ExitCode> {
    let workdir = tempfile::tempdir().context("creating a scratch directory")?;
    let mut results = Vec::new();
    for &backend in &args.env {
        let provider = provider(backend).await?;
        printer.status(format_args!("{}: {} two-service trials, then {} at once under traffic", backend.name(), args.trials, args.live_concurrency));
        results.push(live::measure(provider.as_ref(), backend.name(), workdir.path(), args.trials, args.live_concurrency as usize).await?);
    }
    printer.json("bench", &serde_json::json!({ "live": results }));
    let ms = |s: &Stats| format!("{:.0} / {:.0}", s.p50, s.p90);
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|f| {
            let c = &f.concurrent;
            vec![
                f.backend.to_string(),
                f.two_container_trial_ms.as_ref().map_or_else(|| "-".into(), ms),
                ms(&f.two_service_trial_ms),
                ms(&f.services_start_ms),
                format!("{}/{} in {:.1} s", c.scored, c.trials, c.wall_s),
                format!("{:.0}", c.peak_rss_mb),
                format!("{:.0}", c.peak_machine_used_mb),
            ]
        })
        .collect();
    printer.data(table(
        &["BACKEND", "2-CONTAINER TRIAL P50/P90 MS", "2-SERVICE TRIAL P50/P90 MS", "SERVICES START MS", "AT ONCE, SCORED", "PEAK RSS MB", "MACHINE +MB"],
        &rows,
    ));
    Ok(ExitCode::SUCCESS)
}

/// A task that does nothing: the image is the base image, the tests write reward 0.
fn trivial_task(dir: &Path) -> Result<Task> {
    TaskFiles::new("bench-trivial")
        .toml("[agent]\ntimeout_sec = 60\n[verifier]\ntimeout_sec = 60\n")
        .instruction("Do nothing.\n")
        .tests("echo 0 > /logs/verifier/reward.txt\n")
        .create(&dir.join("bench-task"))
        .map_err(|diagnostics| anyhow::anyhow!("the benchmark task is invalid: {diagnostics:?}"))
}

/// `trials` whole `nop` trials of `task`, each with its time, after one that warms the
/// image cache (not counted). A trial that failed is an error: its figure would mean nothing.
async fn nop_trials(provider: &dyn Provider, task: &Task, scratch: &Path, trials: u32) -> Result<Vec<(Duration, TrialRecord)>> {
    let mut timed = Vec::new();
    for i in 0..=trials {
        let (elapsed, record) = nop_trial(provider, task, &scratch.join(format!("{}-{i}", task.name)), i).await?;
        if let Some(error) = &record.error {
            anyhow::bail!("benchmark trial failed: {error}");
        }
        if i > 0 {
            timed.push((elapsed, record));
        }
    }
    Ok(timed)
}

/// One `nop` trial of `task` in `dir`, start to teardown.
async fn nop_trial(provider: &dyn Provider, task: &Task, dir: &Path, i: u32) -> Result<(Duration, TrialRecord)> {
    std::fs::create_dir_all(dir)?;
    let ctx = TrialContext {
        task,
        provider,
        agent: &NopAgent,
        job_id: "bench",
        timeout_multiplier: 1.0,
        dir,
        weights: None,
        judge: None,
        workspace_cap_bytes: prodbench_score::evidence::DEFAULT_WORKSPACE_CAP_BYTES,
    };
    let mut record = TrialRecord::starting("bench", &task.name, i, 1).agent("nop");
    let clock = Instant::now();
    run_trial(&ctx, &mut record).await;
    Ok((clock.elapsed(), record))
}

async fn exec_round_trip(provider: &dyn Provider, task: &Task, execs: u32) -> Result<Vec<Duration>> {
    let env = provider.prepare(task, Duration::from_secs(600)).await?;
    let spec = StartSpec::for_task(task, "bench", "bench-exec", Role::Agent, Duration::from_secs(60));
    let sandbox = provider.start(&env, &spec).await?;
    let mut samples = Vec::new();
    let result = async {
        for _ in 0..execs {
            let clock = Instant::now();
            let output = sandbox.exec(ExecRequest { argv: vec!["true".into()], ..ExecRequest::shell("") }).await?;
            samples.push(clock.elapsed());
            anyhow::ensure!(output.success(), "`true` failed: {}", output.summary());
        }
        Ok(())
    }
    .await;
    sandbox.stop().await?;
    result.map(|_| samples)
}

/// The built-in agent's `bash` and `read_file` tools, call to observation.
async fn tool_round_trips(provider: &dyn Provider, task: &Task, calls: u32) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let env = provider.prepare(task, Duration::from_secs(600)).await?;
    let spec = StartSpec::for_task(task, "bench", "bench-tools", Role::Agent, Duration::from_secs(60));
    let sandbox = provider.start(&env, &spec).await?;
    let toolbox = Toolbox::builtin_only(sandbox.as_ref(), None);
    let result = async {
        let bash = time_calls(&toolbox, "bash", r#"{"command": "true"}"#, calls).await?;
        toolbox.call("write_file", r#"{"path": "/tmp/bench.txt", "content": "one\ntwo\nthree\n"}"#).await?;
        let read = time_calls(&toolbox, "read_file", r#"{"path": "/tmp/bench.txt"}"#, calls).await?;
        Ok((bash, read))
    }
    .await;
    sandbox.stop().await?;
    result
}

async fn time_calls(toolbox: &Toolbox<'_>, tool: &str, arguments: &str, calls: u32) -> Result<Vec<Duration>> {
    let mut samples = Vec::new();
    for _ in 0..calls {
        let clock = Instant::now();
        let outcome = toolbox.call(tool, arguments).await?;
        samples.push(clock.elapsed());
        anyhow::ensure!(matches!(outcome, ToolOutcome::Result { is_error: false, .. }), "{tool} failed: {outcome:?}");
    }
    Ok(samples)
}
