//! Declared metrics (`observra::metrics!`), `#[traced(metrics)]` and the
//! agent metric set, decoded from OTLP: names, units, descriptions,
//! temporality, bucket boundaries and label sets.

use std::time::Duration;

use observra::{LlmResponse, Usage, agent, llm_call, tool_call, traced};
use observra_test_support::{Gate, Receiver, Val, otlp_env, serial};

observra::metrics! {
    /// Orders placed.
    pub counter ORDERS: "shop.orders", unit = "{order}", labels(channel, express);
    /// Basket value at checkout.
    histogram BASKET: "shop.basket.value", unit = "{USD}", buckets = [1, 10, 100.5], labels(channel);
    /// Sessions open now.
    updown SESSIONS: "shop.sessions.active", unit = "{session}";
    /// Items waiting in the queue.
    gauge QUEUE_DEPTH: "shop.queue.depth", unit = "{item}";
    /// Observed over and over.
    gauge BACKLOG: "shop.backlog", unit = "{item}";
}

#[derive(Clone, Copy)]
enum Channel {
    Web,
    Mobile,
}

impl observra::LabelValue for Channel {
    fn label_value(self) -> observra::opentelemetry::Value {
        match self {
            Channel::Web => "web",
            Channel::Mobile => "mobile",
        }
        .label_value()
    }
}

fn labels(v: &[(&str, &str)]) -> std::collections::BTreeMap<String, Val> {
    v.iter().map(|(k, v)| (k.to_string(), Val::Str(v.to_string()))).collect()
}

#[test]
fn declared_metrics_export_with_their_names_units_descriptions_buckets_and_labels() {
    let _s = serial();
    // Before install: a no-op, no panic, nothing registered anywhere.
    ORDERS.add(5, Channel::Web, true);
    let rx = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).install().unwrap();
    ORDERS.add(2, Channel::Web, true);
    ORDERS.add(1, Channel::Mobile, false);
    ORDERS.add(1, observra::Unbounded(String::from("partner-api")), false);
    BASKET.record(5.0, "web");
    BASKET.record(50.0, "web");
    SESSIONS.add(3);
    SESSIONS.add(-1);
    QUEUE_DEPTH.observe(|| 7.0);
    drop(guard);

    let orders = rx.wait_for_metric("shop.orders", Duration::from_secs(5)).expect("orders");
    assert_eq!((orders.kind, orders.unit.as_str(), orders.description.as_str()), ("sum", "{order}", "Orders placed."));
    assert_eq!(orders.temporality, 2, "cumulative by default");
    let total: f64 = orders.points.iter().map(|p| p.1).sum();
    assert_eq!(total, 4.0, "the record before install was a no-op");
    let web = orders.points.iter().find(|p| p.0 == labels(&[("channel", "web"), ("express", "true")])).unwrap();
    assert_eq!(web.1, 2.0);
    assert!(orders.points.iter().any(|p| p.0.get("channel") == Some(&Val::Str("partner-api".into()))));

    let basket = rx.wait_for_metric("shop.basket.value", Duration::from_secs(5)).expect("basket");
    assert_eq!((basket.kind, basket.unit.as_str()), ("histogram", "{USD}"));
    assert_eq!(basket.description, "Basket value at checkout.");
    let p = &basket.histogram_points[0];
    assert_eq!(p.bounds, vec![1.0, 10.0, 100.5]);
    assert_eq!(p.bucket_counts, vec![0, 1, 1, 0]);
    assert_eq!(p.attributes, labels(&[("channel", "web")]));

    let sessions = rx.wait_for_metric("shop.sessions.active", Duration::from_secs(5)).expect("sessions");
    assert_eq!(sessions.kind, "sum");
    assert_eq!(sessions.points[0].1, 2.0);
    let gauge = rx.wait_for_metric("shop.queue.depth", Duration::from_secs(5)).expect("gauge");
    assert_eq!((gauge.kind, gauge.points[0].1), ("gauge", 7.0));

    // A second installation registers everything again, the gauge included.
    let rx2 = Receiver::start();
    let mut e = otlp_env(&rx2, "http/protobuf");
    e.push(("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE".into(), "delta".into()));
    let guard = observra::init().env_from(e).install().unwrap();
    ORDERS.add(9, Channel::Web, false);
    drop(guard);
    let again = rx2.wait_for_metric("shop.orders", Duration::from_secs(5)).expect("orders again");
    assert_eq!(again.temporality, 1, "delta from the environment");
    assert_eq!(again.points.iter().map(|p| p.1).sum::<f64>(), 9.0);
    assert!(rx2.wait_for_metric("shop.queue.depth", Duration::from_secs(5)).is_some());
}

