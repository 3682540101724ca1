//! Grading settings from the command line: component weights and the judge.

use std::sync::Arc;

use anyhow::{Context, Result};
use prodbench_grade::judge::Judge;
use prodbench_grade::llm_judge::LlmJudge;
use prodbench_run::JudgeSettings;
use prodbench_store::Store;
use prodbench_task::rubric::ComponentWeights;

use super::model::{ClientLimits, Endpoint, default_base_url, env_var};
use crate::UserError;
use crate::cli::GradingArgs;

/// `--weights`, parsed; a bad value is one clear error.
pub fn weights(args: &GradingArgs) -> Result<Option<ComponentWeights>> {
    let Some(text) = &args.weights else { return Ok(None) };
    ComponentWeights::parse_flag(text)
        .map(Some)
        .map_err(|e| UserError::new(format!("--weights: {e}")).hint("for example --weights feature=0.6,operational=0.3,engineering=0.1").into())
}

/// The judge's settings (no key), if a judge model was given.
pub fn judge_settings(args: &GradingArgs) -> Option<JudgeSettings> {
    let model = args.judge_model.clone()?;
    let base_url = args.judge_base_url.clone().unwrap_or_else(|| default_base_url(&args.judge_protocol).to_string());
    Some(JudgeSettings {
        protocol: args.judge_protocol.clone(),
        model,
        base_url,
        samples: args.judge_samples,
        max_tokens: args.judge_max_tokens,
        temperature: args.judge_temperature,
        context_chars: args.judge_context_chars as usize,
    })
}

/// Environment variable holding the judge's API key (before the protocol's usual one).
pub const JUDGE_KEY_VAR: &str = "PRODBENCH_JUDGE_API_KEY";

/// The judge for these settings, caching verdicts in the jobs directory's database.
pub fn judge(settings: Option<&JudgeSettings>, store: &Store) -> Result<Option<Arc<dyn Judge>>> {
    let Some(settings) = settings else { return Ok(None) };
    let endpoint =
        Endpoint { flag: "judge", role: "judge", key_var: JUDGE_KEY_VAR, protocol: &settings.protocol, model: &settings.model, base_url: &settings.base_url };
    let limits =
        ClientLimits { max_concurrent_requests: None, max_tokens: Some(settings.max_tokens), temperature: settings.temperature.for_samples(settings.samples) };
    let client = super::model::client(&endpoint, limits, env_var)?;
    let cache = Store::open(store.root()).context("opening the judge's verdict cache")?;
    let judge = LlmJudge::new(client, settings.samples, Some(Arc::new(cache))).with_evidence_budget(settings.context_chars);
    Ok(Some(Arc::new(judge)))
}
