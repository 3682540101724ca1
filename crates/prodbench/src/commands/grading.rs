//! Grading settings from the command line: component weights and the judge.

use anyhow::Result;
use prodbench_run::JudgeSettings;
use prodbench_task::rubric::ComponentWeights;

use crate::cli::GradingArgs;
use crate::UserError;

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
    Some(JudgeSettings { protocol: args.judge_protocol.clone(), model, base_url, samples: args.judge_samples })
}

fn default_base_url(protocol: &str) -> &'static str {
    match protocol {
        "anthropic" => "https://api.anthropic.com/v1",
        _ => "https://api.openai.com/v1",
    }
}
