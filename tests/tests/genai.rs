//! The GenAI macros end to end, decoded from OTLP: span names, kinds and
//! every attribute of GENAI_SEMCONV.md, the agent → llm → tool → llm tree,
//! metrics with their exact bucket boundaries, token records per type,
//! cost (a cache-read/cache-write/reasoning case computed by hand), content
//! capture off by default and redacted when on, streaming, error and cancel
//! paths, and budgets.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use observra::{
    Budget, BudgetEvent, BudgetKind, CaptureMode, CostTable, LlmChunk, LlmResponse, Message, Price, Usage, agent,
    llm_call, tool_call, workflow,
};
use observra_test_support::{ApiError, ReceivedSpan, Receiver, Val, otlp_env, serial, span};

#[derive(Debug, Clone)]
struct ChatRequest {
    model: String,
    temperature: f64,
    max_tokens: u32,
    stop: Vec<String>,
    prompt: String,
}

#[derive(Debug, Clone)]
struct ChatResponse {
    id: String,
    model: String,
    usage: Usage,
    finish: &'static str,
    text: String,
}

impl LlmResponse for ChatResponse {
    fn usage(&self) -> Option<Usage> {
        Some(self.usage)
    }
    fn response_id(&self) -> Option<&str> {
        Some(&self.id)
    }
    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        vec![self.finish]
    }
    fn output_messages(&self) -> Option<Vec<Message>> {
        Some(vec![Message::text("assistant", self.text.clone()).with_finish_reason(self.finish)])
    }
}

/// The usage our fake model reports: 10k input (4k cache read, 1k cache
/// write), 2k output (500 reasoning).
fn big_usage() -> Usage {
    Usage::new(10_000, 2_000).with_cache_read(4_000).with_cache_creation(1_000).with_reasoning(500)
}

#[llm_call(
    provider = "openai",
    model = req.model,
    temperature = req.temperature,
    max_tokens = req.max_tokens,
    stop_sequences = req.stop,
    seed = 42,
    top_p = 0.9,
    top_k = 40,
    frequency_penalty = 0.1,
    presence_penalty = 0.2,
    choice_count = 1,
    server_address = "api.example.com",
    server_port = 443,
    input = req.prompt,
    system = "You are terse."
)]
async fn chat(req: &ChatRequest, fail: Option<u16>) -> Result<ChatResponse, ApiError> {
    tokio::task::yield_now().await;
    if let Some(code) = fail {
        return Err(ApiError(code));
    }
    Ok(ChatResponse {
        id: "chatcmpl-1".into(),
        model: format!("{}-2025-01-01", req.model),
        usage: big_usage(),
        finish: "stop",
        text: format!("answer to {}", req.prompt),
    })
}

#[tool_call(name = "lookup_order", description = "Looks up an order", call_id = call_id, arguments = id)]
async fn lookup_order(id: &str, call_id: &str) -> String {
    format!("order {id}: shipped")
}

#[agent(name = "support", id = agent_id, version = "1.2", description = "Answers order questions", conversation_id = conv)]
async fn run_agent(agent_id: &str, conv: &str, prompt: &str) -> Result<String, ApiError> {
    let req = ChatRequest {
        model: "test-model".into(),
        temperature: 0.2,
        max_tokens: 256,
        stop: vec!["\n\n".into()],
        prompt: prompt.into(),
    };
    let first = chat(&req, None).await?;
    let order = lookup_order("A-1", "call_1").await;
    let second = chat(&ChatRequest { prompt: order, ..req }, None).await?;
    Ok(format!("{} / {}", first.text, second.text))
}

#[workflow(name = "triage")]
async fn triage(prompt: &str) -> Result<String, ApiError> {
    run_agent("agent-7", "conv-42", prompt).await
}

fn test_price() -> Price {
    Price::new(2.0, 8.0).cache_read(0.5).cache_write(2.5).reasoning(10.0)
}

