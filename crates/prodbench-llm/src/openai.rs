//! OpenAI-compatible chat completions wire format (`POST {base_url}/chat/completions`).
//!
//! Requests stick to the subset every compatible server understands. Replies
//! are parsed leniently (missing usage, null content, missing tool-call ids)
//! because local servers differ in what they fill in.

use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, InvalidHeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::types::Completion;
use crate::{ApiKey, ChatRequest, Message, ModelConfig, StopReason, ToolCall, ToolSpec, Usage};

/// Prefix marking a failed tool result, since this format has no error flag.
const ERROR_PREFIX: &str = "ERROR: ";

/// The endpoint URL for `base_url`.
pub(crate) fn url(base_url: &str) -> String {
    format!("{}/chat/completions", base_url.trim_end_matches('/'))
}

/// `Authorization: Bearer KEY`, marked sensitive; empty without a key.
pub(crate) fn headers(key: Option<&ApiKey>) -> Result<HeaderMap, InvalidHeaderValue> {
    let mut headers = HeaderMap::new();
    if let Some(key) = key {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    Ok(headers)
}

/// The JSON request body.
pub(crate) fn body(config: &ModelConfig, request: &ChatRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(config.model));
    body.insert("messages".into(), Value::Array(messages(request)));
    body.insert(max_tokens_field(&config.base_url).into(), json!(config.max_tokens));
    if let Some(temperature) = config.temperature {
        body.insert("temperature".into(), json!(temperature));
    }
    if !request.tools.is_empty() {
        body.insert("tools".into(), request.tools.iter().map(tool).collect());
    }
    if let Some(schema) = &request.json_schema {
        let format = json!({"name": schema.name, "schema": schema.schema, "strict": true});
        body.insert("response_format".into(), json!({"type": "json_schema", "json_schema": format}));
    }
    Value::Object(body)
}

/// OpenAI's own API rejects `max_tokens` for reasoning models and accepts
/// `max_completion_tokens` for all; compatible servers only reliably know `max_tokens`.
fn max_tokens_field(base_url: &str) -> &'static str {
    let is_openai = Url::parse(base_url).ok().is_some_and(|url| url.host_str() == Some("api.openai.com"));
    if is_openai { "max_completion_tokens" } else { "max_tokens" }
}

fn messages(request: &ChatRequest) -> Vec<Value> {
    let system = request.system.iter().map(|s| json!({"role": "system", "content": s}));
    system.chain(request.messages.iter().map(message)).collect()
}

fn message(message: &Message) -> Value {
    match message {
        Message::User(text) => json!({"role": "user", "content": text}),
        Message::Assistant { text, tool_calls } => assistant(text.as_deref(), tool_calls),
        Message::ToolResult { call_id, content, is_error } => {
            let prefix = if *is_error { ERROR_PREFIX } else { "" };
            json!({"role": "tool", "tool_call_id": call_id, "content": format!("{prefix}{content}")})
        }
    }
}

/// An assistant turn; `content` is null only when tool calls carry the turn.
fn assistant(text: Option<&str>, tool_calls: &[ToolCall]) -> Value {
    let content = match text {
        None if !tool_calls.is_empty() => Value::Null,
        other => json!(other.unwrap_or_default()),
    };
    let mut message = json!({"role": "assistant", "content": content});
    if !tool_calls.is_empty() {
        let calls: Vec<Value> = tool_calls.iter().map(tool_call).collect();
        message["tool_calls"] = Value::Array(calls);
    }
    message
}

fn tool_call(call: &ToolCall) -> Value {
    json!({
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    })
}

fn tool(spec: &ToolSpec) -> Value {
    json!({
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
    })
}

#[derive(Deserialize)]
struct Response {
    model: Option<String>,
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ResponseMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ResponseMessage {
    content: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    /// A JSON string per the spec; some servers send an object or null.
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

/// Parses a 200 body; the error explains what is wrong with it.
pub(crate) fn parse(body: &[u8]) -> Result<Completion, String> {
    let response: Response = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let choice = response.choices.into_iter().next().ok_or("response has no choices")?;
    let calls = choice.message.tool_calls.unwrap_or_default();
    Ok(Completion {
        text: choice.message.content,
        tool_calls: calls.into_iter().enumerate().map(into_tool_call).collect(),
        stop: stop_reason(choice.finish_reason.as_deref()),
        usage: response.usage.map(into_usage).unwrap_or_default(),
        model: response.model,
    })
}

/// A tool call; a missing id becomes `call_{index}` so it can still be answered.
fn into_tool_call((index, call): (usize, WireToolCall)) -> ToolCall {
    let arguments = match call.function.arguments {
        Value::String(text) => text,
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    };
    ToolCall { id: call.id.unwrap_or_else(|| format!("call_{index}")), name: call.function.name, arguments }
}

fn into_usage(usage: WireUsage) -> Usage {
    Usage {
        prompt_tokens: usage.prompt_tokens.unwrap_or(0),
        completion_tokens: usage.completion_tokens.unwrap_or(0),
        cached_tokens: usage.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
    }
}

fn stop_reason(finish_reason: Option<&str>) -> StopReason {
    match finish_reason {
        Some("stop") => StopReason::EndTurn,
        Some("tool_calls") => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        other => StopReason::Other(other.unwrap_or_default().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Protocol;

    #[test]
    fn official_api_gets_max_completion_tokens() {
        assert_eq!(max_tokens_field("https://api.openai.com/v1"), "max_completion_tokens");
        assert_eq!(max_tokens_field("http://127.0.0.1:8099/v1"), "max_tokens");
        assert_eq!(max_tokens_field("not a url"), "max_tokens");
    }

    #[test]
    fn temperature_is_sent_only_when_set() {
        let mut config = ModelConfig::new(Protocol::OpenAi, "m", "http://x/v1");
        let request = ChatRequest::default();
        assert!(body(&config, &request).get("temperature").is_none());
        config.temperature = Some(0.5);
        assert_eq!(body(&config, &request)["temperature"], json!(0.5));
    }

    #[test]
    fn lenient_parsing_of_sloppy_servers() {
        let body = br#"{"choices":[{"message":{"content":null,"tool_calls":[
            {"function":{"name":"a","arguments":{"x":1}}},
            {"id":"c2","function":{"name":"b"}}]},"finish_reason":null}]}"#;
        let completion = parse(body).unwrap();
        assert_eq!(completion.tool_calls[0].id, "call_0");
        assert_eq!(completion.tool_calls[0].arguments, r#"{"x":1}"#);
        assert_eq!(completion.tool_calls[1].arguments, "{}");
        assert_eq!(completion.stop, StopReason::Other(String::new()));
        assert_eq!(completion.usage, Usage::default());
        assert!(completion.model.is_none());
    }

    #[test]
    fn unusable_bodies_are_errors() {
        assert!(parse(br#"{"choices":[]}"#).unwrap_err().contains("no choices"));
        assert!(parse(b"<html>").is_err());
        assert!(parse(br#"{"error":{"message":"x"}}"#).is_err());
    }

    #[test]
    fn finish_reasons_map() {
        assert_eq!(stop_reason(Some("stop")), StopReason::EndTurn);
        assert_eq!(stop_reason(Some("tool_calls")), StopReason::ToolUse);
        assert_eq!(stop_reason(Some("length")), StopReason::MaxTokens);
        assert_eq!(stop_reason(Some("content_filter")), StopReason::Other("content_filter".into()));
    }
}
