//! `#[llm_call]`'s frame path (no `tracing` span on the caller's
//! thread), decoded from OTLP: it exports the same span as the `tracing`
//! path (`fast_path(false)`) attribute for attribute, keeps the trace
//! (parent agent, `tracing` children and events inside the call, injected
//! context), records error, panic and cancellation, reaches `current_llm_call`,
//! feeds agent totals, and `OBSERVRA_FAST_PATH` is checked at install.

use std::collections::BTreeMap;
use std::time::Duration;

use observra::{LlmResponse, Usage, agent, llm_call};
use observra_test_support::{ApiError, ReceivedSpan, Receiver, Val, otlp_env, serial};

#[derive(Debug)]
struct Reply {
    model: String,
}

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(1_200, 150).with_cache_read(200))
    }
    fn response_id(&self) -> Option<&str> {
        Some("resp-1")
    }
    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        vec!["stop"]
    }
}

#[llm_call(provider = "openai", model = "gpt-4o-mini", temperature = 0.5, server_address = "api.example.com")]
fn literal_model(fail: bool) -> Result<Reply, ApiError> {
    if fail {
        return Err(ApiError(429));
    }
    Ok(Reply { model: "gpt-4o-mini-2024-07-18".into() })
}

#[llm_call(provider = "anthropic", model = model, max_tokens = 64)]
async fn dynamic_model(model: &str) -> Result<Reply, ApiError> {
    tokio::task::yield_now().await;
    Ok(Reply { model: format!("{model}-latest") })
}

#[llm_call(provider = "openai", model = "gpt-4o")]
fn with_children() -> Usage {
    tracing::info!(attempt = 1, "calling the model");
    let _inner = tracing::info_span!("http.request", url = "https://api.example.com").entered();
    tracing::info!("sent");
    Usage::new(10, 5)
}

#[llm_call(provider = "openai", model = "gpt-4o")]
fn records_by_hand() -> Usage {
    observra::current_llm_call().record_response_id("by-hand").record_finish_reasons(&["length"]);
    Usage::new(3, 4)
}

#[llm_call(provider = "openai", model = "gpt-4o")]
fn injects() -> Usage {
    let mut headers = http::HeaderMap::new();
    observra::propagation::inject(&mut headers);
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    tracing::info!(traceparent = traceparent.as_str(), "injected");
    Usage::new(1, 1)
}

#[llm_call(provider = "openai", model = "gpt-4o")]
fn panics() -> Usage {
    panic!("the model client panicked")
}

#[llm_call(provider = "openai", model = "gpt-4o")]
async fn never_finishes() -> Usage {
    std::future::pending::<()>().await;
    Usage::new(1, 1)
}

/// The name of the `tracing` span current inside a model call's body.
#[llm_call(provider = "openai", model = "gpt-4o")]
fn current_tracing_span() -> Probe {
    Probe(tracing::Span::current().metadata().map(|m| m.name()))
}

struct Probe(Option<&'static str>);

impl LlmResponse for Probe {}

#[test]
fn the_path_taken_depends_on_the_setting() {
    let _s = serial();
    // On the frame path `Span::current()` stands for the running frame
    // (tests/tests/current_span.rs); through the layer it is the call's span.
    for (fast, expected) in [(true, Some("observra.frame")), (false, Some("chat"))] {
        let guard = observra::init().jsonl_writer(std::io::sink()).fast_path(fast).install().unwrap();
        assert_eq!(current_tracing_span().0, expected, "fast_path({fast}): the current span");
        drop(guard);
    }
    // OBSERVRA_FAST_PATH=false is the same as fast_path(false).
    let env = vec![("OBSERVRA_FAST_PATH".to_string(), "false".to_string())];
    let guard = observra::init().env_from(env).jsonl_writer(std::io::sink()).install().unwrap();
    assert_eq!(current_tracing_span().0, Some("chat"));
    drop(guard);
}

#[agent(name = "support")]
async fn support_agent() -> Result<(), ApiError> {
    literal_model(false)?;
    dynamic_model("claude-sonnet-4").await?;
    Ok(())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Runs the workload once with the path on or off, returns the spans.
fn run(fast: bool) -> Vec<ReceivedSpan> {
    let rx = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).fast_path(fast).install().unwrap();
    let rt = rt();
    rt.block_on(support_agent()).unwrap();
    assert!(literal_model(true).is_err());
    with_children();
    records_by_hand();
    injects();
    assert!(std::panic::catch_unwind(panics).is_err());
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_millis(5), never_finishes()).await;
    });
    drop(guard);
    rx.wait_for_spans(11, Duration::from_secs(10))
}