/// (10000 - 4000 - 1000) * 2 + 4000 * 0.5 + 1000 * 2.5 + (2000 - 500) * 8 + 500 * 10
/// = 10000 + 2000 + 2500 + 12000 + 5000 = 31500 per million = 0.0315 USD.
const HAND_COMPUTED_COST: f64 = 0.0315;

fn install(rx: &Receiver, capture: Option<CaptureMode>) -> observra::Guard {
    let mut b = observra::init()
        .env_from(otlp_env(rx, "http/protobuf"))
        .cost_table(CostTable::empty())
        .price("test-model", test_price());
    if let Some(c) = capture {
        b = b.capture_content(c);
    }
    b.install().expect("install")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn int(s: &ReceivedSpan, key: &str) -> Option<i64> {
    match s.attr(key) {
        Some(Val::Int(i)) => Some(*i),
        _ => None,
    }
}

fn double(s: &ReceivedSpan, key: &str) -> Option<f64> {
    match s.attr(key) {
        Some(Val::Double(d)) => Some(*d),
        _ => None,
    }
}

#[test]
fn an_agent_run_exports_the_semconv_tree_with_every_attribute() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install(&rx, None);
    rt().block_on(triage("where is my order?")).expect("agent ok");
    drop(guard);
    let spans = rx.spans();
    assert_eq!(spans.len(), 5, "{:#?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());

    let wf = span(&spans, "invoke_workflow triage");
    assert_eq!(wf.str_attr("gen_ai.operation.name"), Some("invoke_workflow"));
    assert_eq!(wf.str_attr("gen_ai.workflow.name"), Some("triage"));
    assert_eq!(wf.kind, 1);

    let agent = span(&spans, "invoke_agent support");
    assert_eq!(agent.parent_span_id.as_deref(), Some(wf.span_id.as_str()));
    assert_eq!(agent.kind, 1, "INTERNAL");
    assert_eq!(agent.str_attr("gen_ai.operation.name"), Some("invoke_agent"));
    assert_eq!(agent.str_attr("gen_ai.agent.name"), Some("support"));
    assert_eq!(agent.str_attr("gen_ai.agent.id"), Some("agent-7"));
    assert_eq!(agent.str_attr("gen_ai.agent.version"), Some("1.2"));
    assert_eq!(agent.str_attr("gen_ai.agent.description"), Some("Answers order questions"));
    assert_eq!(agent.str_attr("gen_ai.conversation.id"), Some("conv-42"));
    // Totals of what ran beneath, clearly as totals; per-call usage stays on the calls.
    assert_eq!(int(agent, "observra.total.llm_calls"), Some(2));
    assert_eq!(int(agent, "observra.total.tool_calls"), Some(1));
    assert_eq!(int(agent, "observra.total.input_tokens"), Some(20_000));
    assert_eq!(int(agent, "observra.total.output_tokens"), Some(4_000));
    assert!((double(agent, "observra.total.cost.usd").unwrap() - 2.0 * HAND_COMPUTED_COST).abs() < 1e-12);
    assert!(agent.attr("gen_ai.usage.input_tokens").is_none(), "no running sums posing as per-call usage");
    assert_eq!(int(wf, "observra.total.llm_calls"), Some(2), "workflows total everything beneath too");

    let calls: Vec<_> = spans.iter().filter(|s| s.name == "chat test-model").collect();
    assert_eq!(calls.len(), 2);
    let tool = span(&spans, "execute_tool lookup_order");
    for c in &calls {
        assert_eq!(c.parent_span_id.as_deref(), Some(agent.span_id.as_str()));
    }
    assert_eq!(tool.parent_span_id.as_deref(), Some(agent.span_id.as_str()));
    let (first, second) =
        if calls[0].start_unix_nano < calls[1].start_unix_nano { (calls[0], calls[1]) } else { (calls[1], calls[0]) };
    assert!(
        first.end_unix_nano <= tool.start_unix_nano && tool.end_unix_nano <= second.start_unix_nano,
        "llm → tool → llm"
    );

    let c = first;
    assert_eq!(c.kind, 3, "CLIENT");
    for (k, v) in [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "test-model"),
        ("gen_ai.response.id", "chatcmpl-1"),
        ("gen_ai.response.model", "test-model-2025-01-01"),
        ("server.address", "api.example.com"),
        ("gen_ai.conversation.id", "conv-42"),
    ] {
        assert_eq!(c.str_attr(k), Some(v), "{k}");
    }
    assert_eq!(double(c, "gen_ai.request.temperature"), Some(0.2));
    assert_eq!(double(c, "gen_ai.request.top_p"), Some(0.9));
    assert_eq!(double(c, "gen_ai.request.frequency_penalty"), Some(0.1));
    assert_eq!(double(c, "gen_ai.request.presence_penalty"), Some(0.2));
    // v1.41's top_k is a double (an integer under gen_ai_latest_experimental).
    assert_eq!(double(c, "gen_ai.request.top_k"), Some(40.0));
    for (k, v) in [
        ("gen_ai.request.max_tokens", 256),
        ("gen_ai.request.seed", 42),
        ("gen_ai.request.choice.count", 1),
        ("server.port", 443),
        ("gen_ai.usage.input_tokens", 10_000),
        ("gen_ai.usage.output_tokens", 2_000),
        ("gen_ai.usage.cache_read.input_tokens", 4_000),
        ("gen_ai.usage.cache_creation.input_tokens", 1_000),
        ("gen_ai.usage.reasoning.output_tokens", 500),
    ] {
        assert_eq!(int(c, k), Some(v), "{k}");
    }
    assert_eq!(c.attr("gen_ai.request.stop_sequences"), Some(&Val::Array(vec![Val::Str("\n\n".into())])));
    assert_eq!(c.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("stop".into())])));
    assert!((double(c, "observra.cost.usd").unwrap() - HAND_COMPUTED_COST).abs() < 1e-12, "cache-aware cost");
    for deprecated in ["gen_ai.system", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens", "gen_ai.prompt"]
    {
        assert!(c.attr(deprecated).is_none(), "{deprecated} must never be emitted");
    }
    // Content is off by default.
    for content in ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"] {
        assert!(c.attr(content).is_none(), "{content} captured without opt-in");
    }
    assert!(c.events.is_empty());

    assert_eq!(tool.kind, 1);
    assert_eq!(tool.str_attr("gen_ai.operation.name"), Some("execute_tool"));
    assert_eq!(tool.str_attr("gen_ai.tool.name"), Some("lookup_order"));
    assert_eq!(tool.str_attr("gen_ai.tool.type"), Some("function"));
    assert_eq!(tool.str_attr("gen_ai.tool.description"), Some("Looks up an order"));
    assert_eq!(tool.str_attr("gen_ai.tool.call.id"), Some("call_1"));
    assert_eq!(tool.str_attr("gen_ai.conversation.id"), Some("conv-42"));
    assert!(tool.attr("gen_ai.tool.call.arguments").is_none() && tool.attr("gen_ai.tool.call.result").is_none());
}

