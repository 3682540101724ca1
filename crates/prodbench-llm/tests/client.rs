//! End-to-end tests of `Client` against the scripted server, for both protocols.

use std::time::{Duration, Instant};

use prodbench_llm::scripted::{RecordedRequest, Reply, ScriptedServer, USAGE};
use prodbench_llm::{ApiKey, ChatRequest, Client, JsonSchema, LlmError, Message, ModelConfig, Protocol, StopReason, ToolCall, ToolSpec};
use serde_json::{Value, json};

const KEY: &str = "sk-test-SECRET-0123456789";
const BOTH: [Protocol; 2] = [Protocol::OpenAi, Protocol::Anthropic];

fn config(protocol: Protocol, server: &ScriptedServer) -> ModelConfig {
    let mut config = ModelConfig::new(protocol, "test-model", server.url());
    config.api_key = Some(ApiKey::new(KEY));
    config.retry_base = Duration::from_millis(1);
    config.request_timeout = Duration::from_secs(10);
    config
}

fn client(protocol: Protocol, server: &ScriptedServer) -> Client {
    Client::new(config(protocol, server))
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest { messages: vec![Message::User(text.into())], ..ChatRequest::default() }
}

fn text_reply(protocol: Protocol, text: &str) -> Reply {
    match protocol {
        Protocol::OpenAi => Reply::OpenAiText(text.into()),
        Protocol::Anthropic => Reply::AnthropicText(text.into()),
    }
}

fn status(status: u16, body: &str) -> Reply {
    Reply::Status { status, body: body.into(), retry_after: None }
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Current weather in a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    }
}

fn verdict_schema() -> JsonSchema {
    JsonSchema {
        name: "verdict".into(),
        schema: json!({
            "type": "object",
            "properties": {"verdict": {"type": "string"}, "score": {"type": "integer"}},
            "required": ["verdict", "score"],
            "additionalProperties": false,
        }),
    }
}

fn only_request(server: &ScriptedServer) -> RecordedRequest {
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "expected exactly one request: {requests:#?}");
    requests.into_iter().next().unwrap()
}

/// `future`'s output, failing the test if it takes longer than `limit`.
async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, future).await.expect("call overran its time bound")
}

fn json_text(text: Option<&str>) -> Value {
    serde_json::from_str(text.expect("reply text")).expect("reply text is JSON")
}

// ---- plain text ---------------------------------------------------------------

fn tuned_request() -> (ChatRequest, impl Fn(&mut ModelConfig)) {
    let request = ChatRequest { system: Some("be brief".into()), ..ask("hi") };
    let tune = |config: &mut ModelConfig| {
        config.temperature = Some(0.25);
        config.max_tokens = 77;
    };
    (request, tune)
}

#[tokio::test]
async fn openai_text_reply_parses_text_usage_and_sends_its_wire_shape() {
    let server = ScriptedServer::start(vec![Reply::OpenAiText("hello".into())]).await;
    let (request, tune) = tuned_request();
    let mut config = config(Protocol::OpenAi, &server);
    tune(&mut config);
    let response = Client::new(config).chat(&request).await.unwrap();

    assert_eq!(response.text.as_deref(), Some("hello"));
    assert_eq!(response.stop, StopReason::EndTurn);
    assert_eq!(response.usage, USAGE);
    assert_eq!((response.attempts, response.model.as_str()), (1, "test-model"));
    assert!(response.tool_calls.is_empty());

    let sent = only_request(&server);
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.body,
        json!({
            "model": "test-model",
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "max_tokens": 77,
            "temperature": 0.25,
        })
    );
}

#[tokio::test]
async fn anthropic_text_reply_parses_text_usage_and_sends_its_wire_shape() {
    let server = ScriptedServer::start(vec![Reply::AnthropicText("hello".into())]).await;
    let (request, tune) = tuned_request();
    let mut config = config(Protocol::Anthropic, &server);
    tune(&mut config);
    let response = Client::new(config).chat(&request).await.unwrap();

    assert_eq!(response.text.as_deref(), Some("hello"));
    assert_eq!(response.stop, StopReason::EndTurn);
    assert_eq!(response.usage, USAGE);
    assert_eq!((response.attempts, response.model.as_str()), (1, "test-model"));

    let sent = only_request(&server);
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/messages"));
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.body,
        json!({
            "model": "test-model",
            "max_tokens": 77,
            "system": "be brief",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "temperature": 0.25,
        })
    );
}

