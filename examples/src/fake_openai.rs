//! A fake OpenAI-compatible server on 127.0.0.1, for the examples and
//! tests: no network, no key.
//!
//! - `POST /v1/chat/completions` answers with realistic usage (cached and
//!   reasoning tokens included), a service tier and a system fingerprint,
//!   as JSON or, when the request has `"stream": true`, as server-sent
//!   events ending with a usage chunk and `[DONE]`. When the request offers
//!   tools and its last message is the user's, the answer is a call of the
//!   first tool (`finish_reason: tool_calls`), streamed in pieces too.
//! - `POST /v1/embeddings` answers with one embedding per input of
//!   `dimensions` values (8 by default).
//! - A model named `fail-*` gets a 429.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

/// A loopback HTTP/1.1 server answering each connection with `handler`
/// (one request per connection), on its own thread; stops when dropped.
/// The fake model servers of the examples and tests are built on it.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts on an ephemeral 127.0.0.1 port; `handler` gets the connection
    /// and the request's number (from 1).
    pub fn start(handler: fn(TcpStream, u64) -> std::io::Result<()>) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let count = AtomicU64::new(0);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let n = count.fetch_add(1, Ordering::Relaxed) + 1;
                        let _ = handler(stream, n);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Ok(Server { addr, stop, thread: Some(thread) })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request from `stream`: its path and its body.
pub fn read_request(stream: &TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    stream.set_nonblocking(false)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok((path, body))
}

/// Where an example's OpenAI client goes: `OPENAI_BASE_URL` (and the key
/// from `OPENAI_API_KEY`, as the client reads it) when it is set, else a
/// fake server started here, with a placeholder key. Keep the server alive
/// as long as the client.
pub fn api_base_from_env() -> std::io::Result<(Option<FakeOpenAi>, String, Option<&'static str>)> {
    match std::env::var("OPENAI_BASE_URL") {
        Ok(base) => Ok((None, base, None)),
        Err(_) => {
            let fake = FakeOpenAi::start()?;
            let base = fake.api_base();
            Ok((Some(fake), base, Some("not-needed")))
        }
    }
}

/// A running fake OpenAI server; stops when dropped.
pub struct FakeOpenAi(Server);

impl FakeOpenAi {
    /// Starts the server on an ephemeral 127.0.0.1 port.
    pub fn start() -> std::io::Result<FakeOpenAi> {
        Server::start(serve).map(FakeOpenAi)
    }

    /// The API base to give an OpenAI client: `http://127.0.0.1:PORT/v1`.
    pub fn api_base(&self) -> String {
        format!("http://{}/v1", self.0.addr())
    }
}

fn serve(stream: TcpStream, n: u64) -> std::io::Result<()> {
    let (path, body) = read_request(&stream)?;
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = request["model"].as_str().unwrap_or("gpt-4o-mini").to_string();
    let prompt_len = request["messages"].to_string().len() as u64;
    let mut out = stream;
    if model.starts_with("fail-") {
        let body = r#"{"error":{"message":"Rate limit reached","type":"rate_limit_exceeded","param":null,"code":"rate_limit_exceeded"}}"#;
        return write!(
            out,
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    if path.ends_with("/embeddings") {
        let inputs = match &request["input"] {
            serde_json::Value::Array(a) => a.len().max(1),
            _ => 1,
        };
        let dims = request["dimensions"].as_u64().unwrap_or(8) as usize;
        let data: Vec<serde_json::Value> = (0..inputs)
            .map(|i| serde_json::json!({"object": "embedding", "index": i, "embedding": vec![0.125f32; dims]}))
            .collect();
        let body = serde_json::json!({
            "object": "list", "data": data, "model": format!("{model}-v2"),
            "usage": {"prompt_tokens": 5 * inputs, "total_tokens": 5 * inputs}
        })
        .to_string();
        return write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    // Tools offered and the user spoke last: the model calls the first tool.
    let tool = match (&request["tools"], request["messages"].as_array().and_then(|m| m.last())) {
        (serde_json::Value::Array(tools), Some(last)) if last["role"] == "user" => {
            tools.first().and_then(|t| t["function"]["name"].as_str()).map(str::to_string)
        }
        _ => None,
    };
    let id = format!("chatcmpl-fake-{n}");
    let served_model = format!("{model}-2024-07-18");
    let usage = serde_json::json!({
        "prompt_tokens": 900 + prompt_len, "completion_tokens": 48, "total_tokens": 948 + prompt_len,
        "prompt_tokens_details": {"cached_tokens": 768},
        "completion_tokens_details": {"reasoning_tokens": 16}
    });
    if request["stream"].as_bool() == Some(true) {
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )?;
        let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
            serde_json::json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": served_model,
                "service_tier": "default", "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let null = serde_json::Value::Null;
        let mut events = match &tool {
            Some(name) => vec![
                chunk(
                    serde_json::json!({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_fake_1", "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                    null.clone(),
                ),
                chunk(
                    serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"id\": "}}]}),
                    null.clone(),
                ),
                chunk(
                    serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"A-1001\"}"}}]}),
                    null.clone(),
                ),
                chunk(serde_json::json!({}), serde_json::json!("tool_calls")),
            ],
            None => vec![
                chunk(serde_json::json!({"role": "assistant", "content": "Your order"}), null.clone()),
                chunk(serde_json::json!({"content": " ships today."}), null.clone()),
                chunk(serde_json::json!({}), serde_json::json!("stop")),
            ],
        };
        events.push(serde_json::json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": served_model,
                "service_tier": "default", "system_fingerprint": "fp_fake", "choices": [], "usage": usage}));
        for e in events {
            std::thread::sleep(std::time::Duration::from_millis(10));
            write!(out, "data: {e}\n\n")?;
            out.flush()?;
        }
        write!(out, "data: [DONE]\n\n")?;
        return out.flush();
    }
    let (message, finish) = match &tool {
        Some(name) => (
            serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_fake_1", "type": "function",
                "function": {"name": name, "arguments": "{\"id\": \"A-1001\"}"}}]}),
            "tool_calls",
        ),
        None => (serde_json::json!({"role": "assistant", "content": "Your order ships today."}), "stop"),
    };
    let body = serde_json::json!({
        "id": id, "object": "chat.completion", "created": 1_700_000_000, "model": served_model,
        "service_tier": "default", "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": usage
    })
    .to_string();
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
