//! Anthropic Messages wire format (`POST {base_url}/messages`).
//!
//! Structured output is emulated with a forced tool call: the schema becomes
//! the input schema of a tool named [`RESPOND_TOOL`], `tool_choice` forces it,
//! and that call's input is returned as the reply text. Messages must also be
//! regrouped: tool results travel as blocks inside a user message, and one
//! turn's results have to arrive together.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, InvalidHeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::types::Completion;
use crate::{ApiKey, ChatRequest, JsonSchema, Message, ModelConfig, StopReason, ToolCall, ToolSpec, Usage};

/// Name of the tool that carries a structured reply.
pub(crate) const RESPOND_TOOL: &str = "respond";

/// The API version this module implements.
const API_VERSION: &str = "2023-06-01";

/// The endpoint URL for `base_url`.
pub(crate) fn url(base_url: &str) -> String {
    format!("{}/messages", base_url.trim_end_matches('/'))
}

/// `anthropic-version`, plus `x-api-key` (marked sensitive) when there is a key.
pub(crate) fn headers(key: Option<&ApiKey>) -> Result<HeaderMap, InvalidHeaderValue> {
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("anthropic-version"), HeaderValue::from_static(API_VERSION));
    if let Some(key) = key {
        let mut value = HeaderValue::from_str(key.expose())?;
        value.set_sensitive(true);
        headers.insert(HeaderName::from_static("x-api-key"), value);
    }
    Ok(headers)
}

/// The JSON request body.
pub(crate) fn body(config: &ModelConfig, request: &ChatRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(config.model));
    body.insert("max_tokens".into(), json!(config.max_tokens));
    if let Some(system) = &request.system {
        body.insert("system".into(), json!(system));
    }
    body.insert("messages".into(), Value::Array(messages(&request.messages)));
    if let Some(temperature) = config.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    let mut tools: Vec<Value> = request.tools.iter().map(tool).collect();
    if let Some(schema) = &request.json_schema {
        tools.push(respond_tool(schema));
        body.insert("tool_choice".into(), json!({"type": "tool", "name": RESPOND_TOOL}));
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    Value::Object(body)
}

fn tool(spec: &ToolSpec) -> Value {
    json!({"name": spec.name, "description": spec.description, "input_schema": spec.parameters})
}

fn respond_tool(schema: &JsonSchema) -> Value {
    let description = format!("Give your final answer (`{}`) by calling this tool; its input is the answer.", schema.name);
    json!({"name": RESPOND_TOOL, "description": description, "input_schema": schema.schema})
}

/// Wire messages: each turn becomes content blocks, and consecutive turns of
/// the same role merge into one message.
fn messages(turns: &[Message]) -> Vec<Value> {
    let mut merged: Vec<(&str, Vec<Value>)> = Vec::new();
    for turn in turns {
        let (role, blocks) = blocks(turn);
        match merged.last_mut() {
            Some((last_role, content)) if *last_role == role => content.extend(blocks),
            _ => merged.push((role, blocks)),
        }
    }
    merged.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect()
}

fn blocks(turn: &Message) -> (&'static str, Vec<Value>) {
    match turn {
        Message::User(text) => ("user", vec![json!({"type": "text", "text": text})]),
        Message::Assistant { text, tool_calls } => {
            let text = text.iter().filter(|t| !t.is_empty());
            let text = text.map(|t| json!({"type": "text", "text": t}));
            let calls = tool_calls.iter().map(tool_use);
            ("assistant", text.chain(calls).collect())
        }
        Message::ToolResult { call_id, content, is_error } => {
            let block = json!({
                "type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error,
            });
            ("user", vec![block])
        }
    }
}

fn tool_use(call: &ToolCall) -> Value {
    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input(&call.arguments)})
}

/// The API wants `input` as a JSON object. Arguments that are not one (only
/// possible for hand-built calls) are wrapped as `{"raw_arguments": text}`.
fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({"raw_arguments": arguments}),
    }
}

