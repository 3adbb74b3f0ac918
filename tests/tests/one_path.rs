//! One record path: the same program exports the same spans, attribute for
//! attribute, whether observra owns the subscriber (every macro takes the
//! frame path: no `tracing` span) or the user built one with
//! `registry().with(observra::layer())` (every macro makes a `tracing`
//! span, which the layer records into the same frame). Covers every macro,
//! nesting (a `tracing` span and event inside a frame, a spawned child
//! carried with `observra::Instrument`), errors, function metrics, agent
//! totals and `observra::current_span()`.

use std::collections::BTreeMap;
use std::time::Duration;

use observra::{Instrument, LlmResponse, Usage, agent, llm_call, tool_call, traced, workflow};
use observra_test_support::{ApiError, ReceivedSpan, Receiver, Val, otlp_env, serial};
use tracing_subscriber::layer::SubscriberExt;

struct Reply;

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(1_000, 100))
    }
    fn response_model(&self) -> Option<&str> {
        Some("gpt-4o-mini-2024-07-18")
    }
    fn finish_reasons(&self) -> Vec<&str> {
        vec!["stop"]
    }
}

#[workflow(name = "triage")]
async fn triage(ticket: u32) -> Result<u32, ApiError> {
    support(ticket).await
}

#[agent(name = "support", version = "2", conversation_id = format!("conv-{ticket}"))]
async fn support(ticket: u32) -> Result<u32, ApiError> {
    let order = lookup_order(ticket).await?;
    // A spawned child, carried with observra's Instrument.
    let spawned = tokio::spawn(retrieve(order).in_current_span()).await.unwrap_or(0);
    ask_model(false)?;
    let _ = ask_model(true);
    observra::current_span().set_attribute("ticket.priority", "high");
    Ok(spawned)
}

#[tool_call(name = "lookup_order", call_id = format!("call-{id}"))]
async fn lookup_order(id: u32) -> Result<u32, ApiError> {
    tokio::task::yield_now().await;
    Ok(id * 10)
}

#[llm_call(provider = "openai", model = "gpt-4o-mini", temperature = 0.5, max_tokens = 64)]
fn ask_model(fail: bool) -> Result<Reply, ApiError> {
    if fail {
        return Err(ApiError(503));
    }
    tracing::info!(attempt = 1_i64, "calling the model");
    let _http = tracing::info_span!("http.request", url = "https://api.example.com").entered();
    Ok(Reply)
}

#[traced(kind = client, metrics, attrs(component = "rag", top_k = 3, exact = true, weight = 0.25), fields(order))]
fn retrieve_inner(order: u32) -> u32 {
    // Which path recorded the call: the frame path makes no `tracing` span.
    *CURRENT_TRACING_SPAN.lock().unwrap() = tracing::Span::current().metadata().map(|m| m.name());
    order + 1
}

static CURRENT_TRACING_SPAN: std::sync::Mutex<Option<&'static str>> = std::sync::Mutex::new(None);

#[traced(name = "retrieve docs")]
async fn retrieve(order: u32) -> u32 {
    retrieve_inner(order)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Runs the program once, under observra's own subscriber or a user-built one.
fn run(user_subscriber: bool) -> Vec<ReceivedSpan> {
    let rx = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).install().unwrap();
    let work = || {
        let rt = rt();
        assert_eq!(rt.block_on(triage(4)).unwrap(), 41);
    };
    if user_subscriber {
        let subscriber = tracing_subscriber::registry().with(observra::layer());
        tracing::subscriber::with_default(subscriber, work);
    } else {
        work();
    }
    drop(guard);
    rx.wait_for_spans(8, Duration::from_secs(10))
}

/// Everything but ids and times, with the parent's name.
fn shape(s: &ReceivedSpan, all: &[ReceivedSpan]) -> (String, i32, BTreeMap<String, Val>, i32, Vec<String>, String) {
    let parent =
        all.iter().find(|p| Some(&p.span_id) == s.parent_span_id.as_ref()).map(|p| p.name.clone()).unwrap_or_default();
    let events = s.events.iter().map(|e| e.name.clone()).collect();
    (s.name.clone(), s.kind, s.attributes.clone(), s.status_code, events, parent)
}

