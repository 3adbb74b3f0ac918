//! The installed pipeline: exporters, batch processors, meter provider and
//! the guard that shuts them down.
//!
//! One pipeline is active at a time. [`install`] builds it from resolved
//! [`Settings`] and registers the `tracing` subscriber; dropping the
//! [`Guard`] (or calling [`shutdown`]) flushes and stops it within the
//! configured deadline, after which a new one may be installed.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::RandomIdGenerator;
use tracing_subscriber::layer::SubscriberExt;

use crate::base::loss::{self, Loss};
use crate::base::queue::FrameQueue;
use crate::base::state::{self, Installed};
#[cfg(feature = "grpc")]
use crate::config::Protocol;
use crate::config::{Sampler, Settings, Sink};
use crate::error::{Error, Result, Setting};
use crate::export::batch::{BatchProcessor, BlockOn, FanOut};
use crate::export::jsonl::JsonlExporter;
use crate::record::layer::OwnSubscriber;
use observra_semconv as sc;

/// Keeps the pipeline running; dropping it flushes and shuts down within the
/// configured deadline ([`crate::Builder::shutdown_timeout`], 5 s by default).
#[must_use = "dropping the guard shuts telemetry down at once; bind it: `let _telemetry = ...`"]
#[derive(Debug)]
pub struct Guard {
    pub(crate) active: bool,
}

impl Guard {
    /// Whether this guard owns a running pipeline (false when telemetry is
    /// disabled by `OTEL_SDK_DISABLED` or [`crate::Builder::disabled`]).
    pub fn is_active(&self) -> bool {
        self.active
    }
}

/// The running pipeline: what [`crate::base::state`] tells the other layers
/// about (the installed state), plus what only the composition root uses.
pub(crate) struct Pipeline {
    installed: Arc<Installed>,
    /// One per backend; a span goes to each.
    processors: Arc<FanOut>,
    meter_provider: Option<SdkMeterProvider>,
    /// The OTLP metric exporter's losses, told at shutdown.
    metrics_diag: Option<Arc<crate::diag::MetricsDiag>>,
    prometheus: std::sync::Mutex<Option<PromEndpoint>>,
    /// The pipeline's own figures as metrics; kept alive with the pipeline.
    _self_metrics: Option<SelfMetrics>,
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    runtime: std::sync::Mutex<Option<GrpcRuntime>>,
    shutdown_timeout: Duration,
    /// When the OTLP clients' retries must end: set when shutdown starts.
    #[cfg(feature = "otlp")]
    retries_end: crate::export::retry::RetryEnd,
}

/// The runtime gRPC exports run on (feature `grpc`).
#[cfg(feature = "grpc")]
type GrpcRuntime = tokio::runtime::Runtime;
/// No gRPC in this build: never constructed.
#[cfg(not(feature = "grpc"))]
enum GrpcRuntime {}

/// The Prometheus endpoint (feature `prometheus`).
#[cfg(feature = "prometheus")]
type PromEndpoint = crate::export::prometheus::Endpoint;
/// No Prometheus endpoint in this build: never constructed.
#[cfg(not(feature = "prometheus"))]
enum PromEndpoint {}

#[cfg(not(feature = "prometheus"))]
impl PromEndpoint {
    fn addr(&self) -> std::net::SocketAddr {
        match *self {}
    }
}

impl crate::config::Builder {
    /// Validates the configuration and starts the pipeline.
    ///
    /// Returns a guard that flushes and shuts down on drop, within the
    /// shutdown deadline.
    pub fn install(self) -> Result<Guard> {
        let settings = self.resolve()?;
        install(settings)
    }
}

static CURRENT: RwLock<Option<Arc<Pipeline>>> = RwLock::new(None);

