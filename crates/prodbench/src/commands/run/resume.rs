//! What `run --resume` may change.
//!
//! A resumed job keeps the settings it was recorded with: the trials it already ran and
//! the ones it runs now must be comparable. Flags not given keep the job's values; each
//! flag given is laid over its own field of the recorded config. A flag that only changes
//! how the rest runs (`-n`, `--max-retries`, `--workspace-cap`, `--max-concurrent-requests`)
//! is applied; a flag that would change what the trials measure (the agent, its model and
//! limits, attempts, backend, timeouts, grading) is refused with a message, unless it
//! repeats the recorded value. "Given" means on the command line (clap's value source), so
//! a default that equals the flag's value (`-n 2`) still counts as given.

use anyhow::{Context, Result};
use clap::CommandFactory;
use prodbench_run::lease;
use prodbench_run::{AgentSettings, JobConfig};
use prodbench_store::{JobRecord, Liveness};

use super::{check_timeout_multiplier, config_from_args};
use crate::UserError;
use crate::cli::{Cli, RunArgs};
use crate::output::Printer;

/// Flags that change how the rest of the job runs, not what its trials measure.
const MAY_CHANGE: [&str; 4] = ["concurrency", "max_retries", "workspace_cap", "max_concurrent_requests"];

/// The recorded config of `job`, with the changes the command line may make.
pub fn config(printer: &Printer, job: &JobRecord, args: &RunArgs) -> Result<JobConfig> {
    let recorded: JobConfig = serde_json::from_value(job.config.clone()).with_context(|| format!("job {}: unreadable config.json", job.job_id))?;
    check_timeout_multiplier(recorded.timeout_multiplier).context(format!("job {} was recorded with an out-of-range timeout multiplier", job.job_id))?;
    if lease::liveness(job) == Liveness::Finished {
        printer.note(format_args!("job {} finished; resuming retries only what did not", job.job_id));
    }
    let wanted = config_from_args(args, recorded.paths.clone())?;
    let refused: Vec<String> = args
        .given
        .iter()
        .filter(|id| !MAY_CHANGE.contains(&id.as_str()))
        .filter(|id| overlay(&recorded, &wanted, &[id.as_str()]) != recorded)
        .map(|id| flag_name(id))
        .collect();
    if !refused.is_empty() {
        return Err(UserError::new(format!("{} cannot change when resuming job {}: it keeps the settings it started with", refused.join(", "), job.job_id))
            .hint("drop those flags, or give the recorded values, to resume the job (only -n, --max-retries, --workspace-cap and --max-concurrent-requests may change); or start a new job")
            .into());
    }
    let given: Vec<&str> = args.given.iter().map(String::as_str).collect();
    Ok(overlay(&recorded, &wanted, &given))
}

/// `recorded` with the settings of the flags `given` taken from `wanted` (the config the
/// command line would make), field by field: a flag sets its own field and nothing else.
fn overlay(recorded: &JobConfig, wanted: &JobConfig, given: &[&str]) -> JobConfig {
    let mut config = recorded.clone();
    for id in given {
        apply(&mut config, wanted, id);
    }
    config
}

/// Sets the field flag `id` sets, from `wanted`.
fn apply(config: &mut JobConfig, wanted: &JobConfig, id: &str) {
    let (settings, from) = (&mut config.agent_settings, &wanted.agent_settings);
    match id {
        "agent" => config.agent = wanted.agent.clone(),
        "attempts" => config.attempts = wanted.attempts,
        "env" => config.env = wanted.env,
        "timeout_multiplier" => config.timeout_multiplier = wanted.timeout_multiplier,
        "concurrency" => config.concurrency = wanted.concurrency,
        "max_retries" => config.max_retries = wanted.max_retries,
        "workspace_cap" => config.workspace_cap_bytes = wanted.workspace_cap_bytes,
        "weights" => config.weights = wanted.weights,
        "agent_args" => settings.args = from.args.clone(),
        "max_turns" => settings.max_turns = from.max_turns,
        "max_tokens" => settings.max_tokens = from.max_tokens,
        "max_cost" => settings.max_cost_usd = from.max_cost_usd,
        "max_agent_time" => settings.max_agent_time_sec = from.max_agent_time_sec,
        "max_format_errors" => settings.max_format_errors = from.max_format_errors,
        "prices" => settings.prices = from.prices.clone(),
        "ca_bundle" => settings.ca_bundle = from.ca_bundle.clone(),
        id if id.starts_with("judge_") => apply_judge(config, wanted, id),
        model => apply_model(settings, from, model),
    }
}

/// The model flags (`--model`, `--model-*`, `--max-concurrent-requests`). On a job that
/// called no model, any of them brings the whole model in: a change.
fn apply_model(settings: &mut AgentSettings, from: &AgentSettings, id: &str) {
    let (Some(model), Some(wanted)) = (&mut settings.model, &from.model) else {
        settings.model = from.model.clone();
        return;
    };
    match id {
        "model" => model.model = wanted.model.clone(),
        "model_protocol" => model.protocol = wanted.protocol.clone(),
        "model_base_url" => model.base_url = wanted.base_url.clone(),
        "max_concurrent_requests" => model.max_concurrent_requests = wanted.max_concurrent_requests,
        _ => {}
    }
}

/// The judge flags (`--judge-*`). On a job without a judge, any of them brings the whole
/// judge in (or, without `--judge-model`, none: no change).
fn apply_judge(config: &mut JobConfig, wanted: &JobConfig, id: &str) {
    let (Some(judge), Some(from)) = (&mut config.judge, &wanted.judge) else {
        if config.judge.is_none() {
            config.judge = wanted.judge.clone();
        }
        return;
    };
    match id {
        "judge_model" => judge.model = from.model.clone(),
        "judge_protocol" => judge.protocol = from.protocol.clone(),
        "judge_base_url" => judge.base_url = from.base_url.clone(),
        "judge_samples" => judge.samples = from.samples,
        "judge_max_tokens" => judge.max_tokens = from.max_tokens,
        "judge_temperature" => judge.temperature = from.temperature,
        "judge_context_chars" => judge.context_chars = from.context_chars,
        _ => {}
    }
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
