//! The genai integration: Anthropic- and Gemini-shaped responses through
//! one instrumented genai client, with the same parity checks as the
//! OpenAI route (decoded from the in-process OTLP receiver): provider,
//! server, request parameters, usage normalised (Anthropic's cache reads
//! and writes counted once in the input tokens), cost priced by cache kind,
//! finish reasons, content under the policy, and a streamed call's usage,
//! time to first chunk and assembled output.

use std::pin::Pin;

use futures_core::Stream;

use genai::chat::{ChatMessage, ChatOptions, ChatRequest};
use genai::resolver::{AuthData, Endpoint};
use genai::{Client, ServiceTarget};
use observra::integrations::genai::{TracedClient, instrument};
use observra_test_support::fake_providers::FakeProviders;
use observra_test_support::{ReceivedSpan, Receiver, Val, install_http, serial, span};
use serde_json::json;

fn int(s: &ReceivedSpan, key: &str) -> i64 {
    match s.attr(key) {
        Some(Val::Int(i)) => *i,
        other => panic!("{key}: {other:?} on {}", s.name),
    }
}

fn double(s: &ReceivedSpan, key: &str) -> f64 {
    match s.attr(key) {
        Some(Val::Double(d)) => *d,
        other => panic!("{key}: {other:?} on {}", s.name),
    }
}

fn json_attr(s: &ReceivedSpan, key: &str) -> serde_json::Value {
    serde_json::from_str(s.str_attr(key).unwrap_or_else(|| panic!("{key} on {}", s.name))).unwrap()
}

struct Harness {
    fake: FakeProviders,
    rx: Receiver,
    guard: observra::Guard,
    client: TracedClient,
    rt: tokio::runtime::Runtime,
}

fn start() -> Harness {
    let fake = FakeProviders::start().unwrap();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")]);
    let base = fake.base_url();
    let client = Client::builder()
        .with_service_target_resolver_fn(move |mut t: ServiceTarget| {
            t.endpoint = Endpoint::from_owned(base.clone());
            t.auth = AuthData::from_single("test-key");
            Ok(t)
        })
        .build()
        .expect("a genai client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    Harness { fake, rx, guard, client: instrument(client), rt }
}

fn request() -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::user("Where is my order A-1001?")]).with_system("Be brief.")
}

#[test]
fn anthropic_responses_record_usage_cache_tokens_and_cost_as_anthropic_bills_them() {
    let _s = serial();
    let Harness { fake, rx, guard, client, rt } = start();
    // The raw body is kept so the provider's response id can be read (genai does not parse it).
    let options = ChatOptions::default().with_temperature(0.2).with_max_tokens(100).with_capture_raw_body(true);
    let reply = rt.block_on(client.exec_chat("claude-sonnet-4-5", request(), Some(&options))).expect("fake answer");
    assert_eq!(reply.first_text(), Some("Your order ships today."));
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "chat claude-sonnet-4-5");
    assert_eq!(s.kind, 3);
    assert_eq!(s.str_attr("gen_ai.provider.name"), Some("anthropic"), "the adapter's provider, not the call site's");
    assert_eq!(s.str_attr("server.address"), Some("127.0.0.1"));
    assert_eq!(int(s, "server.port"), i64::from(fake.port()));
    assert_eq!(double(s, "gen_ai.request.temperature"), 0.2);
    assert_eq!(int(s, "gen_ai.request.max_tokens"), 100);
    // Anthropic's input_tokens (120) exclude the cache reads (2000) and writes (300).
    assert_eq!(int(s, "gen_ai.usage.input_tokens"), 2420);
    assert_eq!(int(s, "gen_ai.usage.cache_read.input_tokens"), 2000);
    assert_eq!(int(s, "gen_ai.usage.cache_creation.input_tokens"), 300);
    assert_eq!(int(s, "gen_ai.usage.output_tokens"), 40);
    assert_eq!(s.str_attr("gen_ai.response.model"), Some("claude-sonnet-4-5-20250929"));
    assert_eq!(s.str_attr("gen_ai.response.id"), Some("msg_fake_1"));
    assert_eq!(s.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("stop".into())])));
    // claude-sonnet-4-5: input 3, cache read 0.3, cache write 3.75, output 15 per million.
    let expected = (120.0 * 3.0 + 2000.0 * 0.3 + 300.0 * 3.75 + 40.0 * 15.0) / 1e6;
    let cost = double(s, "observra.cost.usd");
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}: cache tokens priced as such, never twice");
    assert_eq!(json_attr(s, "gen_ai.system_instructions"), json!([{"type": "text", "content": "Be brief."}]));
    assert_eq!(json_attr(s, "gen_ai.input.messages")[0]["parts"][0]["content"], "Where is my order A-1001?");
    assert_eq!(
        json_attr(s, "gen_ai.output.messages"),
        json!([{"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", "content": "Your order ships today."}]}])
    );
    let points = rx.metric_streams("gen_ai.client.token.usage");
    let input = points
        .iter()
        .flat_map(|m| m.histogram_points.iter())
        .find(|p| p.attributes.get("gen_ai.token.type") == Some(&Val::Str("input".into())))
        .expect("input token point");
    assert_eq!(input.sum, 2420.0);
    assert_eq!(input.attributes.get("gen_ai.provider.name"), Some(&Val::Str("anthropic".into())));
}

