//! One function per command; each turns parsed arguments into work and output.

mod agent;
mod bench;
mod grading;
mod model;
mod regrade;
mod report;
mod run;
mod trajectory;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use prodbench_docker::DockerProvider;
use prodbench_sandbox::Provider;
use prodbench_sandbox::local::LocalProvider;
use prodbench_store::Store;
use prodbench_task::{Diagnostic, TaskCheck};
use serde::Serialize;

use crate::UserError;
use crate::cli::{Backend, Cli, Command, ImagesCommand, TasksCommand};
use crate::output::{first_line, format_reward, print_json, summary_table, table};

pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(&cli.jobs_dir, *args).await,
        Command::Show(args) => show(&cli.jobs_dir, &args.job, args.json),
        Command::Tasks(TasksCommand::Check { path, json }) => check_tasks(&path, json),
        Command::Gc(args) => gc(args.all, args.json).await,
        Command::Images(ImagesCommand::Bootstrap { force, mirror }) => bootstrap_images(force, &mirror).await,
        Command::Bench(args) => bench::bench(args).await,
        Command::Report(args) => report::report(&cli.jobs_dir, args),
        Command::Regrade(args) => regrade::regrade(&cli.jobs_dir, args).await,
        Command::Trajectory(args) => trajectory::trajectory(&cli.jobs_dir, &args),
    }
}

/// The sandbox provider for a backend, or a clear error saying what to start or install.
pub async fn provider(backend: Backend) -> Result<Arc<dyn Provider>> {
    Ok(match backend {
        Backend::Docker => Arc::new(DockerProvider::connect(Some(exec_server()?)).await?),
        Backend::Local => Arc::new(LocalProvider::new(LocalProvider::default_root(), exec_server()?)),
    })
}

/// This binary, which serves commands inside sandboxes (see `prodbench_sandbox::init`).
pub fn exec_server() -> Result<std::path::PathBuf> {
    std::env::current_exe().context("cannot find the prodbench binary to serve commands inside sandboxes")
}

/// A job by id, `latest` for the newest, or a clear error naming recent ones.
pub fn find_job(store: &Store, jobs_dir: &Path, job_id: &str) -> Result<prodbench_store::JobRecord> {
    let job = if job_id == "latest" { store.jobs()?.into_iter().next() } else { store.job(job_id)? };
    job.ok_or_else(|| {
        let recent: Vec<String> = store.jobs().unwrap_or_default().into_iter().take(5).map(|j| j.job_id).collect();
        let hint = if recent.is_empty() {
            format!("{} holds no jobs yet: start one with `prodbench run`", jobs_dir.display())
        } else {
            format!("recent jobs: {}", recent.join(", "))
        };
        UserError::new(format!("no job {job_id:?} in {}", jobs_dir.display())).hint(hint).into()
    })
}

/// Opens the jobs directory's store.
pub fn open_store(jobs_dir: &Path) -> Result<Store> {
    Store::open(jobs_dir).with_context(|| format!("cannot open the jobs directory {}", jobs_dir.display()))
}

fn show(jobs_dir: &Path, job_id: &str, json: bool) -> Result<ExitCode> {
    let store = open_store(jobs_dir)?;
    let job = find_job(&store, jobs_dir, job_id)?;
    let trials = store.trials(&job.job_id)?;
    let summary = prodbench_run::summarize(&trials);
    if json {
        #[derive(Serialize)]
        struct Shown<'a> {
            job: &'a prodbench_store::JobRecord,
            summary: &'a prodbench_run::JobSummary,
            trials: &'a [prodbench_store::TrialRecord],
        }
        print_json("job", &Shown { job: &job, summary: &summary, trials: &trials });
        return Ok(ExitCode::SUCCESS);
    }
    println!("job {} ({}), created {}", job.job_id, job.state, job.created_at);
    println!("config: {}\n", job.config);
    let rows: Vec<Vec<String>> = trials
        .iter()
        .map(|t| {
            let ms: u64 = t.phases.iter().map(|p| p.duration_ms).sum();
            vec![
                t.dir.trim_start_matches("trials/").to_string(),
                t.status.map(|s| s.as_str()).unwrap_or("running").to_string(),
                format_reward(t.reward),
                t.grade
                    .as_ref()
                    .and_then(|g| g.composite)
                    .map(|c| format!("{:.1}{}", c * 100.0, if t.grade.as_ref().is_some_and(|g| g.complete) { "" } else { "*" }))
                    .unwrap_or_else(|| "-".into()),
                format!("{:.1}s", ms as f64 / 1000.0),
                first_line(t.error.as_deref()),
            ]
        })
        .collect();
    print!("{}", table(&["TRIAL", "STATUS", "REWARD", "SCORE", "TIME", "ERROR"], &rows));
    if trials.iter().any(|t| t.grade.as_ref().is_some_and(|g| !g.complete)) {
        println!("* some rubric criteria are ungraded (no judge, or it failed): the score covers the graded checks only");
    }
    println!();
    print!("{}", summary_table(&summary));
    println!("\ntrial directories: {}", store.job_dir(&job.job_id).join("trials").display());
    Ok(ExitCode::SUCCESS)
}

