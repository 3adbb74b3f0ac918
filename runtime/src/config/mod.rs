//! Configuration: the `init()` builder, a builder per concern ([`Otlp`],
//! [`Jsonl`], [`Redaction`], [`Metrics`], beside `Webhook` and `Budget`),
//! the environment variables they honour, and every default.
//!
//! One rule resolves every setting ([`pick`]): a value set in code wins,
//! then the standard `OTEL_*` (or `OBSERVRA_*`) environment variable, then
//! the default. Each concern resolves its own settings; [`Builder::resolve`]
//! puts them together. Every value is validated here, so a bad one is a
//! typed [`Error::InvalidConfig`] from [`Builder::install`] naming the
//! variable (or builder method) and the value, never a panic and never a
//! silent default.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry::KeyValue;

use crate::account::budget::{Budget, BudgetCallback, BudgetEvent};
use crate::account::cost::{CostTable, Price};
pub(crate) use crate::collect::tail::KeepInteresting;
use crate::error::{Error, Result, Setting};
use crate::export::batch::BatchSettings;
#[cfg(feature = "webhook")]
use crate::export::otlp_settings::header_map;
pub(crate) use crate::export::otlp_settings::{OtlpSettings, Protocol, Temporality};
use crate::policy::content::CaptureMode;

mod jsonl;
mod metrics;
mod otlp;
mod redaction;
pub use jsonl::Jsonl;
pub use metrics::Metrics;
pub use otlp::Otlp;
#[cfg(any(feature = "webhook", test))]
pub(crate) use otlp::validate_endpoint;
pub use redaction::Redaction;

/// Default deadline for the flush-and-shutdown the guard does on drop.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Default OTLP export timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`).
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default span queue bound (`OTEL_BSP_MAX_QUEUE_SIZE`).
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 2048;
/// The largest span queue accepted (its slots are allocated at install).
pub const MAX_QUEUE_SIZE: usize = 1 << 18;
/// Default largest batch handed to an exporter (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 512;
/// Default delay between two scheduled exports (`OTEL_BSP_SCHEDULE_DELAY`).
pub const DEFAULT_SCHEDULED_DELAY: Duration = Duration::from_millis(5000);
/// Default metric export interval (`OTEL_METRIC_EXPORT_INTERVAL`).
pub const DEFAULT_METRIC_INTERVAL: Duration = Duration::from_millis(60_000);
/// Default OTLP/HTTP base endpoint.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
/// Default OTLP/gRPC endpoint.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Default path of the `jsonl` backend when `OBSERVRA_JSONL_PATH` is not set.
pub const DEFAULT_JSONL_PATH: &str = "observra-spans.jsonl";

/// Where finished spans go. Several at once is the `multi` set-up: see
/// [`Builder::backends`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// OTLP traces and metrics to a collector (HTTP/protobuf or gRPC).
    Otlp,
    /// GenAI operations and `tracing` events as OTLP log records (plus
    /// metrics over OTLP); see the `otel_log` section of the README.
    OtelLog,
    /// JSON lines appended to a file (`OBSERVRA_JSONL_PATH`).
    Jsonl,
    /// JSON lines on standard output: the embedded default.
    Stdout,
    /// JSON batches POSTed to a URL; see `observra::Webhook` (feature `webhook`).
    Webhook,
}

impl Backend {
    /// The name used in `OBSERVRA_BACKEND`, in `health()` and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Otlp => "otlp",
            Backend::OtelLog => "otel_log",
            Backend::Jsonl => "jsonl",
            Backend::Stdout => "stdout",
            Backend::Webhook => "webhook",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "otlp" => Some(Backend::Otlp),
            "otel_log" | "otel-log" => Some(Backend::OtelLog),
            "jsonl" => Some(Backend::Jsonl),
            "stdout" => Some(Backend::Stdout),
            "webhook" => Some(Backend::Webhook),
            _ => None,
        }
    }
}

impl Backend {
    /// The cargo feature this backend needs, when this build lacks it.
    fn feature_missing(self) -> Option<&'static str> {
        match self {
            Backend::Otlp | Backend::OtelLog if !cfg!(feature = "otlp") => Some("otlp"),
            Backend::Webhook if !cfg!(feature = "webhook") => Some("webhook"),
            _ => None,
        }
    }
}

const BACKEND_NAMES: &str = "otlp, otel_log, jsonl, stdout, webhook (or a comma-separated list of them, or multi)";

/// Parses `OBSERVRA_BACKEND` (one name, a comma-separated list, or `multi`
/// with the list in `OBSERVRA_BACKENDS`).
fn parse_backends(env: &EnvSource) -> Result<Option<Vec<Backend>>> {
    let Some(v) = env.get("OBSERVRA_BACKEND") else { return Ok(None) };
    let (var, list) = if v.trim().eq_ignore_ascii_case("multi") {
        match env.get("OBSERVRA_BACKENDS") {
            Some(list) => ("OBSERVRA_BACKENDS", list),
            None => {
                return Err(Error::invalid(
                    Setting::Env("OBSERVRA_BACKEND"),
                    v,
                    "multi needs the list of backends in OBSERVRA_BACKENDS, e.g. otlp,jsonl",
                ));
            }
        }
    } else {
        ("OBSERVRA_BACKEND", v)
    };
    let mut out = Vec::new();
    for item in list.split(',').filter(|i| !i.trim().is_empty()) {
        let b = Backend::parse(item).ok_or_else(|| {
            Error::invalid(
                Setting::Env(var),
                list.clone(),
                format!("unknown backend {:?}; expected {BACKEND_NAMES}", item.trim()),
            )
        })?;
        out.push(b);
    }
    check_backends(Setting::Env(var), &out, &list)?;
    Ok(Some(out))
}

fn check_backends(setting: Setting, list: &[Backend], shown: &str) -> Result<()> {
    if list.is_empty() {
        return Err(Error::invalid(setting, shown, format!("no backend given; expected {BACKEND_NAMES}")));
    }
    for (i, b) in list.iter().enumerate() {
        if list[..i].contains(b) {
            return Err(Error::invalid(setting, shown, format!("backend {} is listed twice", b.name())));
        }
    }
    if list.contains(&Backend::Jsonl) && list.contains(&Backend::Stdout) {
        return Err(Error::invalid(setting, shown, "jsonl and stdout both write JSON lines; choose one"));
    }
    Ok(())
}

