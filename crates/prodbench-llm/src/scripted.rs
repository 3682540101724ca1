//! A deterministic scripted model server, for testing callers without a model.
//!
//! [`ScriptedServer`] listens on `127.0.0.1` and answers requests, in arrival
//! order, with the [`Reply`]s of its script; **when the script runs out its last
//! reply repeats** (an empty script answers every request with a 500). It
//! records every request so tests can assert on what was sent. It speaks just
//! enough HTTP/1.1 for a client: it reads the request line, headers and a
//! `Content-Length` body, answers with `Connection: close`, and serves each
//! connection concurrently (so [`Reply::Delay`] delays overlap unless the
//! client serialises them).
//!
//! Successful replies carry [`USAGE`] in the protocol's own shape and echo the
//! request's `model`, so callers can assert on accounting and pricing. A request with
//! `"stream": true` gets its Anthropic or Responses reply as server-sent events, the way
//! the streaming CLIs (Claude Code, Codex) read them, so a real CLI can run against it and
//! the test then read what it sent: [`RecordedRequest::bearer`] and
//! [`RecordedRequest::header`] for the key, [`RecordedRequest::texts`] for the prompt.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::Usage;

/// Usage every successful scripted reply reports, on both protocols
/// (Anthropic's shape: 60 uncached input + 40 cache-read tokens).
pub const USAGE: Usage = Usage { prompt_tokens: 100, completion_tokens: 20, cached_tokens: 40 };

/// Model name reported when the request named none.
const DEFAULT_MODEL: &str = "scripted-model";

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// OpenAI chat completion with this text, `finish_reason: "stop"`.
    OpenAiText(String),
    /// OpenAI chat completion calling tools: `(name, arguments as JSON text)`,
    /// `finish_reason: "tool_calls"`, ids `call_{request}_{index}`.
    OpenAiToolCalls(Vec<(String, String)>),
    /// Anthropic message with one text block, `stop_reason: "end_turn"`.
    AnthropicText(String),
    /// Anthropic message with `tool_use` blocks `(name, input)`,
    /// `stop_reason: "tool_use"`, ids `toolu_{request}_{index}`.
    AnthropicToolUse(Vec<(String, Value)>),
    /// OpenAI Responses API response with one output message of this text, `completed`.
    ResponsesText(String),
    /// Any status with a JSON body, and a `Retry-After` (seconds) if given.
    Status {
        /// HTTP status.
        status: u16,
        /// Response body, sent as is.
        body: String,
        /// `Retry-After` header value in seconds.
        retry_after: Option<u64>,
    },
    /// Any status and body, e.g. a malformed 200.
    Raw {
        /// HTTP status.
        status: u16,
        /// Response body, sent as is.
        body: String,
    },
    /// Answers with this status and a JSON body echoing the request:
    /// `{"method", "path", "headers": {name: value}, "body"}`.
    Echo {
        /// HTTP status.
        status: u16,
    },
    /// Sleeps, then sends the inner reply (for timeouts and concurrency tests).
    Delay(Duration, Box<Reply>),
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request target, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as JSON; a string if it was not JSON, null if empty.
    pub body: Value,
}

impl RecordedRequest {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The token of an `Authorization: Bearer` header.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization").and_then(|value| value.strip_prefix("Bearer "))
    }

    /// Every string in the body, at any depth (messages, content blocks, instructions).
    pub fn texts(&self) -> Vec<&str> {
        fn walk<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::String(text) => out.push(text),
                Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
                Value::Object(map) => map.values().for_each(|item| walk(item, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.body, &mut out);
        out
    }
}

/// A running scripted server; stops accepting when dropped.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    script: Vec<Reply>,
    requests: Mutex<Vec<RecordedRequest>>,
}

impl ScriptedServer {
    /// Starts serving `script` on an ephemeral loopback port.
    ///
    /// # Panics
    /// If no loopback port can be bound: this is a test fixture.
    pub async fn start(script: Vec<Reply>) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("scripted server: cannot bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("scripted server: bound socket has no address");
        let state = Arc::new(State { script, requests: Mutex::new(Vec::new()) });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        ScriptedServer { addr, state, accept }
    }

