//! The public [`Builder`] that `init()` returns: its fields, the code's
//! values, and one setter per setting. Turning it into the resolved
//! settings is `resolve.rs`'s job.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use opentelemetry::KeyValue;

use super::backend::Backend;
use super::env::EnvSource;
use super::jsonl::Jsonl;
use super::metrics::Metrics;
use super::otlp::Otlp;
use super::redaction::Redaction;
use super::sampler::Sampler;
use crate::account::budget::{Budget, BudgetCallback, BudgetEvent};
use crate::account::cost::{CostTable, Price};
use crate::export::otlp_settings::{Protocol, Temporality};
use crate::policy::content::CaptureMode;

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
    pub(super) env: EnvSource,
    pub(super) service_name: Option<String>,
    pub(super) service_version: Option<String>,
    pub(super) environment: Option<String>,
    pub(super) resource: Vec<KeyValue>,
    pub(super) backends: Option<Vec<Backend>>,
    #[cfg(feature = "webhook")]
    pub(super) webhook: Option<crate::export::webhook::Webhook>,
    pub(super) otlp: Otlp,
    pub(super) max_queue_size: Option<usize>,
    pub(super) span_buffer_bytes: Option<usize>,
    pub(super) max_export_batch_size: Option<usize>,
    pub(super) scheduled_delay: Option<Duration>,
    pub(super) metrics: Metrics,
    pub(super) sampler: Option<Sampler>,
    pub(super) jsonl: Jsonl,
    pub(super) shutdown_timeout: Option<Duration>,
    pub(super) disabled: Option<bool>,
    pub(super) max_level: tracing::Level,
    pub(super) set_global_subscriber: bool,
    pub(super) fast_path: Option<bool>,
    pub(super) http_query_values: Option<QueryValues>,
    pub(super) self_metrics: Option<bool>,
    pub(super) details_as_log: Option<bool>,
    pub(super) genai_conventions: Option<GenAiConventions>,
    pub(super) diagnostics: Option<crate::diag::DiagnosticLevel>,
    pub(super) capture: Option<CaptureMode>,
    pub(super) cost_table: Option<CostTable>,
    pub(super) prices: Vec<(String, Price)>,
    pub(super) budget: Budget,
    pub(super) budget_callback: Option<BudgetCallback>,
    pub(super) redact: Redaction,
    pub(super) custom: Vec<(&'static str, crate::export::batch::StartBackend)>,
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
            span_buffer_bytes: None,
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
            http_query_values: None,
            self_metrics: None,
            details_as_log: None,
            genai_conventions: None,
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

/// Which release of the GenAI semantic conventions observra emits
/// ([`Builder::genai_conventions`], `OTEL_SEMCONV_STABILITY_OPT_IN`).
///
/// The conventions' own rule for instrumentations already in use: keep
/// emitting the version you emit by default, and offer the newer one
/// behind `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`. The
/// README's "GenAI conventions: two modes" section lists what differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GenAiConventions {
    /// Semantic conventions v1.41 (the default).
    #[default]
    V1_41,
    /// The newest GenAI conventions observra follows, from the
    /// `semantic-conventions-genai` repository (development status: names
    /// may still change there): `gen_ai.request.top_k` as an integer,
    /// retrieval's own `gen_ai.retrieval.top_k`, and the per-invocation
    /// `gen_ai.invoke_agent.inference_calls` and
    /// `gen_ai.invoke_agent.tool_calls` metrics.
    LatestExperimental,
}

/// What the HTTP integration shows of query values in `url.query` and
/// `url.full` ([`Builder::http_query_values`], `OBSERVRA_HTTP_QUERY_VALUES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueryValues {
    /// Every value is `REDACTED`, whatever its key (`redacted`, the
    /// default): a signed URL's signature or a key passed as a parameter
    /// never leaves, whatever it is called.
    #[default]
    Redacted,
    /// Values stay unless their key is sensitive (`non_sensitive`): the
    /// conventions' list (`AWSAccessKeyId`, `Signature`, `sig`,
    /// `X-Goog-Signature`) and keys named like a secret (`key`, `token`,
    /// `secret`, `password`, `auth`, `credential`, `signature` in the name).
    /// What stays still goes through redaction, like every string.
    NonSensitive,
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
        self.custom.push((name, crate::export::batch::start_backend(name, exporter)));
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
    /// Bound, in bytes, of the closed spans waiting on the callers'
    /// threads for the collector (overrides `OBSERVRA_SPAN_BUFFER_BYTES`;
    /// 16 MiB by default, about 47,000 spans of a `#[traced]` call; at
    /// least 65,536, at most 4 GiB). This is what absorbs a burst: a span
    /// that finds it full is dropped and counted (`collector_queue`).
    /// Nothing is allocated up front: it is what the buffers may hold.
    pub fn span_buffer_bytes(mut self, bytes: usize) -> Self {
        self.span_buffer_bytes = Some(bytes);
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

    /// Whether observra exports its own pipeline metrics
    /// (`observra.pipeline.*`: spans produced, queued, exported, dropped by
    /// reason, export calls and latency; overrides `OBSERVRA_SELF_METRICS`;
    /// on by default). `health()` reads the same figures either way; the
    /// GenAI, agent, cost and budget metrics are not affected.
    pub fn self_metrics(mut self, on: bool) -> Self {
        self.self_metrics = Some(on);
        self
    }

    /// Which release of the GenAI conventions to emit (overrides
    /// `OTEL_SEMCONV_STABILITY_OPT_IN`, where `gen_ai_latest_experimental`
    /// in its comma-separated list selects
    /// [`GenAiConventions::LatestExperimental`]); v1.41 by default.
    ///
    /// ```
    /// let builder = observra::init().genai_conventions(observra::GenAiConventions::LatestExperimental);
    /// ```
    pub fn genai_conventions(mut self, conventions: GenAiConventions) -> Self {
        self.genai_conventions = Some(conventions);
        self
    }

    /// Where the `gen_ai.client.inference.operation.details` event goes when
    /// the OTLP backend is configured and content is captured as events
    /// (`EVENT_ONLY`, `SPAN_AND_EVENT`); overrides `OBSERVRA_DETAILS_EVENT`
    /// (`log_record` or `span_event`). By default (`true`) it is sent as the
    /// conventions say, as an OTLP log record in the call's trace (to the
    /// logs endpoint, `/v1/logs`), and the span no longer carries it;
    /// `false` keeps it a span event, for a collector that takes no logs.
    /// Without an OTLP backend it is always a span event.
    pub fn details_event_as_log(mut self, on: bool) -> Self {
        self.details_as_log = Some(on);
        self
    }

    /// What `url.query` and `url.full` of the HTTP integration
    /// ([`crate::web`]) show of query values (overrides
    /// `OBSERVRA_HTTP_QUERY_VALUES`): every value as `REDACTED` (the
    /// default), or the values of keys that are not sensitive.
    pub fn http_query_values(mut self, values: QueryValues) -> Self {
        self.http_query_values = Some(values);
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
}
