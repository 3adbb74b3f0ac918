//! GenAI fidelity: observra's output for the calls the official OpenAI
//! instrumentation records, attribute for attribute, decoded from what
//! crossed the wire (the in-process OTLP receiver), with the fake OpenAI
//! server on 127.0.0.1 as the model.
//!
//! Each test names the item of the fidelity issue it covers: the request
//! read from async-openai's types with no macro argument (the instrumented
//! client), OpenAI's service tier and system fingerprint on spans and
//! metrics, tool-call output, streamed output, f32 parameters kept as
//! written, the details event (a span event, or a structured log record
//! with the `otel_log` backend), time to first chunk from the start of the
//! operation, and `Option` system instructions.

use std::pin::Pin;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestUserMessageArgs,
    ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionTools, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, FunctionObjectArgs, ResponseFormat, ServiceTier, StopConfiguration,
};
use async_openai::types::embeddings::{CreateEmbeddingRequestArgs, EncodingFormat};
use futures_core::Stream;
use observra::integrations::async_openai::{TracedClient, instrument};
use observra_test_support::fake_openai::FakeOpenAi;
use observra_test_support::{ReceivedSpan, Receiver, Val, install_http, serial, span};
use serde_json::json;

const CAPTURE: (&str, &str) = ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_AND_EVENT");

fn messages(with_tools: bool) -> Vec<ChatCompletionRequestMessage> {
    let mut m: Vec<ChatCompletionRequestMessage> = vec![
        ChatCompletionRequestSystemMessageArgs::default().content("You track orders.").build().unwrap().into(),
        ChatCompletionRequestUserMessageArgs::default().content("Where is my order A-1001?").build().unwrap().into(),
    ];
    if !with_tools {
        m.remove(0);
    }
    m
}

fn tools() -> Vec<ChatCompletionTools> {
    vec![ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObjectArgs::default()
            .name("lookup_order")
            .description("Finds an order by id")
            .parameters(json!({"type": "object", "properties": {"id": {"type": "string"}}}))
            .build()
            .unwrap(),
    })]
}

/// A chat request setting every parameter the conventions name.
#[allow(deprecated)]
fn full_request(with_tools: bool, stream: bool) -> CreateChatCompletionRequest {
    let mut b = CreateChatCompletionRequestArgs::default();
    b.model("gpt-4o-mini")
        .messages(messages(with_tools))
        .temperature(0.2)
        .top_p(0.9)
        .max_completion_tokens(100u32)
        .seed(42)
        .presence_penalty(0.5)
        .frequency_penalty(0.25)
        .n(1)
        .stop(StopConfiguration::StringArray(vec!["END".into()]))
        .response_format(ResponseFormat::Text)
        .service_tier(ServiceTier::Default);
    if with_tools {
        b.tools(tools());
    }
    if stream {
        b.stream_options(ChatCompletionStreamOptions { include_usage: Some(true), ..Default::default() });
    }
    b.build().unwrap()
}

fn json_attr(s: &ReceivedSpan, key: &str) -> serde_json::Value {
    let text = s.str_attr(key).unwrap_or_else(|| panic!("{key} missing on {}: {:?}", s.name, s.attributes));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {text}"))
}

fn double(s: &ReceivedSpan, key: &str) -> f64 {
    match s.attr(key) {
        Some(Val::Double(d)) => *d,
        other => panic!("{key}: {other:?}"),
    }
}

fn int(s: &ReceivedSpan, key: &str) -> i64 {
    match s.attr(key) {
        Some(Val::Int(i)) => *i,
        other => panic!("{key}: {other:?}"),
    }
}

struct Harness {
    fake: FakeOpenAi,
    rx: Receiver,
    guard: observra::Guard,
    client: TracedClient<OpenAIConfig>,
    rt: tokio::runtime::Runtime,
}

fn start(extra: &[(&str, &str)]) -> Harness {
    let fake = FakeOpenAi::start().unwrap();
    let rx = Receiver::start();
    let guard = install_http(&rx, extra);
    // The one line a user changes.
    let client = instrument(Client::with_config(OpenAIConfig::new().with_api_base(fake.api_base()).with_api_key("k")));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    Harness { fake, rx, guard, client, rt }
}

