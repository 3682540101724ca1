//! `prodbench trajectory TRIAL`: one trial's agent trajectory, for people or as JSON.
//!
//! The file is checked against ATIF's rules first; a trajectory that breaks them is still
//! printed (it is what the agent left), with the violations listed and exit code 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use prodbench_trajectory::TRAJECTORY_FILE;
use prodbench_trajectory::render::{RenderOptions, render};
use prodbench_trajectory::stats::TrialStats;
use serde_json::json;

use super::open_store;
use crate::UserError;
use crate::cli::TrajectoryArgs;
use crate::output::Printer;

pub fn trajectory(printer: &Printer, jobs_dir: &Path, args: &TrajectoryArgs) -> Result<ExitCode> {
    let path = locate(jobs_dir, &args.trial)?;
    let text = std::fs::read_to_string(&path).map_err(|e| UserError::new(format!("{}: {e}", path.display())))?;
    let document: serde_json::Value = serde_json::from_str(&text).map_err(|e| UserError::new(format!("{}: not JSON: {e}", path.display())))?;
    let violations = prodbench_trajectory::validate(&document);
    let parsed = serde_json::from_value::<prodbench_trajectory::Trajectory>(document.clone());
    if printer.is_json() {
        let stats = parsed.as_ref().ok().map(TrialStats::from_trajectory);
        printer.json("trajectory", &json!({"path": path, "valid": violations.is_empty(), "violations": violations, "stats": stats, "trajectory": document}));
    } else {
        match &parsed {
            Ok(trajectory) => printer.data(render(trajectory, RenderOptions { max_lines: if args.full { None } else { RenderOptions::default().max_lines } })),
            Err(e) => printer.error(format_args!("{}: cannot be read as a trajectory: {e}", path.display())),
        }
        for violation in &violations {
            printer.diagnostic(format_args!("invalid: {violation}"));
        }
    }
    Ok(if violations.is_empty() && parsed.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The trajectory file `trial` names: a file, a trial directory, or a trial id.
fn locate(jobs_dir: &Path, trial: &str) -> Result<PathBuf> {
    let given = PathBuf::from(trial);
    let candidates = [given.clone(), given.join("agent").join(TRAJECTORY_FILE), given.join(TRAJECTORY_FILE)];
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    if given.is_dir() {
        return Err(UserError::new(format!("{} has no agent/{TRAJECTORY_FILE}", given.display()))
            .hint("agents that call no model (oracle, nop) leave no trajectory")
            .into());
    }
    let store = open_store(jobs_dir)?;
    if let Some((job, _)) = trial.split_once('.') {
        let record = store.trials(job)?.into_iter().find(|t| t.trial_id == trial);
        if let Some(record) = record {
            return Ok(store.job_dir(job).join(&record.dir).join("agent").join(TRAJECTORY_FILE));
        }
    }
    Err(UserError::new(format!("no trial, directory or file {trial:?}"))
        .hint("pass a trial directory (jobs/<JOB>/trials/<TRIAL>), a trial id from `prodbench show JOB --json`, or a trajectory.json")
        .into())
}
