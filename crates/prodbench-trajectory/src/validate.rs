//! The format's rules, checked on JSON (so files written by other tools are checked too).
//!
//! The rules are ATIF v1.4's: required fields and their types, no unknown fields (Harbor's
//! models forbid them; custom data belongs in `extra`), step ids 1, 2, 3, ... in order, the
//! agent-only step fields (`model_name`, `reasoning_*`, `tool_calls`, `metrics`) only on
//! agent steps, observations only on agent and system steps, tool call ids unique in the
//! trajectory, every observation's `source_call_id` naming a tool call of its own step,
//! ISO 8601 timestamps, and non-negative token counts with cached tokens within prompt
//! tokens.

use serde_json::{Map, Value};

const ROOT_FIELDS: &[&str] = &["schema_version", "session_id", "agent", "steps", "notes", "final_metrics", "continued_trajectory_ref", "extra"];
const AGENT_FIELDS: &[&str] = &["name", "version", "model_name", "extra"];
const STEP_FIELDS: &[&str] =
    &["step_id", "timestamp", "source", "model_name", "reasoning_effort", "message", "reasoning_content", "tool_calls", "observation", "metrics", "extra"];
const AGENT_ONLY_STEP_FIELDS: &[&str] = &["model_name", "reasoning_effort", "reasoning_content", "tool_calls", "metrics"];
const TOOL_CALL_FIELDS: &[&str] = &["tool_call_id", "function_name", "arguments"];
const RESULT_FIELDS: &[&str] = &["source_call_id", "content", "subagent_trajectory_ref"];
const METRIC_COUNTS: &[&str] = &["prompt_tokens", "completion_tokens", "cached_tokens"];
const METRIC_FIELDS: &[&str] =
    &["prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "prompt_token_ids", "completion_token_ids", "logprobs", "extra"];
const FINAL_COUNTS: &[&str] = &["total_prompt_tokens", "total_completion_tokens", "total_cached_tokens", "total_steps"];
const FINAL_FIELDS: &[&str] = &["total_prompt_tokens", "total_completion_tokens", "total_cached_tokens", "total_cost_usd", "total_steps", "extra"];

/// Every rule `trajectory` breaks, as `path: problem` lines; empty when it is valid.
pub fn validate(trajectory: &Value) -> Vec<String> {
    let mut errors = Errors(Vec::new());
    let Some(root) = errors.object(trajectory, "$") else { return errors.0 };
    errors.known_fields(root, ROOT_FIELDS, "$");
    match root.get("schema_version").and_then(Value::as_str) {
        Some(v) if v.strip_prefix("ATIF-v1.").is_some_and(|minor| minor.parse::<u32>().is_ok()) => {}
        Some(v) => errors.push("$.schema_version", format!("{v:?} is not an ATIF v1.x version (e.g. \"ATIF-v1.4\")")),
        None => errors.push("$.schema_version", "required string is missing"),
    }
    errors.required_string(root, "session_id", "$");
    if let Some(agent) = errors.required_object(root, "agent", "$") {
        errors.known_fields(agent, AGENT_FIELDS, "$.agent");
        errors.required_string(agent, "name", "$.agent");
        errors.required_string(agent, "version", "$.agent");
        errors.optional_string(agent, "model_name", "$.agent");
    }
    errors.optional_string(root, "notes", "$");
    errors.optional_object(root, "extra", "$");
    if let Some(m) = root.get("final_metrics").and_then(|final_metrics| errors.object(final_metrics, "$.final_metrics")) {
        errors.known_fields(m, FINAL_FIELDS, "$.final_metrics");
        errors.counts(m, FINAL_COUNTS, "$.final_metrics");
        errors.non_negative_number(m, "total_cost_usd", "$.final_metrics");
    }
    match root.get("steps") {
        Some(Value::Array(steps)) => {
            let mut call_ids = std::collections::HashSet::new();
            for (index, step) in steps.iter().enumerate() {
                errors.step(step, index, &mut call_ids);
            }
        }
        Some(_) => errors.push("$.steps", "must be an array"),
        None => errors.push("$.steps", "required array is missing"),
    }
    errors.0
}

struct Errors(Vec<String>);

impl Errors {
    fn push(&mut self, path: &str, problem: impl std::fmt::Display) {
        self.0.push(format!("{path}: {problem}"));
    }

    fn step(&mut self, step: &Value, index: usize, call_ids: &mut std::collections::HashSet<String>) {
        let path = format!("$.steps[{index}]");
        let Some(step) = self.object(step, &path) else { return };
        self.known_fields(step, STEP_FIELDS, &path);
        match step.get("step_id").and_then(Value::as_u64) {
            Some(id) if id == index as u64 + 1 => {}
            Some(id) => self.push(&format!("{path}.step_id"), format!("is {id}, expected {} (ids run 1, 2, 3, ... in order)", index + 1)),
            None => self.push(&format!("{path}.step_id"), "required integer is missing"),
        }
        let source = step.get("source").and_then(Value::as_str);
        if !matches!(source, Some("system" | "user" | "agent")) {
            self.push(&format!("{path}.source"), "must be \"system\", \"user\" or \"agent\"");
        }
        self.required_string(step, "message", &path);
        self.optional_string(step, "reasoning_content", &path);
        self.optional_string(step, "model_name", &path);
        self.optional_object(step, "extra", &path);
        if let Some(timestamp) = step.get("timestamp").filter(|t| !t.as_str().is_some_and(is_iso8601)) {
            self.push(&format!("{path}.timestamp"), format!("{timestamp} is not an ISO 8601 timestamp"));
        }
        if source != Some("agent") {
            for field in AGENT_ONLY_STEP_FIELDS.iter().filter(|f| step.contains_key(**f)) {
                self.push(&format!("{path}.{field}"), "only agent steps may have this field");
            }
            if source == Some("user") && step.contains_key("observation") {
                self.push(&format!("{path}.observation"), "user steps have no observation");
            }
        }
        let own_calls = self.tool_calls(step, &path, call_ids);
        if let Some(observation) = step.get("observation") {
            self.observation(observation, &format!("{path}.observation"), &own_calls);
        }
        if let Some(metrics) = step.get("metrics") {
            self.metrics(metrics, &format!("{path}.metrics"));
        }
    }

    /// Checks the step's tool calls; returns their ids.
    fn tool_calls(&mut self, step: &Map<String, Value>, path: &str, seen: &mut std::collections::HashSet<String>) -> Vec<String> {
        let Some(calls) = step.get("tool_calls") else { return Vec::new() };
        let Some(calls) = calls.as_array() else {
            self.push(&format!("{path}.tool_calls"), "must be an array");
            return Vec::new();
        };
        let mut ids = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            let call_path = format!("{path}.tool_calls[{i}]");
            let Some(call) = self.object(call, &call_path) else { continue };
            self.known_fields(call, TOOL_CALL_FIELDS, &call_path);
            if let Some(id) = self.required_string(call, "tool_call_id", &call_path) {
                if !seen.insert(id.to_string()) {
                    self.push(&format!("{call_path}.tool_call_id"), format!("{id:?} is used by an earlier tool call"));
                }
                ids.push(id.to_string());
            }
            self.required_string(call, "function_name", &call_path);
            if !call.get("arguments").is_some_and(Value::is_object) {
                self.push(&format!("{call_path}.arguments"), "required object is missing (use {} for none)");
            }
        }
        ids
    }

    fn observation(&mut self, observation: &Value, path: &str, own_calls: &[String]) {
        let Some(observation) = self.object(observation, path) else { return };
        let Some(results) = observation.get("results").and_then(Value::as_array) else {
            self.push(&format!("{path}.results"), "required array is missing");
            return;
        };
        for (i, result) in results.iter().enumerate() {
            let result_path = format!("{path}.results[{i}]");
            let Some(result) = self.object(result, &result_path) else { continue };
            self.known_fields(result, RESULT_FIELDS, &result_path);
            self.optional_string(result, "content", &result_path);
            match result.get("source_call_id") {
                None | Some(Value::Null) => {}
                Some(Value::String(id)) if own_calls.contains(id) => {}
                Some(id) => self.push(&format!("{result_path}.source_call_id"), format!("{id} names no tool call of this step")),
            }
        }
    }

    fn metrics(&mut self, metrics: &Value, path: &str) {
        let Some(metrics) = self.object(metrics, path) else { return };
        self.known_fields(metrics, METRIC_FIELDS, path);
        self.counts(metrics, METRIC_COUNTS, path);
        self.non_negative_number(metrics, "cost_usd", path);
        let count = |key| metrics.get(key).and_then(Value::as_u64);
        if let Some((cached, prompt)) = count("cached_tokens").zip(count("prompt_tokens")).filter(|(cached, prompt)| cached > prompt) {
            self.push(&format!("{path}.cached_tokens"), format!("{cached} exceeds prompt_tokens {prompt} (cached tokens are part of the prompt)"));
        }
    }

    fn object<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v Map<String, Value>> {
        let object = value.as_object();
        if object.is_none() {
            self.push(path, "must be an object");
        }
        object
    }

    fn required_object<'v>(&mut self, parent: &'v Map<String, Value>, key: &str, path: &str) -> Option<&'v Map<String, Value>> {
        match parent.get(key) {
            Some(value) => self.object(value, &format!("{path}.{key}")),
            None => {
                self.push(&format!("{path}.{key}"), "required object is missing");
                None
            }
        }
    }

    fn optional_object(&mut self, parent: &Map<String, Value>, key: &str, path: &str) {
        if let Some(value) = parent.get(key) {
            self.object(value, &format!("{path}.{key}"));
        }
    }

    fn required_string<'v>(&mut self, parent: &'v Map<String, Value>, key: &str, path: &str) -> Option<&'v str> {
        let value = parent.get(key).and_then(Value::as_str);
        if value.is_none() {
            self.push(&format!("{path}.{key}"), "required string is missing");
        }
        value
    }

    fn optional_string(&mut self, parent: &Map<String, Value>, key: &str, path: &str) {
        if parent.get(key).is_some_and(|v| !v.is_string()) {
            self.push(&format!("{path}.{key}"), "must be a string");
        }
    }

    fn counts(&mut self, parent: &Map<String, Value>, keys: &[&str], path: &str) {
        for key in keys {
            if parent.get(*key).is_some_and(|v| v.as_u64().is_none()) {
                self.push(&format!("{path}.{key}"), "must be a non-negative integer");
            }
        }
    }

    fn non_negative_number(&mut self, parent: &Map<String, Value>, key: &str, path: &str) {
        if parent.get(key).is_some_and(|v| !v.as_f64().is_some_and(|n| n >= 0.0)) {
            self.push(&format!("{path}.{key}"), "must be a non-negative number");
        }
    }

    fn known_fields(&mut self, object: &Map<String, Value>, known: &[&str], path: &str) {
        for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
            self.push(&format!("{path}.{key}"), "is not an ATIF field (custom data goes in `extra`)");
        }
    }
}