#[test]
fn a_streamed_anthropic_call_records_its_usage_and_output() {
    let _s = serial();
    let Harness { fake: _fake, rx, guard, client, rt } = start();
    let text = rt.block_on(async {
        let mut traced = client.exec_chat_stream("claude-sonnet-4-5", request(), None).await.expect("stream");
        let mut text = String::new();
        while let Some(event) = std::future::poll_fn(|cx| Pin::new(&mut traced.stream).poll_next(cx)).await {
            if let genai::chat::ChatStreamEvent::Chunk(c) = event.expect("event") {
                text.push_str(&c.content);
            }
        }
        text
    });
    assert_eq!(text, "Your order ships today.");
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "chat claude-sonnet-4-5");
    assert_eq!(s.attr("gen_ai.request.stream"), Some(&Val::Bool(true)));
    assert_eq!(s.str_attr("gen_ai.provider.name"), Some("anthropic"));
    assert_eq!(int(s, "gen_ai.usage.input_tokens"), 2420, "usage captured for the final event");
    assert_eq!(int(s, "gen_ai.usage.output_tokens"), 40);
    assert!(double(s, "gen_ai.response.time_to_first_chunk") > 0.0);
    assert_eq!(s.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("stop".into())])));
    assert_eq!(
        json_attr(s, "gen_ai.output.messages"),
        json!([{"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", "content": "Your order ships today."}]}])
    );
    assert_eq!(s.status_code, 0);
}

#[test]
fn gemini_responses_record_thinking_and_cached_tokens() {
    let _s = serial();
    let Harness { fake: _fake, rx, guard, client, rt } = start();
    let reply = rt.block_on(client.exec_chat("gemini-2.5-flash", request(), None)).expect("fake answer");
    assert_eq!(reply.first_text(), Some("Sunny in Seattle."));
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "chat gemini-2.5-flash");
    assert_eq!(s.str_attr("gen_ai.provider.name"), Some("gcp.gemini"));
    assert_eq!(int(s, "gen_ai.usage.input_tokens"), 50);
    assert_eq!(int(s, "gen_ai.usage.cache_read.input_tokens"), 20);
    // Gemini's candidates exclude the thoughts; genai adds them, as the conventions count output.
    assert_eq!(int(s, "gen_ai.usage.output_tokens"), 15);
    assert_eq!(int(s, "gen_ai.usage.reasoning.output_tokens"), 5);
    assert_eq!(s.str_attr("gen_ai.response.model"), Some("gemini-2.5-flash-001"));
    assert_eq!(s.attr("gen_ai.response.id"), None, "genai does not parse it; the raw body was not kept");
    assert_eq!(s.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("stop".into())])));
    // gemini-2.5-flash: input 0.3, cache read 0.075, output 2.5 per million.
    let expected = (30.0 * 0.3 + 20.0 * 0.075 + 15.0 * 2.5) / 1e6;
    let cost = double(s, "observra.cost.usd");
    assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}");
}
