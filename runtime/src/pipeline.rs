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
use opentelemetry_sdk::trace::{RandomIdGenerator, SpanData};
use tracing_subscriber::layer::SubscriberExt;

use crate::batch::{BatchProcessor, BlockOn};
use crate::config::{Protocol, Sampler, Settings, Sink};
use crate::error::{Error, Result, Setting};
use crate::jsonl::JsonlExporter;
use crate::semconv as sc;

/// The running pipeline. Spans hold an `Arc` to the pipeline that was
/// current when they opened, so a span outliving a shutdown is counted as
/// dropped rather than lost silently.
pub(crate) struct Pipeline {
    processor: BatchProcessor,
    pub(crate) sampler: opentelemetry_sdk::trace::Sampler,
    pub(crate) ids: RandomIdGenerator,
    pub(crate) scope: InstrumentationScope,
    meter_provider: Option<SdkMeterProvider>,
    prometheus: std::sync::Mutex<Option<crate::prometheus::Endpoint>>,
    gauges: std::sync::Mutex<Vec<opentelemetry::metrics::ObservableGauge<f64>>>,
    /// The pipeline's own figures as metrics; kept alive with the pipeline.
    _self_metrics: Option<SelfMetrics>,
    pub(crate) accounting: crate::accounting::Accounting,
    runtime: std::sync::Mutex<Option<tokio::runtime::Runtime>>,
    shutdown_timeout: Duration,
}

impl Pipeline {
    pub(crate) fn submit(&self, span: SpanData) {
        self.processor.on_end(span);
    }

    /// A meter on this pipeline's provider, if it exports metrics.
    pub(crate) fn meter(&self) -> Option<opentelemetry::metrics::Meter> {
        use opentelemetry::metrics::MeterProvider;
        self.meter_provider.as_ref().map(|mp| mp.meter(sc::SCOPE_NAME))
    }

    /// Keeps an observable gauge registered for this pipeline's lifetime.
    pub(crate) fn keep_gauge(&self, gauge: Option<opentelemetry::metrics::ObservableGauge<f64>>) {
        if let (Some(g), Ok(mut all)) = (gauge, self.gauges.lock()) {
            all.push(g);
        }
    }
}

static CURRENT: RwLock<Option<Arc<Pipeline>>> = RwLock::new(None);

/// The active pipeline, if any.
pub(crate) fn current() -> Option<Arc<Pipeline>> {
    CURRENT.read().ok().and_then(|p| p.clone())
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
    }
}

fn exporter_error(backend: &'static str) -> impl Fn(opentelemetry_otlp::ExporterBuildError) -> Error {
    move |e| Error::Exporter { backend, reason: e.to_string() }
}

