//! What can go wrong in a call, and how HTTP failures are classified.
//!
//! The classification decides retrying: only [`LlmError::is_retryable`] errors
//! are worth another attempt. Context-window overflows get their own variant
//! because a caller (an agent loop) can react by trimming history, while any
//! other 400 is a bug to surface.

use std::time::Duration;

use serde_json::Value;

/// Longest error message kept from a response body, in characters.
const MAX_MESSAGE_CHARS: usize = 1000;

/// Lower-cased markers of "prompt too long" errors across servers: OpenAI's
/// code, llama.cpp's error type, and phrases used by OpenAI, Anthropic, vLLM
/// and others.
const CONTEXT_WINDOW_MARKERS: &[&str] =
    &["context_length_exceeded", "exceed_context_size_error", "context length", "context window", "maximum context", "too many tokens", "prompt is too long"];

/// A failed call. Messages never contain the API key.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// HTTP 429.
    #[error("rate limited (HTTP 429): {message}")]
    RateLimited {
        /// The server's `Retry-After`, if it sent one in seconds.
        retry_after: Option<Duration>,
        /// The server's error message.
        message: String,
    },
    /// HTTP 5xx, including Anthropic's 529 "overloaded".
    #[error("server error (HTTP {status}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// No complete response within [`ModelConfig::request_timeout`](crate::ModelConfig::request_timeout).
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The prompt does not fit the model's context window (a 4xx whose body says so).
    #[error("prompt exceeds the model's context window: {0}")]
    ContextWindow(String),
    /// HTTP 401/403, or a key that cannot be sent in a header (status 0).
    #[error("authentication failed (HTTP {status}): {message}")]
    Auth {
        /// HTTP status, or 0 if the request was never sent.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// Any other 4xx.
    #[error("bad request (HTTP {status}): {message}")]
    BadRequest {
        /// HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// The request did not get an HTTP response (connection refused, reset, DNS, TLS...).
    #[error("transport error: {0}")]
    Transport(String),
    /// A response we cannot use: a success body we cannot parse, or an unexpected status.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Retryable failures persisted until `max_attempts` or `retry_budget` ran out.
    #[error("gave up after {attempts} attempt(s): {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<LlmError>,
    },
}

impl LlmError {
    /// Whether another attempt might succeed: rate limits, server errors,
    /// timeouts and transport failures.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Server { .. } | Self::Timeout(_) | Self::Transport(_))
    }

    /// Classifies a non-2xx response. `body` must already be scrubbed of the key.
    pub(crate) fn from_status(status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        let message = error_message(body);
        match status {
            429 => Self::RateLimited { retry_after, message },
            401 | 403 => Self::Auth { status, message },
            500..=599 => Self::Server { status, message },
            400..=499 if mentions_context_window(body) => Self::ContextWindow(message),
            400..=499 => Self::BadRequest { status, message },
            _ => Self::Malformed(format!("unexpected HTTP status {status}: {message}")),
        }
    }
}

/// The human-readable part of an error body: `error.message` (OpenAI, Anthropic,
/// llama.cpp), a string `error`, or `message`/`detail`; otherwise the raw body.
fn error_message(body: &str) -> String {
    let extracted = serde_json::from_str::<Value>(body).ok().and_then(|json| message_field(&json));
    let message = extracted.unwrap_or_else(|| body.trim().to_owned());
    if message.is_empty() { "(empty body)".to_owned() } else { truncate(message, MAX_MESSAGE_CHARS) }
}

fn message_field(json: &Value) -> Option<String> {
    let error = json.get("error");
    let candidates = [error.and_then(|e| e.get("message")), error, json.get("message"), json.get("detail")];
    candidates.into_iter().flatten().find_map(Value::as_str).map(str::to_owned)
}

fn mentions_context_window(body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    CONTEXT_WINDOW_MARKERS.iter().any(|m| body.contains(m))
}

/// At most `max` characters of `text`, marked with `…` when cut.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, body: &str) -> LlmError {
        LlmError::from_status(status, body, None)
    }

    #[test]
    fn statuses_map_to_variants() {
        assert!(matches!(classify(429, ""), LlmError::RateLimited { .. }));
        assert!(matches!(classify(401, ""), LlmError::Auth { status: 401, .. }));
        assert!(matches!(classify(403, ""), LlmError::Auth { status: 403, .. }));
        assert!(matches!(classify(500, ""), LlmError::Server { status: 500, .. }));
        assert!(matches!(classify(529, ""), LlmError::Server { status: 529, .. }));
        assert!(matches!(classify(404, "nope"), LlmError::BadRequest { status: 404, .. }));
        assert!(matches!(classify(302, ""), LlmError::Malformed(_)));
    }

    #[test]
    fn context_window_errors_are_recognised() {
        let bodies = [
            r#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#,
            r#"{"error":{"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}}"#,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
            "This model's maximum context length is 8192 tokens",
            "input exceeds the Context Window",
        ];
        for body in bodies {
            assert!(matches!(classify(400, body), LlmError::ContextWindow(_)), "{body}");
        }
        assert!(matches!(classify(400, r#"{"error":{"message":"temperature must be <= 2"}}"#), LlmError::BadRequest { .. }));
    }

    #[test]
    fn messages_are_extracted_from_json_bodies() {
        assert_eq!(error_message(r#"{"error":{"message":"boom","type":"x"}}"#), "boom");
        assert_eq!(error_message(r#"{"error":"flat"}"#), "flat");
        assert_eq!(error_message(r#"{"detail":"fastapi style"}"#), "fastapi style");
        assert_eq!(error_message(" plain text \n"), "plain text");
        assert_eq!(error_message(""), "(empty body)");
    }

    #[test]
    fn long_messages_are_truncated_on_char_boundaries() {
        let long = "é".repeat(MAX_MESSAGE_CHARS + 5);
        let message = error_message(&long);
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
        assert_eq!(truncate("short".into(), 10), "short");
    }

    #[test]
    fn only_transient_errors_are_retryable() {
        assert!(classify(429, "").is_retryable());
        assert!(classify(503, "").is_retryable());
        assert!(LlmError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(LlmError::Transport("refused".into()).is_retryable());
        assert!(!classify(400, "").is_retryable());
        assert!(!classify(401, "").is_retryable());
        assert!(!LlmError::Malformed("x".into()).is_retryable());
        let gave_up = LlmError::GaveUp { attempts: 2, last: Box::new(classify(500, "")) };
        assert!(!gave_up.is_retryable());
    }
}