fn fake_port(fake: &FakeOpenAi) -> i64 {
    fake.api_base().rsplit(':').next().unwrap().trim_end_matches("/v1").parse().unwrap()
}

/// Items 1, 2, 4, 5 and 10: the request is read with no macro argument,
/// OpenAI's attributes are on span and metrics, the tool call is the
/// output, an f32 stays as written, and the details event carries the
/// operation's attributes.
#[test]
fn the_instrumented_client_records_what_the_official_instrumentation_does() {
    let _s = serial();
    let Harness { fake, rx, guard, client, rt } = start(&[CAPTURE, ("OBSERVRA_DETAILS_EVENT", "span_event")]);
    let response = rt.block_on(client.chat().create(full_request(true, false))).expect("fake completion");
    assert!(response.choices[0].message.tool_calls.is_some(), "the fake answered with a tool call");
    drop(guard);

    let spans = rx.spans();
    let s = span(&spans, "chat gpt-4o-mini");
    assert_eq!(s.kind, 3, "CLIENT");
    assert_eq!(s.str_attr("gen_ai.operation.name"), Some("chat"));
    assert_eq!(s.str_attr("gen_ai.provider.name"), Some("openai"));
    assert_eq!(s.str_attr("gen_ai.request.model"), Some("gpt-4o-mini"));
    // Item 4: 0.2f32 is exported as 0.2, not 0.20000000298023224.
    assert_eq!(double(s, "gen_ai.request.temperature"), 0.2);
    assert_eq!(double(s, "gen_ai.request.top_p"), 0.9);
    assert_eq!(double(s, "gen_ai.request.presence_penalty"), 0.5);
    assert_eq!(double(s, "gen_ai.request.frequency_penalty"), 0.25);
    assert_eq!(int(s, "gen_ai.request.max_tokens"), 100);
    assert_eq!(int(s, "gen_ai.request.seed"), 42);
    assert!(s.attr("gen_ai.request.choice.count").is_none(), "n = 1 is the default: not recorded");
    assert_eq!(s.attr("gen_ai.request.stop_sequences"), Some(&Val::Array(vec![Val::Str("END".into())])));
    assert_eq!(s.str_attr("gen_ai.output.type"), Some("text"));
    assert_eq!(s.str_attr("server.address"), Some("127.0.0.1"));
    assert_eq!(int(s, "server.port"), fake_port(&fake));
    // Item 1.
    assert_eq!(s.str_attr("openai.request.service_tier"), Some("default"));
    assert_eq!(s.str_attr("openai.response.service_tier"), Some("default"));
    assert_eq!(s.str_attr("openai.response.system_fingerprint"), Some("fp_fake"));
    assert_eq!(s.str_attr("gen_ai.response.id"), Some("chatcmpl-fake-1"));
    assert_eq!(s.str_attr("gen_ai.response.model"), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(s.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("tool_calls".into())])));
    assert_eq!(int(s, "gen_ai.usage.output_tokens"), 48);
    // Item 2: the tool call is the output, with id, name and parsed arguments.
    assert_eq!(
        json_attr(s, "gen_ai.output.messages"),
        json!([{"role": "assistant", "finish_reason": "tool_calls", "parts": [
            {"type": "tool_call", "id": "call_fake_1", "name": "lookup_order", "arguments": {"id": "A-1001"}}
        ]}])
    );
    // Item 10: input messages (system included, as the official one does) and tool definitions.
    assert_eq!(
        json_attr(s, "gen_ai.input.messages"),
        json!([
            {"role": "system", "parts": [{"type": "text", "content": "You track orders."}]},
            {"role": "user", "parts": [{"type": "text", "content": "Where is my order A-1001?"}]}
        ])
    );
    let tools = json_attr(s, "gen_ai.tool.definitions");
    assert_eq!(tools[0]["type"], "function");
    assert_eq!(tools[0]["name"], "lookup_order");
    assert_eq!(tools[0]["description"], "Finds an order by id");
    assert_eq!(tools[0]["parameters"]["type"], "object");

    // Item 5: asked to stay a span event (OBSERVRA_DETAILS_EVENT), the
    // details event carries the operation's attributes beside the messages.
    let details =
        s.events.iter().find(|e| e.name == "gen_ai.client.inference.operation.details").expect("the details event");
    for key in [
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.response.id",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.response.finish_reasons",
        "server.address",
        "server.port",
        "gen_ai.request.temperature",
        "openai.response.service_tier",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.tool.definitions",
    ] {
        assert_eq!(details.attributes.get(key), s.attr(key), "{key} on the details event equals the span's");
    }
    assert!(!details.attributes.keys().any(|k| k.starts_with("observra.")), "only the conventions' names");

    // Item 1 and 10 on the metrics: service tier, fingerprint and server.
    let durations = rx.metric_streams("gen_ai.client.operation.duration");
    let point = durations
        .iter()
        .flat_map(|m| m.histogram_points.iter())
        .find(|p| p.attributes.get("gen_ai.request.model") == Some(&Val::Str("gpt-4o-mini".into())))
        .expect("a duration point");
    assert_eq!(point.attributes.get("openai.response.service_tier"), Some(&Val::Str("default".into())));
    assert_eq!(point.attributes.get("openai.response.system_fingerprint"), Some(&Val::Str("fp_fake".into())));
    assert_eq!(point.attributes.get("server.address"), Some(&Val::Str("127.0.0.1".into())));
    assert_eq!(point.attributes.get("server.port"), Some(&Val::Int(fake_port(&fake))));
    let tokens = rx.metric_streams("gen_ai.client.token.usage");
    assert!(
        tokens
            .iter()
            .flat_map(|m| m.histogram_points.iter())
            .all(|p| p.attributes.contains_key("openai.response.service_tier")),
        "token usage carries the service tier too"
    );
}