/// Which spans are recorded. Mirrors `OTEL_TRACES_SAMPLER`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Record every span (`always_on`).
    AlwaysOn,
    /// Record nothing (`always_off`).
    AlwaysOff,
    /// Record a fraction of traces, decided by trace id (`traceidratio`).
    TraceIdRatio(f64),
    /// Follow the parent's decision; roots always sampled (`parentbased_always_on`, the default).
    ParentBasedAlwaysOn,
    /// Follow the parent's decision; roots never sampled (`parentbased_always_off`).
    ParentBasedAlwaysOff,
    /// Follow the parent's decision; roots sampled by ratio (`parentbased_traceidratio`).
    ParentBasedTraceIdRatio(f64),
    /// Tail sampling in process (`OBSERVRA_TRACES_SAMPLER=keep_interesting`):
    /// see [`Sampler::keep_interesting`].
    KeepInteresting(KeepInteresting),
}

impl Sampler {
    /// Tail sampling in process: every span is recorded, and the collector
    /// holds a trace's spans until its local root ends, then keeps the
    /// whole trace when any span failed, any budget was crossed, the root
    /// took longer than [`KeepInteresting::slower_than`], or a ratio draw on
    /// the trace id says so ([`KeepInteresting::ratio`]); otherwise it drops
    /// it, counted in `observra.pipeline.sampler.dropped` by reason.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use observra::Sampler;
    ///
    /// let _telemetry = observra::init()
    ///     .sampler(Sampler::keep_interesting().ratio(0.05).slower_than(Duration::from_secs(20)))
    ///     .install();
    /// ```
    ///
    /// GenAI, agent and HTTP metrics count every call whatever it decides.
    /// A span is held once it is fit to leave (content policy, redaction
    /// and the span limits applied: captured content is cut at 64 KiB by
    /// default), and memory is bounded ([`KeepInteresting::max_traces`],
    /// [`KeepInteresting::max_spans`], [`KeepInteresting::max_bytes`],
    /// [`KeepInteresting::max_spans_per_trace`]),
    /// and a trace whose root does not end within
    /// [`KeepInteresting::timeout`] is decided on what is held, by the same
    /// rules without the duration one. The decision is local: a trace whose
    /// root is in another process is decided here on the spans made here
    /// (cross-service tail sampling is the OpenTelemetry Collector's job).
    pub fn keep_interesting() -> KeepInteresting {
        KeepInteresting::default()
    }
}

impl From<KeepInteresting> for Sampler {
    fn from(k: KeepInteresting) -> Sampler {
        Sampler::KeepInteresting(k)
    }
}

/// Where configuration values are read from when the builder has none.
pub(crate) enum EnvSource {
    Process,
    Map(HashMap<String, String>),
}

impl EnvSource {
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        let v = match self {
            EnvSource::Process => std::env::var(key).ok(),
            EnvSource::Map(m) => m.get(key).cloned(),
        };
        // The OpenTelemetry spec treats an empty value as unset.
        v.filter(|v| !v.trim().is_empty())
    }
}

/// Builder for the observra pipeline; start it with [`crate::init`].
///
/// ```no_run
/// let _telemetry = observra::init()
///     .service_name("support-bot")
///     .install()
///     .expect("telemetry configuration");
/// ```
#[must_use = "call .install() to start exporting"]
pub struct Builder {
    env: EnvSource,
    service_name: Option<String>,
    service_version: Option<String>,
    environment: Option<String>,
    resource: Vec<KeyValue>,
    backends: Option<Vec<Backend>>,
    #[cfg(feature = "webhook")]
    webhook: Option<crate::export::webhook::Webhook>,
    otlp: Otlp,
    max_queue_size: Option<usize>,
    max_export_batch_size: Option<usize>,
    scheduled_delay: Option<Duration>,
    metrics: Metrics,
    sampler: Option<Sampler>,
    jsonl: Jsonl,
    shutdown_timeout: Option<Duration>,
    disabled: Option<bool>,
    max_level: tracing::Level,
    set_global_subscriber: bool,
    fast_path: Option<bool>,
    diagnostics: Option<crate::diag::DiagnosticLevel>,
    capture: Option<CaptureMode>,
    cost_table: Option<CostTable>,
    prices: Vec<(String, Price)>,
    budget: Budget,
    budget_callback: Option<BudgetCallback>,
    redact: Redaction,
    custom: Vec<(&'static str, crate::export::batch::StartLeg)>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("service_name", &self.service_name)
            .field("backends", &self.backends)
            .field("otlp", &self.otlp)
            .field("sampler", &self.sampler)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            env: EnvSource::Process,
            service_name: None,
            service_version: None,
            environment: None,
            resource: Vec::new(),
            backends: None,
            #[cfg(feature = "webhook")]
            webhook: None,
            otlp: Otlp::default(),
            max_queue_size: None,
            max_export_batch_size: None,
            scheduled_delay: None,
            metrics: Metrics::default(),
            sampler: None,
            jsonl: Jsonl::default(),
            shutdown_timeout: None,
            disabled: None,
            max_level: tracing::Level::INFO,
            set_global_subscriber: true,
            fast_path: None,
            diagnostics: None,
            capture: None,
            cost_table: None,
            prices: Vec::new(),
            budget: Budget::default(),
            budget_callback: None,
            redact: Redaction::default(),
            custom: Vec::new(),
        }
    }
}

