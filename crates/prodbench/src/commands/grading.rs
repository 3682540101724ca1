//! Grading settings from the command line: component weights and the judge.

use std::sync::Arc;

use anyhow::{Context, Result};
use prodbench_grade::judge::Judge;
use prodbench_grade::llm_judge::LlmJudge;
use prodbench_llm::{ApiKey, Client, ModelConfig, Protocol};
use prodbench_run::JudgeSettings;
use prodbench_store::Store;
use prodbench_task::rubric::ComponentWeights;

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

fn default_base_url(protocol: &str) -> &'static str {
    match protocol {
        "anthropic" => "https://api.anthropic.com/v1",
        _ => "https://api.openai.com/v1",
    }
}

/// Environment variable holding the judge's API key.
pub const JUDGE_KEY_VAR: &str = "PRODBENCH_JUDGE_API_KEY";

/// The judge for these settings, caching verdicts in the jobs directory's database.
pub fn judge(settings: Option<&JudgeSettings>, store: &Store) -> Result<Option<Arc<dyn Judge>>> {
    let Some(settings) = settings else { return Ok(None) };
    if !(settings.base_url.starts_with("http://") || settings.base_url.starts_with("https://")) {
        return Err(UserError::new(format!("--judge-base-url: expected an http:// or https:// URL, got {:?}", settings.base_url))
            .hint("for example --judge-base-url http://127.0.0.1:8099/v1 (the path up to /chat/completions or /messages)")
            .into());
    }
    let protocol: Protocol = settings.protocol.parse().map_err(|e: String| UserError::new(format!("--judge-protocol: {e}")))?;
    let mut config = ModelConfig::new(protocol, settings.model.clone(), settings.base_url.clone());
    let protocol_key_var = match protocol {
        Protocol::Anthropic => "ANTHROPIC_API_KEY",
        Protocol::OpenAi => "OPENAI_API_KEY",
    };
    config.api_key = [JUDGE_KEY_VAR, protocol_key_var].into_iter().find_map(|var| std::env::var(var).ok().filter(|k| !k.is_empty())).map(ApiKey::new);
    if config.api_key.is_none() && settings.base_url.starts_with("https://") {
        return Err(UserError::new(format!("the judge at {} needs an API key", settings.base_url))
            .hint(format!("export {JUDGE_KEY_VAR}=... (or {protocol_key_var}); a local server (http://127.0.0.1:...) needs none"))
            .into());
    }
    config.temperature = settings.temperature.for_samples(settings.samples);
    config.max_tokens = settings.max_tokens;
    let cache = Store::open(store.root()).context("opening the judge's verdict cache")?;
    let judge = LlmJudge::new(Client::new(config), settings.samples, Some(Arc::new(cache))).with_evidence_budget(settings.context_chars);
    Ok(Some(Arc::new(judge)))
}
