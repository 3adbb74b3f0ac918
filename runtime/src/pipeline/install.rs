//! Building the pipeline from resolved settings: the backends, the meter
//! provider, the collector, the installed state, and the `tracing`
//! subscriber, in that order, so a failure leaves nothing running.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::RandomIdGenerator;
use tracing_subscriber::layer::SubscriberExt;

use super::health::SelfMetrics;
use super::shutdown::{stop_backends, take_and_stop};
use super::{CURRENT, GrpcRuntime, Guard, Pipeline, PromEndpoint};
use crate::base::queue::FrameQueue;
use crate::base::state::{self, Installed};
use crate::config::{Sampler, Settings, Sink};
use crate::error::{Error, Result, Setting};
use crate::export::batch::{BatchProcessor, BlockOn, FanOut};
use crate::export::jsonl::JsonlExporter;
#[cfg(feature = "grpc")]
use crate::export::otlp_settings::Protocol;
use crate::policy::span::SpanPolicy;
use crate::record::current::OwnSubscriber;
use observra_semconv as sc;

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
pub(crate) fn install(mut settings: Settings) -> Result<Guard> {
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
    if has_global
        && settings.set_global_subscriber
        && !tracing::dispatcher::get_default(crate::record::layer::dispatcher_has_layer)
    {
        return Err(Error::ForeignSubscriber);
    }
    crate::diag::configure(
        settings.diagnostics,
        if has_global { crate::diag::Route::Tracing } else { crate::diag::Route::Stderr },
        secrets_of(&settings),
    );
    let resource = Resource::builder_empty().with_attributes(settings.resource.clone()).build();
    let runtime = grpc_runtime(&settings)?;
    let backends = Backends::start(&mut settings, &resource, runtime.as_ref())?;
    let (prometheus, prometheus_reader) = start_prometheus(&settings)?;
    let meter_provider = meter_provider(&resource, backends.metric_reader, prometheus_reader);
    // One meter for everything observra itself records.
    let meter = meter_provider.as_ref().map(|mp| {
        use opentelemetry::metrics::MeterProvider;
        mp.meter(sc::SCOPE_NAME)
    });
    let stats: Vec<_> = backends.processors.iter().map(|p| p.stats.clone()).collect();
    let self_metrics = meter.as_ref().filter(|_| settings.self_metrics).map(|m| SelfMetrics::register(m, stats));
    let processors = Arc::new(FanOut(backends.processors));
    let (installed, collector_error) = start_collector(&mut settings, meter, processors.clone());
    let pipeline = Arc::new(Pipeline {
        installed,
        _self_metrics: self_metrics,
        prometheus: std::sync::Mutex::new(prometheus),
        processors,
        meter_provider,
        metrics_diag: backends.metrics_diag,
        runtime: std::sync::Mutex::new(runtime),
        shutdown_timeout: settings.shutdown_timeout,
        #[cfg(feature = "otlp")]
        retries_end: backends.retries_end,
    });
    if let Some(e) = collector_error {
        stop_backends(&pipeline, Duration::from_millis(100));
        return Err(Error::exporter("collector", format!("starting the collector thread: {e}")));
    }
    if let Some(mp) = &pipeline.meter_provider {
        opentelemetry::global::set_meter_provider(mp.clone());
    }
    let installed = pipeline.installed.clone();
    *current = Some(pipeline);
    drop(current);
    if !has_global && settings.set_global_subscriber {
        set_subscriber(settings.max_level)?;
    }
    crate::base::frame::RECORD_ALL.store(matches!(settings.sampler, Sampler::KeepInteresting(_)), Ordering::Release);
    crate::policy::content::KEEP_QUERY_VALUES.store(settings.keep_query_values, std::sync::atomic::Ordering::Release);
    state::GENAI_LATEST.store(settings.genai_latest, Ordering::Release);
    state::set(installed, settings.fast_path, settings.capture.to_u8());
    Ok(Guard { active: true })
}

