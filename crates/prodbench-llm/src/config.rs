//! Which endpoint to talk to, with which credentials, and how hard to try.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What [`ApiKey`] prints instead of itself, and what replaces the key in error text.
pub(crate) const REDACTED: &str = "[redacted]";

/// The wire protocol a model endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OpenAI-compatible `POST {base_url}/chat/completions` (OpenAI, llama.cpp, vLLM, Ollama, ...).
    OpenAi,
    /// Anthropic Messages, `POST {base_url}/messages`.
    Anthropic,
}

impl FromStr for Protocol {
    type Err = String;

    /// Parses `openai` or `anthropic` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" => Ok(Self::OpenAi),
            "anthropic" => Ok(Self::Anthropic),
            other => Err(format!("unknown protocol `{other}` (expected `openai` or `anthropic`)")),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        })
    }
}

/// A secret API key. `Debug` and `Display` print `[redacted]`, so a key can sit
/// inside logged structs without leaking.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself. Only meant for setting the authentication header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `[redacted]`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() { text.to_owned() } else { text.replace(&self.0, REDACTED) }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Everything a [`Client`](crate::Client) needs to reach one model.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Wire protocol of the endpoint.
    pub protocol: Protocol,
    /// Model name sent in every request.
    pub model: String,
    /// API root, e.g. `http://127.0.0.1:8099/v1`, `https://api.openai.com/v1`,
    /// `https://api.anthropic.com/v1` (a trailing `/` is ignored).
    pub base_url: String,
    /// Sent as `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic);
    /// `None` sends no credentials (typical for local servers).
    pub api_key: Option<ApiKey>,
    /// Limit for one HTTP request, from sending to the end of the response body.
    pub request_timeout: Duration,
    /// Total attempts including the first (so `max_attempts - 1` retries); 0 acts as 1.
    pub max_attempts: u32,
    /// Total wall time a call may spend across attempts: no retry starts
    /// (nor is slept towards) past it.
    pub retry_budget: Duration,
    /// Backoff base: the wait before retry *n* is uniform in
    /// `[0, min(20 s, retry_base * 2^(n-1))]` unless the server sent `Retry-After`.
    pub retry_base: Duration,
    /// Requests in flight at once, shared by every clone of the client; 0 acts as 1.
    /// A call waiting to retry does not hold a slot.
    pub max_concurrent_requests: usize,
    /// Sampling temperature; `None` leaves the server default (and omits the field,
    /// which reasoning models require).
    pub temperature: Option<f32>,
    /// Upper bound on generated tokens per request.
    pub max_tokens: u32,
}

impl ModelConfig {
    /// A config with defaults: no key, 120 s per request, 6 attempts within a
    /// 5 minute budget, 500 ms backoff base, 8 concurrent requests, server-default
    /// temperature, 1024 output tokens.
    pub fn new(protocol: Protocol, model: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            protocol,
            model: model.into(),
            base_url: base_url.into(),
            api_key: None,
            request_timeout: Duration::from_secs(120),
            max_attempts: 6,
            retry_budget: Duration::from_secs(300),
            retry_base: Duration::from_millis(500),
            max_concurrent_requests: 8,
            temperature: None,
            max_tokens: 1024,
        }
    }

    /// `text` with the API key (if any) scrubbed out.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match &self.api_key {
            Some(key) => key.scrub(text),
            None => text.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_parses_and_displays() {
        assert_eq!("openai".parse(), Ok(Protocol::OpenAi));
        assert_eq!(" Anthropic ".parse(), Ok(Protocol::Anthropic));
        assert!("gemini".parse::<Protocol>().unwrap_err().contains("gemini"));
        for p in [Protocol::OpenAi, Protocol::Anthropic] {
            assert_eq!(p.to_string().parse(), Ok(p));
        }
    }

    #[test]
    fn protocol_serde_uses_display_names() {
        assert_eq!(serde_json::to_string(&Protocol::OpenAi).unwrap(), "\"openai\"");
        let p: Protocol = serde_json::from_str("\"anthropic\"").unwrap();
        assert_eq!(p, Protocol::Anthropic);
    }

    #[test]
    fn api_key_never_prints_itself() {
        let key = ApiKey::new("sk-very-secret");
        assert_eq!(format!("{key} {key:?}"), "[redacted] [redacted]");
        assert_eq!(key.expose(), "sk-very-secret");
        let mut config = ModelConfig::new(Protocol::OpenAi, "m", "http://x/v1");
        config.api_key = Some(key);
        assert!(!format!("{config:?}").contains("sk-very-secret"));
    }

    #[test]
    fn scrub_replaces_every_occurrence_and_ignores_empty_keys() {
        let key = ApiKey::new("k3y");
        assert_eq!(key.scrub("a k3y b k3y"), "a [redacted] b [redacted]");
        assert_eq!(ApiKey::new("").scrub("abc"), "abc");
    }
}
