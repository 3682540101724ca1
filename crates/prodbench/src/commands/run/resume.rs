//! What `run --resume` may change.
//!
//! A resumed job keeps the settings it was recorded with: the trials it already ran and
//! the ones it runs now must be comparable. Flags not given keep the job's values. A flag
//! that only changes how the rest runs (`-n`, `--max-retries`, `--workspace-cap`) is applied; a flag that
//! would change what the trials measure (the agent, its model and limits, attempts,
//! backend, timeouts, grading) is refused with a message, unless it repeats the recorded
//! value. "Given" means on the command line (clap's value source), so a default that
//! equals the flag's value (`-n 2`) still counts as given.

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use prodbench_run::JobConfig;
use prodbench_run::lease;
use prodbench_store::{JobRecord, Liveness};

use super::{check_timeout_multiplier, config_from_args};
use crate::UserError;
use crate::cli::{AgentArgs, Cli, GradingArgs, RunArgs};
use crate::output::Printer;

/// The recorded config of `job`, with the changes the command line may make.
pub fn config(printer: &Printer, job: &JobRecord, args: &RunArgs) -> Result<JobConfig> {
    let mut config: JobConfig = serde_json::from_value(job.config.clone()).with_context(|| format!("job {}: unreadable config.json", job.job_id))?;
    check_timeout_multiplier(config.timeout_multiplier).context(format!("job {} was recorded with an out-of-range timeout multiplier", job.job_id))?;
    if lease::liveness(job) == Liveness::Finished {
        printer.note(format_args!("job {} finished; resuming retries only what did not", job.job_id));
    }
    let wanted = config_from_args(args, config.paths.clone())?;
    refuse_changes(&job.job_id, &config, &wanted, args)?;
    if args.given.contains("concurrency") {
        config.concurrency = wanted.concurrency;
    }
    if args.given.contains("max_retries") {
        config.max_retries = wanted.max_retries;
    }
    if args.given.contains("workspace_cap") {
        config.workspace_cap_bytes = wanted.workspace_cap_bytes;
    }
    Ok(config)
}

/// One error naming every given flag whose setting differs from the recorded one.
fn refuse_changes(job_id: &str, recorded: &JobConfig, wanted: &JobConfig, args: &RunArgs) -> Result<()> {
    let settings: [(bool, Vec<String>); 6] = [
        (recorded.agent != wanted.agent, vec!["agent".into()]),
        (recorded.attempts != wanted.attempts, vec!["attempts".into()]),
        (recorded.env != wanted.env, vec!["env".into()]),
        (recorded.timeout_multiplier != wanted.timeout_multiplier, vec!["timeout_multiplier".into()]),
        (recorded.agent_settings != wanted.agent_settings, arg_ids::<AgentArgs>()),
        (recorded.weights != wanted.weights || recorded.judge != wanted.judge, arg_ids::<GradingArgs>()),
    ];
    let refused: Vec<String> =
        settings.into_iter().filter(|(differs, _)| *differs).flat_map(|(_, ids)| ids).filter(|id| args.given.contains(id)).map(|id| flag_name(&id)).collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(UserError::new(format!("{} cannot change when resuming job {job_id}: it keeps the settings it started with", refused.join(", ")))
        .hint("drop those flags to resume the job as recorded (only -n, --max-retries and --workspace-cap may change), or start a new job")
        .into())
}

/// The argument ids of a flattened group of flags.
fn arg_ids<T: Args>() -> Vec<String> {
    T::augment_args(clap::Command::new("group")).get_arguments().map(|a| a.get_id().to_string()).collect()
}

/// `--agent`, `-k/--attempts`: how the user wrote the argument `id` of `run`.
fn flag_name(id: &str) -> String {
    let command = Cli::command();
    let run = command.find_subcommand("run").expect("run is a subcommand");
    let Some(arg) = run.get_arguments().find(|a| a.get_id() == id) else { return id.to_string() };
    match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(long)) => format!("-{short}/--{long}"),
        (None, Some(long)) => format!("--{long}"),
        _ => id.to_string(),
    }
}