/// The runtime gRPC exports run on, when a signal is sent over gRPC.
fn grpc_runtime(settings: &Settings) -> Result<Option<GrpcRuntime>> {
    #[cfg(feature = "grpc")]
    {
        let needs_runtime = settings
            .otlp
            .as_ref()
            .is_some_and(|o| [&o.traces, &o.metrics, &o.logs].iter().any(|s| s.protocol == Protocol::Grpc));
        if !needs_runtime {
            return Ok(None);
        }
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("observra-grpc")
            .enable_all()
            .on_thread_start(state::suppress_current_thread)
            .build()
            .map(Some)
            .map_err(|e| Error::exporter("otlp", format!("starting the gRPC runtime: {e}")))
    }
    #[cfg(not(feature = "grpc"))]
    {
        let _ = settings;
        Ok(None)
    }
}

/// The started backends, and the OTLP metric reader if metrics go over OTLP.
struct Backends {
    processors: Vec<BatchProcessor>,
    metric_reader: Option<MetricReader>,
    metrics_diag: Option<Arc<crate::diag::MetricsDiag>>,
    /// When the OTLP clients' retries must end: set when shutdown starts.
    #[cfg(feature = "otlp")]
    retries_end: crate::export::retry::RetryEnd,
}

/// The OTLP metric reader (feature `otlp`).
#[cfg(feature = "otlp")]
type MetricReader = opentelemetry_sdk::metrics::PeriodicReader<
    crate::export::otlp::CountingMetricExporter<opentelemetry_otlp::MetricExporter>,
>;
/// No OTLP in this build: never constructed.
#[cfg(not(feature = "otlp"))]
type MetricReader = opentelemetry_sdk::metrics::ManualReader;

impl Backends {
    /// Starts one batch processor per configured backend, in order.
    fn start(settings: &mut Settings, resource: &Resource, runtime: Option<&GrpcRuntime>) -> Result<Backends> {
        let mut backends = Backends {
            processors: Vec::with_capacity(settings.sinks.len()),
            metric_reader: None,
            metrics_diag: None,
            #[cfg(feature = "otlp")]
            retries_end: crate::export::retry::RetryEnd::default(),
        };
        // With an OTLP logs backend, the details event is a log record only.
        let details_as_logs = settings.sinks.iter().any(|(s, _)| matches!(s, Sink::OtelLog | Sink::OtlpEvents));
        for (sink, name) in std::mem::take(&mut settings.sinks) {
            let processor = match sink {
                Sink::Otlp | Sink::OtelLog | Sink::OtlpEvents => {
                    #[cfg(feature = "grpc")]
                    let _enter = runtime.map(|rt| rt.enter());
                    backends.start_otlp(settings, name, &sink, details_as_logs, resource)?
                }
                sink => start_local(settings, sink, name, resource)?,
            };
            backends.processors.push(processor);
        }
        let _ = runtime;
        Ok(backends)
    }

    /// An OTLP traces ([`Sink::Otlp`]) or logs backend (every record, or
    /// the details events only); the first one also starts the OTLP metric
    /// reader, when metrics go over OTLP.
    #[cfg(feature = "otlp")]
    fn start_otlp(
        &mut self,
        settings: &Settings,
        name: &'static str,
        sink: &Sink,
        details_as_logs: bool,
        resource: &Resource,
    ) -> Result<BatchProcessor> {
        use crate::export::batch::SdkExporter;
        use crate::export::otel_log::{OtelLogExporter, WithoutDetails};
        use crate::export::otlp::{CountingMetricExporter, log_exporter, metric_exporter, span_exporter};
        let Some(otlp) = settings.otlp.as_ref() else {
            return Err(Error::exporter("otlp", "no OTLP settings resolved"));
        };
        if self.metric_reader.is_none() && settings.otlp_metrics {
            let (exporter, cause) = metric_exporter(&otlp.metrics, settings.temporality, &self.retries_end)?;
            let diag = Arc::new(crate::diag::MetricsDiag {
                reporter: crate::diag::Reporter::new("otlp metrics", &otlp.metrics.endpoint, "metric points"),
                cause,
                failed_points: std::sync::atomic::AtomicU64::new(0),
                last_error: std::sync::Mutex::new(None),
            });
            self.metrics_diag = Some(diag.clone());
            self.metric_reader = Some(
                opentelemetry_sdk::metrics::PeriodicReader::builder(CountingMetricExporter(exporter, diag))
                    .with_interval(settings.metric_interval)
                    .build(),
            );
        }
        let (batch, block_on) = (settings.batch, block_on());
        let started = if !matches!(sink, Sink::Otlp) {
            let (logs, cause) = log_exporter(&otlp.logs, &self.retries_end)?;
            let logs = OtelLogExporter::new(logs, cause, matches!(sink, Sink::OtlpEvents));
            BatchProcessor::start(name, &otlp.logs.endpoint, logs, resource, batch, block_on)
        } else if details_as_logs {
            let (spans, cause) = span_exporter(&otlp.traces, &self.retries_end)?;
            let spans = SdkExporter(WithoutDetails(spans), cause);
            BatchProcessor::start(name, &otlp.traces.endpoint, spans, resource, batch, block_on)
        } else {
            let (spans, cause) = span_exporter(&otlp.traces, &self.retries_end)?;
            BatchProcessor::start(name, &otlp.traces.endpoint, SdkExporter(spans, cause), resource, batch, block_on)
        };
        started.map_err(spawn_error)
    }