#[test]
fn genai_metrics_have_the_semconv_names_units_buckets_and_bounded_attributes() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install(&rx, None);
    rt().block_on(triage("q")).expect("agent ok");
    drop(guard);

    let duration_buckets = vec![0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
    let token_buckets = vec![
        1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
        67108864.0,
    ];
    let d = rx.wait_for_metric("gen_ai.client.operation.duration", Duration::from_secs(5)).expect("duration");
    assert_eq!((d.kind, d.unit.as_str()), ("histogram", "s"));
    assert_eq!(d.histogram_points.len(), 1);
    let p = &d.histogram_points[0];
    assert_eq!(p.bounds, duration_buckets);
    assert_eq!(p.count, 2);
    for (k, v) in [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "test-model"),
        ("gen_ai.response.model", "test-model-2025-01-01"),
        ("server.address", "api.example.com"),
    ] {
        assert_eq!(p.attributes.get(k), Some(&Val::Str(v.into())), "{k}");
    }
    assert_eq!(p.attributes.get("server.port"), Some(&Val::Int(443)));
    for unbounded in ["gen_ai.conversation.id", "gen_ai.response.id", "gen_ai.agent.id"] {
        assert!(!p.attributes.contains_key(unbounded), "{unbounded} on a metric");
    }

    let t = rx.wait_for_metric("gen_ai.client.token.usage", Duration::from_secs(5)).expect("tokens");
    assert_eq!((t.kind, t.unit.as_str()), ("histogram", "{token}"));
    assert_eq!(t.histogram_points.len(), 2, "one stream per token type");
    for hp in &t.histogram_points {
        assert_eq!(hp.bounds, token_buckets);
        assert_eq!(hp.count, 2, "one record per call");
        match hp.attributes.get("gen_ai.token.type") {
            Some(Val::Str(s)) if s == "input" => assert_eq!(hp.sum, 20_000.0),
            Some(Val::Str(s)) if s == "output" => assert_eq!(hp.sum, 4_000.0),
            other => panic!("unexpected token type {other:?}"),
        }
    }

    // Each with the buckets the conventions advise for it.
    let agent_buckets = vec![0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6];
    let workflow_buckets = vec![1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0];
    for (name, key, value, buckets) in [
        ("gen_ai.invoke_agent.duration", "gen_ai.agent.name", "support", &agent_buckets),
        ("gen_ai.execute_tool.duration", "gen_ai.tool.name", "lookup_order", &duration_buckets),
        ("gen_ai.workflow.duration", "gen_ai.workflow.name", "triage", &workflow_buckets),
    ] {
        let m = rx.wait_for_metric(name, Duration::from_secs(5)).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(m.unit, "s");
        assert_eq!(&m.histogram_points[0].bounds, buckets, "{name}");
        assert_eq!(m.histogram_points[0].attributes.get(key), Some(&Val::Str(value.into())), "{name}");
    }

    let cost = rx.wait_for_metric("observra.cost", Duration::from_secs(5)).expect("cost counter");
    assert_eq!((cost.kind, cost.unit.as_str()), ("sum", "{USD}"));
    let total: f64 = cost.points.iter().map(|p| p.1).sum();
    assert!((total - 2.0 * HAND_COMPUTED_COST).abs() < 1e-12, "{total}");
}

