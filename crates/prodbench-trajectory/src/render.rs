//! A trajectory as text. [`render`] is for people (`prodbench trajectory`): a header with
//! the totals, then each step with its message, tool calls and observations, long text cut
//! to a few lines. [`condensed`] is for the judge: one line per step, its calls and its
//! results, so that cutting the middle of a long trajectory drops whole steps.

use std::fmt::Write;

use crate::types::{Step, StepSource, Trajectory};

/// How much of each text to show.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Lines kept of each message or observation (head and tail); `None` keeps all.
    pub max_lines: Option<usize>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions { max_lines: Some(12) }
    }
}

pub fn render(trajectory: &Trajectory, options: RenderOptions) -> String {
    let mut out = String::new();
    let agent = &trajectory.agent;
    let model = agent.model_name.as_deref().map(|m| format!(", model {m}")).unwrap_or_default();
    let _ = writeln!(out, "{} {}{model}  (session {}, {})", agent.name, agent.version, trajectory.session_id, trajectory.schema_version);
    if let Some(totals) = &trajectory.final_metrics {
        let tokens = match (totals.total_prompt_tokens, totals.total_completion_tokens) {
            (Some(p), Some(c)) => format!("{p} prompt + {c} completion tokens ({} cached)", totals.total_cached_tokens.unwrap_or(0)),
            _ => "tokens not recorded".into(),
        };
        let cost = totals.total_cost_usd.map(|c| format!("${c:.4}")).unwrap_or_else(|| "cost unknown".into());
        let _ = writeln!(out, "{} steps · {tokens} · {cost}", trajectory.steps.len());
    }
    if let Some(stop) = trajectory.extra.get("stop_reason").and_then(|v| v.as_str()) {
        let _ = writeln!(out, "stopped: {stop}");
    }
    for step in &trajectory.steps {
        out.push('\n');
        render_step(&mut out, step, options);
    }
    out
}

fn render_step(out: &mut String, step: &Step, options: RenderOptions) {
    let source = source_name(step.source);
    let time = step.timestamp.as_deref().and_then(|t| t.get(11..19)).unwrap_or("");
    let usage = step.metrics.as_ref().and_then(|m| Some(format!("  {} → {} tokens", m.prompt_tokens?, m.completion_tokens?))).unwrap_or_default();
    let _ = writeln!(out, "[{}] {source} {time}{usage}", step.step_id);
    if let Some(error) = step.extra.get("format_error").and_then(|v| v.as_str()) {
        let _ = writeln!(out, "    ! format error: {error}");
    }
    if let Some(reasoning) = &step.reasoning_content {
        indent(out, &cut(reasoning, options), "    ~ ");
    }
    if !step.message.trim().is_empty() {
        indent(out, &cut(&step.message, options), "    ");
    }
    for call in &step.tool_calls {
        let _ = writeln!(out, "    → {} {}", call.function_name, call.arguments);
        let results = step.observation.iter().flat_map(|o| &o.results);
        for result in results.filter(|r| r.source_call_id.as_deref() == Some(&call.tool_call_id)) {
            indent(out, &cut(result.content.as_deref().unwrap_or(""), options), "      ← ");
        }
    }
    let loose = step.observation.iter().flat_map(|o| &o.results).filter(|r| r.source_call_id.is_none());
    for result in loose {
        indent(out, &cut(result.content.as_deref().unwrap_or(""), options), "    ← ");
    }
}

/// One line per step (`[index] source: message`), then one per tool call (`call name
/// arguments`) and one per observation result (`-> content`), each cut to `line_chars`
/// characters with its whitespace collapsed.
pub fn condensed(trajectory: &Trajectory, line_chars: usize) -> String {
    let mut out = String::new();
    for (i, step) in trajectory.steps.iter().enumerate() {
        let _ = writeln!(out, "[{i}] {}: {}", source_name(step.source), one_line(&step.message, line_chars));
        for call in &step.tool_calls {
            let _ = writeln!(out, "    call {} {}", call.function_name, one_line(&call.arguments.to_string(), line_chars));
        }
        for result in step.observation.iter().flat_map(|o| &o.results) {
            let _ = writeln!(out, "    -> {}", one_line(result.content.as_deref().unwrap_or_default(), line_chars));
        }
    }
    out
}