#[traced(metrics)]
fn checkout(fail: bool) -> Result<u8, std::io::Error> {
    if fail { Err(std::io::Error::other("declined")) } else { Ok(1) }
}

#[test]
fn traced_metrics_counts_calls_and_durations_by_function_module_and_result() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).install().unwrap();
    for fail in [false, false, true] {
        let _ = checkout(fail);
    }
    drop(guard);
    let calls = rx.wait_for_metric("observra.function.calls", Duration::from_secs(5)).expect("calls");
    let module = module_path!();
    let ok = labels(&[("code.function.name", &format!("{module}::checkout")), ("observra.result", "ok")]);
    let err = labels(&[("code.function.name", &format!("{module}::checkout")), ("observra.result", "error")]);
    assert_eq!(calls.points.iter().find(|p| p.0 == ok).map(|p| p.1), Some(2.0), "{calls:?}");
    assert_eq!(calls.points.iter().find(|p| p.0 == err).map(|p| p.1), Some(1.0));
    let d = rx.wait_for_metric("observra.function.duration", Duration::from_secs(5)).expect("duration");
    assert_eq!(d.unit, "s");
    assert_eq!(d.histogram_points.iter().map(|p| p.count).sum::<u64>(), 3);
    let spans = rx.spans();
    assert!(spans.iter().all(|s| s.attr("observra.metrics").is_none()), "the flag is not exported");
}

struct Reply;
impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(100, 20))
    }
}

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
fn think() -> Reply {
    Reply
}

#[tool_call(name = "search")]
fn search(fail: bool) -> Result<(), std::io::Error> {
    if fail { Err(std::io::Error::other("timeout")) } else { Ok(()) }
}

#[agent(name = "helper")]
fn helper(fail: bool) -> Result<(), std::io::Error> {
    let _ = think();
    let _ = search(false);
    let _ = search(fail);
    if fail { Err(std::io::Error::other("gave up")) } else { Ok(()) }
}

/// An agent that, while it runs, flushes and reports what the collector
/// exported for `observra.agent.requests.active`.
#[agent(name = "observer")]
fn observing(rx: &Receiver) -> Vec<(std::collections::BTreeMap<String, Val>, f64)> {
    let _ = observra::flush();
    rx.wait_for_metric("observra.agent.requests.active", Duration::from_secs(5)).map(|m| m.points).unwrap_or_default()
}

#[test]
fn an_agent_in_progress_counts_in_agent_requests_active() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx, "grpc")).install().unwrap();
    let during = observing(&rx);
    assert_eq!(during, vec![(labels(&[("gen_ai.agent.name", "observer")]), 1.0)], "one run in progress");
    drop(guard);
}

#[traced(fields(note))]
fn noted(note: &str) -> usize {
    note.len()
}

/// An agent whose own span closes while the callers' buffers are full:
/// the collector is held (a redaction matcher waits), its children fill
/// the buffers and roots on another thread take the roots' reserve before
/// the agent returns, so its closing frame is dropped.
#[agent(name = "crowded")]
fn crowded(gate: &Gate) {
    noted(Gate::HOLD);
    gate.wait_held();
    for _ in 0..10_000 {
        tracing::info_span!("burst").in_scope(|| {});
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..10_000 {
                tracing::info_span!("elsewhere").in_scope(|| {});
            }
        });
    });
}

