//! `tracing`'s own idioms inside an instrumented function, on both paths:
//! `tracing::Span::current()` stands for the running call, so
//! `tracing::Instrument::in_current_span()`, `.instrument(Span::current())`
//! (here inside a library-style helper that captures the current span and
//! spawns), `Span::current().in_scope(..)` and `tracing::info!` keep the
//! work in the call's trace, as children of the call, on a multi-thread
//! runtime; `Span::current().record(..)` of a declared field sets it.

use observra::{agent, traced};
use observra_test_support::{SharedBuf, serial};
use serde_json::Value;
use tracing::Instrument;

#[traced]
async fn remote_call(x: u64) -> u64 {
    tokio::task::yield_now().await;
    x * 2
}

#[traced]
fn in_scope_child() -> u8 {
    1
}

/// What a library does inside: capture the current span and hand it to a
/// task it spawns (nobody can change this code to use observra's trait).
fn library_spawn<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::spawn(work.instrument(span))
}

#[traced]
async fn handle_request() -> u64 {
    tracing::info!("handling");
    let a = tokio::spawn(remote_call(21).in_current_span()).await.unwrap();
    let b = library_spawn(remote_call(1)).await.unwrap();
    tracing::Span::current().in_scope(in_scope_child);
    a + b
}

/// Declares `order` (a recorded parameter) and `step` (a literal
/// attribute), and records both again from inside, the `tracing` way.
#[traced(attrs(step = "start"), fields(order))]
fn record_declared(order: &str) {
    tracing::Span::current().record("order", "B-2").record("step", "done");
    tracing::Span::current().record("undeclared", "ignored, as tracing does");
}

#[agent(name = "planner")]
async fn plan() -> u64 {
    tokio::spawn(remote_call(5).in_current_span()).await.unwrap()
}

fn spans(out: &SharedBuf) -> Vec<Value> {
    out.lines()
}

fn one<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = spans.iter().filter(|s| s["name"] == name).collect();
    assert_eq!(found.len(), 1, "one {name}: {spans:#?}");
    found[0]
}

fn children_of<'a>(spans: &'a [Value], parent: &Value, name: &str) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| {
            s["name"] == name && s["parent_span_id"] == parent["span_id"] && s["trace_id"] == parent["trace_id"]
        })
        .collect()
}

fn run(fast_path: bool) {
    let out = SharedBuf::default();
    let guard = observra::init().fast_path(fast_path).jsonl_writer(out.clone()).install().expect("install");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    assert_eq!(rt.block_on(handle_request()), 44);
    assert_eq!(rt.block_on(plan()), 10);
    record_declared("A-1");
    drop(rt);
    drop(guard);
    let spans = spans(&out);
    let root = one(&spans, "handle_request");
    let remote = children_of(&spans, root, "remote_call");
    assert_eq!(remote.len(), 2, "fast_path={fast_path}: both spawned calls are the request's children: {spans:#?}");
    assert_eq!(children_of(&spans, root, "in_scope_child").len(), 1, "fast_path={fast_path}: in_scope");
    let events: Vec<&str> = root["events"].as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    assert!(events.iter().any(|e| e.contains("handling")), "fast_path={fast_path}: the info! event: {events:?}");
    let declared = &one(&spans, "record_declared")["attributes"];
    assert_eq!(declared["order"], "B-2", "fast_path={fast_path}: {declared}");
    assert_eq!(declared["step"], "done", "fast_path={fast_path}: {declared}");
    assert!(declared.get("undeclared").is_none(), "fast_path={fast_path}: {declared}");
    let agent = one(&spans, "invoke_agent planner");
    assert_eq!(children_of(&spans, agent, "remote_call").len(), 1, "fast_path={fast_path}: under the agent");
}

#[test]
fn spawned_work_stays_in_the_callers_trace_through_tracing_idioms_on_both_paths() {
    let _s = serial();
    run(true);
    run(false);
}
