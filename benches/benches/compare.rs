//! The caller's cost of one GenAI model call's telemetry, observra against
//! the code it replaces, in one process and one run:
//!
//! - `a_plain`: the function, no telemetry (baseline);
//! - `b_traced`: `#[traced]`;
//! - `c_llm_call`: `#[llm_call]` with usage: span, both GenAI histograms
//!   (operation duration, and token usage twice: input and output) and cost;
//! - `d_raw_sdk`: the same by hand with the OpenTelemetry SDK: a CLIENT span
//!   with the same attributes and status, the same three histogram records;
//! - `e_tracing_opentelemetry`: `#[tracing::instrument]` through
//!   tracing-opentelemetry 0.34 (its default layer), plus the same records;
//! - `f_fastrace`: a fastrace root span with the same properties (fastrace
//!   has no metrics: the floor of what a span can cost);
//! - `g_fastrace_child`: a fastrace `LocalSpan` under a local parent, the
//!   fastest span fastrace has, against which `h_traced_child` (`#[traced]`
//!   under a `#[traced]` parent, observra's own subscriber) is measured;
//! - `i_agent_child`, `j_tool_call_child`: `#[agent]` and `#[tool_call]`
//!   under the same parent (their spans, totals cells and metrics);
//! - `k_traced_user_subscriber`: `#[traced]` with a subscriber the user
//!   built (`registry().with(observra::layer())`), against
//!   `l_tracing_opentelemetry_plain`: `#[tracing::instrument]` through
//!   tracing-opentelemetry's default layer, the same plain span.
//!
//! Every exporter discards (`Ok` and nothing else); batch processors stay on
//! as in production. Ratios: `bash benches/ratios.sh`.

#[path = "common/calls.rs"]
mod calls;
mod common;

use std::time::Instant;

use calls::{Discard, DiscardReporter, agent_fn, fastrace_child, llm_call, traced_fn};

use common::work;
use divan::{Bencher, black_box};
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;

/// A metric exporter that discards.
struct DiscardMetrics;

impl PushMetricExporter for DiscardMetrics {
    async fn export(&self, _: &ResourceMetrics) -> OTelSdkResult {
        Ok(())
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }
    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

#[inline(never)]
fn plain(x: u64) -> u64 {
    work(x)
}

#[observra::tool_call(name = "lookup")]
#[inline(never)]
fn tool_fn(x: u64) -> u64 {
    work(x)
}

#[tracing::instrument(name = "traced_fn", skip_all)]
#[inline(never)]
fn tracing_otel_plain(x: u64) -> u64 {
    work(x)
}

/// Runs `f` inside a `#[traced]` parent: its children are local children.
#[observra::traced]
#[inline(never)]
fn parent(f: impl FnOnce()) {
    f()
}

/// fastrace's local parent for `g_fastrace_child`, replaced every
/// [`FASTRACE_CHILDREN`] children: a local parent holds at most 10,240 and
/// then silently stops recording, which would flatter fastrace.
struct FastraceParent {
    // fastrace does not name its guard type.
    _guard: Box<dyn std::any::Any>,
    _root: fastrace::Span,
    children: u32,
}

const FASTRACE_CHILDREN: u32 = 5_000;

thread_local! {
    static FASTRACE_PARENT: std::cell::RefCell<Option<FastraceParent>> = const { std::cell::RefCell::new(None) };
}

/// Makes sure a fastrace local parent with room is set (outside the timed part).
fn fastrace_parent() -> u64 {
    FASTRACE_PARENT.with(|p| {
        let mut p = p.borrow_mut();
        if p.as_ref().is_none_or(|p| p.children >= FASTRACE_CHILDREN) {
            *p = None;
            let root = fastrace::Span::root("parent", fastrace::prelude::SpanContext::random());
            let guard = root.set_local_parent();
            *p = Some(FastraceParent { _guard: Box::new(guard), _root: root, children: 0 });
        }
        if let Some(p) = p.as_mut() {
            p.children += 1;
        }
    });
    idle()
}

/// What hand-written code keeps per process: the tracer and instruments.
struct Raw {
    tracer: opentelemetry_sdk::trace::SdkTracer,
    duration: Histogram<f64>,
    tokens: Histogram<u64>,
}

/// gpt-4o-mini, USD per million tokens.
const PRICE_IN: f64 = 0.15;
const PRICE_OUT: f64 = 0.60;

fn metric_attrs() -> [KeyValue; 3] {
    [
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", "openai"),
        KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
    ]
}

fn record_metrics(raw: &Raw, start: Instant, input: u64, output: u64) {
    let [a, b, c] = metric_attrs();
    raw.duration.record(start.elapsed().as_secs_f64(), &[a.clone(), b.clone(), c.clone()]);
    raw.tokens.record(input, &[a.clone(), b.clone(), c.clone(), KeyValue::new("gen_ai.token.type", "input")]);
    raw.tokens.record(output, &[a, b, c, KeyValue::new("gen_ai.token.type", "output")]);
}

#[inline(never)]
fn raw_sdk(raw: &Raw, x: u64) -> u64 {
    let start = Instant::now();
    let mut span = raw
        .tracer
        .span_builder("chat gpt-4o-mini")
        .with_kind(SpanKind::Client)
        .with_attributes(metric_attrs())
        .start(&raw.tracer);
    let out = work(x);
    let (input, output) = (1200u64, 150u64);
    span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", input as i64));
    span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", output as i64));
    let cost = (input as f64 * PRICE_IN + output as f64 * PRICE_OUT) / 1e6;
    span.set_attribute(KeyValue::new("observra.cost.usd", cost));
    span.set_status(Status::Unset);
    span.end();
    record_metrics(raw, start, input, output);
    out
}

#[tracing::instrument(
    name = "chat gpt-4o-mini",
    skip_all,
    fields(
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        observra.cost.usd = tracing::field::Empty,
    )
)]
#[inline(never)]
fn tracing_otel(raw: &Raw, x: u64) -> u64 {
    let start = Instant::now();
    let out = work(x);
    let (input, output) = (1200u64, 150u64);
    let span = tracing::Span::current();
    span.record("gen_ai.usage.input_tokens", input);
    span.record("gen_ai.usage.output_tokens", output);
    span.record("observra.cost.usd", (input as f64 * PRICE_IN + output as f64 * PRICE_OUT) / 1e6);
    record_metrics(raw, start, input, output);
    out
}