/// Catches: an agent whose closing frame was dropped at a full queue left
/// `observra.agent.requests.active` one too high for ever (the +1 was
/// counted when it started; the -1 travelled with the dropped frame).
#[test]
fn an_agent_dropped_at_a_full_queue_is_not_active_for_ever() {
    let _s = serial();
    let rx = Receiver::start();
    let gate = Gate::new();
    let mut env = otlp_env(&rx, "http/protobuf");
    env.push(("OBSERVRA_SPAN_BUFFER_BYTES".into(), "65536".into()));
    let guard = observra::init().env_from(env).redact_with("gate", gate.matcher()).install().unwrap();
    let before = observra::health();
    crowded(&gate);
    let during = observra::health();
    gate.release();
    assert!(during.spans_dropped > before.spans_dropped, "the queue was full when the agent closed: {during:#?}");
    drop(guard);
    let active = rx.wait_for_metric("observra.agent.requests.active", Duration::from_secs(5)).expect("the gauge");
    assert_eq!(active.points, vec![(labels(&[("gen_ai.agent.name", "crowded")]), 0.0)], "back to zero");
}

#[test]
fn the_agent_metric_set_appears_with_no_code() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx, "grpc")).install().unwrap();
    let _ = helper(false);
    let _ = helper(true);
    drop(guard);
    let sum_of = |name: &str| -> Vec<(std::collections::BTreeMap<String, Val>, f64)> {
        rx.wait_for_metric(name, Duration::from_secs(5)).unwrap_or_else(|| panic!("{name}")).points
    };
    let agent = labels(&[("gen_ai.agent.name", "helper")]);
    assert_eq!(sum_of("observra.agent.requests"), vec![(agent.clone(), 2.0)]);
    assert_eq!(sum_of("observra.agent.errors"), vec![(agent.clone(), 1.0)]);
    assert_eq!(sum_of("observra.agent.requests.active"), vec![(agent.clone(), 0.0)], "back to zero after both runs");
    let model = labels(&[("gen_ai.agent.name", "helper"), ("gen_ai.request.model", "gpt-4o-mini")]);
    assert_eq!(sum_of("observra.agent.tokens"), vec![(model.clone(), 240.0)]);
    let cost = sum_of("observra.agent.cost");
    assert_eq!(cost[0].0, model);
    assert!((cost[0].1 - 2.0 * (100.0 * 0.15 + 20.0 * 0.60) / 1e6).abs() < 1e-12);
    let tool = labels(&[("gen_ai.agent.name", "helper"), ("gen_ai.tool.name", "search")]);
    assert_eq!(sum_of("observra.agent.tool.calls"), vec![(tool.clone(), 4.0)]);
    assert_eq!(sum_of("observra.agent.tool.errors"), vec![(tool, 1.0)]);
    let d = rx.wait_for_metric("observra.agent.request.duration", Duration::from_secs(5)).unwrap();
    assert_eq!((d.unit.as_str(), d.histogram_points[0].count), ("s", 2));
    assert_eq!(d.histogram_points[0].attributes, agent);
}

#[agent(name = "never-failed")]
fn never_failed() {}

/// An agent that has not failed yet reports 0 errors, not "no data", so an
/// error-rate panel reads 0 from its first run.
#[test]
fn a_new_agent_starts_with_zero_errors() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx, "grpc")).install().unwrap();
    never_failed();
    never_failed();
    drop(guard);
    let errors = rx.wait_for_metric("observra.agent.errors", Duration::from_secs(5)).expect("the error counter");
    assert_eq!(errors.points, vec![(labels(&[("gen_ai.agent.name", "never-failed")]), 0.0)]);
    let total = rx.wait_for_metric("observra.agent.requests", Duration::from_secs(5)).expect("the request counter");
    assert_eq!(total.points, vec![(labels(&[("gen_ai.agent.name", "never-failed")]), 2.0)]);
}