    /// Base URL to put in [`ModelConfig::base_url`](crate::ModelConfig::base_url):
    /// `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().clone()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `request`; returns its index and the scripted reply (if any).
    fn record(&self, request: RecordedRequest) -> (usize, Option<&Reply>) {
        let mut requests = self.lock();
        let index = requests.len();
        requests.push(request);
        let reply = self.script.get(index).or_else(|| self.script.last());
        (index, reply)
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, Arc::clone(&state)));
            }
            Err(_) => tokio::task::yield_now().await,
        }
    }
}

/// Reads one request, records it and answers it. A client that goes away
/// (e.g. after timing out) is not an error.
async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let Ok(request) = read_request(&mut stream).await else {
        return;
    };
    let (index, reply) = state.record(request.clone());
    let mut reply = reply.cloned().unwrap_or_else(|| Reply::Status {
        status: 500,
        body: r#"{"error":{"message":"scripted server: script is empty"}}"#.into(),
        retry_after: None,
    });
    while let Reply::Delay(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    let response = render(&reply, index, &request);
    // Write errors mean the client left; nothing to do.
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

async fn read_request(stream: &mut TcpStream) -> io::Result<RecordedRequest> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let headers = read_headers(&mut reader).await?;
    let length = headers.iter().find(|(name, _)| name == "content-length").and_then(|(_, value)| value.parse::<usize>().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(RecordedRequest { method, path, headers, body: parse_body(&body) })
}

async fn read_headers(reader: &mut BufReader<&mut TcpStream>) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
}

fn parse_body(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The raw HTTP response for `reply` (never a [`Reply::Delay`]; those are slept off first).
fn render(reply: &Reply, index: usize, request: &RecordedRequest) -> Vec<u8> {
    let model = request.body["model"].as_str().unwrap_or(DEFAULT_MODEL);
    if request.body["stream"] == Value::Bool(true) {
        if let Some(events) = streamed(reply, index, model) {
            return sse_response(&events);
        }
    }
    let (status, body, retry_after) = match reply {
        Reply::OpenAiText(text) => (200, openai_text(index, model, text), None),
        Reply::OpenAiToolCalls(calls) => (200, openai_tool_calls(index, model, calls), None),
        Reply::AnthropicText(text) => {
            let block = json!({"type": "text", "text": text});
            (200, anthropic_message(index, model, vec![block], "end_turn"), None)
        }
        Reply::AnthropicToolUse(calls) => (200, anthropic_tool_use(index, model, calls), None),
        Reply::ResponsesText(text) => (200, responses_response(index, model, text).to_string(), None),
        Reply::Status { status, body, retry_after } => (*status, body.clone(), *retry_after),
        Reply::Raw { status, body } => (*status, body.clone(), None),
        Reply::Echo { status } => (*status, echo(request), None),
        Reply::Delay(_, inner) => return render(inner, index, request),
    };
    http_response(status, &body, retry_after)
}

/// The events of a streamed reply, for the replies that have a streamed form.
fn streamed(reply: &Reply, index: usize, model: &str) -> Option<Vec<(String, Value)>> {
    match reply {
        Reply::AnthropicText(text) => {
            let body = anthropic_message(index, model, vec![json!({"type": "text", "text": text})], "end_turn");
            Some(anthropic_events(serde_json::from_str(&body).ok()?))
        }
        Reply::AnthropicToolUse(calls) => Some(anthropic_events(serde_json::from_str(&anthropic_tool_use(index, model, calls)).ok()?)),
        Reply::ResponsesText(text) => {
            let response = responses_response(index, model, text);
            let item = response["output"][0].clone();
            Some(vec![
                ("response.created".into(), json!({"type": "response.created", "response": {"id": response["id"], "status": "in_progress", "output": []}})),
                ("response.output_item.done".into(), json!({"type": "response.output_item.done", "output_index": 0, "item": item})),
                ("response.completed".into(), json!({"type": "response.completed", "response": response})),
            ])
        }
        _ => None,
    }
}

/// An Anthropic message as its stream: `message_start` (usage so far), each block's start,
/// delta and stop, `message_delta` (stop reason, output tokens), `message_stop`.
fn anthropic_events(message: Value) -> Vec<(String, Value)> {
    let mut start = message.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    let mut events = vec![("message_start".to_string(), json!({"type": "message_start", "message": start}))];
    for (i, block) in message["content"].as_array().into_iter().flatten().enumerate() {
        let (empty, delta) = match block["type"].as_str() {
            Some("tool_use") => {
                let mut empty = block.clone();
                empty["input"] = json!({});
                (empty, json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}))
            }
            _ => (json!({"type": "text", "text": ""}), json!({"type": "text_delta", "text": block["text"]})),
        };
        events.push(("content_block_start".into(), json!({"type": "content_block_start", "index": i, "content_block": empty})));
        events.push(("content_block_delta".into(), json!({"type": "content_block_delta", "index": i, "delta": delta})));
        events.push(("content_block_stop".into(), json!({"type": "content_block_stop", "index": i})));
    }
    let delta = json!({"stop_reason": message["stop_reason"], "stop_sequence": null});
    events.push(("message_delta".into(), json!({"type": "message_delta", "delta": delta, "usage": {"output_tokens": USAGE.completion_tokens}})));
    events.push(("message_stop".into(), json!({"type": "message_stop"})));
    events
}

