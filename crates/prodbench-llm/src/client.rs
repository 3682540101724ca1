//! The [`Client`]: one HTTP client, one concurrency limit, bounded retries.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::sync::Semaphore;

use crate::error::truncate;
use crate::retry::{self, RetryPolicy};
use crate::types::Completion;
use crate::{ChatRequest, ChatResponse, LlmError, ModelConfig, Protocol, anthropic, openai};

/// How much of an unparseable body goes into a [`LlmError::Malformed`] message.
const BODY_SNIPPET_CHARS: usize = 200;

/// A model client. Cheap to clone: clones share the HTTP connection pool and
/// the [`ModelConfig::max_concurrent_requests`] limit.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ModelConfig,
    /// Building can fail (TLS setup); the failure is reported by `chat`.
    http: Result<reqwest::Client, String>,
    limiter: Semaphore,
}

/// One encoded request, reused by every attempt.
struct Call {
    url: String,
    headers: HeaderMap,
    body: Bytes,
    structured: bool,
}

/// A failed attempt, with the server's `Retry-After` hint.
struct Failure {
    error: LlmError,
    retry_after: Option<std::time::Duration>,
}

impl From<LlmError> for Failure {
    fn from(error: LlmError) -> Self {
        Self { error, retry_after: None }
    }
}

impl Client {
    /// A client for `config`.
    ///
    /// Installs rustls's `ring` crypto provider as the process default if no provider is
    /// installed yet: reqwest is built without one (which would be aws-lc-rs) and panics
    /// when it finds none.
    pub fn new(config: ModelConfig) -> Self {
        // An error means a provider is installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("prodbench-llm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)));
        let permits = config.max_concurrent_requests.clamp(1, Semaphore::MAX_PERMITS);
        let limiter = Semaphore::new(permits);
        Self { inner: Arc::new(Inner { config, http, limiter }) }
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ModelConfig {
        &self.inner.config
    }

    /// Sends `request`, retrying transient failures (see the crate docs).
    ///
    /// # Errors
    /// Retryable errors ([`LlmError::is_retryable`]) that outlast the attempts
    /// or the budget come back as [`LlmError::GaveUp`] holding the last one;
    /// any other error comes back at once, unwrapped.
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let started = Instant::now();
        let http = self.inner.http.as_ref().map_err(|e| LlmError::Transport(e.clone()))?;
        let call = self.encode(request)?;
        let policy = RetryPolicy::new(&self.inner.config);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.attempt(http, &call).await {
                Ok(done) => {
                    let model = &self.inner.config.model;
                    return Ok(done.into_response(model, attempts, started.elapsed()));
                }
                Err(failure) => failure,
            };
            if !failure.error.is_retryable() {
                return Err(failure.error);
            }
            match policy.next_delay(attempts, started.elapsed(), failure.retry_after) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => {
                    return Err(LlmError::GaveUp { attempts, last: Box::new(failure.error) });
                }
            }
        }
    }

    /// URL, headers and body in the configured protocol.
    fn encode(&self, request: &ChatRequest) -> Result<Call, LlmError> {
        let config = &self.inner.config;
        let key = config.api_key.as_ref();
        let (url, headers, body) = match config.protocol {
            Protocol::OpenAi => (openai::url(&config.base_url), openai::headers(key), openai::body(config, request)),
            Protocol::Anthropic => (anthropic::url(&config.base_url), anthropic::headers(key), anthropic::body(config, request)),
        };
        let mut headers = headers.map_err(|_| LlmError::Auth { status: 0, message: "the API key contains characters not allowed in an HTTP header".into() })?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let body = Bytes::from(body.to_string());
        Ok(Call { url, headers, body, structured: request.json_schema.is_some() })
    }

    /// One HTTP exchange, holding a concurrency slot throughout.
    async fn attempt(&self, http: &reqwest::Client, call: &Call) -> Result<Completion, Failure> {
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self.inner.limiter.acquire().await.ok();
        let response = http
            .post(&call.url)
            .headers(call.headers.clone())
            .body(call.body.clone())
            .timeout(self.inner.config.request_timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        let retry_after = matches!(status, 429 | 503 | 529).then(|| retry::retry_after(response.headers())).flatten();
        let body = response.bytes().await.map_err(|e| self.transport_error(&e))?;
        if (200..300).contains(&status) {
            return self.decode(&body, call.structured).map_err(Failure::from);
        }
        let text = self.inner.config.scrub(&String::from_utf8_lossy(&body));
        Err(Failure { error: LlmError::from_status(status, &text, retry_after), retry_after })
    }

    /// Parses a success body in the configured protocol.
    fn decode(&self, body: &[u8], structured: bool) -> Result<Completion, LlmError> {
        let parsed = match self.inner.config.protocol {
            Protocol::OpenAi => openai::parse(body),
            Protocol::Anthropic => anthropic::parse(body, structured),
        };
        parsed.map_err(|reason| {
            let snippet = truncate(String::from_utf8_lossy(body).into_owned(), BODY_SNIPPET_CHARS);
            let message = format!("{reason}; body: {snippet}");
            LlmError::Malformed(self.inner.config.scrub(&message))
        })
    }

    fn transport_error(&self, error: &reqwest::Error) -> Failure {
        let error = if error.is_timeout() {
            LlmError::Timeout(self.inner.config.request_timeout)
        } else {
            LlmError::Transport(self.inner.config.scrub(&error_chain(error)))
        };
        Failure::from(error)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// An error and its sources, `: `-separated (reqwest's own message is terse).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_builds_with_ring_as_the_tls_provider() {
        let client = Client::new(ModelConfig::new(Protocol::OpenAi, "m", "https://api.openai.com/v1"));
        assert!(client.inner.http.is_ok(), "{:?}", client.inner.http.as_ref().err());
        let provider = rustls::crypto::CryptoProvider::get_default().expect("a process-wide provider");
        let ring = rustls::crypto::ring::default_provider();
        let suites = |p: &rustls::crypto::CryptoProvider| p.cipher_suites.iter().map(|s| s.suite()).collect::<Vec<_>>();
        assert_eq!(suites(provider), suites(&ring), "ring's suites");
    }
}