#[tokio::test]
async fn model_name_is_the_one_the_server_reports() {
    let bodies = [
        (Protocol::OpenAi, r#"{"model":"gpt-4o-2024-08-06","choices":[{"message":{"content":"x"},"finish_reason":"stop"}]}"#),
        (Protocol::Anthropic, r#"{"model":"claude-x-1","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn"}"#),
    ];
    for (protocol, body) in bodies {
        let server = ScriptedServer::start(vec![Reply::Raw { status: 200, body: body.into() }]).await;
        let response = client(protocol, &server).chat(&ask("hi")).await.unwrap();
        let expected = if protocol == Protocol::OpenAi { "gpt-4o-2024-08-06" } else { "claude-x-1" };
        assert_eq!(response.model, expected);
        assert_eq!(response.usage, Default::default(), "missing usage counts as zero");
    }
}

#[tokio::test]
async fn requests_without_a_key_send_no_credentials() {
    for protocol in BOTH {
        let server = ScriptedServer::start(vec![text_reply(protocol, "ok")]).await;
        let mut config = config(protocol, &server);
        config.api_key = None;
        Client::new(config).chat(&ask("hi")).await.unwrap();
        let sent = only_request(&server);
        assert_eq!(sent.header("authorization"), None);
        assert_eq!(sent.header("x-api-key"), None);
    }
}

// ---- tool calls ---------------------------------------------------------------

/// The calls the model made, answered: the first succeeds, the second fails.
fn follow_up(assistant_text: Option<&str>, calls: &[ToolCall]) -> ChatRequest {
    let mut request = ChatRequest { tools: vec![weather_tool()], ..ask("weather in Paris?") };
    request.messages.push(Message::Assistant { text: assistant_text.map(str::to_owned), tool_calls: calls.to_vec() });
    request.messages.push(Message::ToolResult { call_id: calls[0].id.clone(), content: "18C".into(), is_error: false });
    request.messages.push(Message::ToolResult { call_id: calls[1].id.clone(), content: "clock broke".into(), is_error: true });
    request
}

#[tokio::test]
async fn openai_tool_calls_round_trip() {
    let script = vec![
        Reply::OpenAiToolCalls(vec![("get_weather".into(), r#"{"city":"Paris"}"#.into()), ("get_time".into(), "{}".into())]),
        Reply::OpenAiText("done".into()),
    ];
    let server = ScriptedServer::start(script).await;
    let client = client(Protocol::OpenAi, &server);
    let first = ChatRequest { tools: vec![weather_tool()], ..ask("weather in Paris?") };
    let response = client.chat(&first).await.unwrap();

    assert_eq!(response.stop, StopReason::ToolUse);
    assert_eq!(response.text, None);
    let expected_calls = vec![
        ToolCall { id: "call_0_0".into(), name: "get_weather".into(), arguments: r#"{"city":"Paris"}"#.into() },
        ToolCall { id: "call_0_1".into(), name: "get_time".into(), arguments: "{}".into() },
    ];
    assert_eq!(response.tool_calls, expected_calls);

    let done = client.chat(&follow_up(None, &response.tool_calls)).await.unwrap();
    assert_eq!(done.text.as_deref(), Some("done"));

    let requests = server.requests();
    let tool = weather_tool();
    assert_eq!(
        requests[0].body["tools"],
        json!([{"type": "function", "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters}}])
    );
    assert_eq!(
        requests[1].body["messages"],
        json!([
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_0_0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_0_1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_0_0", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_0_1", "content": "ERROR: clock broke"},
        ])
    );
}

#[tokio::test]
async fn anthropic_tool_use_round_trip() {
    let script = vec![
        Reply::AnthropicToolUse(vec![("get_weather".into(), json!({"city": "Paris"})), ("get_time".into(), json!({}))]),
        Reply::AnthropicText("done".into()),
    ];
    let server = ScriptedServer::start(script).await;
    let client = client(Protocol::Anthropic, &server);
    let first = ChatRequest { tools: vec![weather_tool()], ..ask("weather in Paris?") };
    let response = client.chat(&first).await.unwrap();

    assert_eq!(response.stop, StopReason::ToolUse);
    let ids: Vec<&str> = response.tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["toolu_0_0", "toolu_0_1"]);
    assert_eq!(response.tool_calls[0].name, "get_weather");
    let arguments: Value = serde_json::from_str(&response.tool_calls[0].arguments).unwrap();
    assert_eq!(arguments, json!({"city": "Paris"}));

    let request = follow_up(Some("Let me check."), &response.tool_calls);
    let done = client.chat(&request).await.unwrap();
    assert_eq!(done.text.as_deref(), Some("done"));

    let requests = server.requests();
    let tool = weather_tool();
    assert_eq!(requests[0].body["tools"], json!([{"name": tool.name, "description": tool.description, "input_schema": tool.parameters}]));
    assert!(requests[0].body.get("tool_choice").is_none());
    assert_eq!(
        requests[1].body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "weather in Paris?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_0_0", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_0_1", "name": "get_time", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_0_0", "content": "18C", "is_error": false},
                {"type": "tool_result", "tool_use_id": "toolu_0_1", "content": "clock broke", "is_error": true},
            ]},
        ])
    );
}

// ---- structured output --------------------------------------------------------

#[tokio::test]
async fn openai_json_schema_becomes_response_format() {
    let server = ScriptedServer::start(vec![Reply::OpenAiText(r#"{"verdict":"pass","score":3}"#.into())]).await;
    let request = ChatRequest { json_schema: Some(verdict_schema()), ..ask("grade it") };
    let response = client(Protocol::OpenAi, &server).chat(&request).await.unwrap();

    assert_eq!(json_text(response.text.as_deref()), json!({"verdict": "pass", "score": 3}));
    let schema = verdict_schema();
    assert_eq!(
        only_request(&server).body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema.schema, "strict": true}})
    );
}

#[tokio::test]
async fn anthropic_json_schema_forces_the_respond_tool_and_returns_its_input_as_text() {
    let answer = json!({"verdict": "pass", "score": 3});
    let server = ScriptedServer::start(vec![Reply::AnthropicToolUse(vec![("respond".into(), answer.clone())])]).await;
    let request = ChatRequest { json_schema: Some(verdict_schema()), tools: vec![weather_tool()], ..ask("grade it") };
    let response = client(Protocol::Anthropic, &server).chat(&request).await.unwrap();

    assert_eq!(json_text(response.text.as_deref()), answer);
    assert!(response.tool_calls.is_empty(), "the respond call is the answer, not a tool call");
    assert_eq!(response.stop, StopReason::EndTurn);

    let body = only_request(&server).body;
    assert_eq!(body["tool_choice"], json!({"type": "tool", "name": "respond"}));
    let tools = body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0]["name"], "get_weather");
    assert_eq!(tools[1]["name"], "respond");
    assert_eq!(tools[1]["input_schema"], verdict_schema().schema);
    assert!(body.get("response_format").is_none());
}