/// Item 3: a streamed answer is captured, text and tool calls assembled
/// from the deltas.
#[test]
fn streamed_output_is_assembled_and_captured() {
    let _s = serial();
    let Harness { fake: _fake, rx, guard, client, rt } = start(&[CAPTURE]);
    let drain = |req| {
        rt.block_on(async {
            let mut stream = Box::pin(client.chat().create_stream(req).await.expect("stream"));
            let mut n = 0;
            while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
                item.expect("chunk");
                n += 1;
            }
            n
        })
    };
    assert!(drain(full_request(false, true)) > 2);
    assert!(drain(full_request(true, true)) > 2);
    drop(guard);
    let spans = rx.spans();
    let chats: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.name == "chat gpt-4o-mini").collect();
    assert_eq!(chats.len(), 2);
    let text = chats.iter().find(|s| s.str_attr("gen_ai.response.id") == Some("chatcmpl-fake-1")).unwrap();
    assert_eq!(text.attr("gen_ai.request.stream"), Some(&Val::Bool(true)));
    assert_eq!(
        json_attr(text, "gen_ai.output.messages"),
        json!([{"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", "content": "Your order ships today."}]}])
    );
    assert_eq!(text.str_attr("openai.response.service_tier"), Some("default"));
    assert_eq!(int(text, "gen_ai.usage.output_tokens"), 48);
    let tool = chats.iter().find(|s| s.str_attr("gen_ai.response.id") == Some("chatcmpl-fake-2")).unwrap();
    assert_eq!(
        json_attr(tool, "gen_ai.output.messages"),
        json!([{"role": "assistant", "finish_reason": "tool_calls", "parts": [
            {"type": "tool_call", "id": "call_fake_1", "name": "lookup_order", "arguments": {"id": "A-1001"}}
        ]}])
    );
    // Without capture the same streams carry no content.
    let Harness { fake: _fake2, rx, guard, client, rt } = start(&[]);
    rt.block_on(async {
        let mut stream = Box::pin(client.chat().create_stream(full_request(true, true)).await.expect("stream"));
        while std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await.is_some() {}
    });
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "chat gpt-4o-mini");
    assert!(s.attr("gen_ai.output.messages").is_none() && s.attr("gen_ai.input.messages").is_none());
    assert!(s.events.iter().all(|e| e.name != "gen_ai.client.inference.operation.details"));
}