/// The active pipeline, if any.
fn current() -> Option<Arc<Pipeline>> {
    // A lock that ignores poisoning: a panic elsewhere while it was held
    // must never turn telemetry off for the rest of the process.
    CURRENT.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

fn sdk_sampler(s: Sampler) -> opentelemetry_sdk::trace::Sampler {
    use opentelemetry_sdk::trace::Sampler as S;
    match s {
        Sampler::AlwaysOn => S::AlwaysOn,
        Sampler::AlwaysOff => S::AlwaysOff,
        Sampler::TraceIdRatio(r) => S::TraceIdRatioBased(r),
        Sampler::ParentBasedAlwaysOn => S::ParentBased(Box::new(S::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => S::ParentBased(Box::new(S::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(r) => S::ParentBased(Box::new(S::TraceIdRatioBased(r))),
        // Tail sampling records everything, remote parents' decisions
        // included: the collector decides which traces leave.
        Sampler::KeepInteresting(_) => S::AlwaysOn,
    }
}

/// Every configured value that no diagnostic may show: OTLP header values,
/// the webhook's secret and header values.
fn secrets_of(settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(o) = &settings.otlp {
        for s in [&o.traces, &o.metrics, &o.logs] {
            out.extend(s.headers.iter().map(|(_, v)| v.clone()));
            // `Bearer <token>`: the token alone too, as an error may quote it.
            out.extend(s.headers.iter().filter_map(|(_, v)| v.split_once(' ').map(|(_, t)| t.to_string())));
        }
    }
    #[cfg(feature = "webhook")]
    for (sink, _) in &settings.sinks {
        if let Sink::Webhook(h) = sink {
            out.extend(h.secret.as_ref().map(|s| String::from_utf8_lossy(s).into_owned()));
            out.extend(h.headers.iter().map(|(_, v)| v.clone()));
        }
    }
    out
}

/// Builds and starts the pipeline, and makes sure `tracing` reaches it.
pub(crate) fn install(settings: Settings) -> Result<Guard> {
    if settings.disabled {
        return Ok(Guard { active: false });
    }
    // Once per process: how span stamps are taken (a few ms, here, never on a call).
    crate::base::clock::calibrate();
    let mut current = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    if current.is_some() {
        return Err(Error::AlreadyInstalled);
    }

    // Make sure spans reach us before starting threads, so a subscriber
    // conflict leaves nothing behind.
    let has_global = tracing::dispatcher::has_been_set();
    if has_global {
        let ours = tracing::dispatcher::get_default(crate::record::layer::dispatcher_has_layer);
        if !ours && settings.set_global_subscriber {
            return Err(Error::ForeignSubscriber);
        }
    }

    crate::diag::configure(
        settings.diagnostics,
        if has_global { crate::diag::Route::Tracing } else { crate::diag::Route::Stderr },
        secrets_of(&settings),
    );
    let resource = Resource::builder_empty().with_attributes(settings.resource.clone()).build();
    #[cfg(feature = "grpc")]
    let needs_runtime = settings
        .otlp
        .as_ref()
        .is_some_and(|o| [&o.traces, &o.metrics, &o.logs].iter().any(|s| s.protocol == Protocol::Grpc));
    #[cfg(feature = "grpc")]
    let runtime = if needs_runtime {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("observra-grpc")
                .enable_all()
                .on_thread_start(state::suppress_current_thread)
                .build()
                .map_err(|e| Error::exporter("otlp", format!("starting the gRPC runtime: {e}")))?,
        )
    } else {
        None
    };
    #[cfg(not(feature = "grpc"))]
    let runtime: Option<GrpcRuntime> = None;
    let block_on: BlockOn = Arc::new(|fut| futures_executor::block_on(fut));

    let batch = settings.batch;
    let spawn_err = |e: std::io::Error| Error::exporter("batch", format!("starting the export thread: {e}"));
    #[cfg_attr(not(feature = "otlp"), allow(unused_mut))]
    let mut metric_reader = None;
    #[cfg_attr(not(feature = "otlp"), allow(unused_mut))]
    let mut metrics_diag = None;
    let sealer = |path: Option<&std::path::Path>| {
        crate::export::audit::Sealer::new(settings.encryption_key, settings.audit_key, path, settings.jsonl_fsync)
            .map_err(|source| Error::AuditChain { setting: Setting::Env("OBSERVRA_JSONL_PATH"), source })
    };
    #[cfg(feature = "otlp")]
    let retries_end = crate::export::retry::RetryEnd::default();
    let mut processors = Vec::with_capacity(settings.sinks.len());
    // With an OTLP logs backend, the details event is a log record only.
    #[cfg_attr(not(feature = "otlp"), allow(unused_variables))]
    let details_as_logs = settings.sinks.iter().any(|(s, _)| matches!(s, Sink::OtelLog));
    for (sink, name) in settings.sinks {
        let block_on = block_on.clone();
        let processor = match sink {
            Sink::Stdout => BatchProcessor::start(
                name,
                "stdout",
                JsonlExporter::new(crate::export::jsonl::Output::Stream(Box::new(std::io::stdout())), sealer(None)?),
                &resource,
                batch,
                block_on,
            ),
            Sink::Writer(w) => BatchProcessor::start(
                name,
                "a writer",
                JsonlExporter::new(crate::export::jsonl::Output::Stream(w), sealer(None)?),
                &resource,
                batch,
                block_on,
            ),
            Sink::File(path) => {
                let file =
                    crate::export::jsonl::RotatingFile::open(&path, settings.jsonl_max_bytes, settings.jsonl_fsync)
                        .map_err(|source| Error::Io {
                            setting: Setting::Env("OBSERVRA_JSONL_PATH"),
                            path: path.clone(),
                            source,
                        })?;
                let exporter = JsonlExporter::new(crate::export::jsonl::Output::File(file), sealer(Some(&path))?);
                // A restarted writer first attests what a crash left unfinished.
                exporter.write_recovery().map_err(|source| Error::Io {
                    setting: Setting::Env("OBSERVRA_JSONL_PATH"),
                    path: path.clone(),
                    source,
                })?;
                BatchProcessor::start(name, &path.display().to_string(), exporter, &resource, batch, block_on)
            }
            Sink::Custom(start) => start(name, &resource, batch, block_on),
            #[cfg(feature = "webhook")]
            Sink::Webhook(hook) => BatchProcessor::start(
                name,
                &crate::diag::display_endpoint(&hook.url),
                crate::export::webhook::WebhookExporter::new(hook),
                &resource,
                batch,
                block_on,
            ),
            // Refused when the settings were resolved, with the feature named.
            #[cfg(not(feature = "otlp"))]
            Sink::Otlp | Sink::OtelLog => {
                return Err(Error::exporter(name, "needs observra's `otlp` cargo feature"));
            }
            #[cfg(feature = "otlp")]
            Sink::Otlp | Sink::OtelLog => {
                use crate::export::otlp::{CountingMetricExporter, log_exporter, metric_exporter, span_exporter};
                let Some(otlp) = settings.otlp.as_ref() else {
                    return Err(Error::exporter("otlp", "no OTLP settings resolved"));
                };
                #[cfg(feature = "grpc")]
                let _enter = runtime.as_ref().map(|rt| rt.enter());
                if metric_reader.is_none() && settings.otlp_metrics {
                    let (exporter, cause) = metric_exporter(&otlp.metrics, settings.temporality, &retries_end)?;
                    let diag = Arc::new(crate::diag::MetricsDiag {
                        reporter: crate::diag::Reporter::new("otlp metrics", &otlp.metrics.endpoint, "metric points"),
                        cause,
                        failed_points: std::sync::atomic::AtomicU64::new(0),
                        last_error: std::sync::Mutex::new(None),
                    });
                    metrics_diag = Some(diag.clone());
                    metric_reader = Some(
                        opentelemetry_sdk::metrics::PeriodicReader::builder(CountingMetricExporter(exporter, diag))
                            .with_interval(settings.metric_interval)
                            .build(),
                    );
                }
                if matches!(sink, Sink::Otlp) {
                    let (spans, cause) = span_exporter(&otlp.traces, &retries_end)?;
                    if details_as_logs {
                        let spans = crate::export::batch::Leg(crate::export::otel_log::WithoutDetails(spans), cause);
                        BatchProcessor::start(name, &otlp.traces.endpoint, spans, &resource, batch, block_on)
                    } else {
                        let spans = crate::export::batch::Leg(spans, cause);
                        BatchProcessor::start(name, &otlp.traces.endpoint, spans, &resource, batch, block_on)
                    }
                } else {
                    let (logs, cause) = log_exporter(&otlp.logs, &retries_end)?;
                    let logs = crate::export::otel_log::OtelLogExporter::new(logs, cause);
                    BatchProcessor::start(name, &otlp.logs.endpoint, logs, &resource, batch, block_on)
                }
            }
        }
        .map_err(spawn_err)?;
        processors.push(processor);
    }

    #[cfg(feature = "prometheus")]
    let prometheus_reader = settings.prometheus_addr.as_ref().map(|_| crate::export::prometheus::SharedReader::new());
    #[cfg(feature = "prometheus")]
    let prometheus = match (settings.prometheus_addr, &prometheus_reader) {
        (Some((addr, setting)), Some(reader)) => Some(
            crate::export::prometheus::Endpoint::start(addr, reader.clone())
                .map_err(|e| Error::invalid(setting, addr.to_string(), format!("cannot listen there: {e}")))?,
        ),
        _ => None,
    };
    #[cfg(not(feature = "prometheus"))]
    let prometheus: Option<PromEndpoint> = None;
    #[cfg(not(feature = "prometheus"))]
    let prometheus_reader: Option<opentelemetry_sdk::metrics::ManualReader> = None;
    #[cfg(not(feature = "otlp"))]
    let metric_reader: Option<opentelemetry_sdk::metrics::ManualReader> = metric_reader;
    let meter_provider = if metric_reader.is_some() || prometheus_reader.is_some() {
        let mut b = SdkMeterProvider::builder().with_resource(resource.clone());
        if let Some(r) = metric_reader {
            b = b.with_reader(r);
        }
        if let Some(r) = prometheus_reader {
            b = b.with_reader(r);
        }
        Some(b.build())
    } else {
        None
    };
    // One meter for everything observra itself records.
    let meter = meter_provider.as_ref().map(|mp| {
        use opentelemetry::metrics::MeterProvider;
        mp.meter(sc::SCOPE_NAME)
    });
    let instruments = meter.as_ref().map(crate::account::accounting::Instruments::new);
    let gauges = meter.as_ref().map(crate::record::declare::register_gauges).unwrap_or_default();
    let legs: Vec<_> = processors.iter().map(|p| p.stats.clone()).collect();
    let self_metrics = meter.as_ref().map(|m| SelfMetrics::register(m, legs));
    let processors = Arc::new(FanOut(processors));
    let mut collector_error = None;
    // The collector thread holds the install weakly: the install owns its queue.
    let installed = Arc::new_cyclic(|weak| {
        let (queue, end) = FrameQueue::new();
        let policy = crate::policy::span::SpanPolicy {
            content_allowed: batch.content_allowed,
            limits: batch.limits,
            redactor: settings.redactor.clone(),
        };
        let tail = match settings.sampler {
            Sampler::KeepInteresting(k) => Some(k),
            _ => None,
        };
        if let Err(e) = crate::collect::start(end, instruments.clone(), processors.clone(), policy, tail, weak.clone())
        {
            collector_error = Some(e);
        }
        Installed {
            ids: RandomIdGenerator::default(),
            sampler: sdk_sampler(settings.sampler),
            accounting: crate::account::accounting::Accounting {
                instruments,
                prices: settings.prices,
                window: settings.budget.window.map(|(w, usd)| crate::account::budget::Window::new(w, usd)),
                budget: settings.budget,
                callback: settings.budget_callback,
            },
            queue,
            scope: InstrumentationScope::builder(sc::SCOPE_NAME).with_version(env!("CARGO_PKG_VERSION")).build(),
            meter,
            gauges: std::sync::Mutex::new(gauges),
        }
    });
    let pipeline = Arc::new(Pipeline {
        installed,
        _self_metrics: self_metrics,
        prometheus: std::sync::Mutex::new(prometheus),
        processors,
        meter_provider,
        metrics_diag,
        runtime: std::sync::Mutex::new(runtime),
        shutdown_timeout: settings.shutdown_timeout,
        #[cfg(feature = "otlp")]
        retries_end,
    });
    if let Some(e) = collector_error {
        stop_legs(&pipeline, Duration::from_millis(100));
        return Err(Error::exporter("collector", format!("starting the collector thread: {e}")));
    }
    if let Some(mp) = &pipeline.meter_provider {
        opentelemetry::global::set_meter_provider(mp.clone());
    }
    let installed = pipeline.installed.clone();
    *current = Some(pipeline);
    drop(current);

    if !has_global && settings.set_global_subscriber {
        let subscriber: OwnSubscriber = tracing_subscriber::registry()
            .with(tracing::level_filters::LevelFilter::from_level(settings.max_level))
            .with(crate::record::layer::ObservraLayer::gated());
        // Another thread may have set one in between; then it must carry our layer.
        if tracing::subscriber::set_global_default(subscriber).is_err()
            && !tracing::dispatcher::get_default(crate::record::layer::dispatcher_has_layer)
        {
            let _ = take_and_stop(Duration::from_millis(100));
            return Err(Error::ForeignSubscriber);
        }
    }
    crate::base::frame::RECORD_ALL.store(matches!(settings.sampler, Sampler::KeepInteresting(_)), Ordering::Release);
    state::set(installed, settings.fast_path, settings.capture.to_u8());
    Ok(Guard { active: true })
}

/// Removes the current pipeline and stops it within its deadline (or `deadline`).
fn take_and_stop(deadline: Duration) -> Result<ShutdownReport> {
    let _ = state::take();
    let taken = CURRENT.write().unwrap_or_else(|p| p.into_inner()).take();
    let Some(pipeline) = taken else { return Err(Error::NotInstalled) };
    let deadline = deadline.min(pipeline.shutdown_timeout);
    let start = Instant::now();
    let until = crate::base::deadline::until(deadline);
    // No retry waits into the last fifth of the deadline: a backend's thread
    // gives up on its batch, counted as failed, while shutdown still waits.
    #[cfg(feature = "otlp")]
    pipeline.retries_end.set(until.checked_sub(deadline / 5).unwrap_or(until));
    let mut metrics_error = None;
    // First, so that the spans it still holds reach the backends and every
    // metric is recorded before the last collection.
    if !pipeline.installed.queue.stop(deadline.mul_f64(0.5).max(Duration::from_millis(10))) {
        metrics_error = Some("the collector thread did not finish in time".to_string());
    }
    state::retire();
    let backends = stop_legs(&pipeline, until.saturating_duration_since(Instant::now()));
    if let Some(mp) = &pipeline.meter_provider {
        let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
        if let Err(e) = within(left, "the final metric export", {
            let mp = mp.clone();
            move || mp.shutdown_with_timeout(left).map_err(|e| e.to_string())
        }) {
            metrics_error = Some(e);
        }
    }
    if let Some(d) = &pipeline.metrics_diag {
        let failed = d.failed_points.load(Ordering::Relaxed);
        let last = d.last_error.lock().ok().and_then(|e| e.clone());
        if let Some(line) = crate::diag::loss_line(&d.reporter.who(), "metric points", failed, 0, 0, last.as_deref()) {
            crate::diag::emit(crate::diag::DiagnosticLevel::Warn, &line);
        }
    }
    if let Ok(mut h) = crate::export::batch::EXPORT_DURATION.write() {
        *h = None;
    }
    // Stop answering scrapes now, even if open spans still hold the pipeline:
    // connections are cut, and the endpoint's thread is waited for until the
    // deadline at most (and at least 10 ms, for its listener to close).
    #[cfg(feature = "prometheus")]
    if let Some(endpoint) = pipeline.prometheus.lock().ok().and_then(|mut e| e.take()) {
        let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
        endpoint.stop(crate::base::deadline::until(left));
    }
    // Never block here: the guard may drop inside an async runtime.
    #[cfg(feature = "grpc")]
    if let Some(rt) = pipeline.runtime.lock().ok().and_then(|mut r| r.take()) {
        rt.shutdown_background();
    }
    Ok(ShutdownReport { backends, metrics_error, elapsed: start.elapsed() })
}

/// Runs `work` on a thread of its own and waits for it at most `deadline`:
/// the SDK's meter provider waits for its exporter (whose own timeout may
/// be far longer than observra's deadline), so it never gets the caller's
/// thread. Past the deadline the thread is left to finish on its own.
fn within(
    deadline: Duration,
    what: &str,
    work: impl FnOnce() -> std::result::Result<(), String> + Send + 'static,
) -> std::result::Result<(), String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("observra-shutdown".into()).spawn(move || {
        state::suppress_current_thread();
        let _ = tx.send(work());
    });
    if let Err(e) = spawned {
        return Err(format!("{what}: could not start a thread: {e}"));
    }
    match rx.recv_timeout(deadline) {
        Ok(r) => r,
        Err(_) => Err(format!("{what} did not finish within the deadline")),
    }
}

/// Shuts every leg down at once, so a slow one cannot eat the others' time.
fn stop_legs(pipeline: &Pipeline, deadline: Duration) -> Vec<BackendReport> {
    let until = crate::base::deadline::until(deadline);
    let before: Vec<_> = pipeline.processors.iter().map(|p| crate::export::batch::LegFigures::of(&p.stats)).collect();
    let pending: Vec<_> = pipeline.processors.iter().map(|p| p.begin_shutdown(deadline)).collect();
    let mut backends = Vec::with_capacity(pending.len());
    for ((p, pending), before) in pipeline.processors.iter().zip(pending).zip(before) {
        let result = p.wait(pending, until, "shutdown");
        let after = crate::export::batch::LegFigures::of(&p.stats);
        let timed_out = matches!(&result, Err(crate::export::batch::LegError::TimedOut(_)));
        let abandoned = if timed_out { after.queued + after.in_flight } else { 0 };
        // The whole run's losses, once, for a person reading stderr.
        if let Some(line) = crate::diag::loss_line(
            &p.stats.who(),
            "spans",
            after.failed,
            after.dropped(),
            abandoned,
            p.stats.last_error().as_deref(),
        ) {
            crate::diag::emit(crate::diag::DiagnosticLevel::Warn, &line);
        }
        backends.push(BackendReport {
            backend: p.stats.name,
            flushed: after.exported - before.exported,
            dropped: (after.dropped() + after.failed) - (before.dropped() + before.failed),
            abandoned,
            timed_out,
            error: result.err().map(|e| e.to_string()),
        });
    }
    backends
}

/// What [`shutdown`] (or [`Guard::shutdown`]) did, backend by backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// One entry per backend, in configuration order.
    pub backends: Vec<BackendReport>,
    /// The meter provider's shutdown error (the last metric export), if any.
    pub metrics_error: Option<String>,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

impl ShutdownReport {
    /// Spans delivered during the shutdown, over all backends.
    pub fn flushed(&self) -> u64 {
        self.backends.iter().map(|b| b.flushed).sum()
    }
    /// Spans lost during the shutdown (dropped, failed or abandoned), over all backends.
    pub fn lost(&self) -> u64 {
        self.backends.iter().map(|b| b.dropped + b.abandoned).sum()
    }
    /// True when every backend finished in time without an error and nothing was lost.
    pub fn is_clean(&self) -> bool {
        self.metrics_error.is_none() && self.backends.iter().all(|b| b.error.is_none() && b.dropped == 0)
    }
}

impl std::fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "observra shutdown in {:?}:", self.elapsed)?;
        for b in &self.backends {
            write!(f, " {} flushed {}", b.backend, b.flushed)?;
            if b.dropped > 0 {
                write!(f, ", dropped {}", b.dropped)?;
            }
            if b.timed_out {
                write!(f, ", timed out with {} unsent", b.abandoned)?;
            } else if let Some(e) = &b.error {
                write!(f, ", error: {e}")?;
            }
            write!(f, ";")?;
        }
        if let Some(e) = &self.metrics_error {
            write!(f, " metrics error: {e}")?;
        }
        Ok(())
    }
}