#[test]
fn the_pipeline_reports_its_own_figures_as_metrics() {
    let _s = serial();
    let rx = Receiver::start();
    let before = observra::health();
    let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).install().unwrap();
    for fail in [false, false, false, true] {
        let _ = checkout(fail);
    }
    drop(guard);
    let after = observra::health();
    let spans = rx.wait_for_metric("observra.pipeline.spans", Duration::from_secs(5)).expect("pipeline spans");
    assert_eq!((spans.kind, spans.unit.as_str()), ("sum", "{span}"));
    let exported = spans
        .points
        .iter()
        .find(|p| p.0 == labels(&[("observra.state", "exported"), ("observra.backend", "otlp")]))
        .expect("exported");
    // The metric counts this pipeline's backend; health() counts since the process started.
    assert_eq!(exported.1, (after.spans_exported - before.spans_exported) as f64, "the metric and health() agree");
    assert!(exported.1 >= 4.0);
    assert!(spans.points.iter().any(|p| p.0 == labels(&[("observra.state", "failed"), ("observra.backend", "otlp")])));
    // Dropped, by reason: per backend, and before any backend (no backend label).
    for (reason, backend) in [
        ("backend_queue", Some("otlp")),
        ("stopped", Some("otlp")),
        ("collector_queue", None),
        ("stopped", None),
        ("assembly_failed", None),
        ("redaction_failed", None),
    ] {
        let mut want = vec![("observra.state", "dropped"), ("observra.reason", reason)];
        want.extend(backend.map(|b| ("observra.backend", b)));
        assert!(spans.points.iter().any(|p| p.0 == labels(&want)), "dropped, {reason}, {backend:?}: {spans:#?}");
    }
    let queue = rx.wait_for_metric("observra.pipeline.queue.depth", Duration::from_secs(5)).expect("queue depth");
    assert_eq!((queue.kind, queue.points[0].1), ("gauge", 0.0), "nothing left queued after shutdown");
    assert_eq!(queue.points[0].0, labels(&[("observra.backend", "otlp")]));
    assert!(rx.wait_for_metric("observra.pipeline.export.errors", Duration::from_secs(5)).is_some());
}

/// Catches: each `observe()` registering another SDK gauge for the
/// pipeline's life (memory growing per call, the gauge reported many times).
#[test]
fn observing_a_gauge_ten_thousand_times_leaves_one_gauge_and_one_series() {
    let _s = serial();
    let rx = Receiver::start();
    use std::sync::atomic::{AtomicU64, Ordering};
    static READS: AtomicU64 = AtomicU64::new(0);
    let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).install().unwrap();
    for i in 0..10_000u32 {
        BACKLOG.observe(move || {
            READS.fetch_add(1, Ordering::Relaxed);
            f64::from(i)
        });
    }
    let before = READS.load(Ordering::Relaxed);
    observra::flush().expect("one collection");
    // The export merges same-named gauges, so the leak shows in the work:
    // every gauge ever registered is read at every collection.
    assert_eq!(READS.load(Ordering::Relaxed) - before, 1, "one gauge, read once per collection");
    drop(guard);
    let streams = rx.metric_streams("shop.backlog");
    assert_eq!(streams.len(), 2, "one gauge in each export (the flush and the shutdown): {streams:#?}");
    let last = streams.last().unwrap();
    assert_eq!(last.points.len(), 1, "one series: {last:#?}");
    assert_eq!(last.points[0].1, 9_999.0, "the function observed last");
}

/// Catches: no way to turn observra's own pipeline metrics off (in the
/// conformance run, 189 of 196 Weaver findings against the plain
/// conventions were observra's own names). With
/// `OBSERVRA_SELF_METRICS=false` no `observra.pipeline.*` metric is
/// exported; by default they are.
#[test]
fn the_pipeline_self_metrics_can_be_switched_off() {
    let _s = serial();
    for (setting, exported) in [("true", true), ("false", false)] {
        let rx = Receiver::start();
        let mut env = otlp_env(&rx, "http/protobuf");
        env.push(("OBSERVRA_SELF_METRICS".into(), setting.into()));
        let guard = observra::init().env_from(env).install().unwrap();
        noted("a span, so there is something to count");
        drop(guard);
        let names: Vec<String> = rx.metrics().iter().map(|m| m.name.clone()).collect();
        assert_eq!(
            names.iter().any(|n| n.starts_with("observra.pipeline.")),
            exported,
            "OBSERVRA_SELF_METRICS={setting}: {names:?}"
        );
    }
}
