//! `prodbench report JOB...`: the leaderboard in the terminal, as JSON, or as one HTML file.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use prodbench_report::leaderboard::{Row, common_k};
use prodbench_report::report::{JobInput, Report, TaskMeta, build};
use prodbench_trajectory::stats::TrialStats;

use super::{find_job, open_store};
use crate::cli::ReportArgs;
use crate::output::{JSON_FORMAT_VERSION, Printer, table};

/// Where a job records its tasks' metadata, for breakdowns.
pub const TASKS_FILE: &str = "tasks.json";

pub fn report(printer: &Printer, jobs_dir: &Path, args: ReportArgs) -> Result<ExitCode> {
    let store = open_store(jobs_dir)?;
    let mut inputs = Vec::new();
    for id in &args.jobs {
        let job = find_job(&store, jobs_dir, id)?;
        let trials = store.trials(&job.job_id)?;
        let dir = store.job_dir(&job.job_id);
        let tasks = read_task_meta(&dir.join(TASKS_FILE));
        let stats = trial_stats(&dir, &trials);
        let liveness = prodbench_run::lease::liveness(&job);
        let skipped = store.job_tasks(&job.job_id)?.into_iter().filter(|t| t.skipped.is_some()).collect();
        inputs.push(JobInput { job, trials, tasks, stats, dir, liveness, skipped });
    }
    let report = build(&inputs, args.by_job);
    if let Some(path) = &args.html {
        std::fs::write(path, prodbench_report::html::render(&report, JSON_FORMAT_VERSION, Some(path)))
            .with_context(|| format!("writing {}", path.display()))?;
        printer.status(format_args!("wrote {}", path.display()));
    }
    printer.json("report", &report);
    printer.data(terminal_report(&report));
    Ok(ExitCode::SUCCESS)
}

/// `tasks.json` of a job; missing (older jobs) means no breakdowns.
fn read_task_meta(path: &Path) -> BTreeMap<String, TaskMeta> {
    std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// The leaderboard table, the paired comparisons and notes, as text.
fn terminal_report(report: &Report) -> String {
    // One k for the whole column, so every row is read at the same k; none when that is 1.
    let k = common_k(&report.rows).filter(|k| *k > 1);
    let rows: Vec<Vec<String>> = report.rows.iter().map(|row| leaderboard_cells(row, k)).collect();
    let pass_k = k.map(|k| format!("PASS@{k}"));
    let mut header = vec!["AGENT", "SCORE", "95% CI (bootstrap)", "PASS", "RESOLVE", "PASS@1"];
    header.extend(pass_k.as_deref());
    header.extend(["COST/TRIAL", "TASKS", "TRIALS", "INFRA", "UNGRADED"]);
    let mut out = table(&header, &rows);
    for c in &report.comparisons {
        let d = &c.difference;
        if d.shared_tasks == 0 {
            out.push_str(&format!("\n{} vs {}: no shared tasks to compare\n", c.other, c.baseline));
            continue;
        }
        let interval = d.bootstrap.map(|i| format!(" [{:+.1}, {:+.1}]", i.low, i.high)).unwrap_or_default();
        out.push_str(&format!(
            "\n{} vs {}: {:+.1} points over {} shared tasks{interval} (wins {}, losses {}, ties {})\n",
            c.other, c.baseline, d.mean_difference, d.shared_tasks, d.wins, d.losses, d.ties
        ));
    }
    for job in report.jobs.iter().filter(|job| !job.is_complete()) {
        out.push_str(&format!(
            "\nnote: job {} is {}: it covers only the trials that ran (`prodbench run --resume {}` finishes it)\n",
            job.job_id, job.liveness, job.job_id
        ));
    }
    for job in report.jobs.iter().filter(|job| !job.skipped.is_empty()) {
        let names: Vec<String> =
            job.skipped.iter().map(|t| format!("{} ({})", t.name.as_deref().unwrap_or(&t.dir), t.skipped.map_or("", |r| r.as_str()))).collect();
        out.push_str(&format!("\nnote: job {} skipped {} tasks: {}\n", job.job_id, names.len(), names.join(", ")));
    }
    let ungraded: usize = report.rows.iter().map(|r| r.ungraded_trials).sum();
    if ungraded > 0 {
        out.push_str(&format!(
            "\nnote: {ungraded} trials have ungraded rubric criteria (no judge configured, or it failed); their scores cover the graded checks only\n"
        ));
    }
    out
}

/// The cells of one row; `k` is the PASS@k column's, when there is one.
fn leaderboard_cells(row: &Row, k: Option<u32>) -> Vec<String> {
    let percent = |rate: Option<f64>| rate.map(|r| format!("{:.1}%", r * 100.0)).unwrap_or_else(|| "-".into());
    let pass_at = |k: u32| percent(row.pass_at_k.iter().find(|p| p.k == k).map(|p| p.pass_at_k));
    let mut cells = vec![
        row.agent.clone(),
        row.score.map(|s| format!("{s:.1}")).unwrap_or_else(|| "-".into()),
        row.score_bootstrap.map(|i| format!("[{:.1}, {:.1}]", i.low, i.high)).unwrap_or_else(|| "-".into()),
        percent(row.pass.rate),
        percent(row.resolve.rate),
        pass_at(1),
    ];
    cells.extend(k.map(pass_at));
    cells.extend([
        row.usage.cost_usd.map(|c| format!("${c:.4}")).unwrap_or_else(|| "-".into()),
        row.tasks.to_string(),
        row.trials.to_string(),
        row.statuses.get(&prodbench_store::Outcome::InfraError).copied().unwrap_or(0).to_string(),
        row.ungraded_trials.to_string(),
    ]);
    cells
}

/// Per trial id, the statistics of its trajectory, for trials that left a readable one.
fn trial_stats(job_dir: &Path, trials: &[prodbench_store::TrialRecord]) -> BTreeMap<String, TrialStats> {
    trials
        .iter()
        .filter_map(|t| {
            let path = job_dir.join(&t.dir).join("agent").join(prodbench_trajectory::TRAJECTORY_FILE);
            let trajectory = prodbench_trajectory::load(&path).ok()?;
            Some((t.trial_id.clone(), TrialStats::from_trajectory(&trajectory)))
        })
        .collect()
}
