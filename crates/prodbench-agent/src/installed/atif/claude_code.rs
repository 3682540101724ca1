//! Claude Code's stream-json: `system` (`init` names the model, version and tools),
//! `assistant` (one line per content block of a model reply, every line carrying the whole
//! reply's id and usage), `user` (tool results, by `tool_use_id`), and a final `result` with
//! the session's usage and cost.
//!
//! Lines of one reply become one step, its usage counted once: from the reply's last line,
//! since the CLI repeats the usage on every line of a reply and its counts (output tokens
//! above all) grow as the reply streams, so the first line undercounts. Anthropic's `input_tokens`
//! leaves out cached tokens, which ATIF's prompt tokens include: prompt tokens are input
//! plus cache reads plus cache writes. The `result` line's totals (and cost) are used as
//! the trajectory's when present; they also count calls no reply shows.

use std::collections::HashMap;

use prodbench_trajectory::{FinalMetrics, Metrics, Step, StepSource, ToolCallRecord, Trajectory};
use serde_json::{Map, Value, json};

use super::{Context, agent_info, append, arguments, json_lines, observe, step, text_of, trajectory};

pub(super) fn convert(log: &str, context: &Context<'_>) -> Result<Trajectory, String> {
    let events = json_lines(log);
    if !events.iter().any(|e| e["type"].is_string()) {
        return Err("no stream-json events in the log".into());
    }
    let mut conversion = Conversion { steps: vec![step(StepSource::User, context.instruction)], ..Default::default() };
    for event in &events {
        conversion.event(event);
    }
    Ok(conversion.finish(context))
}

#[derive(Default)]
struct Conversion {
    steps: Vec<Step>,
    /// Tool call id → index of its step.
    calls: HashMap<String, usize>,
    /// The reply of the latest agent step.
    reply_id: Option<String>,
    init: Option<Value>,
    result: Option<Value>,
}

impl Conversion {
    fn event(&mut self, event: &Value) {
        match (event["type"].as_str(), event["subtype"].as_str()) {
            (Some("system"), Some("init")) => self.init = Some(event.clone()),
            (Some("assistant"), _) => self.assistant(event),
            (Some("user"), _) => self.user(&event["message"]["content"]),
            (Some("result"), _) => self.result = Some(event.clone()),
            _ => {}
        }
    }

    fn assistant(&mut self, event: &Value) {
        let message = &event["message"];
        let id = message["id"].as_str().map(String::from);
        if id.is_none() || id != self.reply_id {
            let mut new = step(StepSource::Agent, "");
            new.model_name = message["model"].as_str().map(String::from);
            if let Some(parent) = event["parent_tool_use_id"].as_str() {
                new.extra.insert("parent_tool_use_id".into(), json!(parent));
            }
            self.steps.push(new);
            self.reply_id = id;
        }
        let index = self.steps.len() - 1;
        if let Some(usage) = message.get("usage") {
            self.steps[index].metrics = Some(metrics(usage));
        }
        for block in message["content"].as_array().into_iter().flatten() {
            let step = &mut self.steps[index];
            match block["type"].as_str() {
                Some("text") => append(&mut step.message, block["text"].as_str().unwrap_or_default()),
                Some("thinking") => append(step.reasoning_content.get_or_insert_with(String::new), block["thinking"].as_str().unwrap_or_default()),
                Some("tool_use") => {
                    let id = block["id"].as_str().unwrap_or_default().to_string();
                    step.tool_calls.push(ToolCallRecord {
                        tool_call_id: id.clone(),
                        function_name: block["name"].as_str().unwrap_or_default().into(),
                        arguments: arguments(block["input"].clone()),
                    });
                    self.calls.insert(id, index);
                }
                _ => {}
            }
        }
    }

    /// Tool results go to their calls; anything else the user said is a user step.
    fn user(&mut self, content: &Value) {
        let blocks = match content {
            Value::Array(blocks) => blocks.as_slice(),
            other => {
                self.steps.push(step(StepSource::User, text_of(other)));
                self.reply_id = None;
                return;
            }
        };
        for block in blocks {
            if block["type"] == "tool_result" {
                let id = block["tool_use_id"].as_str().unwrap_or_default();
                observe(&mut self.steps, self.calls.get(id).copied(), id, text_of(&block["content"]));
            } else {
                self.steps.push(step(StepSource::User, text_of(&Value::Array(vec![block.clone()]))));
                self.reply_id = None;
            }
        }
    }

    fn finish(self, context: &Context<'_>) -> Trajectory {
        let init = self.init.unwrap_or_default();
        let mut agent = agent_info(context, init["claude_code_version"].as_str(), init["model"].as_str());
        for key in ["session_id", "cwd", "tools", "permissionMode"] {
            if let Some(value) = init.get(key) {
                agent.extra.insert(key.into(), value.clone());
            }
        }
        let mut extra = Map::new();
        let totals = self.result.as_ref().map(|result| {
            let summary: Map<String, Value> =
                ["subtype", "is_error", "num_turns", "duration_ms", "result"].iter().filter_map(|k| Some((k.to_string(), result.get(*k)?.clone()))).collect();
            extra.insert("result".into(), Value::Object(summary));
            let usage = metrics(&result["usage"]);
            FinalMetrics {
                total_prompt_tokens: usage.prompt_tokens,
                total_completion_tokens: usage.completion_tokens,
                total_cached_tokens: usage.cached_tokens,
                total_cost_usd: result["total_cost_usd"].as_f64(),
                ..Default::default()
            }
        });
        trajectory(agent, context.session_id, self.steps, totals, extra)
    }
}

/// An Anthropic usage object as ATIF metrics.
fn metrics(usage: &Value) -> Metrics {
    let count = |key: &str| usage[key].as_u64().unwrap_or(0);
    let cached = count("cache_read_input_tokens");
    Metrics {
        prompt_tokens: Some(count("input_tokens") + cached + count("cache_creation_input_tokens")),
        completion_tokens: Some(count("output_tokens")),
        cached_tokens: Some(cached),
        ..Default::default()
    }
}
