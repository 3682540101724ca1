//! Protocol-neutral request and response types.
//!
//! Callers build a [`ChatRequest`] once and get a [`ChatResponse`] back; the
//! `openai` and `anthropic` modules translate to and from each wire format.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Tool name, as the model will use it.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the tool's arguments (an object schema).
    pub parameters: serde_json::Value,
}

/// A tool call made by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id, to be echoed in the matching [`Message::ToolResult`].
    pub id: String,
    /// Name of the called tool.
    pub name: String,
    /// Arguments as raw JSON text, exactly as the model wrote them (OpenAI) or as
    /// the serialized tool input (Anthropic). Parsing is the caller's job, since a
    /// model can write invalid JSON.
    pub arguments: String,
}

/// One turn of a conversation (the system prompt lives in [`ChatRequest::system`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// A user turn.
    User(String),
    /// An earlier model turn, replayed verbatim so the model sees its own tool calls.
    Assistant {
        /// Text the model wrote, if any.
        text: Option<String>,
        /// Tool calls the model made.
        tool_calls: Vec<ToolCall>,
    },
    /// The outcome of running one tool call.
    ///
    /// OpenAI's wire format has no error flag, so there an error result's
    /// content is sent prefixed with `ERROR: `; Anthropic gets `is_error`.
    /// Consecutive results (and a following user turn) are merged into one
    /// Anthropic user message, as that API requires.
    ToolResult {
        /// The [`ToolCall::id`] this answers.
        call_id: String,
        /// Tool output shown to the model.
        content: String,
        /// Whether the tool failed.
        is_error: bool,
    },
}

/// A JSON Schema the reply must follow.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchema {
    /// Schema name (OpenAI requires `^[a-zA-Z0-9_-]+$`).
    pub name: String,
    /// The schema; for OpenAI strict mode every object needs
    /// `additionalProperties: false` and all properties listed in `required`.
    pub schema: serde_json::Value,
}

/// One model call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// System prompt.
    pub system: Option<String>,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// When set, the reply text is JSON following this schema (see the crate docs
    /// for how Anthropic is made to comply). Tools are still offered, but an
    /// Anthropic model is forced to answer through the schema; do not name a tool
    /// `respond` there.
    pub json_schema: Option<JsonSchema>,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// Finished its answer (OpenAI `stop`; Anthropic `end_turn`, or a forced
    /// `respond` call that produced the structured answer).
    EndTurn,
    /// Wants its tool calls run (OpenAI `tool_calls`; Anthropic `tool_use`).
    ToolUse,
    /// Hit `max_tokens`; the reply is truncated (OpenAI `length`).
    MaxTokens,
    /// Anything else, verbatim (e.g. `content_filter`, `stop_sequence`); empty if
    /// the server gave no reason.
    Other(String),
}

/// Token accounting for one call.
///
/// `prompt_tokens` counts *all* prompt tokens on both protocols, cached ones
/// included (Anthropic reports cache reads and writes separately from
/// `input_tokens`; they are added in). `cached_tokens` is the part served from
/// the prompt cache.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, cached ones included.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    pub cached_tokens: u64,
}

/// The model's reply to one [`Client::chat`](crate::Client::chat) call.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// Reply text (`None` if empty); the JSON document when a schema was requested.
    pub text: Option<String>,
    /// Tool calls the model made, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why the model stopped.
    pub stop: StopReason,
    /// Tokens used by the successful attempt.
    pub usage: Usage,
    /// Model name the server reported (the configured name if it reported none).
    pub model: String,
    /// HTTP attempts made, the successful one included.
    pub attempts: u32,
    /// Wall time of the whole call: queueing, every attempt and backoff waits.
    pub latency: Duration,
}

/// A parsed successful reply, before the client adds attempt bookkeeping.
#[derive(Debug)]
pub(crate) struct Completion {
    pub(crate) text: Option<String>,
    pub(crate) tool_calls: Vec<ToolCall>,
    pub(crate) stop: StopReason,
    pub(crate) usage: Usage,
    pub(crate) model: Option<String>,
}

impl Completion {
    /// The public response, falling back to `configured_model` if the server named none.
    pub(crate) fn into_response(self, configured_model: &str, attempts: u32, latency: Duration) -> ChatResponse {
        ChatResponse {
            text: self.text.filter(|t| !t.is_empty()),
            tool_calls: self.tool_calls,
            stop: self.stop,
            usage: self.usage,
            model: self.model.filter(|m| !m.is_empty()).unwrap_or_else(|| configured_model.to_owned()),
            attempts,
            latency,
        }
    }
}