fn is_iso8601(text: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(text).is_ok() || chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "schema_version": "ATIF-v1.4",
            "session_id": "s",
            "agent": {"name": "a", "version": "1", "model_name": "m"},
            "steps": [
                {"step_id": 1, "source": "system", "message": "be good", "timestamp": "2025-10-11T10:30:00Z"},
                {"step_id": 2, "source": "user", "message": "do it"},
                {"step_id": 3, "source": "agent", "message": "", "tool_calls": [{"tool_call_id": "c1", "function_name": "bash", "arguments": {"command": "ls"}}],
                 "observation": {"results": [{"source_call_id": "c1", "content": "a b"}]},
                 "metrics": {"prompt_tokens": 10, "completion_tokens": 2, "cached_tokens": 4, "cost_usd": 0.1}}
            ],
            "final_metrics": {"total_prompt_tokens": 10, "total_steps": 3}
        })
    }

    fn errors_after(change: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut t = valid();
        change(&mut t);
        validate(&t)
    }

    #[test]
    fn the_spec_example_shape_is_valid() {
        assert_eq!(validate(&valid()), Vec::<String>::new());
    }

    /// A change that breaks one rule, and the path the violation must name.
    type Breakage = (Box<dyn FnOnce(&mut Value)>, &'static str);

    #[test]
    fn each_rule_is_enforced_with_its_path() {
        let cases: Vec<Breakage> = vec![
            (Box::new(|t| t["schema_version"] = json!("v2")), "$.schema_version"),
            (
                Box::new(|t| {
                    t.as_object_mut().unwrap().remove("session_id");
                }),
                "$.session_id",
            ),
            (
                Box::new(|t| {
                    t["agent"].as_object_mut().unwrap().remove("version");
                }),
                "$.agent.version",
            ),
            (Box::new(|t| t["steps"][1]["step_id"] = json!(5)), "$.steps[1].step_id"),
            (Box::new(|t| t["steps"][1]["source"] = json!("robot")), "$.steps[1].source"),
            (
                Box::new(|t| {
                    t["steps"][1].as_object_mut().unwrap().remove("message");
                }),
                "$.steps[1].message",
            ),
            (Box::new(|t| t["steps"][1]["metrics"] = json!({})), "$.steps[1].metrics"),
            (Box::new(|t| t["steps"][0]["timestamp"] = json!("yesterday")), "$.steps[0].timestamp"),
            (Box::new(|t| t["steps"][2]["tool_calls"][0]["arguments"] = json!("ls")), "$.steps[2].tool_calls[0].arguments"),
            (Box::new(|t| t["steps"][2]["observation"]["results"][0]["source_call_id"] = json!("c9")), "$.steps[2].observation.results[0].source_call_id"),
            (Box::new(|t| t["steps"][2]["metrics"]["cached_tokens"] = json!(11)), "$.steps[2].metrics.cached_tokens"),
            (Box::new(|t| t["steps"][2]["metrics"]["prompt_tokens"] = json!(-1)), "$.steps[2].metrics.prompt_tokens"),
            (Box::new(|t| t["steps"][2]["surprise"] = json!(1)), "$.steps[2].surprise"),
            (Box::new(|t| t["final_metrics"]["total_cost_usd"] = json!(-2.0)), "$.final_metrics.total_cost_usd"),
            (Box::new(|t| t["steps"][1]["observation"] = json!({"results": []})), "$.steps[1].observation"),
        ];
        for (change, path) in cases {
            let errors = errors_after(change);
            assert!(errors.iter().any(|e| e.starts_with(&format!("{path}:"))), "expected an error at {path}, got {errors:?}");
        }
    }

    #[test]
    fn duplicate_tool_call_ids_are_caught_across_steps() {
        let errors = errors_after(|t| {
            let step = t["steps"][2].clone();
            let mut again = step;
            again["step_id"] = json!(4);
            t["steps"].as_array_mut().unwrap().push(again);
        });
        assert!(errors.iter().any(|e| e.contains("$.steps[3].tool_calls[0].tool_call_id") && e.contains("earlier")), "{errors:?}");
    }
}
