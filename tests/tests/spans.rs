//! What `#[traced]` and the `tracing` layer export, decoded from OTLP/HTTP:
//! nesting (sync, async, spawned), kinds, typed attributes, argument
//! recording, errors, panics, cancellation, and user `tracing` spans/events.

use std::time::Duration;

use observra::{Instrument, traced};
use observra_test_support::{Receiver, Val, install_http, serial, span};

#[traced]
fn leaf(n: u32) -> u32 {
    n + 1
}

#[traced(name = "root-sync")]
fn root_sync() -> u32 {
    leaf(1) + leaf(2)
}

#[test]
fn sync_calls_nest_as_parent_and_children_in_one_trace() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    assert_eq!(root_sync(), 5);
    drop(guard);
    let spans = rx.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let root = span(&spans, "root-sync");
    assert_eq!(root.parent_span_id, None);
    let leaves: Vec<_> = spans.iter().filter(|s| s.name == "leaf").collect();
    assert_eq!(leaves.len(), 2);
    for l in leaves {
        assert_eq!(l.parent_span_id.as_deref(), Some(root.span_id.as_str()));
        assert_eq!(l.trace_id, root.trace_id);
        assert_eq!(l.kind, 1, "internal by default");
        assert!(l.start_unix_nano >= root.start_unix_nano && l.end_unix_nano <= root.end_unix_nano);
    }
    assert_eq!(root.scope, "observra");
    assert_eq!(root.resource.get("service.name"), Some(&Val::Str("observra-tests".into())));
}

#[traced]
async fn async_leaf(n: u32) -> u32 {
    tokio::task::yield_now().await;
    n * 2
}

#[traced]
async fn async_root() -> u32 {
    let a = async_leaf(1).await;
    let spawned = tokio::spawn(async_leaf(2).in_current_span());
    let b = spawned.await.unwrap_or(0);
    // A spawned future without the span starts its own trace.
    let c = tokio::spawn(async_leaf(3)).await.unwrap_or(0);
    a + b + c
}

fn check_async_tree(rx: &Receiver) {
    let spans = rx.spans();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let root = span(&spans, "async_root");
    let leaves: Vec<_> = spans.iter().filter(|s| s.name == "async_leaf").collect();
    let children = leaves.iter().filter(|l| l.parent_span_id.as_deref() == Some(root.span_id.as_str())).count();
    assert_eq!(children, 2, "the awaited and the in_current_span spawned leaf are children: {spans:#?}");
    let detached: Vec<_> = leaves.iter().filter(|l| l.parent_span_id.is_none()).collect();
    assert_eq!(detached.len(), 1);
    assert_ne!(detached[0].trace_id, root.trace_id);
}

#[test]
fn async_calls_nest_across_await_and_spawn_on_multi_thread_runtimes() {
    let _s = serial();
    for workers in [1, 2] {
        let rx = Receiver::start();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
        rt.block_on(async {
            let guard = install_http(&rx, &[]);
            assert_eq!(async_root().await, 12);
            // Flushing from a runtime worker must not deadlock.
            observra::flush().expect("flush inside the runtime");
            drop(guard);
        });
        drop(rt);
        check_async_tree(&rx);
    }
}

#[test]
fn async_calls_nest_on_a_current_thread_runtime_and_the_guard_drops_inside_it() {
    let _s = serial();
    let rx = Receiver::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let guard = install_http(&rx, &[]);
        assert_eq!(async_root().await, 12);
        drop(guard); // shutting down inside the runtime must not deadlock or panic
    });
    check_async_tree(&rx);
}

#[derive(Debug)]
struct Config {
    retries: u32,
}

#[traced(kind = client, attrs(
    component = "rag",
    gen_ai.request.top_k = 5,
    gen_ai.request.temperature = 0.5,
    cached = true,
    "custom key" = "v",
    error.type_hint = "none",
    models = models,
    model_count = models.len(),
    ratio = ratio,
    missing = none,
    huge = u64::MAX,
    ints = [1i64, 2, 3],
))]
fn typed(models: Vec<String>, ratio: f64, none: Option<&str>) -> usize {
    models.len()
}

