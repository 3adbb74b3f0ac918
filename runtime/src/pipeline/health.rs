//! The pipeline's own figures: [`health`] reads them as one snapshot, and
//! the same figures are exported as `observra.pipeline.*` metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::current;
use crate::base::loss::{self, Loss};
use crate::base::state;
use observra_semconv::metrics as m;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{AsyncInstrument, Meter, ObservableCounter, ObservableGauge};

use crate::export::batch::{BackendFigures, BackendStats};

/// A snapshot of the pipeline's own figures; see [`health`].
///
/// Span totals count from process start, across re-installations, and stay
/// readable after shutdown; they are summed over backends (with two
/// backends, each span is produced twice: once per backend; a span lost
/// before reaching the backends counts once). On every read,
/// `spans_produced == spans_queued + spans_exporting + spans_exported +
/// spans_failed + spans_dropped`, for the totals and for each backend, and
/// `spans_dropped` is the sum of its five reasons (the `spans_dropped_*`,
/// `spans_assembly_failed` and `spans_redaction_failed` figures), however
/// fast spans move while it is read.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Health {
    /// Whether a pipeline is installed.
    pub installed: bool,
    /// Spans handed to a backend's queue (or dropped on the way).
    pub spans_produced: u64,
    /// Spans waiting in a queue.
    pub spans_queued: u64,
    /// Spans in a batch an exporter is working on now.
    pub spans_exporting: u64,
    /// Spans dropped because a queue was full or the pipeline had stopped,
    /// or because assembling or redacting them failed: the sum of the five
    /// figures below.
    pub spans_dropped: u64,
    /// Of `spans_dropped`: closed spans the collector's queue had no room
    /// for (`observra.pipeline.spans{observra.state=dropped,
    /// observra.reason=collector_queue}`).
    pub spans_dropped_collector_queue: u64,
    /// Of `spans_dropped`: spans a backend's queue had no room for, summed
    /// over backends (`observra.reason=backend_queue`, per backend).
    pub spans_dropped_backend_queue: u64,
    /// Of `spans_dropped`: spans that ended after their pipeline stopped,
    /// or that a backend still held when it stopped (`observra.reason=stopped`).
    pub spans_dropped_stopped: u64,
    /// Of `spans_dropped`: spans whose assembly on the collector thread
    /// panicked (`observra.reason=assembly_failed`).
    pub spans_assembly_failed: u64,
    /// Of `spans_dropped`: spans whose redaction failed (a redaction rule
    /// panicked), dropped rather than exported unredacted
    /// (`observra.reason=redaction_failed`).
    pub spans_redaction_failed: u64,
    /// Spans an exporter delivered.
    pub spans_exported: u64,
    /// Spans in batches an exporter failed to deliver (after its retries).
    pub spans_failed: u64,
    /// Export calls that succeeded.
    pub export_successes: u64,
    /// Export calls that failed.
    pub export_errors: u64,
    /// Log records the `otel_log` backend delivered.
    pub logs_exported: u64,
    /// Metric data points the OTLP metric exporter delivered.
    pub metric_points_exported: u64,
    /// Metric data points in metric exports that failed.
    pub metric_points_failed: u64,
    /// Closed spans whose metrics were lost because the collector thread's
    /// queue was full or had stopped, or their assembly panicked (the spans
    /// are counted in `spans_dropped`); by reason in
    /// `observra.pipeline.metric_jobs.dropped`.
    pub metric_jobs_dropped: u64,
    /// Closed spans waiting for the collector thread to make them
    /// `SpanData` and metrics: in the callers' buffers (swept every 20 ms)
    /// or taken and not yet handled. A span closed a moment ago is here,
    /// not yet in `spans_produced`, which counts what reached a backend.
    pub metric_queue_depth: u64,
    /// Median export-call time over the recent calls of the installed backends.
    pub export_latency_p50: Option<Duration>,
    /// 99th-percentile export-call time over the same window.
    pub export_latency_p99: Option<Duration>,
    /// The most recent export error of an installed backend.
    pub last_error: Option<String>,
    /// Spans the tail sampler ([`crate::Sampler::keep_interesting`]) dropped
    /// (its traces were not kept, or they came too late or too many), since
    /// the process started. Not part of `spans_dropped`.
    pub spans_sampled_out: u64,
    /// Of `spans_dropped_collector_queue`: spans the tail sampler could not
    /// be told about (more than 4,096 dropped in one thread's buffer
    /// between two of the collector's sweeps), so a failure among them
    /// could not keep its trace (`observra.pipeline.sampler.untold`). The
    /// others' failures and budget crossings still reach its decision.
    pub spans_untold: u64,
    /// Spans the tail sampler holds until their trace is decided.
    pub spans_held: u64,
    /// What the held spans take, in bytes as they would be exported (the
    /// tail sampler holds at most `keep_interesting().max_bytes`).
    pub spans_held_bytes: u64,
    /// Evaluations ([`crate::evaluate`]) waiting in the collector for the
    /// call they grade (at most 16,384, and 16 MiB of them).
    pub evaluations_pending: u64,
    /// Evaluations lost before they landed, since the process started: the
    /// collector's queue was full, or too many were waiting for their call
    /// (`observra.pipeline.evaluations.dropped` by reason).
    pub evaluations_dropped: u64,
    /// The installed pipeline's backends, in configuration order.
    pub backends: Vec<BackendHealth>,
}