fn header_map(headers: &[(String, String)]) -> Result<http::HeaderMap> {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| Error::invalid(Setting::Builder("header"), k.clone(), "not a valid HTTP header name"))?;
        let value = http::HeaderValue::from_str(v).map_err(|_| {
            Error::invalid(Setting::Builder("header"), k.clone(), "the header value has characters HTTP does not allow")
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// Builds and starts the pipeline, and makes sure `tracing` reaches it.
pub(crate) fn install(settings: Settings) -> Result<crate::Guard> {
    if settings.disabled {
        return Ok(crate::Guard { active: false });
    }
    let mut current = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    if current.is_some() {
        return Err(Error::AlreadyInstalled);
    }

    // Make sure spans reach us before starting threads, so a subscriber
    // conflict leaves nothing behind.
    let has_global = tracing::dispatcher::has_been_set();
    if has_global {
        let ours = tracing::dispatcher::get_default(crate::layer::dispatcher_has_layer);
        if !ours && settings.set_global_subscriber {
            return Err(Error::ForeignSubscriber);
        }
    }

    let resource = Resource::builder_empty().with_attributes(settings.resource.clone()).build();
    let needs_runtime = settings
        .otlp
        .as_ref()
        .is_some_and(|o| o.traces.protocol == Protocol::Grpc || o.metrics.protocol == Protocol::Grpc);
    let runtime = if needs_runtime {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("observra-grpc")
                .enable_all()
                .on_thread_start(crate::layer::suppress_current_thread)
                .build()
                .map_err(|e| Error::Exporter { backend: "otlp", reason: format!("starting the gRPC runtime: {e}") })?,
        )
    } else {
        None
    };
    let block_on: BlockOn = Arc::new(|fut| futures_executor::block_on(fut));

    let batch = settings.batch;
    let spawn_err =
        |e: std::io::Error| Error::Exporter { backend: "batch", reason: format!("starting the export thread: {e}") };
    let mut metric_reader = None;
    let sealer =
        |path: Option<&std::path::Path>| crate::audit::Sealer::new(settings.encryption_key, settings.audit_key, path);
    let processor = match settings.sink {
        Sink::Stdout => BatchProcessor::start(
            JsonlExporter::new(crate::jsonl::Output::Stream(Box::new(std::io::stdout())), sealer(None)),
            &resource,
            batch,
            block_on,
            settings.redactor.clone(),
        )
        .map_err(spawn_err)?,
        Sink::Writer(w) => BatchProcessor::start(
            JsonlExporter::new(crate::jsonl::Output::Stream(w), sealer(None)),
            &resource,
            batch,
            block_on,
            settings.redactor.clone(),
        )
        .map_err(spawn_err)?,
        Sink::File(path) => {
            let file = crate::jsonl::RotatingFile::open(&path, settings.jsonl_max_bytes).map_err(|source| {
                Error::Io { setting: Setting::Env("OBSERVRA_JSONL_PATH"), path: path.clone(), source }
            })?;
            BatchProcessor::start(
                JsonlExporter::new(crate::jsonl::Output::File(file), sealer(Some(&path))),
                &resource,
                batch,
                block_on,
                settings.redactor.clone(),
            )
            .map_err(spawn_err)?
        }
        Sink::Otlp => {
            use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
            let Some(otlp) = settings.otlp.as_ref() else {
                return Err(Error::Exporter { backend: "otlp", reason: "no OTLP settings resolved".into() });
            };
            let _enter = runtime.as_ref().map(|rt| rt.enter());
            let t = &otlp.traces;
            let span_exporter = match t.protocol {
                Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(t.endpoint.clone())
                    .with_timeout(t.timeout)
                    .with_headers(t.headers.iter().cloned().collect())
                    .build(),
                Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(t.endpoint.clone())
                    .with_timeout(t.timeout)
                    .with_metadata(opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(header_map(
                        &t.headers,
                    )?))
                    .build(),
            }
            .map_err(exporter_error("otlp traces"))?;
            let m = &otlp.metrics;
            let temporality = match settings.temporality {
                crate::config::Temporality::Cumulative => opentelemetry_sdk::metrics::Temporality::Cumulative,
                crate::config::Temporality::Delta => opentelemetry_sdk::metrics::Temporality::Delta,
            };
            let metric_exporter = match m.protocol {
                Protocol::HttpProtobuf => opentelemetry_otlp::MetricExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(m.endpoint.clone())
                    .with_timeout(m.timeout)
                    .with_headers(m.headers.iter().cloned().collect())
                    .with_temporality(temporality)
                    .build(),
                Protocol::Grpc => opentelemetry_otlp::MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(m.endpoint.clone())
                    .with_timeout(m.timeout)
                    .with_metadata(opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(header_map(
                        &m.headers,
                    )?))
                    .with_temporality(temporality)
                    .build(),
            }
            .map_err(exporter_error("otlp metrics"))?;
            if settings.otlp_metrics {
                metric_reader = Some(
                    opentelemetry_sdk::metrics::PeriodicReader::builder(metric_exporter)
                        .with_interval(settings.metric_interval)
                        .build(),
                );
            }
            BatchProcessor::start(span_exporter, &resource, batch, block_on, settings.redactor.clone())
                .map_err(spawn_err)?
        }
    };

    let prometheus_reader = settings.prometheus_addr.as_ref().map(|_| crate::prometheus::SharedReader::new());
    let prometheus = match (settings.prometheus_addr, &prometheus_reader) {
        (Some((addr, setting)), Some(reader)) => Some(
            crate::prometheus::Endpoint::start(addr, reader.clone())
                .map_err(|e| Error::invalid(setting, addr.to_string(), format!("cannot listen there: {e}")))?,
        ),
        _ => None,
    };
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
    let instruments = meter.as_ref().map(crate::accounting::Instruments::new);
    let accounting = crate::accounting::Accounting {
        instruments,
        prices: settings.prices,
        window: settings.budget.window.map(|(w, usd)| crate::budget::Window::new(w, usd)),
        budget: settings.budget,
        callback: settings.budget_callback,
    };
    let gauges = meter.as_ref().map(crate::declare::register_gauges).unwrap_or_default();
    let self_metrics = meter.as_ref().map(SelfMetrics::register);
    let pipeline = Arc::new(Pipeline {
        _self_metrics: self_metrics,
        prometheus: std::sync::Mutex::new(prometheus),
        gauges: std::sync::Mutex::new(gauges),
        accounting,
        processor,
        sampler: sdk_sampler(settings.sampler),
        ids: RandomIdGenerator::default(),
        scope: InstrumentationScope::builder(sc::SCOPE_NAME).with_version(env!("CARGO_PKG_VERSION")).build(),
        meter_provider,
        runtime: std::sync::Mutex::new(runtime),
        shutdown_timeout: settings.shutdown_timeout,
    });
    if let Some(mp) = &pipeline.meter_provider {
        opentelemetry::global::set_meter_provider(mp.clone());
    }
    let has_meter = pipeline.meter_provider.is_some();
    *current = Some(pipeline);
    drop(current);

    if !has_global && settings.set_global_subscriber {
        let subscriber = tracing_subscriber::registry()
            .with(tracing::level_filters::LevelFilter::from_level(settings.max_level))
            .with(crate::layer::ObservraLayer::gated());
        // Another thread may have set one in between; then it must carry our layer.
        if tracing::subscriber::set_global_default(subscriber).is_err()
            && !tracing::dispatcher::get_default(crate::layer::dispatcher_has_layer)
        {
            let _ = take_and_stop(Duration::from_millis(100));
            return Err(Error::ForeignSubscriber);
        }
    }
    crate::content::set_mode(settings.capture);
    crate::declare::set_meter_available(has_meter);
    crate::ACTIVE.store(true, Ordering::Release);
    Ok(crate::Guard { active: true })
}

/// Removes the current pipeline and stops it within its deadline (or `deadline`).
fn take_and_stop(deadline: Duration) -> Result<()> {
    crate::ACTIVE.store(false, Ordering::Release);
    crate::content::set_mode(crate::content::CaptureMode::NoContent);
    crate::declare::set_meter_available(false);
    let taken = CURRENT.write().unwrap_or_else(|p| p.into_inner()).take();
    let Some(pipeline) = taken else { return Err(Error::NotInstalled) };
    let deadline = deadline.min(pipeline.shutdown_timeout);
    let start = Instant::now();
    let mut problems = Vec::new();
    if let Err(e) = pipeline.processor.shutdown(deadline) {
        problems.push(e);
    }
    if let Some(mp) = &pipeline.meter_provider {
        let left = deadline.saturating_sub(start.elapsed()).max(Duration::from_millis(10));
        if let Err(e) = mp.shutdown_with_timeout(left) {
            problems.push(format!("metrics: {e}"));
        }
    }
    // Never block here: the guard may drop inside an async runtime.
    // Stop answering scrapes now, even if open spans still hold the pipeline.
    drop(pipeline.prometheus.lock().ok().and_then(|mut e| e.take()));
    let rt = pipeline.runtime.lock().ok().and_then(|mut r| r.take());
    if let Some(rt) = rt {
        rt.shutdown_background();
    }
    if problems.is_empty() { Ok(()) } else { Err(Error::Export { operation: "shutdown", reason: problems.join("; ") }) }
}

/// `observra.pipeline.*`: the figures of [`health`] as metrics, read at
/// each collection.
struct SelfMetrics {
    _spans: opentelemetry::metrics::ObservableCounter<u64>,
    _queue: opentelemetry::metrics::ObservableGauge<u64>,
    _errors: opentelemetry::metrics::ObservableCounter<u64>,
}

impl SelfMetrics {
    fn register(meter: &opentelemetry::metrics::Meter) -> Self {
        use sc::metrics as m;
        let c = &crate::batch::COUNTERS;
        SelfMetrics {
            _spans: meter
                .u64_observable_counter(m::PIPELINE_SPANS)
                .with_unit("{span}")
                .with_description("Spans the pipeline exported, failed to export, or dropped.")
                .with_callback(move |o| {
                    for (state, counter) in [("exported", &c.exported), ("failed", &c.failed), ("dropped", &c.dropped)]
                    {
                        o.observe(
                            counter.load(Ordering::Relaxed),
                            &[opentelemetry::KeyValue::new(m::PIPELINE_STATE, state)],
                        );
                    }
                })
                .build(),
            _queue: meter
                .u64_observable_gauge(m::PIPELINE_QUEUE)
                .with_unit("{span}")
                .with_description("Spans queued or being exported.")
                .with_callback(move |o| {
                    o.observe(c.queued.load(Ordering::Relaxed) + c.in_flight.load(Ordering::Relaxed), &[])
                })
                .build(),
            _errors: meter
                .u64_observable_counter(m::PIPELINE_EXPORT_ERRORS)
                .with_unit("{call}")
                .with_description("Export calls that failed.")
                .with_callback(move |o| o.observe(c.export_errors.load(Ordering::Relaxed), &[]))
                .build(),
        }
    }
}

/// The address the Prometheus endpoint listens on, if one is running.
pub fn prometheus_addr() -> Option<std::net::SocketAddr> {
    current().and_then(|p| p.prometheus.lock().ok().and_then(|e| e.as_ref().map(|e| e.addr())))
}

/// Exports everything buffered so far (spans and metrics), waiting at most
/// the configured shutdown deadline.
pub fn flush() -> Result<()> {
    let Some(pipeline) = current() else { return Err(Error::NotInstalled) };
    let mut problems = Vec::new();
    if let Err(e) = pipeline.processor.flush(pipeline.shutdown_timeout) {
        problems.push(e);
    }
    if let Some(mp) = &pipeline.meter_provider {
        if let Err(e) = mp.force_flush() {
            problems.push(format!("metrics: {e}"));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(Error::Export { operation: "flush", reason: problems.join("; ") }) }
}

/// Flushes and stops the installed pipeline within its shutdown deadline.
/// Spans that end afterwards are counted as dropped. After this, `install()`
/// may be called again.
pub fn shutdown() -> Result<()> {
    take_and_stop(Duration::MAX)
}

/// A snapshot of the pipeline's own counters.
///
/// The totals (`spans_dropped`, `spans_exported`, `spans_failed`,
/// `export_errors`) count from process start, across re-installations, and
/// stay readable after shutdown. At any moment every span that ended while a
/// pipeline was installed is in exactly one of: queued, exporting, exported,
/// failed, dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Whether a pipeline is installed.
    pub installed: bool,
    /// Spans waiting in the queue.
    pub spans_queued: u64,
    /// Spans in a batch the exporter is working on now.
    pub spans_exporting: u64,
    /// Spans dropped because the queue was full or the pipeline had stopped.
    pub spans_dropped: u64,
    /// Spans the exporter accepted.
    pub spans_exported: u64,
    /// Spans in batches the exporter failed to deliver.
    pub spans_failed: u64,
    /// Export calls that failed.
    pub export_errors: u64,
}

/// Reads the pipeline's counters: how many spans are queued, being
/// exported, exported, failed and dropped.
pub fn health() -> Health {
    let c = &crate::batch::COUNTERS;
    let installed = current().is_some();
    Health {
        installed,
        spans_queued: if installed { c.queued.load(Ordering::Acquire) } else { 0 },
        spans_exporting: if installed { c.in_flight.load(Ordering::Acquire) } else { 0 },
        spans_dropped: c.dropped.load(Ordering::Relaxed),
        spans_exported: c.exported.load(Ordering::Relaxed),
        spans_failed: c.failed.load(Ordering::Relaxed),
        export_errors: c.export_errors.load(Ordering::Relaxed),
    }
}

/// A meter from the installed meter provider (a no-op meter before
/// `install()` or with a backend that has no metrics).
pub fn meter(name: &'static str) -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter(name)
}

impl Drop for crate::Guard {
    fn drop(&mut self) {
        if self.active {
            let _ = take_and_stop(Duration::MAX);
        }
    }
}
