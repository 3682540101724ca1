//! Codex's `exec --json` events: `thread.started`, `turn.started`, `item.started`,
//! `item.updated` and `item.completed` (an item's latest state wins), `turn.completed` with
//! the turn's usage, `turn.failed` and `error`.
//!
//! The events do not mark model calls, so steps are rebuilt from the order of the items,
//! which is the order in which a reply's parts arrive: reasoning, then a message, then a tool
//! call. A part that cannot follow what the current step already holds starts a new step,
//! so each step holds at most one tool call, with the reasoning and message before it.
//! Commands, file changes, MCP calls, web searches and to-do lists are tool calls named by
//! their item type; a command's observation is its output (none while it still runs, as when
//! a timeout cut the log). Usage comes per turn, so it goes in the totals only
//! (`input_tokens` already includes the cached ones). Errors, which Codex also uses for
//! notices such as reconnections, are kept in the trajectory's `extra`.

use std::collections::HashMap;

use prodbench_trajectory::{FinalMetrics, Step, StepSource, ToolCallRecord, Trajectory};
use serde_json::{Map, Value, json};

use super::{Context, agent_info, append, arguments, json_lines, observe, step, text_of, trajectory};

pub(super) fn convert(log: &str, context: &Context<'_>) -> Result<Trajectory, String> {
    let events = json_lines(log);
    if !events.iter().any(|e| e["type"].as_str().is_some_and(|t| t.starts_with("thread.") || t.starts_with("item."))) {
        return Err("no codex exec events in the log".into());
    }
    let latest: HashMap<&str, &Value> = events.iter().filter_map(|e| Some((e["item"]["id"].as_str()?, &e["item"]))).collect();
    let mut conversion = Conversion { steps: vec![step(StepSource::User, context.instruction)], ..Default::default() };
    let mut seen = std::collections::HashSet::new();
    for event in &events {
        match (event["type"].as_str().unwrap_or_default(), event["item"]["id"].as_str()) {
            (kind, Some(id)) if kind.starts_with("item.") && seen.insert(id) => conversion.item(latest[id]),
            ("thread.started", _) => conversion.thread_id = event["thread_id"].as_str().map(String::from),
            ("turn.completed", _) => conversion.usage(&event["usage"]),
            ("turn.failed", _) => conversion.errors.push(event["error"]["message"].clone()),
            ("error", _) => conversion.errors.push(event["message"].clone()),
            _ => {}
        }
    }
    Ok(conversion.finish(context))
}

/// Where an item goes in a step: a part may follow only parts of a lower rank.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Part {
    Reasoning,
    Message,
    ToolCall,
}

#[derive(Default)]
struct Conversion {
    steps: Vec<Step>,
    /// What the latest step already holds.
    last_part: Option<Part>,
    thread_id: Option<String>,
    totals: Option<FinalMetrics>,
    errors: Vec<Value>,
}

impl Conversion {
    fn item(&mut self, item: &Value) {
        let kind = item["type"].as_str().unwrap_or_default();
        match kind {
            "error" => self.errors.push(item["message"].clone()),
            "reasoning" => append(self.step_for(Part::Reasoning).reasoning_content.get_or_insert_with(String::new), item["text"].as_str().unwrap_or_default()),
            "agent_message" => append(&mut self.step_for(Part::Message).message, item["text"].as_str().unwrap_or_default()),
            _ => self.tool_call(kind, item),
        }
    }

    /// The step the part goes in: the latest, unless it already holds this part or a later one.
    fn step_for(&mut self, part: Part) -> &mut Step {
        if self.last_part.is_none_or(|last| last >= part) {
            self.steps.push(step(StepSource::Agent, ""));
        }
        self.last_part = Some(part);
        self.steps.last_mut().expect("just pushed")
    }

    fn tool_call(&mut self, kind: &str, item: &Value) {
        let id = item["id"].as_str().unwrap_or_default().to_string();
        let (name, args, output) = describe(kind, item);
        let output = output.filter(|_| item["status"] != "in_progress");
        self.step_for(Part::ToolCall).tool_calls.push(ToolCallRecord { tool_call_id: id.clone(), function_name: name, arguments: arguments(args) });
        if let Some(output) = output {
            let index = self.steps.len() - 1;
            observe(&mut self.steps, Some(index), &id, output);
        }
    }

    fn usage(&mut self, usage: &Value) {
        let count = |key: &str| usage[key].as_u64().unwrap_or(0);
        let totals = self.totals.get_or_insert_with(|| FinalMetrics {
            total_prompt_tokens: Some(0),
            total_completion_tokens: Some(0),
            total_cached_tokens: Some(0),
            ..Default::default()
        });
        for (total, key) in [
            (&mut totals.total_prompt_tokens, "input_tokens"),
            (&mut totals.total_completion_tokens, "output_tokens"),
            (&mut totals.total_cached_tokens, "cached_input_tokens"),
        ] {
            *total = total.map(|t| t + count(key));
        }
    }

    fn finish(self, context: &Context<'_>) -> Trajectory {
        let mut agent = agent_info(context, None, None);
        if let Some(thread_id) = self.thread_id {
            agent.extra.insert("thread_id".into(), json!(thread_id));
        }
        let mut extra = Map::new();
        if !self.errors.is_empty() {
            extra.insert("errors".into(), Value::Array(self.errors));
        }
        trajectory(agent, context.session_id, self.steps, self.totals, extra)
    }
}

/// A tool item's call name, arguments and observation (its output, else its status).
fn describe(kind: &str, item: &Value) -> (String, Value, Option<String>) {
    match kind {
        "command_execution" => (kind.into(), json!({"command": item["command"]}), item["aggregated_output"].as_str().map(String::from)),
        "mcp_tool_call" => {
            let name = format!("{}/{}", item["server"].as_str().unwrap_or_default(), item["tool"].as_str().unwrap_or_default());
            let output = match &item["error"]["message"] {
                Value::String(error) => Some(error.clone()),
                _ => item["result"].get("content").map(text_of),
            };
            (name, item["arguments"].clone(), output)
        }
        _ => {
            let mut fields = item.as_object().cloned().unwrap_or_default();
            let status = fields.remove("status").and_then(|s| s.as_str().map(String::from));
            fields.remove("id");
            fields.remove("type");
            (kind.into(), Value::Object(fields), status)
        }
    }
}