/// One installed backend's figures, part of [`Health`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct BackendHealth {
    /// The backend's name (`otlp`, `otel_log`, `jsonl`, `stdout`, `webhook`, and
    /// `otlp_events`: the details events as log records, beside `otlp`).
    pub backend: &'static str,
    /// Spans handed to this backend since it started.
    pub produced: u64,
    /// Spans waiting in its queue.
    pub queued: u64,
    /// Spans in the batch being exported.
    pub exporting: u64,
    /// Spans delivered.
    pub exported: u64,
    /// Spans in failed batches.
    pub failed: u64,
    /// Spans dropped: its queue was full, or it still held them when it stopped.
    pub dropped: u64,
    /// Export calls that succeeded.
    pub successes: u64,
    /// Export calls that failed.
    pub failures: u64,
    /// Median export-call time over the last 256 calls.
    pub latency_p50: Option<Duration>,
    /// 99th percentile of the same.
    pub latency_p99: Option<Duration>,
    /// The most recent export error.
    pub last_error: Option<String>,
}

/// Reads the pipeline's figures: spans produced, queued, being exported,
/// exported, failed and dropped (by reason); export calls, latency and last
/// error, per backend and in total. The accounting identity holds on every
/// read (see [`Health`]); each backend's figures are the very ones summed
/// into the totals.
pub fn health() -> Health {
    use crate::export::batch::percentile;
    let (t, backends) = crate::export::batch::totals();
    let pipeline = current();
    let mut all_latencies = Vec::new();
    let mut last_error = None;
    let backends = pipeline
        .as_ref()
        .map(|p| {
            p.processors
                .iter()
                .map(|proc| {
                    let l = &proc.stats;
                    let t = backends
                        .iter()
                        .find(|(s, _)| Arc::ptr_eq(s, l))
                        .map_or_else(|| crate::export::batch::BackendFigures::of(l), |(_, f)| *f);
                    let mut lat = l.latencies();
                    all_latencies.extend_from_slice(&lat);
                    let err = l.last_error();
                    if err.is_some() {
                        last_error.clone_from(&err);
                    }
                    BackendHealth {
                        backend: l.name,
                        produced: t.produced,
                        queued: t.queued,
                        exporting: t.in_flight,
                        exported: t.exported,
                        failed: t.failed,
                        dropped: t.dropped(),
                        successes: t.export_ok,
                        failures: t.export_err,
                        latency_p50: percentile(&mut lat, 0.5),
                        latency_p99: percentile(&mut lat, 0.99),
                        last_error: err,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Health {
        installed: pipeline.is_some(),
        spans_produced: t.produced,
        spans_queued: t.queued,
        spans_exporting: t.in_flight,
        spans_dropped: t.dropped(),
        spans_dropped_collector_queue: t.lost[Loss::CollectorQueue as usize],
        spans_dropped_backend_queue: t.lost[Loss::BackendQueue as usize],
        spans_dropped_stopped: t.lost[Loss::Stopped as usize],
        spans_assembly_failed: t.lost[Loss::AssemblyFailed as usize],
        spans_redaction_failed: t.lost[Loss::RedactionFailed as usize],
        spans_exported: t.exported,
        spans_failed: t.failed,
        export_successes: t.export_ok,
        export_errors: t.export_err,
        logs_exported: t.log_records,
        metric_points_exported: crate::diag::METRIC_POINTS_EXPORTED.load(Ordering::Relaxed),
        metric_points_failed: crate::diag::METRIC_POINTS_FAILED.load(Ordering::Relaxed),
        metric_jobs_dropped: loss::read(&loss::METRIC_JOBS_LOST).iter().sum(),
        metric_queue_depth: state::installed().map_or(0, |i| i.queue.depth()),
        export_latency_p50: percentile(&mut all_latencies.clone(), 0.5),
        export_latency_p99: percentile(&mut all_latencies, 0.99),
        last_error,
        spans_sampled_out: crate::collect::tail::DROPPED.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
        spans_untold: crate::base::queue::LOST_UNTOLD.load(Ordering::Relaxed),
        spans_held: crate::collect::tail::HELD.load(Ordering::Relaxed),
        spans_held_bytes: crate::collect::tail::HELD_BYTES.load(Ordering::Relaxed),
        evaluations_pending: crate::base::graded::PENDING.load(Ordering::Relaxed),
        evaluations_dropped: crate::base::graded::LOST.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
        backends,
    }
}

/// `observra.pipeline.*`: the figures of [`health`] as metrics, read at
/// each collection, per backend.
pub(super) struct SelfMetrics {
    _spans: ObservableCounter<u64>,
    _queue: ObservableGauge<u64>,
    _errors: ObservableCounter<u64>,
    _exports: ObservableCounter<u64>,
    _points: ObservableCounter<u64>,
    _records: ObservableCounter<u64>,
    _sampler_dropped: ObservableCounter<u64>,
    _sampler_held: ObservableGauge<u64>,
    _sampler_untold: ObservableCounter<u64>,
    _evaluations_dropped: ObservableCounter<u64>,
    _metric_jobs_dropped: ObservableCounter<u64>,
}

impl SelfMetrics {
    /// Registers every `observra.pipeline.*` instrument on `meter`; each
    /// reads its figures when the meter collects.
    pub(super) fn register(meter: &Meter, stats: Vec<Arc<BackendStats>>) -> Self {
        let stats: Arc<[Arc<BackendStats>]> = stats.into();
        if let Ok(mut h) = crate::export::batch::EXPORT_DURATION.write() {
            *h = Some(
                meter
                    .f64_histogram(m::PIPELINE_EXPORT_DURATION)
                    .with_unit("s")
                    .with_description("Time of each export call, by backend and result.")
                    .with_boundaries(m::DURATION_BUCKETS.to_vec())
                    .build(),
            );
        }
        SelfMetrics {
            _spans: spans(meter, stats.clone()),
            _queue: gauge(meter, m::PIPELINE_QUEUE, "{span}", "Spans queued or being exported, per backend.", {
                let stats = stats.clone();
                move |o| {
                    for l in stats.iter() {
                        let f = BackendFigures::of(l);
                        o.observe(f.queued + f.in_flight, &[backend(l)])
                    }
                }
            }),
            _errors: counter(meter, m::PIPELINE_EXPORT_ERRORS, "{call}", "Export calls that failed, per backend.", {
                let stats = stats.clone();
                move |o| stats.iter().for_each(|l| o.observe(l.export_err.load(Ordering::Relaxed), &[backend(l)]))
            }),
            _exports: counter(meter, m::PIPELINE_EXPORTS, "{call}", "Export calls, per backend and result.", {
                let stats = stats.clone();
                move |o| {
                    for l in stats.iter() {
                        for (result, c) in [("success", &l.export_ok), ("failure", &l.export_err)] {
                            let result = KeyValue::new(m::PIPELINE_RESULT, result);
                            o.observe(c.load(Ordering::Relaxed), &[backend(l), result])
                        }
                    }
                }
            }),
            _records: counter(
                meter,
                m::PIPELINE_LOG_RECORDS,
                "{record}",
                "Log records the otel_log backend delivered.",
                {
                    move |o| {
                        for l in stats.iter().filter(|l| l.delivers_logs) {
                            o.observe(l.log_records.load(Ordering::Relaxed), &[backend(l)])
                        }
                    }
                },
            ),
            _points: metric_points(meter),
            _sampler_dropped: sampler_dropped(meter),
            _sampler_untold: counter(
                meter,
                m::PIPELINE_SAMPLER_UNTOLD,
                "{span}",
                "Spans dropped on the callers' threads that the tail sampler could not be told about: a \
                 failure among them cannot keep its trace.",
                |o| o.observe(crate::base::queue::LOST_UNTOLD.load(Ordering::Relaxed), &[]),
            ),
            _sampler_held: gauge(
                meter,
                m::PIPELINE_SAMPLER_HELD,
                "{span}",
                "Spans the tail sampler holds until their trace is decided.",
                |o| o.observe(crate::collect::tail::HELD.load(Ordering::Relaxed), &[]),
            ),
            _evaluations_dropped: evaluations_dropped(meter),
            _metric_jobs_dropped: metric_jobs_dropped(meter),
        }
    }
}

type Observer<'a> = &'a dyn AsyncInstrument<u64>;

/// An observable counter read by `read` at each collection.
fn counter(
    meter: &Meter,
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    read: impl Fn(Observer) + Send + Sync + 'static,
) -> ObservableCounter<u64> {
    meter.u64_observable_counter(name).with_unit(unit).with_description(description).with_callback(read).build()
}

/// An observable gauge read by `read` at each collection.
fn gauge(
    meter: &Meter,
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    read: impl Fn(Observer) + Send + Sync + 'static,
) -> ObservableGauge<u64> {
    meter.u64_observable_gauge(name).with_unit(unit).with_description(description).with_callback(read).build()
}

fn backend(l: &BackendStats) -> KeyValue {
    KeyValue::new(m::PIPELINE_BACKEND, l.name)
}

fn in_state(s: &'static str) -> KeyValue {
    KeyValue::new(m::PIPELINE_STATE, s)
}

fn reason(r: Loss) -> KeyValue {
    KeyValue::new(m::PIPELINE_REASON, r.name())
}

/// `observra.pipeline.spans`: exported, failed and dropped (by reason), per
/// backend, and dropped before any backend.
fn spans(meter: &Meter, stats: Arc<[Arc<BackendStats>]>) -> ObservableCounter<u64> {
    counter(
        meter,
        m::PIPELINE_SPANS,
        "{span}",
        "Spans each backend exported or failed to export, and spans dropped, by observra.reason: per backend at its \
         queue (backend_queue) or when it stopped (stopped); before any backend (no observra.backend) at the \
         collector's queue (collector_queue), after the pipeline stopped (stopped), or when assembling \
         (assembly_failed) or redacting (redaction_failed) them failed.",
        move |o| {
            for l in stats.iter() {
                let f = BackendFigures::of(l);
                o.observe(f.exported, &[in_state("exported"), backend(l)]);
                o.observe(f.failed, &[in_state("failed"), backend(l)]);
                for r in [Loss::BackendQueue, Loss::Stopped] {
                    o.observe(f.lost[r as usize], &[in_state("dropped"), reason(r), backend(l)]);
                }
            }
            // Lost before the backends: counted once, since the process started.
            let lost = loss::read(&loss::SPANS_LOST);
            for r in Loss::BEFORE_BACKENDS {
                o.observe(lost[r as usize], &[in_state("dropped"), reason(r)]);
            }
        },
    )
}

/// `observra.pipeline.metric_points`: delivered and failed by the OTLP metric exporter.
fn metric_points(meter: &Meter) -> ObservableCounter<u64> {
    counter(
        meter,
        m::PIPELINE_METRIC_POINTS,
        "{point}",
        "Metric data points the OTLP metric exporter delivered or failed to.",
        |o| {
            for (state, c) in
                [("exported", &crate::diag::METRIC_POINTS_EXPORTED), ("failed", &crate::diag::METRIC_POINTS_FAILED)]
            {
                o.observe(c.load(Ordering::Relaxed), &[in_state(state)])
            }
        },
    )
}

/// `observra.pipeline.sampler.dropped`, by reason.
fn sampler_dropped(meter: &Meter) -> ObservableCounter<u64> {
    counter(
        meter,
        m::PIPELINE_SAMPLER_DROPPED,
        "{span}",
        "Spans the tail sampler dropped, by reason (not spans dropped by a full queue: those are \
         observra.pipeline.spans with observra.state=dropped).",
        |o| {
            for (r, name) in crate::collect::tail::Dropped::ALL {
                let n = crate::collect::tail::DROPPED[r as usize].load(Ordering::Relaxed);
                o.observe(n, &[KeyValue::new(m::PIPELINE_REASON, name)])
            }
        },
    )
}

/// `observra.pipeline.evaluations.dropped`, by reason.
fn evaluations_dropped(meter: &Meter) -> ObservableCounter<u64> {
    counter(
        meter,
        m::PIPELINE_EVALUATIONS_DROPPED,
        "{evaluation}",
        "Evaluations (observra::evaluate) lost before they landed, by reason.",
        |o| {
            use crate::base::graded::{LOST, Lost};
            for (r, name) in Lost::ALL {
                o.observe(LOST[r as usize].load(Ordering::Relaxed), &[KeyValue::new(m::PIPELINE_REASON, name)])
            }
        },
    )
}

/// `observra.pipeline.metric_jobs.dropped`, by reason.
fn metric_jobs_dropped(meter: &Meter) -> ObservableCounter<u64> {
    counter(
        meter,
        m::PIPELINE_METRIC_JOBS_DROPPED,
        "{span}",
        "Closed spans whose metrics were lost, by observra.reason: the collector's queue was full \
         (collector_queue), the collector had stopped (stopped), or assembling them failed (assembly_failed).",
        |o| {
            let lost = loss::read(&loss::METRIC_JOBS_LOST);
            for r in Loss::METRIC_JOBS {
                o.observe(lost[r as usize], &[reason(r)]);
            }
        },
    )
}
