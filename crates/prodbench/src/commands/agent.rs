//! Agent settings from the command line, and the agent they make.
//!
//! The settings (model, `--agent-arg`s, limits, price file) are recorded with the job, so
//! `--resume` runs the same agent; the API key never is: it is read from the environment
//! each time ([`KEY_VAR`], then the protocol's usual variable).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use prodbench_agent::{Agent, AgentOptions, Limits};
use prodbench_llm::{Client, PriceTable};
use prodbench_run::{AgentSettings, ModelSettings};

use super::model::{ClientLimits, Endpoint, default_base_url, env_var};
use crate::UserError;
use crate::cli::AgentArgs;

/// Environment variable holding the model's API key (before the protocol's usual one).
pub const KEY_VAR: &str = "PRODBENCH_API_KEY";

pub fn settings(args: &AgentArgs) -> Result<AgentSettings> {
    let model = args.model.clone().map(|model| ModelSettings {
        protocol: args.model_protocol.clone(),
        base_url: args.model_base_url.clone().unwrap_or_else(|| default_base_url(&args.model_protocol).to_string()),
        model,
        max_concurrent_requests: args.max_concurrent_requests,
    });
    let mut agent_args = std::collections::BTreeMap::new();
    for pair in &args.agent_args {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            UserError::new(format!("--agent-arg {pair:?}: expected KEY=VALUE")).hint("for example --agent-arg trajectory=jobs/<JOB>/trials/<TRIAL>")
        })?;
        agent_args.insert(key.trim().to_string(), value.to_string());
    }
    if let Some(cost) = args.max_cost.filter(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(UserError::new(format!("--max-cost must be above 0, got {cost}")).into());
    }
    if let Some(time) = args.max_agent_time {
        prodbench_task::check_timeout(time).map_err(|message| UserError::new(format!("--max-agent-time: {message}")))?;
    }
    let ca_bundle = args.ca_bundle.as_deref().map(ca_bundle).transpose()?;
    Ok(AgentSettings {
        model,
        args: agent_args,
        max_turns: Some(args.max_turns).filter(|t| *t > 0),
        max_tokens: args.max_tokens,
        max_cost_usd: args.max_cost,
        max_agent_time_sec: args.max_agent_time,
        max_format_errors: args.max_format_errors,
        prices: args.prices.clone(),
        ca_bundle,
    })
}

/// The CA bundle's absolute path, once it is known to be a readable file.
fn ca_bundle(path: &std::path::Path) -> Result<std::path::PathBuf> {
    let hint = "give the host's CA bundle, a PEM file such as /etc/ssl/certs/ca-certificates.crt";
    let absolute = std::fs::canonicalize(path).map_err(|e| UserError::new(format!("--ca-bundle {}: {e}", path.display())).hint(hint))?;
    match std::fs::File::open(&absolute).and_then(|f| f.metadata()) {
        Ok(meta) if meta.is_file() => Ok(absolute),
        Ok(_) => Err(UserError::new(format!("--ca-bundle {}: not a file", path.display())).hint(hint).into()),
        Err(e) => Err(UserError::new(format!("--ca-bundle {}: {e}", path.display())).hint(hint).into()),
    }
}

/// The agent `name` with these settings, or one clear error.
pub fn build(name: &str, settings: &AgentSettings) -> Result<Arc<dyn Agent>> {
    let options = AgentOptions {
        name: name.to_string(),
        model: settings.model.as_ref().map(client).transpose()?,
        prices: settings.prices.as_ref().map(|path| prices(path)).transpose()?,
        args: settings.args.clone(),
        limits: Limits {
            max_turns: settings.max_turns,
            max_tokens: settings.max_tokens,
            max_cost_usd: settings.max_cost_usd,
            // Checked against the longest timeout when the job was made (an old job's value
            // past it means no limit: the task's own timeout still holds).
            max_wall_time: settings.max_agent_time_sec.and_then(|t| Duration::try_from_secs_f64(t).ok()),
            max_format_errors: settings.max_format_errors,
        },
        ca_bundle: settings.ca_bundle.clone(),
    };
    prodbench_agent::build(&options).map_err(|e| UserError::new(format!("--agent {name}: {e}")).into())
}

/// One client for the whole job, so `--max-concurrent-requests` holds across trials.
fn client(settings: &ModelSettings) -> Result<Arc<Client>> {
    let endpoint =
        Endpoint { flag: "model", role: "model", key_var: KEY_VAR, protocol: &settings.protocol, model: &settings.model, base_url: &settings.base_url };
    let limits = ClientLimits { max_concurrent_requests: Some(settings.max_concurrent_requests as usize), max_tokens: None, temperature: Some(0.0) };
    super::model::client(&endpoint, limits, env_var).map(Arc::new)
}

fn prices(path: &std::path::Path) -> Result<PriceTable> {
    let text = std::fs::read_to_string(path).map_err(|e| UserError::new(format!("--prices {}: {e}", path.display())))?;
    let table = PriceTable::from_toml_str(&text).map_err(|e| {
        UserError::new(format!("{}: {e}", path.display())).hint("the format is [models.\"name\"] prompt = 3.0, completion = 15.0 (USD per million tokens)")
    })?;
    Ok(PriceTable::builtin().merge(table))
}
