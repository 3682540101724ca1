//! One LLM client for the two wire protocols prodbench talks to.
//!
//! prodbench grades agent runs with an LLM judge (which must return a
//! structured JSON verdict) and will drive tool-calling agents. Both needs are
//! served by two real, widely deployed protocols, so this crate speaks exactly
//! those two instead of pulling in a provider SDK per vendor:
//!
//! * **OpenAI-compatible chat completions** (`POST {base_url}/chat/completions`):
//!   OpenAI itself and every local server that mimics it (llama.cpp, vLLM,
//!   Ollama, LM Studio). Structured output uses the native
//!   `response_format: {type: "json_schema", ...}`.
//! * **Anthropic Messages** (`POST {base_url}/messages`). This API has no
//!   `response_format`, so structured output is *emulated*: the request carries
//!   one extra tool named `respond` whose input schema is the wanted schema, and
//!   `tool_choice` forces the model to call it. The model's tool input is then
//!   exactly a schema-shaped JSON value, which [`ChatResponse::text`] returns
//!   serialized. Callers see the same shape from both protocols.
//!
//! **Retries are bounded.** Rate limits (429), server errors (5xx, Anthropic's
//! 529 "overloaded"), timeouts and transport failures are retried with
//! exponential backoff and full jitter (base [`ModelConfig::retry_base`],
//! factor 2, cap 20 s), honouring a `Retry-After` header when the server sends
//! one. Both the attempt count ([`ModelConfig::max_attempts`]) and the total
//! wall time ([`ModelConfig::retry_budget`]) are capped, because a benchmark
//! run must finish: an endpoint that stays down should surface as
//! [`LlmError::GaveUp`] rather than stall a whole grading batch. Everything
//! else (bad requests, auth failures, context-window overflows, unparseable
//! replies) fails at once, since repeating it cannot help.
//!
//! **Keys are scrubbed.** Errors end up in logs, result databases and judge
//! reports. Some servers echo request headers back in error bodies, so every
//! occurrence of the API key is replaced with `[redacted]` in any text that
//! goes into an [`LlmError`], and [`ApiKey`] never prints itself.
//!
//! With the `scripted` feature, [`scripted::ScriptedServer`] is a deterministic
//! fake model endpoint for testing callers without any real model.

mod anthropic;
mod client;
mod config;
mod error;
mod openai;
mod price;
mod retry;
#[cfg(feature = "scripted")]
pub mod scripted;
mod types;

pub use client::Client;
pub use config::{ApiKey, ModelConfig, Protocol};
pub use error::LlmError;
pub use price::{Price, PriceTable};
pub use types::{ChatRequest, ChatResponse, JsonSchema, Message, StopReason, ToolCall, ToolSpec, Usage};