/// Item 10: embeddings through the instrumented client.
#[test]
fn embeddings_are_traced_like_the_official_instrumentation() {
    let _s = serial();
    let Harness { fake, rx, guard, client, rt } = start(&[]);
    let req = CreateEmbeddingRequestArgs::default()
        .model("text-embedding-3-small")
        .input(["orders", "refunds"])
        .dimensions(16u32)
        .encoding_format(EncodingFormat::Float)
        .build()
        .unwrap();
    let response = rt.block_on(client.embeddings().create(req)).expect("embeddings");
    assert_eq!(response.data[0].embedding.len(), 16);
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "embeddings text-embedding-3-small");
    assert_eq!(s.kind, 3);
    assert_eq!(s.str_attr("gen_ai.operation.name"), Some("embeddings"));
    assert_eq!(s.str_attr("gen_ai.provider.name"), Some("openai"));
    assert_eq!(int(s, "gen_ai.embeddings.dimension.count"), 16);
    assert_eq!(s.attr("gen_ai.request.encoding_formats"), Some(&Val::Array(vec![Val::Str("float".into())])));
    assert_eq!(s.str_attr("gen_ai.response.model"), Some("text-embedding-3-small-v2"));
    assert_eq!(int(s, "gen_ai.usage.input_tokens"), 10);
    assert!(s.attr("gen_ai.usage.output_tokens").is_none(), "embeddings report no output tokens");
    assert_eq!(s.str_attr("server.address"), Some("127.0.0.1"));
    assert_eq!(int(s, "server.port"), fake_port(&fake));
    let durations = rx.metric_streams("gen_ai.client.operation.duration");
    assert!(
        durations
            .iter()
            .flat_map(|m| m.histogram_points.iter())
            .any(|p| p.attributes.get("gen_ai.operation.name") == Some(&Val::Str("embeddings".into()))
                && p.attributes.get("server.address") == Some(&Val::Str("127.0.0.1".into()))),
        "{durations:?}"
    );
}

/// Item 5: with an OTLP endpoint the details event is an OpenTelemetry
/// event (a log record) whose messages are structured, and the span no
/// longer carries it: by default (the `otlp_events` backend observra adds
/// beside `otlp`) and with the `otel_log` backend, delivered once either way.
#[test]
fn with_an_otlp_endpoint_the_details_event_is_a_structured_log_record() {
    let _s = serial();
    for (backend, added) in [("otlp", true), ("otlp,otel_log", false)] {
        let Harness { fake: _fake, rx, guard, client, rt } = start(&[CAPTURE, ("OBSERVRA_BACKEND", backend)]);
        rt.block_on(client.chat().create(full_request(true, false))).expect("fake completion");
        let names: Vec<&str> = observra::health().backends.iter().map(|b| b.backend).collect();
        assert_eq!(names.contains(&"otlp_events"), added, "{backend}: {names:?}");
        drop(guard);
        let spans = rx.spans();
        let s = span(&spans, "chat gpt-4o-mini");
        assert!(
            s.events.iter().all(|e| e.name != "gen_ai.client.inference.operation.details"),
            "{backend}: delivered once, as a log"
        );
        assert!(s.attr("gen_ai.input.messages").is_some(), "SPAN_AND_EVENT keeps the span attributes");
        let logs = rx.logs();
        let details: Vec<_> =
            logs.iter().filter(|l| l.event_name == "gen_ai.client.inference.operation.details").collect();
        assert_eq!(details.len(), 1, "{backend}: {logs:?}");
        if added {
            assert_eq!(logs.len(), 1, "the added backend sends the details event only: {logs:?}");
        }
        let d = details[0];
        assert_eq!(d.span_id, s.span_id, "linked to the call's span");
        assert_eq!(d.attr("gen_ai.operation.name"), Some(&Val::Str("chat".into())));
        assert_eq!(d.attr("gen_ai.provider.name"), Some(&Val::Str("openai".into())));
        assert_eq!(d.attr("gen_ai.response.id"), Some(&Val::Str("chatcmpl-fake-1".into())));
        assert_eq!(d.attr("gen_ai.usage.output_tokens"), Some(&Val::Int(48)));
        assert_eq!(d.attr("server.address"), Some(&Val::Str("127.0.0.1".into())));
        // Structured: arrays of maps, not JSON strings.
        let input = d.attr("gen_ai.input.messages").expect("input messages");
        assert!(matches!(input, Val::Array(items) if matches!(items[0], Val::Map(_))), "{input:?}");
        assert_eq!(input.to_json(), json_attr(s, "gen_ai.input.messages"));
        let output = d.attr("gen_ai.output.messages").expect("output messages").to_json();
        assert_eq!(output[0]["parts"][0]["arguments"], json!({"id": "A-1001"}));
        assert_eq!(output, json_attr(s, "gen_ai.output.messages"));
    }
}