#[derive(Deserialize)]
struct Response {
    model: Option<String>,
    content: Vec<Block>,
    stop_reason: Option<String>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// Thinking and other blocks this client does not use.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

/// Parses a 200 body; `structured` says whether the request forced [`RESPOND_TOOL`].
pub(crate) fn parse(body: &[u8], structured: bool) -> Result<Completion, String> {
    let response: Response = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut answer = None;
    for block in response.content {
        match block {
            Block::Text { text: t } => text.push_str(&t),
            Block::ToolUse { name, input, .. } if structured && name == RESPOND_TOOL => {
                answer = Some(input.to_string());
            }
            Block::ToolUse { id, name, input } => {
                tool_calls.push(ToolCall { id, name, arguments: input.to_string() });
            }
            Block::Other => {}
        }
    }
    Ok(Completion {
        stop: stop_reason(response.stop_reason.as_deref(), answer.is_some()),
        text: answer.or(Some(text)),
        tool_calls,
        usage: response.usage.map(into_usage).unwrap_or_default(),
        model: response.model,
    })
}

/// A forced `respond` call ends with `tool_use`, but to the caller it is the final answer.
fn stop_reason(stop_reason: Option<&str>, answered: bool) -> StopReason {
    match stop_reason {
        Some("end_turn") => StopReason::EndTurn,
        Some("tool_use") if answered => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        other => StopReason::Other(other.unwrap_or_default().to_owned()),
    }
}

/// Anthropic's `input_tokens` excludes cache reads and writes; add them so
/// `prompt_tokens` means the same on both protocols.
fn into_usage(usage: WireUsage) -> Usage {
    let cached = usage.cache_read_input_tokens.unwrap_or(0);
    let uncached = usage.input_tokens.unwrap_or(0);
    let written = usage.cache_creation_input_tokens.unwrap_or(0);
    Usage { prompt_tokens: uncached.saturating_add(cached).saturating_add(written), completion_tokens: usage.output_tokens.unwrap_or(0), cached_tokens: cached }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_inputs_are_always_objects() {
        assert_eq!(tool_input(r#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(tool_input("  "), json!({}));
        assert_eq!(tool_input("[1]"), json!({"raw_arguments": "[1]"}));
        assert_eq!(tool_input("{oops"), json!({"raw_arguments": "{oops"}));
    }

    #[test]
    fn same_role_turns_merge() {
        let turns = [
            Message::User("hi".into()),
            Message::Assistant { text: Some(String::new()), tool_calls: vec![] },
            Message::ToolResult { call_id: "a".into(), content: "1".into(), is_error: false },
            Message::ToolResult { call_id: "b".into(), content: "2".into(), is_error: true },
            Message::User("next".into()),
        ];
        let wire = messages(&turns);
        assert_eq!(wire.len(), 3);
        assert_eq!(wire[1], json!({"role": "assistant", "content": []}));
        let blocks = wire[2]["content"].as_array().unwrap();
        let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["tool_result", "tool_result", "text"]);
    }

    #[test]
    fn usage_counts_cache_reads_and_writes_as_prompt() {
        let usage = WireUsage { input_tokens: Some(10), output_tokens: Some(5), cache_read_input_tokens: Some(100), cache_creation_input_tokens: Some(20) };
        let usage = into_usage(usage);
        assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens), (130, 5, 100));
    }

    #[test]
    fn unknown_blocks_are_skipped_and_bad_bodies_rejected() {
        let body = br#"{"content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"ok"}],
            "stop_reason":"stop_sequence"}"#;
        let completion = parse(body, false).unwrap();
        assert_eq!(completion.text.as_deref(), Some("ok"));
        assert_eq!(completion.stop, StopReason::Other("stop_sequence".into()));
        assert!(parse(br#"{"type":"error"}"#, false).is_err());
        assert!(parse(br#"{"content":[{"type":"text"}]}"#, false).is_err());
    }

    #[test]
    fn unforced_respond_tool_is_an_ordinary_call() {
        let body = br#"{"content":[{"type":"tool_use","id":"t","name":"respond","input":{}}],
            "stop_reason":"tool_use"}"#;
        let completion = parse(body, false).unwrap();
        assert_eq!(completion.tool_calls.len(), 1);
        assert_eq!(completion.stop, StopReason::ToolUse);
    }
}
