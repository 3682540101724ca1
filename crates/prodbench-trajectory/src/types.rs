//! The ATIF v1.4 schema. Optional fields are left out of the JSON when unset, as Harbor's
//! writer does; `extra` objects carry what the schema has no field for.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The version this crate writes.
pub const SCHEMA_VERSION: &str = "ATIF-v1.4";

type Extra = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    pub schema_version: String,
    pub session_id: String,
    pub agent: AgentInfo,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_metrics: Option<FinalMetrics>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Extra,
}

/// Which agent system produced the trajectory, and with which model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Extra,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepSource {
    System,
    User,
    Agent,
}

/// One turn: a system prompt, a user message, or an agent's model call with the tool calls
/// it made and what they returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// 1, 2, 3, ... in order ([`crate::Recorder`] assigns it).
    pub step_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub source: StepSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Extra,
}

impl Step {
    /// A step of `source` saying `message`, stamped now; the recorder numbers it.
    pub fn new(source: StepSource, message: impl Into<String>) -> Self {
        Step {
            step_id: 0,
            timestamp: Some(now()),
            source,
            model_name: None,
            message: message.into(),
            reasoning_content: None,
            tool_calls: Vec::new(),
            observation: None,
            metrics: None,
            extra: Extra::new(),
        }
    }
}

/// The current time as ATIF wants it: ISO 8601 in UTC.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub tool_call_id: String,
    pub function_name: String,
    /// Always a JSON object. Arguments a model wrote that were not an object are kept
    /// verbatim under `{"_raw": "..."}`.
    pub arguments: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Observation {
    pub results: Vec<ObservationResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One model call's tokens and cost. `prompt_tokens` includes `cached_tokens`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Extra,
}

/// Totals over the whole trajectory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FinalMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_steps: Option<u64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Extra,
}

impl FinalMetrics {
    /// Sums the steps' metrics. A total is left out when no step reported it; cost is
    /// left out when any step with tokens has no cost (an unknown price), rather than
    /// reporting a partial sum as the total.
    pub fn sum(steps: &[Step]) -> FinalMetrics {
        let metrics: Vec<&Metrics> = steps.iter().filter_map(|s| s.metrics.as_ref()).collect();
        let total = |field: fn(&Metrics) -> Option<u64>| -> Option<u64> { metrics.iter().filter_map(|m| field(m)).reduce(|a, b| a + b) };
        let cost_known = metrics.iter().all(|m| m.cost_usd.is_some());
        FinalMetrics {
            total_prompt_tokens: total(|m| m.prompt_tokens),
            total_completion_tokens: total(|m| m.completion_tokens),
            total_cached_tokens: total(|m| m.cached_tokens),
            total_cost_usd: if cost_known && !metrics.is_empty() { Some(metrics.iter().filter_map(|m| m.cost_usd).sum()) } else { None },
            total_steps: Some(steps.len() as u64),
            extra: Extra::new(),
        }
    }
}