/// Without content captured as events there is no details event, and no
/// backend is added for it.
#[test]
fn without_event_capture_no_logs_backend_is_added() {
    let _s = serial();
    let span_only = ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY");
    for extra in [&[span_only][..], &[CAPTURE, ("OBSERVRA_DETAILS_EVENT", "span_event")]] {
        let Harness { fake: _fake, rx, guard, client, rt } = start(extra);
        rt.block_on(client.chat().create(full_request(false, false))).expect("fake completion");
        let names: Vec<&str> = observra::health().backends.iter().map(|b| b.backend).collect();
        assert_eq!(names, ["otlp"], "{extra:?}");
        drop(guard);
        assert!(rx.logs().is_empty(), "{extra:?}");
    }
}

#[observra::llm_call(provider = "openai", model = "gpt-4o-mini", stream)]
async fn slow_stream() -> impl Stream<Item = String> {
    // The wait for the HTTP response: part of the time to first chunk.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Delayed { first: Some(Box::pin(tokio::time::sleep(Duration::from_millis(50)))), left: 2 }
}

/// A stream whose first item comes 50 ms after it is returned.
struct Delayed {
    first: Option<Pin<Box<tokio::time::Sleep>>>,
    left: u32,
}

impl Stream for Delayed {
    type Item = String;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<String>> {
        if let Some(sleep) = self.first.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return std::task::Poll::Pending;
            }
            self.first = None;
        }
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        std::task::Poll::Ready(Some("token".to_string()))
    }
}

use std::future::Future as _;

/// Item 6: the time to first chunk covers the wait for the response (the
/// sleeps make both bounds certain: no timing threshold can flake here).
#[test]
fn time_to_first_chunk_is_measured_from_the_start_of_the_operation() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let n = rt.block_on(async {
        let mut stream = Box::pin(slow_stream().await);
        let mut n = 0;
        while std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await.is_some() {
            n += 1;
        }
        n
    });
    assert_eq!(n, 2);
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "chat gpt-4o-mini");
    let ttfc = double(s, "gen_ai.response.time_to_first_chunk");
    assert!(ttfc >= 0.25, "200 ms waiting for the response + 50 ms to the first chunk, got {ttfc}");
    let duration = (s.end_unix_nano - s.start_unix_nano) as f64 / 1e9;
    assert!(ttfc <= duration, "within the call: {ttfc} > {duration}");
    let streams = rx.metric_streams("gen_ai.client.operation.time_to_first_chunk");
    let point = streams.iter().flat_map(|m| m.histogram_points.iter()).next().expect("the metric");
    assert!(point.sum >= 0.25, "{point:?}");
    // Both chunk metrics with the buckets the conventions advise.
    let advised = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
    assert_eq!(point.bounds, advised);
    let gaps = rx.metric_streams("gen_ai.client.operation.time_per_output_chunk");
    let gap = gaps.iter().flat_map(|m| m.histogram_points.iter()).next().expect("the chunk gap metric");
    assert_eq!(gap.bounds, advised);
}

#[observra::llm_call(provider = "openai", model = req.model, input = req.messages, system = system)]
async fn with_messages(
    client: &Client<OpenAIConfig>,
    system: Option<&str>,
    req: CreateChatCompletionRequest,
) -> Result<async_openai::types::chat::CreateChatCompletionResponse, async_openai::error::OpenAIError> {
    client.chat().create(req).await
}

#[observra::llm_call(provider = "openai", request = req)]
async fn by_request(
    client: &Client<OpenAIConfig>,
    req: CreateChatCompletionRequest,
) -> Result<async_openai::types::chat::CreateChatCompletionResponse, async_openai::error::OpenAIError> {
    client.chat().create(req).await
}