fn find<'a>(spans: &'a [ReceivedSpan], pred: impl Fn(&ReceivedSpan) -> bool, what: &str) -> &'a ReceivedSpan {
    let found: Vec<_> = spans.iter().filter(|s| pred(s)).collect();
    assert_eq!(found.len(), 1, "{what}: {spans:#?}");
    found[0]
}

/// Everything but ids and times, for comparing the two paths.
fn shape(s: &ReceivedSpan) -> (String, i32, BTreeMap<String, Val>, i32, String, Vec<String>) {
    let mut attrs = s.attributes.clone();
    // Totals depend only on the children; cost on the prices: both kept.
    attrs.remove("observra.duration");
    let events = s.events.iter().map(|e| e.name.clone()).collect();
    (s.name.clone(), s.kind, attrs, s.status_code, s.status_message.clone(), events)
}

#[test]
fn the_dedicated_path_exports_what_the_tracing_path_does() {
    let _s = serial();
    let fast = run(true);
    let slow = run(false);
    assert_eq!(fast.len(), slow.len(), "same span count: fast {fast:#?} slow {slow:#?}");
    let mut a: Vec<_> = fast.iter().map(shape).collect();
    let mut b: Vec<_> = slow.iter().map(shape).collect();
    a.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    b.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "the same span on both paths");
    }
    for spans in [&fast, &slow] {
        check_tree(spans);
    }
}

fn check_tree(spans: &[ReceivedSpan]) {
    let agent = find(spans, |s| s.name == "invoke_agent support", "the agent");
    let lit =
        find(spans, |s| s.name == "chat gpt-4o-mini" && s.status_code != 2, "the literal-model call under the agent");
    let dynm = find(spans, |s| s.name == "chat claude-sonnet-4", "the dynamic-model call");
    for call in [lit, dynm] {
        assert_eq!(call.trace_id, agent.trace_id);
        assert_eq!(call.parent_span_id.as_deref(), Some(agent.span_id.as_str()));
        assert_eq!(call.kind, 3, "CLIENT");
    }
    assert_eq!(lit.attr("gen_ai.request.temperature"), Some(&Val::Double(0.5)));
    assert_eq!(lit.str_attr("server.address"), Some("api.example.com"));
    assert_eq!(lit.attr("gen_ai.usage.input_tokens"), Some(&Val::Int(1_200)));
    assert_eq!(lit.attr("gen_ai.usage.cache_read.input_tokens"), Some(&Val::Int(200)));
    assert_eq!(lit.str_attr("gen_ai.response.model"), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(lit.str_attr("gen_ai.response.id"), Some("resp-1"));
    assert!(matches!(lit.attr("observra.cost.usd"), Some(Val::Double(c)) if *c > 0.0), "priced: {lit:#?}");
    assert_eq!(dynm.attr("gen_ai.request.max_tokens"), Some(&Val::Int(64)));
    assert_eq!(dynm.str_attr("gen_ai.request.model"), Some("claude-sonnet-4"));
    // The agent's totals include both calls, worked out before it closed.
    assert_eq!(agent.attr("observra.total.llm_calls"), Some(&Val::Int(2)));
    assert_eq!(agent.attr("observra.total.input_tokens"), Some(&Val::Int(2_400)));

    let failed = find(spans, |s| s.name == "chat gpt-4o-mini" && s.status_code == 2, "the failed call");
    assert_eq!(failed.str_attr("error.type"), Some("429"), "{failed:#?}");
    assert!(failed.status_message.contains("HTTP 429"), "{failed:#?}");
    assert!(failed.events.iter().any(|e| e.name == "exception"));
    assert!(failed.parent_span_id.is_none(), "a root call");

    let outer = find(
        spans,
        |s| s.name == "chat gpt-4o" && s.events.iter().any(|e| e.name == "calling the model"),
        "the call with children",
    );
    let http = find(spans, |s| s.name == "http.request", "the tracing span inside the call");
    assert_eq!(http.parent_span_id.as_deref(), Some(outer.span_id.as_str()));
    assert_eq!(http.trace_id, outer.trace_id);
    assert!(http.events.iter().any(|e| e.name == "sent"), "an event in the inner span is the inner span's");
    assert!(!outer.events.iter().any(|e| e.name == "sent"));

    // Found by what `records_by_hand` returns (4 output tokens, 3 input),
    // then checked for what it recorded through current_llm_call().
    let by_hand = find(
        spans,
        |s| {
            s.attr("gen_ai.usage.output_tokens") == Some(&Val::Int(4))
                && s.attr("gen_ai.usage.input_tokens") == Some(&Val::Int(3))
        },
        "current_llm_call",
    );
    assert_eq!(by_hand.str_attr("gen_ai.response.id"), Some("by-hand"));
    assert_eq!(by_hand.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("length".into())])));

    let injected = find(spans, |s| s.events.iter().any(|e| e.name == "injected"), "the injecting call");
    let event = injected.events.iter().find(|e| e.name == "injected").unwrap();
    let tp = event.attributes.get("traceparent").and_then(Val::as_str).unwrap_or("");
    assert_eq!(tp, format!("00-{}-{}-01", injected.trace_id, injected.span_id), "inject() names the call itself");

    let panicked = find(spans, |s| s.str_attr("error.type") == Some("panic"), "the panicking call");
    assert_eq!(panicked.status_code, 2);
    let cancelled = find(spans, |s| s.str_attr("error.type") == Some("cancelled"), "the cancelled call");
    assert_eq!(cancelled.status_code, 2);
}