fn source_name(source: StepSource) -> &'static str {
    match source {
        StepSource::System => "system",
        StepSource::User => "user",
        StepSource::Agent => "agent",
    }
}

/// `text` on one line (whitespace runs become one space), cut to `max` characters with `…`.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max { flat } else { format!("{}…", flat.chars().take(max).collect::<String>()) }
}

/// `text` with only its first and last lines when it is longer than the limit.
fn cut(text: &str, options: RenderOptions) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    match options.max_lines {
        Some(max) if lines.len() > max => {
            let head = max / 2;
            let tail = max - head;
            format!("{}\n[... {} lines ...]\n{}", lines[..head].join("\n"), lines.len() - max, lines[lines.len() - tail..].join("\n"))
        }
        _ => lines.join("\n"),
    }
}

fn indent(out: &mut String, text: &str, first_prefix: &str) {
    let rest = " ".repeat(first_prefix.chars().count());
    for (i, line) in text.lines().enumerate() {
        let _ = writeln!(out, "{}{line}", if i == 0 { first_prefix } else { &rest });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::*;

    #[test]
    fn shows_calls_with_their_results_and_cuts_long_output() {
        let mut step = Step::new(StepSource::Agent, "let me look");
        step.step_id = 1;
        step.tool_calls.push(ToolCallRecord { tool_call_id: "c1".into(), function_name: "bash".into(), arguments: serde_json::json!({"command": "seq 100"}) });
        let output: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
        step.observation = Some(Observation { results: vec![ObservationResult { source_call_id: Some("c1".into()), content: Some(output.join("\n")) }] });
        let trajectory = Trajectory {
            schema_version: SCHEMA_VERSION.into(),
            session_id: "s".into(),
            agent: AgentInfo { name: "prodbench".into(), version: "1".into(), model_name: Some("m".into()), extra: Default::default() },
            steps: vec![step],
            notes: None,
            final_metrics: None,
            extra: Default::default(),
        };
        let text = render(&trajectory, RenderOptions::default());
        assert!(text.contains("prodbench 1, model m"), "{text}");
        assert!(text.contains("→ bash {\"command\":\"seq 100\"}"), "{text}");
        assert!(text.contains("← 1\n"), "{text}");
        assert!(text.contains("[... 88 lines ...]"), "{text}");
        assert!(text.contains("100\n"), "{text}");
        assert!(!text.contains("\n        50\n"), "{text}");
        let full = render(&trajectory, RenderOptions { max_lines: None });
        assert!(full.contains("        50\n"), "{full}");
    }

    #[test]
    fn condensed_is_one_line_per_step_call_and_result() {
        let trajectory: Trajectory = serde_json::from_value(serde_json::json!({
            "schema_version": SCHEMA_VERSION, "session_id": "s", "agent": {"name": "a", "version": "1"},
            "steps": [
                {"step_id": 1, "source": "user", "message": "Fix it"},
                {"step_id": 2, "source": "agent", "message": "I will   look", "tool_calls": [{"tool_call_id": "c1", "function_name": "bash", "arguments": {"command": "ls"}}],
                 "observation": {"results": [{"source_call_id": "c1", "content": "a.txt\nb.txt"}, {}]}}
            ]
        }))
        .unwrap();
        let text = condensed(&trajectory, 200);
        assert_eq!(text, "[0] user: Fix it\n[1] agent: I will look\n    call bash {\"command\":\"ls\"}\n    -> a.txt b.txt\n    -> \n");
        assert!(condensed(&trajectory, 4).contains("[1] agent: I wi…\n"), "long lines are cut");
    }
}
