//! A fake Anthropic Messages API and Gemini `generateContent` API on
//! 127.0.0.1, for the genai integration's parity tests: no network, no key.
//!
//! - `POST {base}messages` answers as Anthropic does: usage with
//!   `input_tokens` excluding the cache reads (2000) and writes (300),
//!   `stop_reason: end_turn`; with `"stream": true`, the server-sent
//!   events `message_start` … `message_stop`.
//! - `POST {base}models/{model}:generateContent` answers as Gemini does,
//!   with cached and thinking tokens in `usageMetadata`.

use std::io::Write;
use std::net::TcpStream;

use serde_json::json;

use crate::fake_openai::{Server, read_request};

/// A running fake server; stops when dropped.
pub struct FakeProviders(Server);

impl FakeProviders {
    /// Starts the server on an ephemeral 127.0.0.1 port.
    pub fn start() -> std::io::Result<FakeProviders> {
        Server::start(serve).map(FakeProviders)
    }

    /// The base URL to give genai: `http://127.0.0.1:PORT/v1/`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1/", self.0.addr())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.0.addr().port()
    }
}

fn serve(stream: TcpStream, n: u64) -> std::io::Result<()> {
    let (path, body) = read_request(&stream)?;
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut out = stream;
    let json_answer = |out: &mut TcpStream, body: String| {
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    if path.ends_with("/messages") {
        let model = request["model"].as_str().unwrap_or("claude").to_string();
        let served = format!("{model}-20250929");
        let usage = json!({"input_tokens": 120, "output_tokens": 40,
                           "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 300});
        if request["stream"].as_bool() == Some(true) {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
            )?;
            let events = [
                (
                    "message_start",
                    json!({"type": "message_start", "message": {"id": format!("msg_fake_{n}"), "type": "message",
                    "role": "assistant", "model": served, "content": [], "stop_reason": null,
                    "usage": {"input_tokens": 120, "output_tokens": 1, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 300}}}),
                ),
                (
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ),
                (
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Your order"}}),
                ),
                (
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " ships today."}}),
                ),
                ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                (
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                    "usage": {"output_tokens": 40}}),
                ),
                ("message_stop", json!({"type": "message_stop"})),
            ];
            for (name, data) in events {
                std::thread::sleep(std::time::Duration::from_millis(5));
                write!(out, "event: {name}\ndata: {data}\n\n")?;
                out.flush()?;
            }
            return out.flush();
        }
        let body = json!({"id": format!("msg_fake_{n}"), "type": "message", "role": "assistant", "model": served,
            "content": [{"type": "text", "text": "Your order ships today."}],
            "stop_reason": "end_turn", "stop_sequence": null, "usage": usage});
        return json_answer(&mut out, body.to_string());
    }
    if path.contains(":generateContent") {
        let body = json!({
            "candidates": [{"content": {"parts": [{"text": "Sunny in Seattle."}], "role": "model"}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 10, "thoughtsTokenCount": 5,
                              "cachedContentTokenCount": 20, "totalTokenCount": 65},
            "modelVersion": "gemini-2.5-flash-001",
            "responseId": format!("resp-gemini-{n}")
        });
        return json_answer(&mut out, body.to_string());
    }
    let body = r#"{"error":{"message":"not found"}}"#;
    write!(
        out,
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