    /// Refused when the settings were resolved, with the feature named.
    #[cfg(not(feature = "otlp"))]
    fn start_otlp(
        &mut self,
        _: &Settings,
        name: &'static str,
        _: &Sink,
        _: bool,
        _: &Resource,
    ) -> Result<BatchProcessor> {
        Err(Error::exporter(name, "needs observra's `otlp` cargo feature"))
    }
}

/// How a backend's thread runs an exporter's future.
fn block_on() -> BlockOn {
    Arc::new(|fut| futures_executor::block_on(fut))
}

fn spawn_error(e: std::io::Error) -> Error {
    Error::exporter("batch", format!("starting the export thread: {e}"))
}

/// A backend that writes on this machine (stdout, a writer, a file), a
/// webhook, or a user's exporter.
fn start_local(settings: &Settings, sink: Sink, name: &'static str, resource: &Resource) -> Result<BatchProcessor> {
    use crate::export::jsonl::{Output, RotatingFile};
    let sealer = |path: Option<&std::path::Path>| {
        crate::export::audit::Sealer::new(settings.encryption_key, settings.audit_key, path, settings.jsonl_fsync)
            .map_err(|source| Error::AuditChain { setting: Setting::Env("OBSERVRA_JSONL_PATH"), source })
    };
    let io_error = |path: &std::path::Path, source| Error::Io {
        setting: Setting::Env("OBSERVRA_JSONL_PATH"),
        path: path.to_path_buf(),
        source,
    };
    let (batch, block_on) = (settings.batch, block_on());
    let started = match sink {
        Sink::Stdout => {
            let exporter =
                JsonlExporter::new(Output::Stream(Box::new(crate::export::jsonl::Stdout::default())), sealer(None)?);
            BatchProcessor::start(name, "stdout", exporter, resource, batch, block_on)
        }
        Sink::Writer(w) => {
            let exporter = JsonlExporter::new(Output::Stream(w), sealer(None)?);
            BatchProcessor::start(name, "a writer", exporter, resource, batch, block_on)
        }
        Sink::File(path) => {
            let file = RotatingFile::open(&path, settings.jsonl_max_bytes, settings.jsonl_fsync)
                .map_err(|e| io_error(&path, e))?;
            let exporter = JsonlExporter::new(Output::File(file), sealer(Some(&path))?);
            // A restarted writer first attests what a crash left unfinished.
            exporter.write_recovery().map_err(|e| io_error(&path, e))?;
            BatchProcessor::start(name, &path.display().to_string(), exporter, resource, batch, block_on)
        }
        Sink::Custom(start) => start(name, resource, batch, block_on),
        #[cfg(feature = "webhook")]
        Sink::Webhook(hook) => {
            let who = crate::diag::display_endpoint(&hook.url);
            let exporter = crate::export::webhook::WebhookExporter::new(hook);
            BatchProcessor::start(name, &who, exporter, resource, batch, block_on)
        }
        Sink::Otlp | Sink::OtelLog | Sink::OtlpEvents => unreachable!("started by Backends::start_otlp"),
    };
    started.map_err(spawn_error)
}

