//! `prodbench run`: a new job, or `--resume` of a stopped one.
//!
//! However the job ends, its sandboxes are removed. On Ctrl-C or SIGTERM the job future is
//! dropped (stopping every trial), unfinished trials are marked interrupted, and the command
//! prints how to resume. A SIGKILL cannot be caught: `--resume` first removes what the killed
//! run left, then marks and reruns its unfinished trials (`prodbench gc` reaps it too).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use prodbench_report::report::TaskMeta;
use prodbench_run::{JobConfig, JobRunner};
use prodbench_store::{JobRecord, Store, now};
use prodbench_task::Task;
use serde::Serialize;

use super::agent;
use super::grading::{judge, judge_settings, weights};
use super::report::TASKS_FILE;
use super::{load_tasks, open_store, print_diagnostics, provider};
use crate::UserError;
use crate::cli::RunArgs;
use crate::output::{Progress, print_json, summary_table};

pub async fn run(jobs_dir: &Path, args: RunArgs) -> Result<ExitCode> {
    let store = open_store(jobs_dir)?;
    let (job_id, config) = match &args.resume {
        Some(job_id) => (job_id.clone(), resumed_config(&store, job_id, &args)?),
        None => (prodbench_run::new_job_id(), new_config(&args)?),
    };
    let tasks = runnable_tasks(&config.path, args.strict)?;
    let provider = provider(config.env).await?;
    if args.resume.is_some() {
        let removed = provider.cleanup_job(&job_id).await?;
        eprintln!("removed {} sandboxes left by the job's earlier run", removed.len());
    }
    let agent = agent::build(&config.agent, &config.agent_settings)?;
    let judge = judge(config.judge.as_ref(), &store)?;
    if args.resume.is_none() {
        let record = JobRecord { job_id: job_id.clone(), created_at: now(), state: "running".into(), config: serde_json::to_value(&config)? };
        store.create_job(&record)?;
    }
    record_task_meta(&store.job_dir(&job_id), &tasks)?;
    let progress = Progress::new(!args.json);
    let runner = JobRunner { job_id: job_id.clone(), config, tasks, store: &store, provider: Arc::clone(&provider), agent, judge, reporter: &progress };
    let interrupted = tokio::select! {
        result = runner.run() => { result?; false }
        signal = shutdown_signal() => { progress.finish(); eprintln!("{signal}: stopping job {job_id}"); true }
    };
    progress.finish();
    let removed = provider.cleanup_job(&job_id).await.map_or(0, |removed| removed.len());
    if interrupted {
        store.mark_unfinished_interrupted(&job_id)?;
        store.set_job_state(&job_id, "interrupted")?;
        eprintln!("removed {removed} sandboxes; finished trials are kept");
        eprintln!("  hint: resume with `prodbench run --resume {job_id}`");
    }
    let summary = prodbench_run::summarize(&store.trials(&job_id)?);
    if args.json {
        #[derive(Serialize)]
        struct Ran<'a> {
            job_id: &'a str,
            interrupted: bool,
            job_dir: String,
            summary: &'a prodbench_run::JobSummary,
        }
        print_json("run", &Ran { job_id: &job_id, interrupted, job_dir: store.job_dir(&job_id).display().to_string(), summary: &summary });
    } else {
        print!("{}", summary_table(&summary));
        println!("job {job_id}: {}", store.job_dir(&job_id).display());
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else if summary.errors() > 0 || summary.judge_failures > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn new_config(args: &RunArgs) -> Result<JobConfig> {
    let path = args.path.as_ref().expect("clap requires a path without --resume");
    let path = path
        .canonicalize()
        .map_err(|e| UserError::new(format!("{}: {e}", path.display())).hint("pass a task directory or a dataset (a directory of tasks)"))?;
    if !(args.timeout_multiplier.is_finite() && args.timeout_multiplier > 0.0) {
        return Err(UserError::new(format!("--timeout-multiplier must be above 0, got {}", args.timeout_multiplier)).into());
    }
    Ok(JobConfig {
        path,
        agent: args.agent.clone(),
        attempts: args.attempts,
        concurrency: args.concurrency as usize,
        env: args.env,
        timeout_multiplier: args.timeout_multiplier,
        max_retries: args.max_retries,
        weights: weights(&args.grading)?,
        judge: judge_settings(&args.grading),
        agent_settings: agent::settings(&args.agent_settings)?,
    })
}

/// The stored config of `job_id`; `-n` may change how many trials run at once.
fn resumed_config(store: &Store, job_id: &str, args: &RunArgs) -> Result<JobConfig> {
    let job = store
        .job(job_id)?
        .ok_or_else(|| UserError::new(format!("no job {job_id:?} in {}", store.root().display())).hint("`prodbench show latest` names the newest job"))?;
    let mut config: JobConfig =
        serde_json::from_value(job.config).with_context(|| format!("{}: unreadable job config", store.job_dir(job_id).join("config.json").display()))?;
    if args.concurrency != 2 {
        config.concurrency = args.concurrency as usize;
    }
    Ok(config)
}

/// Loads tasks, printing every diagnostic; broken tasks are skipped (refused with `strict`).
fn runnable_tasks(path: &Path, strict: bool) -> Result<Vec<Task>> {
    let checks = load_tasks(path)?;
    print_diagnostics(&checks);
    let broken = checks.iter().filter(|c| c.task.is_none()).count();
    if broken > 0 && strict {
        return Err(UserError::new(format!("{broken} broken tasks in {} and --strict given", path.display()))
            .hint("fix the errors above, or drop --strict to run the other tasks")
            .into());
    }
    if broken > 0 {
        eprintln!("warning: skipping {broken} broken tasks (errors above)");
    }
    let tasks: Vec<Task> = checks.into_iter().filter_map(|c| c.task).collect();
    if tasks.is_empty() {
        return Err(UserError::new(format!("no runnable task in {}", path.display())).hint("`prodbench tasks check PATH` lists what is wrong").into());
    }
    Ok(tasks)
}

/// Writes the tasks' category, difficulty and tags next to the job, for report breakdowns.
fn record_task_meta(job_dir: &Path, tasks: &[Task]) -> Result<()> {
    let text = |key: &str, task: &Task| task.config.metadata.get(key).and_then(|v| v.as_str()).map(String::from);
    let meta: std::collections::BTreeMap<&str, TaskMeta> = tasks
        .iter()
        .map(|task| {
            let tags = task
                .config
                .metadata
                .get("tags")
                .and_then(|t| t.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default();
            (task.name.as_str(), TaskMeta { category: text("category", task), difficulty: text("difficulty", task), tags })
        })
        .collect();
    prodbench_store::write_json_atomic(&job_dir.join(TASKS_FILE), &meta).context("recording task metadata")
}

/// Resolves on Ctrl-C or SIGTERM, naming the signal.
async fn shutdown_signal() -> &'static str {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term.recv() => "terminated",
    }
}