// ---- retries ------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured_then_succeeds() {
    for protocol in BOTH {
        let script = vec![Reply::Status { status: 429, body: r#"{"error":{"message":"slow down"}}"#.into(), retry_after: Some(1) }, text_reply(protocol, "ok")];
        let server = ScriptedServer::start(script).await;
        let response = client(protocol, &server).chat(&ask("hi")).await.unwrap();
        assert_eq!(response.attempts, 2);
        assert_eq!(server.requests().len(), 2);
        // The backoff base is 1 ms, so only the header explains a 1 s wait.
        assert!(response.latency >= Duration::from_secs(1), "{:?}", response.latency);
    }
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    for protocol in BOTH {
        let script = vec![status(500, "boom"), status(529, "overloaded"), text_reply(protocol, "ok")];
        let server = ScriptedServer::start(script).await;
        let response = client(protocol, &server).chat(&ask("hi")).await.unwrap();
        assert_eq!(response.attempts, 3);
        assert_eq!(response.text.as_deref(), Some("ok"));
        assert_eq!(server.requests().len(), 3);
    }
}

#[tokio::test]
async fn timeouts_are_retried_then_give_up_after_max_attempts() {
    for protocol in BOTH {
        let slow = Reply::Delay(Duration::from_millis(500), Box::new(text_reply(protocol, "late")));
        let server = ScriptedServer::start(vec![slow]).await;
        let mut config = config(protocol, &server);
        config.request_timeout = Duration::from_millis(50);
        config.max_attempts = 3;
        let error = Client::new(config).chat(&ask("hi")).await.unwrap_err();
        match error {
            LlmError::GaveUp { attempts: 3, last } => {
                assert!(matches!(*last, LlmError::Timeout(t) if t == Duration::from_millis(50)), "{last:?}");
            }
            other => panic!("expected GaveUp after 3 attempts, got {other:?}"),
        }
        assert_eq!(server.requests().len(), 3);
    }
}

#[tokio::test]
async fn retry_budget_bounds_the_total_time() {
    let server = ScriptedServer::start(vec![status(500, "down")]).await;
    let mut config = config(Protocol::OpenAi, &server);
    config.max_attempts = 1000;
    config.retry_base = Duration::from_millis(20);
    config.retry_budget = Duration::from_millis(200);
    // Without the budget, ~1000 attempts with growing backoff would take hours.
    let error = within(Duration::from_secs(1), Client::new(config).chat(&ask("hi"))).await.unwrap_err();
    let LlmError::GaveUp { attempts, last } = error else { panic!("expected GaveUp, got {error:?}") };
    assert!((2..1000).contains(&attempts), "{attempts}");
    assert!(matches!(*last, LlmError::Server { status: 500, .. }));
}

#[tokio::test]
async fn retry_after_beyond_the_budget_gives_up_without_waiting() {
    let limited = Reply::Status { status: 429, body: "later".into(), retry_after: Some(60) };
    let server = ScriptedServer::start(vec![limited]).await;
    let mut config = config(Protocol::Anthropic, &server);
    config.retry_budget = Duration::from_secs(5);
    let error = within(Duration::from_secs(5), Client::new(config).chat(&ask("hi"))).await.unwrap_err();
    assert!(matches!(&error, LlmError::GaveUp { attempts: 1, .. }), "{error:?}");
    let LlmError::GaveUp { last, .. } = error else { unreachable!() };
    assert!(matches!(*last, LlmError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(60)));
}

#[tokio::test]
async fn connection_refused_is_a_retried_transport_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = ModelConfig::new(Protocol::OpenAi, "m", format!("http://127.0.0.1:{port}/v1"));
    config.api_key = Some(ApiKey::new(KEY));
    config.retry_base = Duration::from_millis(1);
    config.max_attempts = 2;
    let error = Client::new(config).chat(&ask("hi")).await.unwrap_err();
    assert!(matches!(&error, LlmError::GaveUp { attempts: 2, last } if matches!(**last, LlmError::Transport(_))), "{error:?}");
}

