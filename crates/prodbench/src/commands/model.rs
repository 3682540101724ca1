//! The model clients a command builds, the agent's and the judge's, made one way: the same
//! URL check, protocol, key lookup and errors, whichever flags named the model. The key is
//! read here, when the client is built, and lives only in the client from then on.

use anyhow::Result;
use prodbench_llm::{ApiKey, Client, ModelConfig, Protocol};

use crate::UserError;

/// A model endpoint as the command line named it.
pub struct Endpoint<'a> {
    /// The flags' prefix, for errors: `--{flag}-base-url`, `--{flag}-protocol`.
    pub flag: &'static str,
    /// What the model is for, for errors: "model", "judge".
    pub role: &'static str,
    /// prodbench's own key variable, looked up before the protocol's usual one.
    pub key_var: &'static str,
    pub protocol: &'a str,
    pub model: &'a str,
    pub base_url: &'a str,
}

/// What a client may use; `None` keeps [`ModelConfig::new`]'s default.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientLimits {
    pub max_concurrent_requests: Option<usize>,
    pub max_tokens: Option<u32>,
    /// Sampling temperature; `None` sends none.
    pub temperature: Option<f32>,
}

/// The API root a protocol's hosted service answers at, when no base URL is given.
pub fn default_base_url(protocol: &str) -> &'static str {
    match protocol {
        "anthropic" => "https://api.anthropic.com/v1",
        _ => "https://api.openai.com/v1",
    }
}

/// The environment: a variable's value, if set and not empty.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A client for `endpoint` with `limits`, its key found by `lookup` (see [`env_var`]);
/// a key is required over https, where a hosted API is, and optional over plain http.
pub fn client(endpoint: &Endpoint, limits: ClientLimits, lookup: impl Fn(&str) -> Option<String>) -> Result<Client> {
    let (flag, base_url) = (endpoint.flag, endpoint.base_url);
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(UserError::new(format!("--{flag}-base-url: expected an http:// or https:// URL, got {base_url:?}"))
            .hint(format!("for example --{flag}-base-url http://127.0.0.1:8099/v1 (the path up to /chat/completions or /messages)"))
            .into());
    }
    let protocol: Protocol = endpoint.protocol.parse().map_err(|e: String| UserError::new(format!("--{flag}-protocol: {e}")))?;
    let protocol_var = match protocol {
        Protocol::Anthropic => "ANTHROPIC_API_KEY",
        Protocol::OpenAi => "OPENAI_API_KEY",
    };
    let mut config = ModelConfig::new(protocol, endpoint.model, base_url);
    config.api_key = [endpoint.key_var, protocol_var].into_iter().find_map(lookup).map(ApiKey::new);
    if config.api_key.is_none() && base_url.starts_with("https://") {
        return Err(UserError::new(format!("the {} at {base_url} needs an API key", endpoint.role))
            .hint(format!("export {}=... (or {protocol_var}); a local server (http://127.0.0.1:...) needs none", endpoint.key_var))
            .into());
    }
    config.max_concurrent_requests = limits.max_concurrent_requests.unwrap_or(config.max_concurrent_requests);
    config.max_tokens = limits.max_tokens.unwrap_or(config.max_tokens);
    config.temperature = limits.temperature;
    Ok(Client::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(protocol: &'static str, base_url: &'static str) -> Endpoint<'static> {
        Endpoint { flag: "judge", role: "judge", key_var: "PRODBENCH_JUDGE_API_KEY", protocol, model: "m", base_url }
    }

    fn error(result: Result<Client>) -> String {
        let Err(error) = result else { panic!("expected an error") };
        let user = error.downcast_ref::<UserError>().expect("a user error");
        format!("{user} / {}", user.hint.as_deref().unwrap_or_default())
    }

    #[test]
    fn our_key_wins_over_the_protocols_and_limits_apply() {
        let keys = |var: &str| match var {
            "PRODBENCH_JUDGE_API_KEY" => Some("ours".to_string()),
            "ANTHROPIC_API_KEY" => Some("theirs".to_string()),
            _ => None,
        };
        let limits = ClientLimits { max_concurrent_requests: None, max_tokens: Some(64), temperature: Some(0.5) };
        let client = client(&endpoint("anthropic", "https://api.anthropic.com/v1"), limits, keys).unwrap();
        let config = client.config();
        assert_eq!(config.api_key.as_ref().map(ApiKey::expose), Some("ours"));
        assert_eq!((config.max_tokens, config.temperature, config.protocol), (64, Some(0.5), Protocol::Anthropic));
        let defaults = ModelConfig::new(Protocol::Anthropic, "m", "x");
        assert_eq!(config.max_concurrent_requests, defaults.max_concurrent_requests, "an unset limit keeps the default");
        let only_theirs = |var: &str| (var == "OPENAI_API_KEY").then(|| "theirs".to_string());
        let client = super::client(&endpoint("openai", "https://api.openai.com/v1"), limits, only_theirs).unwrap();
        assert_eq!(client.config().api_key.as_ref().map(ApiKey::expose), Some("theirs"));
    }

    #[test]
    fn errors_name_the_flags_that_gave_the_endpoint() {
        let none = |_: &str| None;
        assert!(error(client(&endpoint("openai", "localhost:8099"), ClientLimits::default(), none)).starts_with("--judge-base-url: expected an http"));
        assert!(error(client(&endpoint("grpc", "http://x"), ClientLimits::default(), none)).starts_with("--judge-protocol: "));
        let missing = error(client(&endpoint("anthropic", "https://api.anthropic.com/v1"), ClientLimits::default(), none));
        assert!(missing.starts_with("the judge at https://api.anthropic.com/v1 needs an API key"), "{missing}");
        assert!(missing.contains("export PRODBENCH_JUDGE_API_KEY=... (or ANTHROPIC_API_KEY)"), "{missing}");
        assert!(client(&endpoint("openai", "http://127.0.0.1:8099/v1"), ClientLimits::default(), none).is_ok(), "a local server needs no key");
    }
}