#[test]
fn errors_set_error_type_on_the_span_and_the_duration_metric() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install(&rx, None);
    let req =
        ChatRequest { model: "test-model".into(), temperature: 0.0, max_tokens: 1, stop: vec![], prompt: "x".into() };
    let r = rt().block_on(chat(&req, Some(429)));
    assert!(r.is_err());
    drop(guard);
    let spans = rx.spans();
    let c = span(&spans, "chat test-model");
    assert_eq!(c.status_code, 2);
    assert_eq!(c.str_attr("error.type"), Some("429"));
    assert!(c.attr("gen_ai.usage.input_tokens").is_none(), "no usage invented for a failed call");
    assert!(c.attr("observra.cost.usd").is_none());
    let d = rx.wait_for_metric("gen_ai.client.operation.duration", Duration::from_secs(5)).unwrap();
    assert_eq!(d.histogram_points[0].attributes.get("error.type"), Some(&Val::Str("429".into())));
    assert!(rx.metric_streams("gen_ai.client.token.usage").is_empty(), "no token records without usage");
}

#[llm_call(provider = "anthropic", model = "claude-haiku-4-5")]
async fn slow_call() -> Usage {
    std::future::pending::<()>().await;
    Usage::new(1, 1)
}

#[test]
fn a_dropped_llm_call_is_cancelled() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install(&rx, None);
    let out = rt().block_on(async { tokio::time::timeout(Duration::from_millis(20), slow_call()).await });
    assert!(out.is_err());
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "chat claude-haiku-4-5");
    assert_eq!(s.str_attr("error.type"), Some("cancelled"));
    assert_eq!(s.str_attr("gen_ai.provider.name"), Some("anthropic"));
}