#[test]
fn attributes_keep_their_types_and_arrays_stay_arrays() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    typed(vec!["gpt-4o".into(), "o3".into()], 0.25, None);
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "typed");
    assert_eq!(s.kind, 3, "client");
    assert_eq!(s.attr("component"), Some(&Val::Str("rag".into())));
    assert_eq!(s.attr("gen_ai.request.top_k"), Some(&Val::Int(5)));
    assert_eq!(s.attr("gen_ai.request.temperature"), Some(&Val::Double(0.5)));
    assert_eq!(s.attr("cached"), Some(&Val::Bool(true)));
    assert_eq!(s.attr("custom key"), Some(&Val::Str("v".into())));
    assert_eq!(s.attr("error.type_hint"), Some(&Val::Str("none".into())));
    assert_eq!(s.attr("models"), Some(&Val::Array(vec![Val::Str("gpt-4o".into()), Val::Str("o3".into())])));
    assert_eq!(s.attr("model_count"), Some(&Val::Int(2)));
    assert_eq!(s.attr("ratio"), Some(&Val::Double(0.25)));
    assert_eq!(s.attr("missing"), None, "None records nothing");
    assert_eq!(s.attr("huge"), Some(&Val::Str(u64::MAX.to_string())), "u64 beyond i64 keeps every digit");
    assert_eq!(s.attr("ints"), Some(&Val::Array(vec![Val::Int(1), Val::Int(2), Val::Int(3)])));
    assert!(s.attr("none").is_none() && s.attr("ratio").is_some());
}

#[traced]
fn secret_default(api_key: &str, user: &str) -> usize {
    api_key.len() + user.len()
}

#[traced(args, skip(api_key))]
fn with_args(api_key: &str, user: &str, cfg: &Config) -> usize {
    api_key.len() + user.len() + cfg.retries as usize
}

#[traced(fields(user))]
fn with_fields(api_key: &str, user: &str) -> usize {
    api_key.len() + user.len()
}

#[test]
fn arguments_are_recorded_only_when_asked_and_skips_are_honoured() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let cfg = Config { retries: 3 };
    secret_default("sk-secret", "bob");
    with_args("sk-secret", "bob", &cfg);
    with_fields("sk-secret", "bob");
    drop(guard);
    let spans = rx.spans();
    let d = span(&spans, "secret_default");
    assert!(d.attr("api_key").is_none() && d.attr("user").is_none(), "nothing recorded by default: {d:?}");
    let a = span(&spans, "with_args");
    assert_eq!(a.str_attr("user"), Some("\"bob\""));
    assert_eq!(a.str_attr("cfg"), Some("Config { retries: 3 }"));
    assert!(a.attr("api_key").is_none());
    let f = span(&spans, "with_fields");
    assert_eq!(f.str_attr("user"), Some("\"bob\""));
    assert!(f.attr("api_key").is_none());
    for s in &spans {
        assert!(!format!("{:?}", s.attributes).contains("sk-secret"), "secret leaked in {s:?}");
    }
}

#[derive(Debug)]
enum FetchError {
    Timeout,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("timed out after 30s")
    }
}

impl observra::ErrorType for FetchError {
    fn error_type(&self) -> std::borrow::Cow<'static, str> {
        match self {
            FetchError::Timeout => "timeout".into(),
        }
    }
}

#[traced]
fn fails_io() -> std::io::Result<u8> {
    Err(std::io::Error::other("disk on fire"))
}

#[traced]
fn fails_typed() -> Result<u8, FetchError> {
    Err(FetchError::Timeout)
}

