//! How an agent worked, read off its trajectory: for the report's per-trial statistics
//! and for researchers comparing agents' habits (does it read before editing? does it run
//! the tests?).
//!
//! Tools are sorted into kinds by name, covering prodbench's built-in agent and the names
//! the common CLI agents use (Claude Code's `Bash`/`Read`/`Edit`/`Grep`, Codex's `shell`,
//! mini-swe-agent's `bash`); a tool of another name counts only as a tool call.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::{StepSource, Trajectory};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialStats {
    /// Agent steps (model calls).
    pub steps: u64,
    pub tool_calls: u64,
    /// Shell commands run.
    pub commands: u64,
    /// Distinct files read, and distinct files written or edited.
    pub files_read: u64,
    pub files_edited: u64,
    pub searches: u64,
    /// Tool calls the agent got wrong (unknown tool, malformed arguments).
    pub format_errors: u64,
    /// Characters of the submitted answer, if the agent submitted one.
    pub answer_chars: Option<u64>,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub cost_usd: Option<f64>,
    /// From the first step's timestamp to the last's.
    pub wall_time_sec: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    Command,
    Read,
    Edit,
    Search,
    Submit,
    Other,
}

/// The kind of a tool, by its name.
pub fn tool_kind(name: &str) -> ToolKind {
    match name.to_ascii_lowercase().as_str() {
        "bash" | "shell" | "exec_command" | "execute_bash" | "run_command" | "terminal" | "local_shell" => ToolKind::Command,
        "read_file" | "read" | "view" | "cat" | "open_file" => ToolKind::Read,
        "write_file" | "edit_file" | "write" | "edit" | "multiedit" | "apply_patch" | "str_replace" | "create_file" => ToolKind::Edit,
        "search" | "grep" | "glob" | "find" | "find_file" | "search_files" => ToolKind::Search,
        "submit" | "finish" => ToolKind::Submit,
        _ => ToolKind::Other,
    }
}

impl TrialStats {
    pub fn from_trajectory(trajectory: &Trajectory) -> TrialStats {
        let mut stats = TrialStats::default();
        let mut read = BTreeSet::new();
        let mut edited = BTreeSet::new();
        for step in trajectory.steps.iter().filter(|s| s.source == StepSource::Agent) {
            stats.steps += 1;
            if step.extra.contains_key("format_error") {
                stats.format_errors += 1;
            }
            for call in &step.tool_calls {
                stats.tool_calls += 1;
                let path = file_argument(&call.arguments);
                match tool_kind(&call.function_name) {
                    ToolKind::Command => stats.commands += 1,
                    ToolKind::Read => read.extend(path),
                    ToolKind::Edit => edited.extend(path),
                    ToolKind::Search => stats.searches += 1,
                    ToolKind::Submit => stats.answer_chars = Some(answer_length(&call.arguments)),
                    ToolKind::Other => {}
                }
            }
        }
        stats.files_read = read.len() as u64;
        stats.files_edited = edited.len() as u64;
        if let Some(totals) = &trajectory.final_metrics {
            stats.prompt_tokens = totals.total_prompt_tokens;
            stats.completion_tokens = totals.total_completion_tokens;
            stats.cost_usd = totals.total_cost_usd;
        }
        stats.wall_time_sec = wall_time(trajectory);
        stats
    }
}

fn file_argument(arguments: &Value) -> Option<String> {
    ["path", "file_path", "filename", "file"].iter().find_map(|key| arguments.get(*key)?.as_str().map(str::to_string))
}

fn answer_length(arguments: &Value) -> u64 {
    arguments.get("answer").and_then(Value::as_str).map_or(0, |a| a.chars().count() as u64)
}

fn wall_time(trajectory: &Trajectory) -> Option<f64> {
    let parse = |t: &Option<String>| chrono::DateTime::parse_from_rfc3339(t.as_deref()?).ok();
    let first = parse(&trajectory.steps.first()?.timestamp)?;
    let last = parse(&trajectory.steps.last()?.timestamp)?;
    Some((last - first).num_milliseconds() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::*;
    use serde_json::json;

    fn call(id: &str, name: &str, arguments: Value) -> ToolCallRecord {
        ToolCallRecord { tool_call_id: id.into(), function_name: name.into(), arguments }
    }

    #[test]
    fn counts_each_kind_and_distinct_files() {
        let mut first = Step::new(StepSource::Agent, "");
        first.timestamp = Some("2025-01-01T00:00:00Z".into());
        first.tool_calls = vec![
            call("1", "bash", json!({"command": "ls"})),
            call("2", "read_file", json!({"path": "a.py"})),
            call("3", "Read", json!({"file_path": "a.py"})),
            call("4", "edit_file", json!({"path": "a.py"})),
            call("5", "Grep", json!({"pattern": "x"})),
        ];
        let mut second = Step::new(StepSource::Agent, "");
        second.timestamp = Some("2025-01-01T00:00:30.500Z".into());
        second.extra.insert("format_error".into(), json!("unknown tool"));
        second.tool_calls =
            vec![call("6", "write_file", json!({"path": "b.py"})), call("7", "submit", json!({"answer": "héllo"})), call("8", "mystery", json!({}))];
        let mut task = Step::new(StepSource::User, "task");
        task.timestamp = Some("2024-12-31T23:59:59Z".into());
        let steps = vec![task, first, second];
        let trajectory = Trajectory {
            schema_version: SCHEMA_VERSION.into(),
            session_id: "s".into(),
            agent: AgentInfo { name: "a".into(), version: "1".into(), model_name: None, extra: Default::default() },
            final_metrics: Some(FinalMetrics::sum(&steps)),
            steps,
            notes: None,
            extra: Default::default(),
        };
        let stats = TrialStats::from_trajectory(&trajectory);
        assert_eq!((stats.steps, stats.tool_calls, stats.commands, stats.searches, stats.format_errors), (2, 8, 1, 1, 1));
        assert_eq!((stats.files_read, stats.files_edited), (1, 2));
        assert_eq!(stats.answer_chars, Some(5));
        assert_eq!(stats.prompt_tokens, None, "no step reported tokens");
        assert_eq!(stats.wall_time_sec, Some(31.5));
    }
}