fn sse_response(events: &[(String, Value)]) -> Vec<u8> {
    let body: String = events.iter().map(|(name, data)| format!("event: {name}\ndata: {data}\n\n")).collect();
    let head = format!("HTTP/1.1 200 Scripted\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
    [head.as_bytes(), body.as_bytes()].concat()
}

/// A completed Responses API response whose output is one assistant message.
fn responses_response(index: usize, model: &str, text: &str) -> Value {
    json!({
        "id": format!("resp_scripted_{index}"),
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": model,
        "output": [{
            "type": "message",
            "id": format!("msg_scripted_{index}"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }],
        "usage": {
            "input_tokens": USAGE.prompt_tokens,
            "input_tokens_details": {"cached_tokens": USAGE.cached_tokens},
            "output_tokens": USAGE.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": USAGE.prompt_tokens + USAGE.completion_tokens,
        },
    })
}

fn http_response(status: u16, body: &str, retry_after: Option<u64>) -> Vec<u8> {
    let retry_after = retry_after.map_or(String::new(), |s| format!("retry-after: {s}\r\n"));
    let head =
        format!("HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{retry_after}\r\n", body.len());
    [head.as_bytes(), body.as_bytes()].concat()
}

fn openai_text(index: usize, model: &str, text: &str) -> String {
    let message = json!({"role": "assistant", "content": text});
    openai_completion(index, model, message, "stop")
}

fn openai_tool_calls(index: usize, model: &str, calls: &[(String, String)]) -> String {
    let calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| {
            json!({
                "id": format!("call_{index}_{i}"),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            })
        })
        .collect();
    let message = json!({"role": "assistant", "content": null, "tool_calls": calls});
    openai_completion(index, model, message, "tool_calls")
}

fn openai_completion(index: usize, model: &str, message: Value, finish_reason: &str) -> String {
    json!({
        "id": format!("chatcmpl-scripted-{index}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": USAGE.prompt_tokens,
            "completion_tokens": USAGE.completion_tokens,
            "total_tokens": USAGE.prompt_tokens + USAGE.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": USAGE.cached_tokens},
        },
    })
    .to_string()
}

fn anthropic_tool_use(index: usize, model: &str, calls: &[(String, Value)]) -> String {
    let blocks = calls
        .iter()
        .enumerate()
        .map(|(i, (name, input))| json!({"type": "tool_use", "id": format!("toolu_{index}_{i}"), "name": name, "input": input}))
        .collect();
    anthropic_message(index, model, blocks, "tool_use")
}

fn anthropic_message(index: usize, model: &str, content: Vec<Value>, stop_reason: &str) -> String {
    json!({
        "id": format!("msg_scripted_{index}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {
            "input_tokens": USAGE.prompt_tokens - USAGE.cached_tokens,
            "output_tokens": USAGE.completion_tokens,
            "cache_read_input_tokens": USAGE.cached_tokens,
            "cache_creation_input_tokens": 0,
        },
    })
    .to_string()
}

fn echo(request: &RecordedRequest) -> String {
    let headers: serde_json::Map<String, Value> = request.headers.iter().map(|(name, value)| (name.clone(), json!(value))).collect();
    json!({"method": request.method, "path": request.path, "headers": headers, "body": request.body}).to_string()
}