#[inline(never)]
fn fastrace_span(x: u64) -> u64 {
    let root =
        fastrace::Span::root("chat gpt-4o-mini", fastrace::prelude::SpanContext::random()).with_properties(|| {
            [
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.provider.name", "openai"),
                ("gen_ai.request.model", "gpt-4o-mini"),
            ]
        });
    let _g = root.set_local_parent();
    let out = work(x);
    root.add_properties(|| {
        [
            ("gen_ai.usage.input_tokens", "1200".to_string()),
            ("gen_ai.usage.output_tokens", "150".to_string()),
            ("observra.cost.usd", format!("{}", (1200.0 * PRICE_IN + 150.0 * PRICE_OUT) / 1e6)),
        ]
    });
    out
}

static RAW: std::sync::OnceLock<Raw> = std::sync::OnceLock::new();
static TRACING_OTEL: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
static USER_SUBSCRIBER: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();

fn main() {
    // observra: metrics aggregate in a pull reader nobody scrapes; spans go
    // to a discarding exporter through observra's batch processor.
    let builder = observra::init().service_name("bench").exporter("discard", Discard);
    // OBSERVRA_BENCH_NO_METRICS=1: no meter provider, to see what the metric records cost.
    let builder = if std::env::var_os("OBSERVRA_BENCH_NO_METRICS").is_some() {
        builder
    } else {
        builder.prometheus_addr("127.0.0.1:0".parse().expect("address"))
    };
    let guard = builder.install().expect("install observra");

    // The raw SDK and tracing-opentelemetry: their own providers.
    let tracer_provider = SdkTracerProvider::builder().with_batch_exporter(Discard).build();
    let meter_provider =
        SdkMeterProvider::builder().with_reader(PeriodicReader::builder(DiscardMetrics).build()).build();
    let meter = meter_provider.meter("bench");
    let raw = Raw {
        tracer: tracer_provider.tracer("bench"),
        duration: meter.f64_histogram("gen_ai.client.operation.duration").with_unit("s").build(),
        tokens: meter.u64_histogram("gen_ai.client.token.usage").with_unit("{token}").build(),
    };
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("tracing-otel"));
    let _ = TRACING_OTEL.set(tracing::Dispatch::new(tracing_subscriber::registry().with(otel_layer)));
    let _ = RAW.set(raw);
    let _ = USER_SUBSCRIBER.set(tracing::Dispatch::new(tracing_subscriber::registry().with(observra::layer())));

    fastrace::set_reporter(DiscardReporter, fastrace::collector::Config::default());

    divan::main();

    fastrace::flush();
    let _ = tracer_provider.shutdown();
    let _ = meter_provider.shutdown();
    // Shut down first: the figures then include what was still queued.
    let report = guard.shutdown();
    let health = observra::health();
    eprintln!("{}", report.map(|r| r.to_string()).unwrap_or_default());
    eprintln!(
        "observra pipeline: produced {}, exported {}, dropped {}; metric jobs dropped {}",
        health.spans_produced, health.spans_exported, health.spans_dropped, health.metric_jobs_dropped
    );
    let _ = Context::current().span().span_context().is_valid();
}