#[test]
fn a_bad_fast_path_setting_is_a_typed_error() {
    let _s = serial();
    let err = observra::init()
        .env_from(vec![("OBSERVRA_FAST_PATH".to_string(), "sometimes".to_string())])
        .install()
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("OBSERVRA_FAST_PATH") && text.contains("sometimes"), "{text}");
}

#[test]
fn no_span_is_lost_when_the_pipeline_stops_under_load() {
    let _s = serial();
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let rx = Receiver::start();
    let before = observra::health();
    // A queue that holds every call, so nothing ending before the shutdown
    // may be dropped: all of those must arrive.
    let mut env = otlp_env(&rx, "http/protobuf");
    env.push(("OTEL_BSP_MAX_QUEUE_SIZE".into(), "8192".into()));
    let guard = observra::init().env_from(env).install().unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..2_000 {
                    let _ = literal_model(false);
                    CALLS.fetch_add(1, Ordering::AcqRel);
                }
            })
        })
        .collect();
    // Shut down while both workers are still calling.
    while CALLS.load(Ordering::Acquire) < 1_000 {
        std::thread::yield_now();
    }
    let ended_before_shutdown = CALLS.load(Ordering::Acquire);
    let report = guard.shutdown().expect("a report");
    for w in workers {
        w.join().unwrap();
    }
    let health = observra::health();
    assert_eq!(health.spans_produced, health.spans_exported + health.spans_dropped + health.spans_failed, "{health:?}");
    let produced = health.spans_produced - before.spans_produced;
    let dropped = health.spans_dropped - before.spans_dropped;
    // Calls that start after the shutdown are not instrumented (as before
    // install); every call recorded is either delivered or counted dropped.
    assert!(produced <= 4_000, "{health:?}");
    let received = rx.spans().len() as u64;
    assert_eq!(received + dropped, produced, "every recorded call exported or counted dropped: {report:?}");
    assert!(dropped <= produced - ended_before_shutdown, "only calls in flight at the shutdown may be dropped");
    assert!(
        received >= ended_before_shutdown,
        "every call that ended before the shutdown arrived: {received} < {ended_before_shutdown}: {report:?}"
    );
    assert_eq!(health.spans_failed - before.spans_failed, 0);
}

/// A stream of three chunks: usage and the finish reason on the last.
struct Chunks(std::collections::VecDeque<Chunk>);

/// One chunk: usage and a finish reason, when it carries them.
struct Chunk(Option<Usage>, Option<&'static str>);

impl observra::LlmChunk for Chunk {
    fn usage(&self) -> Option<Usage> {
        self.0
    }
    fn finish_reason(&self) -> Option<&str> {
        self.1
    }
}

impl futures_core::Stream for Chunks {
    type Item = Chunk;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.pop_front())
    }
}