#[test]
fn content_is_captured_and_redacted_only_when_enabled() {
    let _s = serial();
    for mode in [CaptureMode::SpanOnly, CaptureMode::EventOnly, CaptureMode::SpanAndEvent] {
        let rx = Receiver::start();
        let guard = install(&rx, Some(mode));
        rt().block_on(triage("my key is sk-proj-abcdefghijklmnopqrstuvwxyz123456, where is order A-1?")).unwrap();
        drop(guard);
        let spans = rx.spans();
        let calls: Vec<_> = spans.iter().filter(|s| s.name == "chat test-model").collect();
        let c = calls.iter().find(|s| !format!("{:?}", s).contains("order A-1: shipped")).unwrap();
        let tool = span(&spans, "execute_tool lookup_order");
        let on_span = mode != CaptureMode::EventOnly;
        let on_event = mode != CaptureMode::SpanOnly;
        // With OTLP, the details event is a log record in the call's trace.
        let details_event = "gen_ai.client.inference.operation.details";
        assert!(c.events.iter().all(|e| e.name != details_event), "{mode:?}: a log record, not a span event");
        let logs = rx.logs();
        let details: Vec<_> = logs.iter().filter(|l| l.event_name == details_event && l.span_id == c.span_id).collect();
        assert_eq!(details.len(), usize::from(on_event), "{mode:?}");
        let parsed: serde_json::Value = if on_span {
            serde_json::from_str(c.str_attr("gen_ai.input.messages").expect("input on span"))
                .expect("messages are JSON")
        } else {
            details[0].attr("gen_ai.input.messages").expect("input on the event").to_json()
        };
        assert_eq!(parsed[0]["role"], "user");
        assert_eq!(parsed[0]["parts"][0]["type"], "text");
        let text = parsed[0]["parts"][0]["content"].as_str().unwrap();
        assert!(text.contains("[REDACTED:openai_project_key]") && !text.contains("sk-proj-"), "{text}");
        if on_span {
            let out: serde_json::Value = serde_json::from_str(c.str_attr("gen_ai.output.messages").unwrap()).unwrap();
            assert_eq!(out[0]["role"], "assistant");
            assert_eq!(out[0]["finish_reason"], "stop");
            let sys: serde_json::Value =
                serde_json::from_str(c.str_attr("gen_ai.system_instructions").unwrap()).unwrap();
            assert_eq!(sys[0]["content"], "You are terse.");
            assert_eq!(tool.str_attr("gen_ai.tool.call.arguments"), Some("A-1"));
            assert_eq!(tool.str_attr("gen_ai.tool.call.result"), Some("order A-1: shipped"));
        }
    }
}

#[test]
fn a_bad_capture_setting_is_a_typed_error() {
    let err = observra::init()
        .env_from([("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "everything")])
        .install()
        .unwrap_err();
    assert!(
        matches!(&err, observra::Error::InvalidConfig { setting: observra::Setting::Env(v), value, .. }
            if *v == "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT" && value == "everything"),
        "{err}"
    );
}

/// A scripted stream: chunks with a pause before each.
struct Scripted {
    chunks: VecDeque<Chunk>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

#[derive(Debug, Clone)]
struct Chunk {
    text: &'static str,
    usage: Option<Usage>,
    finish: Option<&'static str>,
}

impl LlmChunk for Chunk {
    fn usage(&self) -> Option<Usage> {
        self.usage
    }
    fn finish_reason(&self) -> Option<&str> {
        self.finish
    }
    fn response_id(&self) -> Option<&str> {
        Some("stream-1")
    }
}

impl Stream for Scripted {
    type Item = Chunk;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        if self.chunks.is_empty() {
            return Poll::Ready(None);
        }
        let pause = self.pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(15))));
        match pause.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.pause = None;
                Poll::Ready(self.chunks.pop_front())
            }
        }
    }
}

use std::future::Future as _;

fn script() -> Scripted {
    Scripted {
        chunks: VecDeque::from(vec![
            Chunk { text: "Hel", usage: None, finish: None },
            Chunk { text: "lo", usage: None, finish: None },
            Chunk { text: "!", usage: Some(Usage::new(12, 3)), finish: Some("stop") },
        ]),
        pause: None,
    }
}