/// Item 7: the macro route takes async-openai's messages as they are and
/// an `Option<&str>` system instruction; `request = req` reads everything.
#[test]
fn the_macro_route_takes_request_messages_and_optional_system_instructions() {
    let _s = serial();
    let Harness { fake, rx, guard, client, rt } =
        start(&[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")]);
    let plain: &Client<OpenAIConfig> = &client;
    let mut req = full_request(false, false);
    req.model = "with-system".into();
    rt.block_on(with_messages(plain, Some("Be brief."), req.clone())).unwrap();
    req.model = "without-system".into();
    rt.block_on(with_messages(plain, None, req.clone())).unwrap();
    req.model = "by-request".into();
    rt.block_on(by_request(plain, req)).unwrap();
    drop(guard);
    let spans = rx.spans();
    let with = span(&spans, "chat with-system");
    assert_eq!(json_attr(with, "gen_ai.system_instructions"), json!([{"type": "text", "content": "Be brief."}]));
    assert_eq!(json_attr(with, "gen_ai.input.messages")[0]["parts"][0]["content"], "Where is my order A-1001?");
    let without = span(&spans, "chat without-system");
    assert!(without.attr("gen_ai.system_instructions").is_none(), "None captures nothing");
    assert!(without.events.iter().all(|e| e.name != "gen_ai.client.inference.operation.details"), "SPAN_ONLY");
    let by = span(&spans, "chat by-request");
    assert_eq!(double(by, "gen_ai.request.temperature"), 0.2);
    assert_eq!(int(by, "gen_ai.request.max_tokens"), 100);
    assert_eq!(by.str_attr("openai.response.service_tier"), Some("default"));
    assert!(by.attr("server.address").is_none(), "a plain client's address is not known to the macro");
    let _ = fake;
}

#[observra::traced(kind = client, attrs(gen_ai.operation.name = "chat", gen_ai.request.model = "m"))]
fn hand_made_chat() {}

/// Item 8: a hand-made span that declares a model operation but lacks a
/// required attribute gets one warning per span name, naming what is
/// missing. Run in a child process (the warning goes to its stderr).
#[test]
fn a_span_declaring_a_model_operation_without_its_provider_is_warned_about_once() {
    if std::env::var_os("OBSERVRA_LINT_CHILD").is_some() {
        let rx = Receiver::start();
        let guard = install_http(&rx, &[]);
        for _ in 0..3 {
            hand_made_chat();
        }
        drop(guard);
        assert_eq!(rx.spans().len(), 3, "the spans are still exported");
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_span_declaring_a_model_operation_without_its_provider_is_warned_about_once",
            "--nocapture",
        ])
        .env("OBSERVRA_LINT_CHILD", "1")
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("GenAI conventions require")).collect();
    assert_eq!(warnings.len(), 1, "once per span name: {stderr}");
    assert!(
        warnings[0].contains("`hand_made_chat`") && warnings[0].contains("gen_ai.provider.name"),
        "{}",
        warnings[0]
    );
    assert!(!warnings[0].contains("gen_ai.request.model"), "the model is there: {}", warnings[0]);
}

/// Item 9: a secret recognisable only by its key, in message content, is
/// redacted by the context rule before it leaves.
#[test]
fn a_secret_named_only_by_its_key_is_redacted_in_message_content() {
    let _s = serial();
    let Harness { fake: _fake, rx, guard, client, rt } =
        start(&[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")]);
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLE";
    let req = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o-mini")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content(format!(
                "Deploy with aws_secret_access_key = {secret} and service_signing_key: Zx8Lq2Vn7Rt5Wp3Ks9Dm1Fh6Jb4"
            ))
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap();
    rt.block_on(client.chat().create(req)).unwrap();
    drop(guard);
    let spans = rx.spans();
    let input = span(&spans, "chat gpt-4o-mini").str_attr("gen_ai.input.messages").unwrap().to_string();
    assert!(!input.contains(secret) && !input.contains("Zx8Lq2Vn7Rt5Wp3Ks9Dm1Fh6Jb4"), "{input}");
    assert!(input.contains("service_signing_key: [REDACTED:generic_secret]"), "the key stays readable: {input}");
}
