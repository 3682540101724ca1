//! `prodbench show JOB`: one job's state, every planned trial and its summary.
//!
//! A job whose process was killed is recorded as running forever; `show` tells it from a
//! live one by its lease (`prodbench_run::lease::liveness`), names it dead, and says how
//! to finish it. Slots the job planned but never started are listed too, so a killed job
//! does not look smaller than it was.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use prodbench_run::JobPlan;
use prodbench_run::lease;
use prodbench_store::{JobRecord, Liveness, TrialRecord};
use serde::Serialize;

use super::{find_job, open_store};
use crate::output::{Printer, first_line, format_reward, summary_table, table};

/// A planned (task, attempt) that no try started.
#[derive(Serialize)]
struct NotStarted<'a> {
    task: &'a str,
    attempt: u32,
}

pub fn show(printer: &Printer, jobs_dir: &Path, job_id: &str) -> Result<ExitCode> {
    let store = open_store(jobs_dir)?;
    let job = find_job(&store, jobs_dir, job_id)?;
    let trials = store.trials(&job.job_id)?;
    let plan = JobPlan::load(&store, &job)?;
    let summary = prodbench_run::summarize(&trials, &plan);
    let not_started: Vec<NotStarted> = plan.not_started(&trials).map(|(task, attempt)| NotStarted { task, attempt }).collect();
    let liveness = lease::liveness(&job);
    #[derive(Serialize)]
    struct Shown<'a> {
        job: &'a JobRecord,
        /// The job's state as observed: `dead` when it is recorded running but its process is gone.
        liveness: Liveness,
        summary: &'a prodbench_run::JobSummary,
        trials: &'a [TrialRecord],
        not_started: &'a [NotStarted<'a>],
    }
    printer.json("job", &Shown { job: &job, liveness, summary: &summary, trials: &trials, not_started: &not_started });
    if printer.is_json() {
        return Ok(ExitCode::SUCCESS);
    }
    printer.line(format_args!("job {} ({}), created {}", job.job_id, state_text(&job, liveness), job.created_at));
    printer.line(format_args!("config: {}\n", job.config));
    printer.data(trial_table(&trials, &not_started, liveness));
    if trials.iter().any(|t| t.grade.as_ref().is_some_and(|g| !g.complete)) {
        printer.line("* some rubric criteria are ungraded (no judge, or it failed): the score covers the graded checks only");
    }
    printer.line("");
    printer.data(summary_table(&summary));
    printer.line(format_args!("\ntrial directories: {}", store.job_dir(&job.job_id).join("trials").display()));
    Ok(ExitCode::SUCCESS)
}

/// `finished`, or `dead: its process is gone; resume with ...`.
fn state_text(job: &JobRecord, liveness: Liveness) -> String {
    let resume = format!("resume with `prodbench run --resume {}`", job.job_id);
    match liveness {
        Liveness::Dead => format!("dead: its process is gone; {resume}"),
        Liveness::Interrupted => format!("interrupted; {resume}"),
        Liveness::Running => format!("running, by {}", job.lease.as_ref().map_or("?", |l| l.owner.as_str())),
        Liveness::Finished => "finished".into(),
    }
}

fn trial_table(trials: &[TrialRecord], not_started: &[NotStarted], liveness: Liveness) -> String {
    // A trial without a status runs, unless its job is no longer running.
    let unfinished = if liveness == Liveness::Running { "running" } else { "unfinished" };
    let mut rows: Vec<Vec<String>> = trials
        .iter()
        .map(|t| {
            let ms: u64 = t.phases.iter().map(|p| p.duration_ms).sum();
            vec![
                t.dir.trim_start_matches("trials/").to_string(),
                t.status.map_or(unfinished, |s| s.as_str()).to_string(),
                format_reward(t.reward),
                score(t),
                format!("{:.1}s", ms as f64 / 1000.0),
                first_line(t.error.as_deref()),
            ]
        })
        .collect();
    let dash = || "-".to_string();
    rows.extend(
        not_started.iter().map(|slot| vec![format!("{} (attempt {})", slot.task, slot.attempt), "not_started".into(), dash(), dash(), dash(), String::new()]),
    );
    table(&["TRIAL", "STATUS", "REWARD", "SCORE", "TIME", "ERROR"], &rows)
}

/// The composite in points, `*` when some criterion is ungraded.
fn score(t: &TrialRecord) -> String {
    let Some(grade) = &t.grade else { return "-".into() };
    grade.composite.map_or_else(|| "-".into(), |c| format!("{:.1}{}", c * 100.0, if grade.complete { "" } else { "*" }))
}