/// One backend's part of a [`ShutdownReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendReport {
    /// The backend's name (`otlp`, `otel_log`, `jsonl`, `stdout`, `webhook`).
    pub backend: &'static str,
    /// Spans delivered during the shutdown.
    pub flushed: u64,
    /// Spans dropped or failed during the shutdown.
    pub dropped: u64,
    /// Spans still queued or in flight when the deadline passed.
    pub abandoned: u64,
    /// Whether the deadline passed before the backend finished.
    pub timed_out: bool,
    /// The error of the last export or of the exporter's shutdown, if any.
    pub error: Option<String>,
}

/// `observra.pipeline.*`: the figures of [`health`] as metrics, read at
/// each collection, per backend.
struct SelfMetrics {
    _spans: opentelemetry::metrics::ObservableCounter<u64>,
    _queue: opentelemetry::metrics::ObservableGauge<u64>,
    _errors: opentelemetry::metrics::ObservableCounter<u64>,
    _exports: opentelemetry::metrics::ObservableCounter<u64>,
    _points: opentelemetry::metrics::ObservableCounter<u64>,
    _records: opentelemetry::metrics::ObservableCounter<u64>,
    _sampler_dropped: opentelemetry::metrics::ObservableCounter<u64>,
    _sampler_held: opentelemetry::metrics::ObservableGauge<u64>,
    _evaluations_dropped: opentelemetry::metrics::ObservableCounter<u64>,
    _metric_jobs_dropped: opentelemetry::metrics::ObservableCounter<u64>,
}