#[derive(Debug)]
struct DebugOnly(#[allow(dead_code)] u8);

#[traced]
fn fails_debug_only() -> Result<(), DebugOnly> {
    Err(DebugOnly(7))
}

#[traced]
fn succeeds() -> Result<u8, FetchError> {
    Ok(1)
}

#[traced]
fn early_return_with_question_mark(fail: bool) -> Result<u8, FetchError> {
    if fail {
        fails_typed()?;
    }
    Ok(2)
}

#[test]
fn err_returns_set_status_error_type_and_an_exception_event() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let _ = fails_io();
    let _ = fails_typed();
    let _ = fails_debug_only();
    let _ = succeeds();
    let _ = early_return_with_question_mark(true);
    drop(guard);
    let spans = rx.spans();

    let io = span(&spans, "fails_io");
    assert_eq!(io.status_code, 2);
    assert_eq!(io.status_message, "disk on fire");
    assert_eq!(io.str_attr("error.type"), Some("std::io::error::Error"));
    assert_eq!(io.events.len(), 1);
    assert_eq!(io.events[0].name, "exception");
    assert_eq!(io.events[0].attributes.get("exception.type"), Some(&Val::Str("std::io::error::Error".into())));
    assert_eq!(io.events[0].attributes.get("exception.message"), Some(&Val::Str("disk on fire".into())));

    let typed = spans.iter().find(|s| s.name == "fails_typed" && s.parent_span_id.is_none()).unwrap();
    assert_eq!(typed.str_attr("error.type"), Some("timeout"), "ErrorType overrides the type name");
    assert_eq!(typed.status_message, "timed out after 30s");

    let dbg = span(&spans, "fails_debug_only");
    assert_eq!(dbg.status_code, 2);
    assert_eq!(dbg.status_message, "DebugOnly(7)", "Debug is used when there is no Display");

    let ok = span(&spans, "succeeds");
    assert_eq!(ok.status_code, 0);
    assert!(ok.attr("error.type").is_none() && ok.events.is_empty());

    let early = span(&spans, "early_return_with_question_mark");
    assert_eq!(early.status_code, 2, "an Err leaving through `?` is recorded too");
    assert_eq!(early.str_attr("error.type"), Some("timeout"));
    let inner = spans.iter().find(|s| s.name == "fails_typed" && s.parent_span_id.is_some()).unwrap();
    assert_eq!(inner.parent_span_id.as_deref(), Some(early.span_id.as_str()));
}

#[traced]
fn panics(msg: &str) -> u8 {
    panic!("{msg}")
}

#[traced]
async fn panics_async() -> u8 {
    tokio::task::yield_now().await;
    panic!("async boom")
}

#[traced]
async fn never_finishes() -> u8 {
    std::future::pending::<()>().await;
    0
}

#[test]
fn panics_end_the_span_with_error_type_panic_and_keep_unwinding() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caught = std::panic::catch_unwind(|| panics("boom"));
    assert!(caught.is_err(), "the panic keeps unwinding to the caller");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let joined = rt.block_on(async { tokio::spawn(panics_async()).await });
    std::panic::set_hook(hook);
    assert!(joined.is_err());
    drop(rt);
    drop(guard);
    let spans = rx.spans();
    for name in ["panics", "panics_async"] {
        let s = span(&spans, name);
        assert_eq!(s.status_code, 2, "{name}");
        assert_eq!(s.str_attr("error.type"), Some("panic"), "{name}");
    }
}

#[test]
fn a_future_dropped_before_completion_ends_its_span_as_cancelled() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let out = rt.block_on(async { tokio::time::timeout(Duration::from_millis(20), never_finishes()).await });
    assert!(out.is_err(), "timed out");
    drop(rt);
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "never_finishes");
    assert_eq!(s.status_code, 2);
    assert_eq!(s.str_attr("error.type"), Some("cancelled"));
}

#[traced(kind = server)]
fn server_side() {}
#[traced(kind = producer)]
fn producer_side() {}
#[traced(kind = "consumer")]
fn consumer_side() {}
#[traced(kind = internal)]
fn internal_side() {}

#[test]
fn span_kinds_reach_the_wire() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    server_side();
    producer_side();
    consumer_side();
    internal_side();
    drop(guard);
    let spans = rx.spans();
    assert_eq!(span(&spans, "server_side").kind, 2);
    assert_eq!(span(&spans, "producer_side").kind, 4);
    assert_eq!(span(&spans, "consumer_side").kind, 5);
    assert_eq!(span(&spans, "internal_side").kind, 1);
}