#[llm_call(provider = "openai", model = "test-model", stream)]
fn stream_chat(_prompt: &str) -> impl Stream<Item = Chunk> + Unpin {
    script()
}

#[llm_call(provider = "openai", model = "test-model", operation = "text_completion", response = manual)]
async fn consume_inside(prompt: &str) -> String {
    let mut s = observra::current_llm_call().instrument_stream(script());
    let mut out = String::new();
    while let Some(c) = next(&mut s).await {
        out.push_str(c.text);
    }
    format!("{prompt}: {out}")
}

async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

#[test]
fn streams_record_time_to_first_chunk_usage_and_end_with_the_stream() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install(&rx, None);
    let rt = rt();
    let text = rt.block_on(async {
        let mut s = stream_chat("hi");
        let mut text = String::new();
        while let Some(c) = next(&mut s).await {
            text.push_str(c.text);
        }
        text
    });
    assert_eq!(text, "Hello!");
    assert_eq!(rt.block_on(consume_inside("p")), "p: Hello!");
    // Dropped after the first chunk: cancelled.
    rt.block_on(async {
        let mut s = stream_chat("bye");
        let _ = next(&mut s).await;
    });
    drop(guard);
    let spans = rx.spans();
    let streamed: Vec<_> = spans.iter().filter(|s| s.name == "chat test-model").collect();
    assert_eq!(streamed.len(), 2);
    let done = streamed.iter().find(|s| s.attr("error.type").is_none()).expect("completed stream");
    let dropped = streamed.iter().find(|s| s.attr("error.type").is_some()).expect("dropped stream");
    assert_eq!(done.attr("gen_ai.request.stream"), Some(&Val::Bool(true)));
    let ttfc = double(done, "gen_ai.response.time_to_first_chunk").expect("ttfc");
    let duration = (done.end_unix_nano - done.start_unix_nano) as f64 / 1e9;
    assert!(ttfc > 0.0 && ttfc < duration, "first chunk ({ttfc}s) arrives within the span ({duration}s)");
    assert!(duration >= 0.045, "the span lasts until the third 15 ms chunk ({duration}s)");
    assert_eq!(int(done, "gen_ai.usage.input_tokens"), Some(12), "usage from the final chunk");
    assert_eq!(int(done, "gen_ai.usage.output_tokens"), Some(3));
    assert_eq!(done.str_attr("gen_ai.response.id"), Some("stream-1"));
    assert_eq!(done.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("stop".into())])));
    assert_eq!(int(done, "observra.stream.chunks"), Some(3));
    assert_eq!(dropped.str_attr("error.type"), Some("cancelled"));
    assert_eq!(dropped.status_code, 2);

    let inside = span(&spans, "text_completion test-model");
    assert!(double(inside, "gen_ai.response.time_to_first_chunk").is_some());
    assert_eq!(int(inside, "gen_ai.usage.output_tokens"), Some(3));

    let ttfc_metric =
        rx.wait_for_metric("gen_ai.client.operation.time_to_first_chunk", Duration::from_secs(5)).unwrap();
    let recorded: u64 = ttfc_metric.histogram_points.iter().map(|p| p.count).sum();
    assert_eq!(recorded, 3, "each stream's first chunk");
    let per_chunk =
        rx.wait_for_metric("gen_ai.client.operation.time_per_output_chunk", Duration::from_secs(5)).unwrap();
    let gaps: u64 = per_chunk.histogram_points.iter().map(|p| p.count).sum();
    assert_eq!(gaps, 4, "two gaps in each of the two complete streams");
    assert!(per_chunk.histogram_points.iter().all(|p| p.sum / p.count as f64 >= 0.010), "gaps of ~15 ms");
}

