//! Users who already build a `tracing` subscriber add `observra::layer()` to
//! it, next to their own `fmt` layer; `install()` then only starts the
//! pipeline. Their spans, events and ours share one trace. (Its own test
//! binary: it sets the process-wide subscriber.)

use observra::traced;
use observra_test_support::{Receiver, SharedBuf, install_http, span};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[traced]
fn step() -> u8 {
    tracing::debug!("debug detail"); // below the user's level: filtered for every layer
    tracing::info!(answer = 42_i64, "computed");
    7
}

#[test]
fn observra_layer_composes_with_a_users_fmt_layer_and_level_filter() {
    let log = SharedBuf::default();
    let writer = log.clone();
    tracing_subscriber::registry()
        .with(tracing::level_filters::LevelFilter::INFO)
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || writer.clone()))
        .with(observra::layer())
        .init();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let outer = tracing::info_span!("handler", route = "/ask");
    outer.in_scope(step);
    drop(outer);
    drop(guard);

    let spans = rx.spans();
    let handler = span(&spans, "handler");
    let s = span(&spans, "step");
    assert_eq!(s.parent_span_id.as_deref(), Some(handler.span_id.as_str()));
    assert_eq!(s.events.len(), 1, "the debug event was filtered: {:?}", s.events);
    assert_eq!(s.events[0].name, "computed");

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("computed") && text.contains("answer=42"), "the user's fmt layer still logs: {text}");
    assert!(!text.contains("debug detail"));
}