/// Loads the tasks under `path` and prints every diagnostic on stderr.
pub fn load_tasks(path: &Path) -> Result<Vec<TaskCheck>> {
    prodbench_task::discover(path).map_err(|d| diagnostic_error(&d))
}

fn diagnostic_error(d: &Diagnostic) -> anyhow::Error {
    let mut err = UserError::new(format!("{}: {}", d.file.display(), d.message));
    if let Some(hint) = &d.hint {
        err = err.hint(hint.clone());
    }
    err.into()
}

pub fn print_diagnostics(checks: &[TaskCheck]) {
    for check in checks {
        for d in &check.diagnostics {
            eprintln!("{d}");
        }
    }
}

fn check_tasks(path: &Path, json: bool) -> Result<ExitCode> {
    let checks = load_tasks(path)?;
    let broken = checks.iter().filter(|c| c.task.is_none()).count();
    if json {
        #[derive(Serialize)]
        struct Checked {
            dir: String,
            name: Option<String>,
            ok: bool,
            diagnostics: Vec<String>,
        }
        let tasks: Vec<Checked> = checks
            .iter()
            .map(|c| Checked {
                dir: c.dir.display().to_string(),
                name: c.task.as_ref().map(|t| t.name.clone()),
                ok: c.task.is_some(),
                diagnostics: c.diagnostics.iter().map(ToString::to_string).collect(),
            })
            .collect();
        print_json("task-check", &serde_json::json!({ "tasks": tasks, "broken": broken }));
    } else {
        print_diagnostics(&checks);
        for check in &checks {
            let (mark, name) = match &check.task {
                Some(task) => ("ok    ", task.name.clone()),
                None => ("broken", check.dir.display().to_string()),
            };
            let warnings = check.diagnostics.iter().filter(|d| !d.is_error()).count();
            let note = if warnings > 0 { format!(" ({warnings} warnings)") } else { String::new() };
            println!("{mark} {name}{note}");
        }
        println!("{} tasks, {broken} broken", checks.len());
    }
    Ok(if broken > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

async fn gc(all: bool, json: bool) -> Result<ExitCode> {
    let local = LocalProvider::new(LocalProvider::default_root(), std::path::PathBuf::new());
    let local_removed = local.gc().context("removing stale local sandbox directories")?;
    let (containers, docker_note) = match DockerProvider::connect(None).await {
        Ok(docker) => (docker.gc(all).await?, None),
        Err(err) => (Vec::new(), Some(format!("docker skipped: {err}"))),
    };
    if json {
        print_json("gc", &serde_json::json!({ "containers": containers, "local_sandbox_dirs": local_removed, "docker_note": docker_note }));
    } else {
        for name in &containers {
            println!("removed container {}", name.trim_start_matches('/'));
        }
        println!("removed {} containers and {local_removed} local sandbox directories", containers.len());
        if let Some(note) = docker_note {
            eprintln!("note: {note}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn bootstrap_images(force: bool, mirror: &str) -> Result<ExitCode> {
    let docker = DockerProvider::connect(None).await?;
    for image in prodbench_docker::bootstrap::BASE_IMAGES {
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.set_message(format!("{}: debootstrap {} from {mirror}", image.reference(), image.suite));
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        let outcome = prodbench_docker::bootstrap::bootstrap(docker.client(), image, mirror, force).await;
        spinner.finish_and_clear();
        match outcome? {
            prodbench_docker::bootstrap::Outcome::AlreadyPresent => println!("{} already present (--force rebuilds it)", image.reference()),
            prodbench_docker::bootstrap::Outcome::Created => println!("{} created", image.reference()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