#[test]
fn budgets_fire_the_callback_the_counter_and_a_warning() {
    let _s = serial();
    let rx = Receiver::start();
    let events: Arc<Mutex<Vec<BudgetEvent>>> = Arc::default();
    let sink = events.clone();
    let guard = observra::init()
        .env_from(otlp_env(&rx, "http/protobuf"))
        .cost_table(CostTable::empty())
        .price("test-model", test_price())
        .budget(
            Budget::new()
                .per_call_usd(0.03)
                .per_call_tokens(11_000)
                .per_agent_usd(0.05)
                .per_window_usd(Duration::from_secs(3600), 0.1),
        )
        .on_budget_exceeded(move |e| sink.lock().unwrap().push(e.clone()))
        .install()
        .unwrap();
    let rt = rt();
    for _ in 0..2 {
        rt.block_on(run_agent("a", "c", "q")).unwrap();
    }
    drop(guard);
    let events = events.lock().unwrap().clone();
    let count = |k: BudgetKind, unit: &str| events.iter().filter(|e| e.kind == k && e.unit == unit).count();
    assert_eq!(count(BudgetKind::Call, "usd"), 4, "each 0.0315 call is over 0.03: {events:#?}");
    assert_eq!(count(BudgetKind::Call, "tokens"), 4, "each 12k-token call is over 11k");
    assert_eq!(count(BudgetKind::Agent, "usd"), 2, "once per agent run (0.063 > 0.05)");
    assert_eq!(count(BudgetKind::Window, "usd"), 1, "crossed once (0.126 > 0.1 at the 4th call)");
    let agent = events.iter().find(|e| e.kind == BudgetKind::Agent).unwrap();
    assert_eq!(agent.agent.as_deref(), Some("support"));
    assert!((agent.observed - 2.0 * HAND_COMPUTED_COST).abs() < 1e-12);
    assert_eq!(agent.trace_id.len(), 32);
    let counter = rx.wait_for_metric("observra.budget.exceeded", Duration::from_secs(5)).expect("counter");
    let total: f64 = counter.points.iter().map(|p| p.1).sum();
    assert_eq!(total, events.len() as f64);
    // The warning is a tracing event: it lands on the span that was current.
    let spans = rx.spans();
    let warned = spans.iter().flat_map(|s| &s.events).filter(|e| e.name == "budget exceeded").count();
    assert_eq!(warned, events.len(), "one warning event per crossing");
}