// ---- errors that are not retried ---------------------------------------------

#[tokio::test]
async fn context_window_errors_are_recognised_and_not_retried() {
    let bodies = [
        r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
        r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}}"#,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
    ];
    for protocol in BOTH {
        for body in bodies {
            let server = ScriptedServer::start(vec![status(400, body)]).await;
            let error = client(protocol, &server).chat(&ask("hi")).await.unwrap_err();
            assert!(matches!(error, LlmError::ContextWindow(_)), "{protocol}: {error:?}");
            only_request(&server);
        }
    }
}

#[tokio::test]
async fn other_client_errors_are_bad_requests_and_not_retried() {
    let server = ScriptedServer::start(vec![status(400, r#"{"error":{"message":"temperature too high"}}"#)]).await;
    let error = client(Protocol::OpenAi, &server).chat(&ask("hi")).await.unwrap_err();
    assert!(matches!(&error, LlmError::BadRequest { status: 400, message } if message == "temperature too high"), "{error:?}");
    only_request(&server);
}

#[tokio::test]
async fn auth_failures_are_not_retried() {
    for protocol in BOTH {
        for code in [401, 403] {
            let server = ScriptedServer::start(vec![status(code, r#"{"error":{"message":"invalid x-api-key"}}"#)]).await;
            let error = client(protocol, &server).chat(&ask("hi")).await.unwrap_err();
            assert!(matches!(error, LlmError::Auth { status, .. } if status == code), "{error:?}");
            only_request(&server);
        }
    }
}

#[tokio::test]
async fn malformed_success_bodies_are_errors_and_not_retried() {
    for protocol in BOTH {
        // Invalid JSON, and valid JSON in the other protocol's shape.
        let other = match protocol {
            Protocol::OpenAi => text_reply(Protocol::Anthropic, "x"),
            Protocol::Anthropic => text_reply(Protocol::OpenAi, "x"),
        };
        for reply in [Reply::Raw { status: 200, body: "{not json".into() }, other] {
            let server = ScriptedServer::start(vec![reply]).await;
            let error = client(protocol, &server).chat(&ask("hi")).await.unwrap_err();
            assert!(matches!(error, LlmError::Malformed(_)), "{protocol}: {error:?}");
            only_request(&server);
        }
    }
}

// ---- concurrency --------------------------------------------------------------

async fn two_concurrent_calls(limit: usize, delay: Duration) -> Duration {
    let slow = Reply::Delay(delay, Box::new(Reply::OpenAiText("ok".into())));
    let server = ScriptedServer::start(vec![slow]).await;
    let mut config = config(Protocol::OpenAi, &server);
    config.max_concurrent_requests = limit;
    let client = Client::new(config);
    let other = client.clone();
    let request = ask("hi");
    let started = Instant::now();
    let (a, b) = tokio::join!(client.chat(&request), other.chat(&request));
    a.unwrap();
    b.unwrap();
    started.elapsed()
}

#[tokio::test]
async fn concurrency_limit_is_shared_by_clones_and_serialises_requests() {
    let delay = Duration::from_millis(300);
    let serial = two_concurrent_calls(1, delay).await;
    assert!(serial >= 2 * delay, "limit 1 should serialise: {serial:?}");
    let parallel = two_concurrent_calls(2, delay).await;
    assert!(parallel < 2 * delay, "limit 2 should overlap: {parallel:?}");
}

// ---- secrets ------------------------------------------------------------------

#[tokio::test]
async fn api_key_never_appears_in_error_messages() {
    for protocol in BOTH {
        // The server echoes the request headers (with the key) into the error body.
        let server = ScriptedServer::start(vec![Reply::Echo { status: 400 }]).await;
        let error = client(protocol, &server).chat(&ask("hi")).await.unwrap_err();
        assert!(matches!(error, LlmError::BadRequest { .. }), "{error:?}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("[redacted]"), "the echoed key should be visibly scrubbed: {shown}");

        let server = ScriptedServer::start(vec![Reply::Echo { status: 503 }]).await;
        let mut config = config(protocol, &server);
        config.max_attempts = 2;
        let error = Client::new(config).chat(&ask("hi")).await.unwrap_err();
        assert!(matches!(error, LlmError::GaveUp { attempts: 2, .. }), "{error:?}");
        assert!(!format!("{error} {error:?}").contains(KEY));

        let leaky = Reply::Raw { status: 200, body: format!("not json, key {KEY}") };
        let server = ScriptedServer::start(vec![leaky]).await;
        let error = client(protocol, &server).chat(&ask("hi")).await.unwrap_err();
        assert!(matches!(error, LlmError::Malformed(_)), "{error:?}");
        assert!(!format!("{error} {error:?}").contains(KEY));
    }
}

#[tokio::test]
async fn api_key_never_appears_in_debug_output() {
    let server = ScriptedServer::start(vec![]).await;
    let config = config(Protocol::OpenAi, &server);
    let client = Client::new(config.clone());
    for shown in [format!("{config:?}"), format!("{client:?}")] {
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

// ---- the scripted server itself ----------------------------------------------

#[tokio::test]
async fn scripted_server_repeats_its_last_reply() {
    let script = vec![Reply::OpenAiText("a".into()), Reply::OpenAiText("b".into())];
    let server = ScriptedServer::start(script).await;
    let client = client(Protocol::OpenAi, &server);
    let mut texts = Vec::new();
    for _ in 0..3 {
        texts.push(client.chat(&ask("hi")).await.unwrap().text.unwrap());
    }
    assert_eq!(texts, ["a", "b", "b"]);
}

#[tokio::test]
async fn empty_script_answers_500() {
    let server = ScriptedServer::start(vec![]).await;
    let mut config = config(Protocol::OpenAi, &server);
    config.max_attempts = 1;
    let error = Client::new(config).chat(&ask("hi")).await.unwrap_err();
    let LlmError::GaveUp { last, .. } = error else { panic!("{error:?}") };
    assert!(matches!(&*last, LlmError::Server { status: 500, message } if message.contains("script is empty")));
}