/// The Prometheus endpoint and the reader it serves, when one is configured.
#[cfg(feature = "prometheus")]
fn start_prometheus(
    settings: &Settings,
) -> Result<(Option<PromEndpoint>, Option<crate::export::prometheus::SharedReader>)> {
    let Some((addr, setting)) = settings.prometheus_addr.clone() else { return Ok((None, None)) };
    let reader = crate::export::prometheus::SharedReader::new();
    let endpoint = crate::export::prometheus::Endpoint::start(addr, reader.clone())
        .map_err(|e| Error::invalid(setting, addr.to_string(), format!("cannot listen there: {e}")))?;
    Ok((Some(endpoint), Some(reader)))
}

/// No Prometheus endpoint in this build.
#[cfg(not(feature = "prometheus"))]
fn start_prometheus(_: &Settings) -> Result<(Option<PromEndpoint>, Option<opentelemetry_sdk::metrics::ManualReader>)> {
    Ok((None, None))
}

/// A meter provider over the readers there are, if any.
fn meter_provider(
    resource: &Resource,
    otlp: Option<impl opentelemetry_sdk::metrics::reader::MetricReader>,
    prometheus: Option<impl opentelemetry_sdk::metrics::reader::MetricReader>,
) -> Option<SdkMeterProvider> {
    if otlp.is_none() && prometheus.is_none() {
        return None;
    }
    let mut b = SdkMeterProvider::builder().with_resource(resource.clone());
    if let Some(r) = otlp {
        b = b.with_reader(r);
    }
    if let Some(r) = prometheus {
        b = b.with_reader(r);
    }
    Some(b.build())
}

/// The installed state, with the collector thread started on its queue
/// (the collector holds the install weakly: the install owns its queue);
/// and the error of starting that thread, if it failed.
fn start_collector(
    settings: &mut Settings,
    meter: Option<opentelemetry::metrics::Meter>,
    processors: Arc<FanOut>,
) -> (Arc<Installed>, Option<std::io::Error>) {
    let instruments = meter.as_ref().map(crate::account::accounting::Instruments::new);
    let gauges = meter.as_ref().map(crate::record::declare::register_gauges).unwrap_or_default();
    let policy = SpanPolicy {
        content_allowed: settings.batch.content_allowed,
        limits: settings.batch.limits,
        redactor: settings.redactor.clone(),
    };
    let tail = match settings.sampler {
        Sampler::KeepInteresting(k) => Some(k),
        _ => None,
    };
    let mut collector_error = None;
    let installed = Arc::new_cyclic(|weak| {
        let (queue, end) = FrameQueue::new(settings.span_buffer_bytes);
        if let Err(e) = crate::collect::start(end, instruments.clone(), processors, policy, tail, weak.clone()) {
            collector_error = Some(e);
        }
        Installed {
            ids: RandomIdGenerator::default(),
            sampler: sdk_sampler(settings.sampler),
            accounting: crate::account::accounting::Accounting {
                instruments,
                prices: std::mem::take(&mut settings.prices),
                window: settings.budget.window.map(|(w, usd)| crate::account::budget::Window::new(w, usd)),
                budget: settings.budget,
                callback: settings.budget_callback.take(),
            },
            queue,
            scope: InstrumentationScope::builder(sc::SCOPE_NAME).with_version(env!("CARGO_PKG_VERSION")).build(),
            meter,
            gauges: std::sync::Mutex::new(gauges),
        }
    });
    (installed, collector_error)
}

/// Sets observra's own subscriber as the global default. Another thread
/// may have set one in between; then it must carry our layer.
fn set_subscriber(max_level: tracing::Level) -> Result<()> {
    let subscriber: OwnSubscriber = crate::record::current::FrameAware::new(
        tracing_subscriber::registry()
            .with(tracing::level_filters::LevelFilter::from_level(max_level))
            .with(crate::record::layer::ObservraLayer::gated()),
    );
    if tracing::subscriber::set_global_default(subscriber).is_err()
        && !tracing::dispatcher::get_default(crate::record::layer::dispatcher_has_layer)
    {
        let _ = take_and_stop(Duration::from_millis(100));
        return Err(Error::ForeignSubscriber);
    }
    Ok(())
}