const SAMPLES: u32 = 300;
const SIZE: u32 = 100;

/// Before each sample, outside the timed part: waits while observra holds
/// more than `pending` closed spans (on the collector's queue and a
/// backend's queue together), with `idle` also until no export is in flight.
///
/// The other benches wait until observra is idle, so that none pays for
/// work an observra bench left behind (after the first sample there is
/// none, and they never wait again). observra's own benches wait only when
/// the queues are close to full: the loops call far faster than the
/// collector assembles spans on the other core, and a full queue would drop
/// calls, which are cheaper than queued ones and would flatter observra.
/// Every span passes through both queues, so their sum is what must leave
/// room for the next sample in the backend's queue (2,048). Between those
/// waits the collector and export threads work on the other core while the
/// caller is timed, as in production.
fn settle(pending: u64, idle: bool) -> u64 {
    loop {
        let h = observra::health();
        // Idle: nothing left to assemble; less than a batch left to export
        // (which the export thread's timer sends) and nothing being exported.
        let quiet = !idle || (h.metric_queue_depth == 0 && h.spans_exporting == 0);
        if h.metric_queue_depth + h.spans_queued <= pending && quiet {
            return black_box(42);
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// observra idle: for the benches that are not observra's.
fn idle() -> u64 {
    settle(511, true)
}

/// Queues with room for the next sample.
fn room() -> u64 {
    settle(1_536, false)
}

/// Baseline: the function without telemetry.
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn a_plain(b: Bencher) {
    b.with_inputs(idle).bench_local_values(plain);
}

/// `#[traced]`.
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn b_traced(b: Bencher) {
    b.with_inputs(room).bench_local_values(traced_fn);
}

/// `#[llm_call]` with usage, both GenAI histograms and cost.
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn c_llm_call(b: Bencher) {
    b.with_inputs(room).bench_local_values(|x| llm_call(x).map(|r| r.0).unwrap_or(0));
}

/// The same by hand with the raw OpenTelemetry SDK.
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn d_raw_sdk(b: Bencher) {
    let raw = RAW.get().expect("set up");
    b.with_inputs(idle).bench_local_values(|x| raw_sdk(raw, x));
}

/// `#[tracing::instrument]` + tracing-opentelemetry, plus the same records.
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn e_tracing_opentelemetry(b: Bencher) {
    let dispatch = TRACING_OTEL.get().expect("set up");
    let raw = RAW.get().expect("set up");
    tracing::dispatcher::with_default(dispatch, || {
        b.with_inputs(idle).bench_local_values(|x| tracing_otel(raw, x));
    });
}

/// A fastrace root span with the same properties (no metrics).
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn f_fastrace(b: Bencher) {
    b.with_inputs(idle).bench_local_values(fastrace_span);
}

/// A fastrace `LocalSpan` under a local parent (no metrics).
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn g_fastrace_child(b: Bencher) {
    b.with_inputs(fastrace_parent).bench_local_values(fastrace_child);
    FASTRACE_PARENT.with(|p| p.borrow_mut().take());
}

/// `#[traced]` under a `#[traced]` parent (observra's own subscriber).
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn h_traced_child(b: Bencher) {
    parent(|| b.with_inputs(room).bench_local_values(traced_fn));
}

/// `#[agent]` under a `#[traced]` parent.
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn i_agent_child(b: Bencher) {
    parent(|| b.with_inputs(room).bench_local_values(agent_fn));
}

/// `#[tool_call]` under a `#[traced]` parent.
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn j_tool_call_child(b: Bencher) {
    parent(|| b.with_inputs(room).bench_local_values(tool_fn));
}

/// `#[traced]` with a subscriber the user built: `registry().with(observra::layer())`.
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn k_traced_user_subscriber(b: Bencher) {
    let dispatch = USER_SUBSCRIBER.get().expect("set up");
    tracing::dispatcher::with_default(dispatch, || {
        b.with_inputs(room).bench_local_values(traced_fn);
    });
}

/// `#[tracing::instrument]` through tracing-opentelemetry: the same plain span.
#[divan::bench(sample_count = SAMPLES, sample_size = SIZE)]
fn l_tracing_opentelemetry_plain(b: Bencher) {
    let dispatch = TRACING_OTEL.get().expect("set up");
    tracing::dispatcher::with_default(dispatch, || {
        b.with_inputs(idle).bench_local_values(tracing_otel_plain);
    });
}