#[test]
fn unknown_models_get_no_cost_and_prices_come_from_a_file() {
    let _s = serial();
    let dir = std::env::temp_dir().join(format!("observra-prices-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("prices.toml");
    std::fs::write(&toml, "[models.my-finetune]\ninput = 1000.0\noutput = 2000.0\n").unwrap();
    let rx = Receiver::start();
    let mut e = otlp_env(&rx, "http/protobuf");
    e.push(("OBSERVRA_PRICES".into(), toml.display().to_string()));
    let guard = observra::init().env_from(e).install().unwrap();
    #[llm_call(provider = "openai", model = model)]
    fn call(model: &str) -> Usage {
        Usage::new(1_000, 500)
    }
    call("my-finetune");
    call("gpt-4o-mini-2024-07-18");
    call("nobody-knows-this-model");
    drop(guard);
    let spans = rx.spans();
    let ft = span(&spans, "chat my-finetune");
    assert!((double(ft, "observra.cost.usd").unwrap() - 2.0).abs() < 1e-9, "1k * 1000/M + 500 * 2000/M");
    let mini = span(&spans, "chat gpt-4o-mini-2024-07-18");
    let expected = (1_000.0 * 0.15 + 500.0 * 0.60) / 1e6;
    assert!((double(mini, "observra.cost.usd").unwrap() - expected).abs() < 1e-12, "built-in prices, dated model");
    let unknown = span(&spans, "chat nobody-knows-this-model");
    assert!(unknown.attr("observra.cost.usd").is_none(), "never a guess");
    // The frame path puts the once-per-model warning on the call's span.
    assert!(
        unknown.events.iter().any(|e| e.name.starts_with("no price for this model")),
        "the warning is visible: {unknown:#?}"
    );
    assert_eq!(int(unknown, "gen_ai.usage.input_tokens"), Some(1_000));

    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"models\": {\"m\": {\"input\": \"cheap\"}}}").unwrap();
    let err = observra::init().env_from([("OBSERVRA_PRICES", bad.display().to_string())]).install().unwrap_err();
    assert_eq!(err.setting(), Some(&observra::Setting::Env("OBSERVRA_PRICES")), "{err}");
    assert!(err.to_string().contains("malformed price file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn provider_usage_shapes_normalise_to_total_input_tokens() {
    // Recorded response bodies (trimmed) of each provider's shape.
    let openai: serde_json::Value = serde_json::from_str(
        r#"{"usage": {"prompt_tokens": 1200, "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1000},
            "completion_tokens_details": {"reasoning_tokens": 120}}}"#,
    )
    .unwrap();
    let u = &openai["usage"];
    let o = Usage::openai(
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
        u["prompt_tokens_details"]["cached_tokens"].as_u64(),
        u["completion_tokens_details"]["reasoning_tokens"].as_u64(),
    );
    assert_eq!(o.input_tokens, Some(1200), "OpenAI's prompt_tokens already include the cached ones");
    assert_eq!(o.cache_read_input_tokens, Some(1000));
    assert_eq!(o.reasoning_output_tokens, Some(120));

    let anthropic: serde_json::Value = serde_json::from_str(
        r#"{"usage": {"input_tokens": 50, "output_tokens": 300,
            "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200}}"#,
    )
    .unwrap();
    let u = &anthropic["usage"];
    let a = Usage::anthropic(
        u["input_tokens"].as_u64().unwrap(),
        u["output_tokens"].as_u64().unwrap(),
        u["cache_read_input_tokens"].as_u64(),
        u["cache_creation_input_tokens"].as_u64(),
    );
    assert_eq!(a.input_tokens, Some(1250), "Anthropic's input_tokens exclude cache reads and writes");
    assert_eq!(a.cache_read_input_tokens, Some(1000));
    assert_eq!(a.cache_creation_input_tokens, Some(200));
    // Same prices, same tokens: the cost must not depend on the provider's shape.
    let p = Price::new(3.0, 15.0).cache_read(0.3).cache_write(3.75);
    let by_hand = (50.0 * 3.0 + 1000.0 * 0.3 + 200.0 * 3.75 + 300.0 * 15.0) / 1e6;
    assert!((p.cost(&a).unwrap() - by_hand).abs() < 1e-15);
}

#[test]
fn manual_recording_and_hand_written_spans_get_the_same_treatment() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install(&rx, None);
    #[llm_call(provider = "openai", model = "test-model", response = manual)]
    fn foreign() -> (String, u32) {
        observra::current_llm_call()
            .record_usage(Usage::openai(1_000, 10, None, None))
            .record_response_id("resp-9")
            .record_finish_reasons(&["length"]);
        ("text".into(), 7)
    }
    let _ = foreign();
    // A hand-written tracing span with the same fields.
    let s = tracing::info_span!(
        "chat",
        otel.name = "chat test-model",
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = "test-model",
        gen_ai.usage.input_tokens = 1_000_i64,
        gen_ai.usage.output_tokens = 10_i64,
    );
    drop(s);
    drop(guard);
    let spans = rx.spans();
    let both: Vec<_> = spans.iter().filter(|s| s.name == "chat test-model").collect();
    assert_eq!(both.len(), 2);
    let expected = (1_000.0 * 2.0 + 10.0 * 8.0) / 1e6;
    for s in &both {
        assert!((double(s, "observra.cost.usd").unwrap() - expected).abs() < 1e-12, "{s:?}");
        assert_eq!(s.kind, 3);
    }
    let manual = both.iter().find(|s| s.str_attr("gen_ai.response.id") == Some("resp-9")).unwrap();
    assert_eq!(manual.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("length".into())])));
    let d = rx.wait_for_metric("gen_ai.client.operation.duration", Duration::from_secs(5)).unwrap();
    assert_eq!(d.histogram_points[0].count, 2, "both recorded in the duration histogram");
}