#[test]
fn every_macro_exports_the_same_spans_on_the_frame_path_and_through_the_layer() {
    let _s = serial();
    let frames = run(false);
    // On the frame path `Span::current()` stands for the running frame.
    assert_eq!(
        *CURRENT_TRACING_SPAN.lock().unwrap(),
        Some("observra.frame"),
        "observra's own subscriber: the frame path"
    );
    let layered = run(true);
    assert_eq!(*CURRENT_TRACING_SPAN.lock().unwrap(), Some("retrieve_inner"), "a user's subscriber: tracing spans");
    let mut a: Vec<_> = frames.iter().map(|s| shape(s, &frames)).collect();
    let mut b: Vec<_> = layered.iter().map(|s| shape(s, &layered)).collect();
    a.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    b.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    assert_eq!(a.len(), 8, "workflow, agent, tool, two model calls, http.request, two traced: {a:#?}");
    assert_eq!(a, b, "the same spans on both set-ups");

    for spans in [&frames, &layered] {
        let by = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name}: {spans:#?}"));
        let (workflow, agent, tool) =
            (by("invoke_workflow triage"), by("invoke_agent support"), by("execute_tool lookup_order"));
        assert!(spans.iter().all(|s| s.trace_id == workflow.trace_id), "one trace");
        assert_eq!(agent.str_attr("gen_ai.conversation.id"), Some("conv-4"));
        assert_eq!(tool.str_attr("gen_ai.conversation.id"), Some("conv-4"), "inherited from the agent");
        assert_eq!(tool.str_attr("gen_ai.tool.call.id"), Some("call-4"));
        assert_eq!(agent.str_attr("ticket.priority"), Some("high"), "current_span() reaches the agent");
        assert_eq!(agent.attr("observra.total.llm_calls"), Some(&Val::Int(2)));
        assert_eq!(agent.attr("observra.total.tool_calls"), Some(&Val::Int(1)));
        assert_eq!(workflow.attr("observra.total.input_tokens"), Some(&Val::Int(1_000)), "one call reported usage");
        let inner = by("retrieve_inner");
        assert_eq!(inner.kind, 3, "CLIENT");
        assert_eq!(inner.str_attr("order"), Some("40"), "a recorded parameter");
        assert_eq!(inner.attr("weight"), Some(&Val::Double(0.25)));
        assert_eq!(by("retrieve docs").parent_span_id.as_deref(), Some(agent.span_id.as_str()), "spawned, carried");
        let http = by("http.request");
        let ok_call = spans.iter().find(|s| s.name == "chat gpt-4o-mini" && s.status_code != 2).unwrap();
        assert_eq!(http.parent_span_id.as_deref(), Some(ok_call.span_id.as_str()));
    }
}

#[tool_call(name = "fetch_page")]
async fn fetch_page(n: u32) -> Result<u32, ApiError> {
    tokio::task::yield_now().await;
    Ok(n)
}

#[agent(name = "crawler")]
async fn crawler() -> Result<u32, ApiError> {
    // Two tool calls on other worker threads, carried with observra's Instrument.
    let a = tokio::spawn(fetch_page(1).in_current_span());
    let b = tokio::spawn(fetch_page(2).in_current_span());
    Ok(a.await.unwrap_or(Ok(0))? + b.await.unwrap_or(Ok(0))?)
}

#[test]
fn agent_totals_count_calls_spawned_onto_other_threads() {
    let _s = serial();
    // The frame path, and `tracing` spans recorded by the layer.
    for frame_path in [true, false] {
        let rx = Receiver::start();
        let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).fast_path(frame_path).install().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        assert_eq!(rt.block_on(crawler()).unwrap(), 3);
        drop(rt);
        drop(guard);
        let spans = rx.wait_for_spans(3, Duration::from_secs(10));
        let agent = spans.iter().find(|s| s.name == "invoke_agent crawler").expect("the agent");
        let tools: Vec<_> = spans.iter().filter(|s| s.name == "execute_tool fetch_page").collect();
        assert_eq!(tools.len(), 2, "{spans:#?}");
        assert!(tools.iter().all(|t| t.parent_span_id.as_deref() == Some(agent.span_id.as_str())));
        assert_eq!(agent.attr("observra.total.tool_calls"), Some(&Val::Int(2)), "frame path: {frame_path}: {agent:#?}");
    }
}

#[traced]
fn page_someone() -> u8 {
    1
}

/// A budget callback runs with nothing of observra's held, so it may call
/// instrumented code itself: that call is recorded like any other.
#[test]
fn a_budget_callback_may_call_instrumented_code() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = observra::init()
        .env_from(otlp_env(&rx, "http/protobuf"))
        .budget(observra::Budget::new().per_call_usd(0.0))
        .on_budget_exceeded(|_| {
            page_someone();
        })
        .install()
        .unwrap();
    assert!(ask_model(false).is_ok());
    drop(guard);
    let spans = rx.wait_for_spans(2, Duration::from_secs(10));
    assert!(spans.iter().any(|s| s.name == "page_someone"), "the callback's own span: {spans:#?}");
    assert!(spans.iter().any(|s| s.name == "chat gpt-4o-mini"));
}