impl Builder {
    /// Read configuration variables from `vars` instead of the process
    /// environment. Useful for configuration kept in a file, and for tests.
    pub fn env_from<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.env = EnvSource::Map(vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }
    /// `service.name` (overrides `OTEL_SERVICE_NAME`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }
    /// `service.version`.
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }
    /// `deployment.environment.name` (e.g. `production`).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }
    /// Adds a resource attribute (overrides the same key from `OTEL_RESOURCE_ATTRIBUTES`).
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<opentelemetry::Value>) -> Self {
        self.resource.push(KeyValue::new(key.into(), value.into()));
        self
    }
    /// Chooses the backend (overrides `OBSERVRA_BACKEND`).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backends = Some(vec![backend]);
        self
    }
    /// Sends every span to several backends at once (overrides
    /// `OBSERVRA_BACKEND`). Each has its own bounded queue and export
    /// thread, so a slow or failing one never delays or loses data on the
    /// others. A backend listed twice is an error at `install()`.
    pub fn backends(mut self, backends: impl IntoIterator<Item = Backend>) -> Self {
        self.backends = Some(backends.into_iter().collect());
        self
    }
    /// Adds a backend of your own: any OTel SDK [`SpanExporter`](opentelemetry_sdk::trace::SpanExporter),
    /// named `name` in `health()` and in the pipeline metrics. It gets its
    /// own bounded queue and export thread, redaction included, like the
    /// built-in backends. With no backend chosen otherwise, it is the only one.
    pub fn exporter<E>(mut self, name: &'static str, exporter: E) -> Self
    where
        E: opentelemetry_sdk::trace::SpanExporter + 'static,
    {
        self.custom.push((name, crate::export::batch::start_leg(name, exporter)));
        self
    }
    #[cfg(feature = "webhook")]
    #[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
    /// Configures the webhook backend, and selects it when no backend is
    /// chosen otherwise (overrides the `OBSERVRA_WEBHOOK_*` variables).
    pub fn webhook(mut self, webhook: crate::export::webhook::Webhook) -> Self {
        self.webhook = Some(webhook);
        self
    }
    /// All OTLP settings at once (see [`Otlp`]); the single setters below
    /// change one of them.
    pub fn otlp(mut self, otlp: Otlp) -> Self {
        self.otlp = otlp;
        self
    }
    /// OTLP base endpoint, e.g. `http://collector:4318` (overrides
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`). For HTTP the signal path (`/v1/traces`,
    /// `/v1/metrics`) is appended; for gRPC it is used as given.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp = self.otlp.endpoint(url);
        self
    }
    /// Full OTLP traces URL, used as given (overrides `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    pub fn traces_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp = self.otlp.traces_endpoint(url);
        self
    }
    /// Full OTLP metrics URL, used as given (overrides `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`).
    pub fn metrics_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp = self.otlp.metrics_endpoint(url);
        self
    }
    /// Full OTLP logs URL for the `otel_log` backend, used as given
    /// (overrides `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`).
    pub fn logs_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp = self.otlp.logs_endpoint(url);
        self
    }
    /// Adds a header sent with every OTLP request (replaces `OTEL_EXPORTER_OTLP_HEADERS`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.otlp = self.otlp.header(name, value);
        self
    }
    /// OTLP transport (overrides `OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.otlp = self.otlp.protocol(protocol);
        self
    }
    /// OTLP request timeout (overrides `OTEL_EXPORTER_OTLP_TIMEOUT`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.otlp = self.otlp.timeout(timeout);
        self
    }
    /// Bound of the span queue; spans beyond it are dropped and counted
    /// (overrides `OTEL_BSP_MAX_QUEUE_SIZE`).
    pub fn max_queue_size(mut self, size: usize) -> Self {
        self.max_queue_size = Some(size);
        self
    }
    /// Largest batch handed to the exporter (overrides `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    pub fn max_export_batch_size(mut self, size: usize) -> Self {
        self.max_export_batch_size = Some(size);
        self
    }
    /// Delay between scheduled exports (overrides `OTEL_BSP_SCHEDULE_DELAY`).
    pub fn scheduled_delay(mut self, delay: Duration) -> Self {
        self.scheduled_delay = Some(delay);
        self
    }
    /// All metric settings at once (see [`Metrics`]); the single setters
    /// below change one of them.
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }
    /// Interval of the periodic metric export (overrides `OTEL_METRIC_EXPORT_INTERVAL`).
    pub fn metric_export_interval(mut self, interval: Duration) -> Self {
        self.metrics = self.metrics.export_interval(interval);
        self
    }
    /// Metric temporality (overrides `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`).
    pub fn temporality(mut self, temporality: Temporality) -> Self {
        self.metrics = self.metrics.temporality(temporality);
        self
    }
    /// Sampler (overrides `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`
    /// and `OBSERVRA_TRACES_SAMPLER`): a [`Sampler`], or
    /// [`Sampler::keep_interesting`]'s settings.
    pub fn sampler(mut self, sampler: impl Into<Sampler>) -> Self {
        self.sampler = Some(sampler.into());
        self
    }
    /// All JSONL settings at once (see [`Jsonl`]); the single setters below
    /// change one of them.
    pub fn jsonl(mut self, jsonl: Jsonl) -> Self {
        self.jsonl = jsonl;
        self
    }
    /// Path of the JSONL file; selects the `jsonl` backend unless another is
    /// chosen (overrides `OBSERVRA_JSONL_PATH`).
    pub fn jsonl_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.jsonl = self.jsonl.path(path);
        self
    }
    /// Writes JSON lines to `writer` instead of stdout or a file. The writer is
    /// only ever called from the export thread.
    pub fn jsonl_writer(mut self, writer: impl Write + Send + 'static) -> Self {
        self.jsonl = self.jsonl.writer(writer);
        self
    }
    /// Deadline of the flush-and-shutdown done when the guard drops (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }
    /// Turns all telemetry off (overrides `OTEL_SDK_DISABLED`).
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = Some(disabled);
        self
    }
    /// Most verbose `tracing` level recorded by the subscriber `install()`
    /// sets up (default `INFO`). Ignored when you bring your own subscriber.
    pub fn max_level(mut self, level: tracing::Level) -> Self {
        self.max_level = level;
        self
    }
    /// Whether `install()` sets a global `tracing` subscriber when none is
    /// set yet (default `true`). Turn off when you will add
    /// [`crate::layer()`] to your own registry after installing.
    pub fn set_global_subscriber(mut self, yes: bool) -> Self {
        self.set_global_subscriber = yes;
        self
    }

    /// Whether the macros take the frame path (default `true`;
    /// `OBSERVRA_FAST_PATH`). When observra owns the `tracing` subscriber,
    /// an instrumented call then opens no `tracing` span: the caller's thread
    /// keeps ids, stamps and what the function records in a compact frame,
    /// and the span and its metrics are built on observra's collector
    /// thread, which makes a call cheaper than the hand-written
    /// OpenTelemetry code (see BENCHMARKS.md). The call still joins the
    /// trace of the span it runs in, and `tracing` spans and events inside it
    /// are its children and events, but `tracing::Span::current()` inside
    /// its body is the enclosing span (use [`crate::current_span`] to record
    /// on the call). Turn it off when code inside instrumented calls needs
    /// their own `tracing` spans. Functions with `response = manual` or
    /// `stream`, content capture, and subscribers you build yourself always
    /// use `tracing` spans, recorded into the same frame.
    pub fn fast_path(mut self, on: bool) -> Self {
        self.fast_path = Some(on);
        self
    }

    /// How much observra tells about its own trouble on standard error (or
    /// through `tracing` at WARN when your subscriber is in charge): export
    /// failures (the first at once, then at most one line per backend per
    /// minute) and what was not delivered at shutdown. Overrides
    /// `OBSERVRA_LOG` and `OTEL_LOG_LEVEL`; the default is
    /// [`DiagnosticLevel::Warn`](crate::diag::DiagnosticLevel::Warn). A clean run
    /// prints nothing at any level.
    pub fn diagnostics(mut self, level: crate::diag::DiagnosticLevel) -> Self {
        self.diagnostics = Some(level);
        self
    }

    /// Message content capture (overrides
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`; off by default).
    pub fn capture_content(mut self, mode: CaptureMode) -> Self {
        self.capture = Some(mode);
        self
    }
    /// Replaces the price table (the built-in one, and `OBSERVRA_PRICES`).
    /// A NaN, infinite or negative price in it makes `install()` fail with
    /// an error naming this setting and the model.
    pub fn cost_table(mut self, table: CostTable) -> Self {
        self.cost_table = Some(table);
        self
    }
    /// Adds or overrides one model's prices (USD per million tokens), on top
    /// of the built-in table and `OBSERVRA_PRICES`. A NaN, infinite or
    /// negative price makes `install()` fail with an error naming this
    /// setting and the model.
    pub fn price(mut self, model: impl Into<String>, price: Price) -> Self {
        self.prices.push((model.into(), price));
        self
    }
    /// Cost and token limits; see [`Budget`].
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }
    /// Called (off no lock, panics contained) each time a budget limit is crossed.
    pub fn on_budget_exceeded(mut self, callback: impl Fn(&BudgetEvent) + Send + Sync + 'static) -> Self {
        self.budget_callback = Some(std::sync::Arc::new(callback));
        self
    }

    /// Serves Prometheus's `GET /metrics` on `addr` (overrides
    /// `OBSERVRA_PROMETHEUS_ADDR`). Port 0 picks a free port; see
    /// [`crate::prometheus_addr`].
    pub fn prometheus_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.metrics = self.metrics.prometheus_addr(addr);
        self
    }

    /// Encrypts every JSONL line with AES-256-GCM under this key (overrides
    /// `OBSERVRA_JSONL_KEY`); read the file back with `observra::audit::decrypt` (feature `audit`)
    /// or `observra decrypt`.
    pub fn jsonl_encryption_key(mut self, key: [u8; 32]) -> Self {
        self.jsonl = self.jsonl.encryption_key(key);
        self
    }
    /// Chains every JSONL record with HMAC-SHA256 under this key (overrides
    /// `OBSERVRA_AUDIT_KEY`); check it with `observra::audit::verify` or
    /// `observra verify`.
    pub fn jsonl_audit_key(mut self, key: [u8; 32]) -> Self {
        self.jsonl = self.jsonl.audit_key(key);
        self
    }

    /// Rotates the JSONL file once it exceeds `bytes` (checked after each
    /// batch): `spans.jsonl` → `spans.jsonl.1`, `.2`, ... (overrides
    /// `OBSERVRA_JSONL_MAX_BYTES`). With a hash chain, each rotated file ends
    /// with a seal and the chain continues in the next file.
    pub fn jsonl_max_bytes(mut self, bytes: u64) -> Self {
        self.jsonl = self.jsonl.max_bytes(bytes);
        self
    }
    /// Syncs each JSONL batch and the head anchor to disk before the batch
    /// counts as written (overrides `OBSERVRA_JSONL_FSYNC`; default: on
    /// for a hash-chained file, off otherwise). See [`Jsonl::fsync`].
    pub fn jsonl_fsync(mut self, sync: bool) -> Self {
        self.jsonl = self.jsonl.fsync(sync);
        self
    }
    /// All redaction settings at once (see [`Redaction`]); the single
    /// setters below change one of them.
    pub fn redact(mut self, redaction: Redaction) -> Self {
        self.redact = redaction;
        self
    }
    /// Turns redaction of secrets on or off (overrides `OBSERVRA_REDACTION`).
    /// It is on unless turned off explicitly.
    pub fn redaction(mut self, on: bool) -> Self {
        self.redact = self.redact.enabled(on);
        self
    }
    /// Adds a redaction rule: matches of `pattern` (a regex) become
    /// `[REDACTED:<kind>]`. An invalid pattern is an error at `install()`.
    pub fn redact_rule(mut self, kind: impl Into<String>, pattern: impl Into<String>) -> Self {
        self.redact = self.redact.rule(kind, pattern);
        self
    }
    /// Adds your own redaction matcher, run after the patterns on every
    /// string observra exports (span names, attributes, events, status):
    /// return the text with its secrets replaced, or `None` when it found
    /// nothing. It runs on the collector thread, once per span whatever the
    /// number of backends, never on the caller's. Should it
    /// panic, the span it was redacting is dropped and counted
    /// ([`Health::spans_redaction_failed`](crate::Health::spans_redaction_failed)),
    /// never exported unredacted.
    pub fn redact_with(
        mut self,
        kind: impl Into<String>,
        matcher: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.redact = self.redact.matcher(kind, matcher);
        self
    }
    /// Adds an attribute key name whose values are always redacted (matched
    /// on the last dotted segment, case-insensitively).
    pub fn redact_key(mut self, name: impl Into<String>) -> Self {
        self.redact = self.redact.key(name);
        self
    }

    /// Resolves builder values, environment and defaults into [`Settings`].
    pub(crate) fn resolve(mut self) -> Result<Settings> {
        let env = std::mem::replace(&mut self.env, EnvSource::Process);
        let disabled = pick(self.disabled, &env, "OTEL_SDK_DISABLED", parse_flag)?.unwrap_or(false);

        let resource = resolve_resource(&self, &env)?;
        let sampler = match self.sampler {
            Some(s) => validate_sampler(s)?,
            None => parse_sampler(&env)?,
        };

        let mut jsonl = std::mem::take(&mut self.jsonl).resolve(&env)?;
        let any_otlp_env = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        ]
        .iter()
        .any(|k| env.get(k).is_some());
        let backends = match self.backends.take() {
            Some(list) => {
                let shown = list.iter().map(|b| b.name()).collect::<Vec<_>>().join(",");
                check_backends(Setting::Builder("backends"), &list, &shown)?;
                list
            }
            None => match parse_backends(&env)? {
                Some(list) => list,
                None if !self.custom.is_empty() => Vec::new(),
                None if jsonl.writer.is_some() => vec![Backend::Stdout],
                #[cfg(feature = "webhook")]
                None if self.webhook.is_some() => vec![Backend::Webhook],
                None if self.otlp.has_endpoint() || any_otlp_env => {
                    vec![Backend::Otlp]
                }
                None if jsonl.path.is_some() => vec![Backend::Jsonl],
                None => vec![Backend::Stdout],
            },
        };
        for b in &backends {
            if let Some(feature) = b.feature_missing() {
                let setting = if env.get("OBSERVRA_BACKEND").is_some() {
                    Setting::Env("OBSERVRA_BACKEND")
                } else if any_otlp_env && *b == Backend::Otlp {
                    Setting::Env("OTEL_EXPORTER_OTLP_ENDPOINT")
                } else {
                    Setting::Builder("backends")
                };
                return Err(Error::invalid(
                    setting,
                    b.name(),
                    format!("the {} backend needs observra's `{feature}` cargo feature", b.name()),
                ));
            }
        }
        #[cfg(feature = "webhook")]
        let webhook = if backends.contains(&Backend::Webhook) { Some(resolve_webhook(&mut self, &env)?) } else { None };

        let mut batch = BatchSettings {
            content_allowed: false,
            limits: crate::policy::limits::SpanLimits::resolve(&|k| env.get(k))?,
            max_queue_size: pick(self.max_queue_size, &env, "OTEL_BSP_MAX_QUEUE_SIZE", parse_usize)?
                .unwrap_or(DEFAULT_MAX_QUEUE_SIZE),
            max_export_batch_size: pick(
                self.max_export_batch_size,
                &env,
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                parse_usize,
            )?
            .unwrap_or(DEFAULT_MAX_EXPORT_BATCH_SIZE),
            scheduled_delay: pick(self.scheduled_delay, &env, "OTEL_BSP_SCHEDULE_DELAY", parse_millis)?
                .unwrap_or(DEFAULT_SCHEDULED_DELAY),
        };
        // The queue's slots are allocated at install: a huge bound is a
        // typed error here, not an allocation failure that aborts.
        let queue_setting = match self.max_queue_size {
            Some(_) => Setting::Builder("max_queue_size"),
            None => Setting::Env("OTEL_BSP_MAX_QUEUE_SIZE"),
        };
        if batch.max_queue_size == 0 {
            return Err(Error::invalid(queue_setting, "0", "the span queue needs room for at least one span"));
        }
        if batch.max_queue_size > MAX_QUEUE_SIZE {
            return Err(Error::invalid(
                queue_setting,
                batch.max_queue_size.to_string(),
                format!("at most {MAX_QUEUE_SIZE} spans (the queue is allocated up front)"),
            ));
        }

        let uses_otlp = backends.iter().any(|b| matches!(b, Backend::Otlp | Backend::OtelLog));
        let otlp = if uses_otlp { Some(self.otlp.resolve(&env)?) } else { None };
        let metrics = std::mem::take(&mut self.metrics).resolve(&env)?;
        let shutdown_timeout = self.shutdown_timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT);
        let capture = match self.capture {
            Some(c) => c,
            None => match env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") {
                None => CaptureMode::NoContent,
                Some(v) => CaptureMode::parse(&v).ok_or_else(|| {
                    Error::invalid(
                        Setting::Env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
                        v.clone(),
                        "expected NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT, true or false",
                    )
                })?,
            },
        };
        batch.content_allowed = capture != CaptureMode::NoContent;
        let mut prices = match self.cost_table.take() {
            Some(t) => {
                t.check().map_err(|(model, reason)| Error::invalid(Setting::Builder("cost_table"), model, reason))?;
                t
            }
            None => {
                let mut t = CostTable::builtin();
                if let Some(path) = env.get("OBSERVRA_PRICES") {
                    t.extend(CostTable::from_path(std::path::Path::new(&path), Setting::Env("OBSERVRA_PRICES"))?);
                }
                t
            }
        };
        let fast_path = pick(self.fast_path, &env, "OBSERVRA_FAST_PATH", parse_flag)?.unwrap_or(true);
        let diagnostics = match self.diagnostics {
            Some(l) => l,
            None => {
                let from = |var: &'static str| {
                    env.get(var).map(|v| {
                        crate::diag::DiagnosticLevel::parse(&v).ok_or_else(|| {
                            Error::invalid(Setting::Env(var), v.clone(), "expected off, error, warn, info or debug")
                        })
                    })
                };
                from("OBSERVRA_LOG").or_else(|| from("OTEL_LOG_LEVEL")).transpose()?.unwrap_or_default()
            }
        };
        let redactor = std::mem::take(&mut self.redact).resolve(&env)?;
        for (model, price) in std::mem::take(&mut self.prices) {
            price.check().map_err(|reason| Error::invalid(Setting::Builder("price"), model.clone(), reason))?;
            prices.insert(model, price);
        }
        for (name, v) in [
            ("budget.per_call_usd", self.budget.call_usd),
            ("budget.per_agent_usd", self.budget.agent_usd),
            ("budget.per_window_usd", self.budget.window.map(|w| w.1)),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(Error::invalid(
                        Setting::Builder(name),
                        v.to_string(),
                        "must be a finite, non-negative amount",
                    ));
                }
            }
        }

        #[cfg(feature = "webhook")]
        let mut webhook = webhook;
        let sinks = backends
            .iter()
            .map(|b| {
                let sink = match b {
                    Backend::Otlp => Sink::Otlp,
                    Backend::OtelLog => Sink::OtelLog,
                    Backend::Stdout => match jsonl.writer.take() {
                        Some(w) => Sink::Writer(w),
                        None => Sink::Stdout,
                    },
                    Backend::Jsonl => match jsonl.writer.take() {
                        Some(w) => Sink::Writer(w),
                        None => Sink::File(jsonl.path.take().unwrap_or_else(|| PathBuf::from(DEFAULT_JSONL_PATH))),
                    },
                    #[cfg(feature = "webhook")]
                    Backend::Webhook => {
                        Sink::Webhook(webhook.take().unwrap_or_else(|| crate::export::webhook::Webhook::new("")))
                    }
                    // Refused above, with the feature named.
                    #[cfg(not(feature = "webhook"))]
                    Backend::Webhook => Sink::Stdout,
                };
                (sink, b.name())
            })
            .chain(std::mem::take(&mut self.custom).into_iter().map(|(name, start)| (Sink::Custom(start), name)))
            .collect::<Vec<_>>();

        Ok(Settings {
            disabled,
            resource,
            sampler,
            sinks,
            otlp,
            batch,
            metric_interval: metrics.interval,
            temporality: metrics.temporality,
            shutdown_timeout,
            max_level: self.max_level,
            set_global_subscriber: self.set_global_subscriber,
            fast_path,
            diagnostics,
            capture,
            prices,
            budget: self.budget,
            budget_callback: self.budget_callback.take(),
            prometheus_addr: metrics.prometheus_addr,
            otlp_metrics: metrics.otlp,
            encryption_key: jsonl.encryption_key,
            audit_key: jsonl.audit_key,
            redactor,
            jsonl_max_bytes: jsonl.max_bytes,
            jsonl_fsync: jsonl.fsync,
        })
    }
}

/// Everything `install()` needs, resolved and validated.
pub(crate) struct Settings {
    pub disabled: bool,
    pub resource: Vec<KeyValue>,
    pub sampler: Sampler,
    /// One per backend, with the backend's name.
    pub sinks: Vec<(Sink, &'static str)>,
    pub otlp: Option<OtlpSettings>,
    pub batch: BatchSettings,
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub metric_interval: Duration,
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub temporality: Temporality,
    pub shutdown_timeout: Duration,
    pub max_level: tracing::Level,
    pub set_global_subscriber: bool,
    /// Whether the macros may take the frame path.
    pub fast_path: bool,
    /// How much observra says about its own trouble.
    pub diagnostics: crate::diag::DiagnosticLevel,
    pub capture: CaptureMode,
    pub prices: CostTable,
    pub budget: Budget,
    pub budget_callback: Option<BudgetCallback>,
    /// The address and the setting it came from (for bind errors).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub prometheus_addr: Option<(std::net::SocketAddr, Setting)>,
    /// Whether metrics also go out over OTLP (`OTEL_METRICS_EXPORTER`).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub otlp_metrics: bool,
    /// JSONL encryption key.
    pub encryption_key: Option<[u8; 32]>,
    /// JSONL hash-chain key.
    pub audit_key: Option<[u8; 32]>,
    /// The redaction engine, unless turned off.
    pub redactor: Option<std::sync::Arc<crate::redact::Redactor>>,
    /// Rotate the JSONL file past this size.
    pub jsonl_max_bytes: Option<u64>,
    /// Sync JSONL batches and the head anchor to disk.
    pub jsonl_fsync: bool,
}

/// The resolved destination of spans.
pub(crate) enum Sink {
    Otlp,
    OtelLog,
    Stdout,
    File(PathBuf),
    Writer(Box<dyn Write + Send>),
    #[cfg(feature = "webhook")]
    Webhook(crate::export::webhook::Webhook),
    /// A user's exporter, ready to start.
    Custom(crate::export::batch::StartLeg),
}

/// The webhook settings: the builder's, or the `OBSERVRA_WEBHOOK_*` variables.
#[cfg(feature = "webhook")]
fn resolve_webhook(b: &mut Builder, env: &EnvSource) -> Result<crate::export::webhook::Webhook> {
    use crate::export::webhook::Webhook;
    let (hook, url_setting, header_setting) = match b.webhook.take() {
        Some(w) => (w, Setting::Builder("webhook"), Setting::Builder("webhook")),
        None => {
            let Some(url) = env.get("OBSERVRA_WEBHOOK_URL") else {
                return Err(Error::invalid(
                    Setting::Env("OBSERVRA_WEBHOOK_URL"),
                    "",
                    "the webhook backend needs a URL: set OBSERVRA_WEBHOOK_URL or call Builder::webhook",
                ));
            };
            let mut w = Webhook::new(url);
            if let Some(secret) = env.get("OBSERVRA_WEBHOOK_SECRET") {
                w = w.secret(secret.trim());
            }
            if let Some(raw) = env.get("OBSERVRA_WEBHOOK_HEADERS") {
                for (k, v) in parse_kv_list("OBSERVRA_WEBHOOK_HEADERS", &raw)? {
                    w = w.header(k, v);
                }
            }
            if env.get("OBSERVRA_WEBHOOK_TIMEOUT").is_some() {
                w = w.timeout(
                    pick(None, env, "OBSERVRA_WEBHOOK_TIMEOUT", parse_millis)?.unwrap_or(Webhook::DEFAULT_TIMEOUT),
                );
            }
            if let Some(v) = env.get("OBSERVRA_WEBHOOK_MAX_RETRIES") {
                w = w.max_retries(v.trim().parse::<u32>().map_err(|_| {
                    Error::invalid(Setting::Env("OBSERVRA_WEBHOOK_MAX_RETRIES"), v.clone(), "expected a whole number")
                })?);
            }
            (w, Setting::Env("OBSERVRA_WEBHOOK_URL"), Setting::Env("OBSERVRA_WEBHOOK_HEADERS"))
        }
    };
    validate_endpoint(url_setting, &hook.url)?;
    header_map(header_setting, &hook.headers)?;
    if hook.timeout.is_zero() {
        return Err(Error::invalid(Setting::Builder("webhook"), "0", "the request timeout must be above zero"));
    }
    Ok(hook)
}

/// The one rule every setting follows: the value set in code; else the
/// environment variable, parsed (a typed error naming the variable and the
/// value when it does not parse); else `None`, for the caller's default.
pub(crate) fn pick<T>(
    code: Option<T>,
    env: &EnvSource,
    var: &'static str,
    parse: fn(&str) -> std::result::Result<T, &'static str>,
) -> Result<Option<T>> {
    if code.is_some() {
        return Ok(code);
    }
    match env.get(var) {
        None => Ok(None),
        Some(v) => parse(v.trim()).map(Some).map_err(|reason| Error::invalid(Setting::Env(var), v, reason)),
    }
}

/// A count.
pub(crate) fn parse_usize(v: &str) -> std::result::Result<usize, &'static str> {
    v.parse().map_err(|_| "expected a non-negative integer")
}

/// A duration in whole milliseconds.
pub(crate) fn parse_millis(v: &str) -> std::result::Result<Duration, &'static str> {
    v.parse::<u64>().map(Duration::from_millis).map_err(|_| "expected a whole number of milliseconds")
}

/// `true`/`1` or `false`/`0`.
pub(crate) fn parse_flag(v: &str) -> std::result::Result<bool, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("expected true or false"),
    }
}

fn validate_sampler(s: Sampler) -> Result<Sampler> {
    match s {
        Sampler::TraceIdRatio(r)
        | Sampler::ParentBasedTraceIdRatio(r)
        | Sampler::KeepInteresting(KeepInteresting { ratio: r, .. })
            if !(0.0..=1.0).contains(&r) =>
        {
            Err(Error::invalid(Setting::Builder("sampler"), r.to_string(), "the ratio must be between 0 and 1"))
        }
        Sampler::KeepInteresting(k) => {
            let zero = [
                ("keep_interesting().max_traces", k.max_traces),
                ("keep_interesting().max_spans", k.max_spans),
                ("keep_interesting().max_bytes", k.max_bytes),
                ("keep_interesting().max_spans_per_trace", k.max_spans_per_trace),
            ]
            .into_iter()
            .find(|(_, n)| *n == 0);
            if let Some((name, n)) = zero {
                return Err(Error::invalid(Setting::Builder(name), n.to_string(), "must be at least 1"));
            }
            if k.timeout.is_zero() {
                return Err(Error::invalid(
                    Setting::Builder("keep_interesting().timeout"),
                    "0".to_string(),
                    "must be longer than zero",
                ));
            }
            Ok(s)
        }
        s => Ok(s),
    }
}

/// A count of at least one.
fn parse_positive(v: &str) -> std::result::Result<usize, &'static str> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number of at least 1"),
    }
}

/// A duration in whole milliseconds, longer than zero.
fn parse_positive_millis(v: &str) -> std::result::Result<Duration, &'static str> {
    match v.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
        _ => Err("expected a whole number of milliseconds, at least 1"),
    }
}

/// `OBSERVRA_TRACES_SAMPLER=keep_interesting` and its settings, which
/// override `OTEL_TRACES_SAMPLER`; `None` when it is not set.
fn parse_tail_sampler(env: &EnvSource) -> Result<Option<Sampler>> {
    let Some(name) = env.get("OBSERVRA_TRACES_SAMPLER") else { return Ok(None) };
    if !name.trim().eq_ignore_ascii_case("keep_interesting") {
        return Err(Error::invalid(
            Setting::Env("OBSERVRA_TRACES_SAMPLER"),
            name,
            "unsupported sampler; expected keep_interesting (the OpenTelemetry samplers go in OTEL_TRACES_SAMPLER)",
        ));
    }
    let d = KeepInteresting::default();
    let ratio = pick(None, env, "OBSERVRA_TRACES_SAMPLER_ARG", |v| match v.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("expected a ratio between 0 and 1"),
    })?;
    Ok(Some(Sampler::KeepInteresting(KeepInteresting {
        ratio: ratio.unwrap_or(d.ratio),
        slower_than: pick(None, env, "OBSERVRA_TAIL_SLOWER_THAN_MS", parse_millis)?.unwrap_or(d.slower_than),
        timeout: pick(None, env, "OBSERVRA_TAIL_TIMEOUT_MS", parse_positive_millis)?.unwrap_or(d.timeout),
        max_traces: pick(None, env, "OBSERVRA_TAIL_MAX_TRACES", parse_positive)?.unwrap_or(d.max_traces),
        max_spans: pick(None, env, "OBSERVRA_TAIL_MAX_SPANS", parse_positive)?.unwrap_or(d.max_spans),
        max_bytes: pick(None, env, "OBSERVRA_TAIL_MAX_BYTES", parse_positive)?.unwrap_or(d.max_bytes),
        max_spans_per_trace: pick(None, env, "OBSERVRA_TAIL_MAX_SPANS_PER_TRACE", parse_positive)?
            .unwrap_or(d.max_spans_per_trace),
    })))
}

fn parse_sampler(env: &EnvSource) -> Result<Sampler> {
    if let Some(tail) = parse_tail_sampler(env)? {
        return Ok(tail);
    }
    let Some(name) = env.get("OTEL_TRACES_SAMPLER") else {
        return Ok(Sampler::ParentBasedAlwaysOn);
    };
    let ratio = || -> Result<f64> {
        let Some(arg) = env.get("OTEL_TRACES_SAMPLER_ARG") else {
            return Ok(1.0);
        };
        match arg.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
            _ => Err(Error::invalid(Setting::Env("OTEL_TRACES_SAMPLER_ARG"), arg, "expected a ratio between 0 and 1")),
        }
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "always_on" => Ok(Sampler::AlwaysOn),
        "always_off" => Ok(Sampler::AlwaysOff),
        "traceidratio" => Ok(Sampler::TraceIdRatio(ratio()?)),
        "parentbased_always_on" => Ok(Sampler::ParentBasedAlwaysOn),
        "parentbased_always_off" => Ok(Sampler::ParentBasedAlwaysOff),
        "parentbased_traceidratio" => Ok(Sampler::ParentBasedTraceIdRatio(ratio()?)),
        _ => Err(Error::invalid(
            Setting::Env("OTEL_TRACES_SAMPLER"),
            name,
            "unsupported sampler; expected one of: always_on, always_off, traceidratio, \
             parentbased_always_on, parentbased_always_off, parentbased_traceidratio",
        )),
    }
}

/// Parses a `key=value,key2=value2` list with percent-encoded values, as
/// used by `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`.
fn parse_kv_list(var: &'static str, raw: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in raw.split(',') {
        if item.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            return Err(Error::invalid(
                Setting::Env(var),
                raw,
                format!("entry {:?} has no '='; expected key=value pairs separated by commas", item.trim()),
            ));
        };
        let key = k.trim();
        if key.is_empty() {
            return Err(Error::invalid(Setting::Env(var), raw, format!("entry {:?} has an empty key", item.trim())));
        }
        let value = percent_decode(v.trim())
            .ok_or_else(|| Error::invalid(Setting::Env(var), raw, format!("entry {key:?} has a malformed %-escape")))?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn resolve_resource(b: &Builder, env: &EnvSource) -> Result<Vec<KeyValue>> {
    use observra_semconv as sc;
    let mut attrs: Vec<KeyValue> = Vec::new();
    let mut put = |kv: KeyValue| {
        attrs.retain(|a| a.key != kv.key);
        attrs.push(kv);
    };
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    put(KeyValue::new(sc::SERVICE_NAME, format!("unknown_service:{exe}")));
    put(KeyValue::new(sc::TELEMETRY_SDK_NAME, "opentelemetry"));
    put(KeyValue::new(sc::TELEMETRY_SDK_LANGUAGE, "rust"));
    put(KeyValue::new(sc::TELEMETRY_SDK_VERSION, "0.33"));
    put(KeyValue::new(sc::TELEMETRY_DISTRO_NAME, "observra"));
    put(KeyValue::new(sc::TELEMETRY_DISTRO_VERSION, env!("CARGO_PKG_VERSION")));
    if let Some(raw) = env.get("OTEL_RESOURCE_ATTRIBUTES") {
        for (k, v) in parse_kv_list("OTEL_RESOURCE_ATTRIBUTES", &raw)? {
            put(KeyValue::new(k, v));
        }
    }
    if let Some(name) = env.get("OTEL_SERVICE_NAME") {
        put(KeyValue::new(sc::SERVICE_NAME, name));
    }
    if let Some(name) = &b.service_name {
        if name.trim().is_empty() {
            return Err(Error::invalid(Setting::Builder("service_name"), name.clone(), "must not be empty"));
        }
        put(KeyValue::new(sc::SERVICE_NAME, name.clone()));
    }
    if let Some(v) = &b.service_version {
        put(KeyValue::new(sc::SERVICE_VERSION, v.clone()));
    }
    if let Some(v) = &b.environment {
        put(KeyValue::new(sc::DEPLOYMENT_ENVIRONMENT, v.clone()));
    }
    for kv in &b.resource {
        put(kv.clone());
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_escapes_and_rejects_bad_ones() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%2").as_deref(), None);
        assert_eq!(percent_decode("%zz").as_deref(), None);
    }

    /// The `install()` error of `builder`, with no environment variables.
    fn resolve_error(builder: Builder, vars: &[(&str, &str)]) -> Option<Error> {
        builder.env_from(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).resolve().err()
    }

    #[test]
    fn nan_infinite_and_negative_prices_are_typed_errors_naming_the_setting_and_model() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.01] {
            let err = resolve_error(Builder::default().price("my-model", Price::new(bad, 1.0)), &[])
                .unwrap_or_else(|| panic!("input price {bad} must be refused"));
            assert_eq!(err.setting(), Some(&Setting::Builder("price")), "{err}");
            assert!(err.to_string().contains("my-model") && err.to_string().contains("input"), "{err}");

            let mut table = CostTable::empty();
            table.insert("tabled", Price::new(1.0, 1.0).cache_write(bad));
            let err = resolve_error(Builder::default().cost_table(table), &[])
                .unwrap_or_else(|| panic!("cache_write price {bad} must be refused"));
            assert_eq!(err.setting(), Some(&Setting::Builder("cost_table")), "{err}");
            assert!(err.to_string().contains("tabled") && err.to_string().contains("cache_write"), "{err}");
        }
        assert!(resolve_error(Builder::default().price("free", Price::new(0.0, 0.0)), &[]).is_none());

        let path = std::env::temp_dir().join(format!("observra-negative-prices-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"models": {"neg-model": {"input": 1, "output": -3}}}"#).unwrap();
        let err = resolve_error(Builder::default(), &[("OBSERVRA_PRICES", path.to_str().unwrap())]);
        let _ = std::fs::remove_file(&path);
        let err = err.expect("a negative price in the file must be refused");
        assert_eq!(err.setting(), Some(&Setting::Env("OBSERVRA_PRICES")), "{err}");
        assert!(err.to_string().contains("neg-model") && err.to_string().contains("output"), "{err}");
    }

    #[test]
    fn endpoint_validation_accepts_hosts_ports_and_ipv6() {
        for ok in ["http://localhost:4318", "http://127.0.0.1", "http://[::1]:4317/x", "http://u:p@h:1"] {
            assert!(validate_endpoint(Setting::Builder("endpoint"), ok).is_ok(), "{ok}");
        }
        for bad in ["localhost:4318", "http://", "http://h:99999", "ftp://h", "http://h :1"] {
            assert!(validate_endpoint(Setting::Builder("endpoint"), bad).is_err(), "{bad}");
        }
    }
}

/// Asking for what a feature left out is a typed error naming the feature
/// (run by `.ci/run` with `--no-default-features` and with the defaults).
#[cfg(test)]
mod feature_errors {
    use super::*;

    fn install_error(vars: &[(&str, &str)]) -> Option<String> {
        Builder::default()
            .env_from(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .resolve()
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn each_left_out_feature_is_named_when_asked_for() {
        let mut cases: Vec<(&[(&str, &str)], &str)> = Vec::new();
        if !cfg!(feature = "otlp") {
            cases.push((&[("OBSERVRA_BACKEND", "otlp")], "`otlp` cargo feature"));
            cases.push((&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")], "`otlp` cargo feature"));
        }
        // Without `otlp`, the backend itself is refused first.
        if cfg!(feature = "otlp") && !cfg!(feature = "grpc") {
            cases.push((
                &[("OBSERVRA_BACKEND", "otlp"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
                "`grpc` cargo feature",
            ));
        }
        if cfg!(feature = "otlp") && !cfg!(feature = "tls") {
            cases.push((&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example:4318")], "`tls` cargo feature"));
        }
        if !cfg!(feature = "webhook") {
            cases.push((&[("OBSERVRA_BACKEND", "webhook")], "`webhook` cargo feature"));
        }
        if !cfg!(feature = "audit") {
            cases.push((&[("OBSERVRA_AUDIT_KEY", "x")], "`audit` cargo feature"));
        }
        if !cfg!(feature = "prometheus") {
            cases.push((&[("OBSERVRA_PROMETHEUS_ADDR", "127.0.0.1:0")], "`prometheus` cargo feature"));
        }
        for (vars, feature) in cases {
            let msg = install_error(vars).unwrap_or_else(|| panic!("{vars:?} must be refused"));
            assert!(msg.contains(feature), "{vars:?}: {msg}");
        }
    }

    #[test]
    fn the_default_set_up_needs_no_feature() {
        assert!(install_error(&[]).is_none(), "JSONL on stdout, always there");
        assert!(install_error(&[("OBSERVRA_BACKEND", "jsonl")]).is_none());
    }
}