/// A model call that consumes a stream inside its body, on whichever path
/// the setting gives it (no `response = manual`, no `stream`).
#[llm_call(provider = "openai", model = "gpt-4o")]
async fn streams_inside() -> Usage {
    let chunks = Chunks(
        [Chunk(None, None), Chunk(None, None), Chunk(Some(Usage::new(9, 4)), Some("stop"))].into_iter().collect(),
    );
    let mut s = observra::current_llm_call().instrument_stream(chunks);
    while std::future::poll_fn(|cx| std::pin::Pin::new(&mut s).poll_next(cx)).await.is_some() {}
    Usage::default()
}

use futures_core::Stream as _;

#[test]
fn a_stream_instrumented_inside_a_call_records_on_either_path() {
    let _s = serial();
    for fast in [true, false] {
        let rx = Receiver::start();
        let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).fast_path(fast).install().unwrap();
        rt().block_on(streams_inside());
        drop(guard);
        let spans = rx.wait_for_spans(1, Duration::from_secs(10));
        let call = find(&spans, |s| s.name == "chat gpt-4o", "the call");
        let int = |k: &str| match call.attr(k) {
            Some(Val::Int(i)) => Some(*i),
            _ => None,
        };
        assert_eq!(call.attr("gen_ai.request.stream"), Some(&Val::Bool(true)), "fast_path({fast}): {call:#?}");
        assert_eq!(int("gen_ai.usage.input_tokens"), Some(9), "fast_path({fast}): usage from the last chunk");
        assert_eq!(int("gen_ai.usage.output_tokens"), Some(4), "fast_path({fast})");
        assert_eq!(int("observra.stream.chunks"), Some(3), "fast_path({fast})");
        assert!(
            matches!(call.attr("gen_ai.response.time_to_first_chunk"), Some(Val::Double(_))),
            "fast_path({fast}): {call:#?}"
        );
        assert_eq!(call.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("stop".into())])));
    }
}

#[observra::traced]
async fn held_open(i: u64) -> u64 {
    std::future::pending::<()>().await;
    i
}

async fn held_open_plain(i: u64) -> u64 {
    std::future::pending::<()>().await;
    i
}

/// Catches: an async function's future keeping its span and its body
/// twice, once in a local alive across the body's `.await` (it was 816
/// bytes for a 24-byte body when the frame was inline; memory per open
/// span is `benches/open_spans.rs`). The future holds the body once and
/// one of the two paths' spans (the frame path's, whose frame is boxed, or
/// the `tracing` path's), with the discriminants.
#[test]
fn an_async_functions_future_holds_its_span_and_its_body_once() {
    let frame_span = std::mem::size_of::<observra::__private::FrameSpan>();
    let tracing_span = std::mem::size_of::<Option<tracing::Span>>();
    let span = frame_span.max(tracing_span);
    let (traced, plain) = (std::mem::size_of_val(&held_open(0)), std::mem::size_of_val(&held_open_plain(0)));
    assert!(
        traced <= plain + span + 24,
        "the #[traced] future is {traced} bytes: the body's {plain} and a span of {span} ({frame_span} on the frame path)"
    );
}

/// Reasons a provider made up, after a known one, and more than fit packed.
struct Unusual;

impl LlmResponse for Unusual {
    fn finish_reasons(&self) -> Vec<&str> {
        vec!["stop", "my_provider_reason", "length", "stop", "length"]
    }
}

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
fn unusual_reasons() -> Unusual {
    Unusual
}

/// Known finish reasons are packed on the caller's thread; an unknown one,
/// or a fifth, turns them into a list: what is exported is every reason, in
/// order, on either path.
#[test]
fn finish_reasons_that_do_not_pack_are_exported_whole_and_in_order() {
    let _s = serial();
    for fast in [true, false] {
        let rx = Receiver::start();
        let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).fast_path(fast).install().unwrap();
        unusual_reasons();
        drop(guard);
        let spans = rx.wait_for_spans(1, Duration::from_secs(10));
        let call = find(&spans, |s| s.name == "chat gpt-4o-mini", "the call");
        let expected = ["stop", "my_provider_reason", "length", "stop", "length"].map(|r| Val::Str(r.into()));
        assert_eq!(
            call.attr("gen_ai.response.finish_reasons"),
            Some(&Val::Array(expected.to_vec())),
            "fast_path({fast})"
        );
    }
}