#[traced]
fn instrumented_with_events(user: &str) -> usize {
    tracing::info!(user, attempt = 2_i64, "looking up the order");
    let inner = tracing::info_span!("user_step", step = "rank");
    inner.in_scope(|| {
        tracing::warn!(score = 0.5, "low score");
        leaf(1)
    });
    user.len()
}

#[test]
fn user_tracing_spans_and_events_nest_with_observra_spans() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let outer = tracing::info_span!("user_request", otel.name = "GET /orders", otel.kind = "server", route = "/orders");
    outer.in_scope(|| instrumented_with_events("bob"));
    drop(outer);
    drop(guard);
    let spans = rx.spans();
    let req = span(&spans, "GET /orders");
    assert_eq!(req.kind, 2, "otel.kind on a user span");
    assert_eq!(req.str_attr("route"), Some("/orders"));
    let f = span(&spans, "instrumented_with_events");
    assert_eq!(f.parent_span_id.as_deref(), Some(req.span_id.as_str()));
    let step = span(&spans, "user_step");
    assert_eq!(step.parent_span_id.as_deref(), Some(f.span_id.as_str()));
    let l = span(&spans, "leaf");
    assert_eq!(l.parent_span_id.as_deref(), Some(step.span_id.as_str()));
    assert!(spans.iter().all(|s| s.trace_id == req.trace_id));

    assert_eq!(f.events.len(), 1);
    let e = &f.events[0];
    assert_eq!(e.name, "looking up the order");
    assert_eq!(e.attributes.get("user"), Some(&Val::Str("bob".into())));
    assert_eq!(e.attributes.get("attempt"), Some(&Val::Int(2)));
    assert_eq!(e.attributes.get("level"), Some(&Val::Str("INFO".into())));
    let w = &step.events[0];
    assert_eq!(w.name, "low score");
    assert_eq!(w.attributes.get("score"), Some(&Val::Double(0.5)));
    assert_eq!(w.attributes.get("level"), Some(&Val::Str("WARN".into())));
}

#[test]
fn a_span_name_computed_at_run_time_reaches_the_exporter() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let model = String::from("gpt-4o-mini");
    let s = tracing::info_span!("llm", otel.name = tracing::field::Empty);
    s.record("otel.name", format!("chat {model}").as_str());
    drop(s);
    drop(guard);
    let spans = rx.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "chat gpt-4o-mini");
}

struct Agent {
    calls: u32,
}

impl Agent {
    #[traced]
    fn by_ref(&self) -> u32 {
        self.calls
    }
    #[traced]
    fn by_mut(&mut self) -> &mut u32 {
        self.calls += 1;
        &mut self.calls
    }
    #[traced]
    fn by_value(self) -> u32 {
        self.calls
    }
    #[traced]
    async fn by_ref_async(&self) -> u32 {
        self.calls
    }
}

#[traced]
fn generic<T: std::fmt::Display + Clone>(x: &T) -> impl std::fmt::Display + use<T> {
    x.clone()
}

#[traced]
fn maybe(n: u8) -> Option<u8> {
    n.checked_sub(1)
}

#[test]
fn methods_generics_impl_trait_and_option_returns_are_traced() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let mut a = Agent { calls: 0 };
    assert_eq!(a.by_ref(), 0);
    *a.by_mut() += 10;
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(rt.block_on(a.by_ref_async()), 11);
    assert_eq!(a.by_value(), 11);
    assert_eq!(generic(&"x").to_string(), "x");
    assert_eq!(maybe(0), None);
    drop(guard);
    let spans = rx.spans();
    for name in ["by_ref", "by_mut", "by_ref_async", "by_value", "generic", "maybe"] {
        let s = span(&spans, name);
        assert_eq!(s.status_code, 0, "{name}: None and Ok values are not errors");
    }
}

#[test]
fn without_install_instrumented_functions_still_work_and_export_nothing() {
    let _s = serial();
    let before = observra::health();
    assert!(!before.installed);
    assert_eq!(root_sync(), 5);
    assert!(fails_io().is_err());
    // No pipeline: nothing was recorded, queued or counted.
    assert_eq!(observra::health(), before);
}