impl SelfMetrics {
    fn register(meter: &opentelemetry::metrics::Meter, legs: Vec<Arc<crate::export::batch::LegStats>>) -> Self {
        use opentelemetry::KeyValue;
        use sc::metrics as m;
        let legs: Arc<[Arc<crate::export::batch::LegStats>]> = legs.into();
        let backend = |l: &crate::export::batch::LegStats| KeyValue::new(m::PIPELINE_BACKEND, l.name);
        let (l1, l2, l3, l4, l5) = (legs.clone(), legs.clone(), legs.clone(), legs.clone(), legs);
        if let Ok(mut h) = crate::export::batch::EXPORT_DURATION.write() {
            *h = Some(
                meter
                    .f64_histogram(m::PIPELINE_EXPORT_DURATION)
                    .with_unit("s")
                    .with_description("Time of each export call, by backend and result.")
                    .with_boundaries(sc::metrics::DURATION_BUCKETS.to_vec())
                    .build(),
            );
        }
        let in_state = |s: &'static str| KeyValue::new(m::PIPELINE_STATE, s);
        let reason = |r: Loss| KeyValue::new(m::PIPELINE_REASON, r.name());
        SelfMetrics {
            _spans: meter
                .u64_observable_counter(m::PIPELINE_SPANS)
                .with_unit("{span}")
                .with_description(
                    "Spans each backend exported or failed to export, and spans dropped, by observra.reason: per \
                     backend at its queue (backend_queue) or when it stopped (stopped); before any backend (no \
                     observra.backend) at the collector's queue (collector_queue), after the pipeline stopped \
                     (stopped), or when assembling (assembly_failed) or redacting (redaction_failed) them failed.",
                )
                .with_callback(move |o| {
                    for l in l1.iter() {
                        let f = crate::export::batch::LegFigures::of(l);
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
                })
                .build(),
            _queue: meter
                .u64_observable_gauge(m::PIPELINE_QUEUE)
                .with_unit("{span}")
                .with_description("Spans queued or being exported, per backend.")
                .with_callback(move |o| {
                    for l in l2.iter() {
                        let f = crate::export::batch::LegFigures::of(l);
                        o.observe(f.queued + f.in_flight, &[backend(l)])
                    }
                })
                .build(),
            _errors: meter
                .u64_observable_counter(m::PIPELINE_EXPORT_ERRORS)
                .with_unit("{call}")
                .with_description("Export calls that failed, per backend.")
                .with_callback(move |o| {
                    for l in l3.iter() {
                        o.observe(l.export_err.load(Ordering::Relaxed), &[backend(l)])
                    }
                })
                .build(),
            _exports: meter
                .u64_observable_counter(m::PIPELINE_EXPORTS)
                .with_unit("{call}")
                .with_description("Export calls, per backend and result.")
                .with_callback(move |o| {
                    for l in l4.iter() {
                        for (result, c) in [("success", &l.export_ok), ("failure", &l.export_err)] {
                            o.observe(
                                c.load(Ordering::Relaxed),
                                &[backend(l), KeyValue::new(m::PIPELINE_RESULT, result)],
                            )
                        }
                    }
                })
                .build(),
            _points: meter
                .u64_observable_counter(m::PIPELINE_METRIC_POINTS)
                .with_unit("{point}")
                .with_description("Metric data points the OTLP metric exporter delivered or failed to.")
                .with_callback(move |o| {
                    for (state, c) in [
                        ("exported", &crate::diag::METRIC_POINTS_EXPORTED),
                        ("failed", &crate::diag::METRIC_POINTS_FAILED),
                    ] {
                        o.observe(c.load(Ordering::Relaxed), &[KeyValue::new(m::PIPELINE_STATE, state)])
                    }
                })
                .build(),
            _records: meter
                .u64_observable_counter(m::PIPELINE_LOG_RECORDS)
                .with_unit("{record}")
                .with_description("Log records the otel_log backend delivered.")
                .with_callback(move |o| {
                    for l in l5.iter().filter(|l| l.delivers_logs) {
                        o.observe(l.log_records.load(Ordering::Relaxed), &[backend(l)])
                    }
                })
                .build(),
            _sampler_dropped: meter
                .u64_observable_counter(m::PIPELINE_SAMPLER_DROPPED)
                .with_unit("{span}")
                .with_description(
                    "Spans the tail sampler dropped, by reason (not spans dropped by a full queue: those are \
                     observra.pipeline.spans with observra.state=dropped).",
                )
                .with_callback(|o| {
                    for (reason, name) in crate::collect::tail::Dropped::ALL {
                        o.observe(
                            crate::collect::tail::DROPPED[reason as usize].load(Ordering::Relaxed),
                            &[KeyValue::new(m::PIPELINE_REASON, name)],
                        )
                    }
                })
                .build(),
            _sampler_held: meter
                .u64_observable_gauge(m::PIPELINE_SAMPLER_HELD)
                .with_unit("{span}")
                .with_description("Spans the tail sampler holds until their trace is decided.")
                .with_callback(|o| o.observe(crate::collect::tail::HELD.load(Ordering::Relaxed), &[]))
                .build(),
            _evaluations_dropped: meter
                .u64_observable_counter(m::PIPELINE_EVALUATIONS_DROPPED)
                .with_unit("{evaluation}")
                .with_description("Evaluations (observra::evaluate) lost before they landed, by reason.")
                .with_callback(|o| {
                    use crate::base::graded::{LOST, Lost};
                    for (reason, name) in Lost::ALL {
                        o.observe(
                            LOST[reason as usize].load(Ordering::Relaxed),
                            &[KeyValue::new(m::PIPELINE_REASON, name)],
                        )
                    }
                })
                .build(),
            _metric_jobs_dropped: meter
                .u64_observable_counter(m::PIPELINE_METRIC_JOBS_DROPPED)
                .with_unit("{span}")
                .with_description(
                    "Closed spans whose metrics were lost, by observra.reason: the collector's queue was full \
                     (collector_queue), the collector had stopped (stopped), or assembling them failed \
                     (assembly_failed).",
                )
                .with_callback(move |o| {
                    let lost = loss::read(&loss::METRIC_JOBS_LOST);
                    for r in Loss::METRIC_JOBS {
                        o.observe(lost[r as usize], &[reason(r)]);
                    }
                })
                .build(),
        }
    }
}

/// The address the Prometheus endpoint listens on, if one is running.
pub fn prometheus_addr() -> Option<std::net::SocketAddr> {
    current().and_then(|p| p.prometheus.lock().ok().and_then(|e| e.as_ref().map(|e| e.addr())))
}

/// Exports everything buffered so far (spans, on every backend, and
/// metrics), waiting at most the configured shutdown deadline.
pub fn flush() -> Result<()> {
    let Some(pipeline) = current() else { return Err(Error::NotInstalled) };
    let deadline = pipeline.shutdown_timeout;
    let until = crate::base::deadline::until(deadline);
    let mut problems = Vec::new();
    {
        // First: it hands the closed spans to the backends.
        if !pipeline.installed.queue.flush(deadline.mul_f64(0.5)) {
            problems.push("metrics: the collector thread did not catch up in time".to_string());
        }
    }
    let left = until.saturating_duration_since(Instant::now());
    let pending: Vec<_> = pipeline.processors.iter().map(|p| p.begin_flush(left)).collect();
    for (p, pending) in pipeline.processors.iter().zip(pending) {
        if let Err(e) = p.wait(pending, until, "flush") {
            problems.push(format!("{}: {e}", p.stats.name));
        }
    }
    if let Some(mp) = &pipeline.meter_provider {
        let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
        if let Err(e) = within(left, "the metric export", {
            let mp = mp.clone();
            move || mp.force_flush().map_err(|e| e.to_string())
        }) {
            problems.push(format!("metrics: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Export { operation: "flush", reason: crate::diag::scrub(&problems.join("; ")) })
    }
}

/// Flushes every backend and stops the installed pipeline, waiting at most
/// `deadline` (and never longer than the configured shutdown timeout), and
/// reports what each backend flushed, dropped, or left unsent when it timed
/// out. Spans that end afterwards are counted as dropped. After this,
/// `install()` may be called again.
///
/// ```no_run
/// # fn main() -> observra::Result<()> {
/// let telemetry = observra::init().install()?;
/// // ... on SIGTERM:
/// let report = observra::shutdown(std::time::Duration::from_secs(3))?;
/// if !report.is_clean() {
///     eprintln!("{report}");
/// }
/// # drop(telemetry);
/// # Ok(()) }
/// ```
pub fn shutdown(deadline: Duration) -> Result<ShutdownReport> {
    take_and_stop(deadline)
}

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
    /// Closed spans waiting on the collector thread to become `SpanData`
    /// and metrics.
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
    /// The backend's name (`otlp`, `otel_log`, `jsonl`, `stdout`, `webhook`).
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
    let (t, legs) = crate::export::batch::totals();
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
                    let t = legs
                        .iter()
                        .find(|(s, _)| Arc::ptr_eq(s, l))
                        .map_or_else(|| crate::export::batch::LegFigures::of(l), |(_, f)| *f);
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
        spans_held: crate::collect::tail::HELD.load(Ordering::Relaxed),
        spans_held_bytes: crate::collect::tail::HELD_BYTES.load(Ordering::Relaxed),
        evaluations_pending: crate::base::graded::PENDING.load(Ordering::Relaxed),
        evaluations_dropped: crate::base::graded::LOST.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
        backends,
    }
}

/// A meter from the installed meter provider (a no-op meter before
/// `install()` or with a backend that has no metrics).
pub fn meter(name: &'static str) -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter(name)
}

impl Guard {
    /// Flushes every backend and stops the pipeline within the configured
    /// shutdown deadline, and reports what happened (dropping the guard does
    /// the same silently). `None` when the guard was inactive or the
    /// pipeline was already shut down.
    pub fn shutdown(mut self) -> Option<ShutdownReport> {
        let active = std::mem::replace(&mut self.active, false);
        if active { take_and_stop(Duration::MAX).ok() } else { None }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.active {
            let _ = take_and_stop(Duration::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    /// Catches: a poisoned lock turning telemetry off for the rest of the
    /// process (`current()` used to read it with `.ok()`).
    #[test]
    fn a_panic_while_the_pipeline_lock_is_held_does_not_turn_telemetry_off() {
        let _ = std::thread::spawn(|| {
            let _held = super::CURRENT.write();
            panic!("a panic elsewhere, while the lock is held");
        })
        .join();
        assert!(super::CURRENT.is_poisoned());
        assert!(super::current().is_none());
        let guard = crate::config::Builder::default()
            .env_from(Vec::<(String, String)>::new())
            .jsonl_writer(std::io::sink())
            .install()
            .expect("install over a poisoned lock");
        assert!(super::current().is_some(), "the installed pipeline is seen");
        drop(guard);
        assert!(super::current().is_none());
    }
}
