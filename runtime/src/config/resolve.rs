//! Resolution: a [`Builder`] and the environment become the [`Settings`]
//! `install()` starts from. [`Builder::resolve`] puts the concerns together
//! in a fixed order (so the first bad value is the one reported); each
//! concern is one function here, or the `resolve` of its own builder
//! ([`Otlp`](super::otlp::Otlp), [`Jsonl`](super::jsonl::Jsonl),
//! [`Metrics`](super::metrics::Metrics), [`Redaction`](super::redaction::Redaction)).

use opentelemetry::KeyValue;

use super::Settings;
use super::backend::{self, Backend};
use super::builder::{Builder, GenAiConventions, QueryValues};
use super::defaults::{
    DEFAULT_MAX_EXPORT_BATCH_SIZE, DEFAULT_MAX_QUEUE_SIZE, DEFAULT_SCHEDULED_DELAY, DEFAULT_SHUTDOWN_TIMEOUT,
    MAX_QUEUE_SIZE,
};
use super::env::{EnvSource, parse_flag, parse_kv_list, parse_millis, parse_usize, pick};
use super::jsonl::JsonlSettings;
#[cfg(feature = "webhook")]
use super::otlp::validate_endpoint;
use super::sampler;
use crate::account::budget::Budget;
use crate::account::cost::{CostTable, Price};
use crate::diag::DiagnosticLevel;
use crate::error::{Error, Result, Setting};
use crate::export::batch::BatchSettings;
#[cfg(feature = "webhook")]
use crate::export::otlp_settings::header_map;
#[cfg(feature = "webhook")]
use crate::export::webhook::Webhook;
use crate::policy::content::CaptureMode;
use crate::policy::limits::SpanLimits;

impl Builder {
    /// Resolves builder values, environment and defaults into [`Settings`].
    pub(crate) fn resolve(mut self) -> Result<Settings> {
        let env = std::mem::replace(&mut self.env, EnvSource::Process);
        let disabled = pick(self.disabled, &env, "OTEL_SDK_DISABLED", parse_flag)?.unwrap_or(false);

        let resource = resolve_resource(&self, &env)?;
        let sampler = sampler::resolve(self.sampler, &env)?;

        let mut jsonl = std::mem::take(&mut self.jsonl).resolve(&env)?;
        let backends = resolve_backends(&mut self, &jsonl, &env)?;
        #[cfg(feature = "webhook")]
        let webhook = if backends.contains(&Backend::Webhook) {
            Some(backend::Sink::Webhook(resolve_webhook(self.webhook.take(), &env)?))
        } else {
            None
        };
        #[cfg(not(feature = "webhook"))]
        let webhook = None;

        let mut batch = resolve_batch(&self, &env)?;
        let span_buffer_bytes = resolve_span_buffer(self.span_buffer_bytes, &env)?;
        let uses_otlp = backends.iter().any(|b| matches!(b, Backend::Otlp | Backend::OtelLog));
        let otlp = if uses_otlp { Some(self.otlp.resolve(&env)?) } else { None };
        let metrics = std::mem::take(&mut self.metrics).resolve(&env)?;
        let shutdown_timeout = self.shutdown_timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT);
        let capture = resolve_capture(self.capture, &env)?;
        batch.content_allowed = capture != CaptureMode::NoContent;
        let mut prices = resolve_price_table(self.cost_table.take(), &env)?;
        let fast_path = pick(self.fast_path, &env, "OBSERVRA_FAST_PATH", parse_flag)?.unwrap_or(true);
        let self_metrics = pick(self.self_metrics, &env, "OBSERVRA_SELF_METRICS", parse_flag)?.unwrap_or(true);
        let keep_query_values = pick(self.http_query_values, &env, "OBSERVRA_HTTP_QUERY_VALUES", parse_query_values)?
            .unwrap_or_default()
            == QueryValues::NonSensitive;
        let diagnostics = resolve_diagnostics(self.diagnostics, &env)?;
        let redactor = std::mem::take(&mut self.redact).resolve(&env)?;
        add_prices(&mut prices, std::mem::take(&mut self.prices))?;
        check_budget(&self.budget)?;

        let genai_latest = resolve_conventions(self.genai_conventions, &env) == GenAiConventions::LatestExperimental;
        let details_as_log =
            pick(self.details_as_log, &env, "OBSERVRA_DETAILS_EVENT", parse_details_event)?.unwrap_or(true);
        let mut sinks = backend::sinks(&backends, &mut jsonl, webhook, std::mem::take(&mut self.custom));
        // The details event is an OpenTelemetry event: with OTLP and no
        // `otel_log` backend, it goes to the logs endpoint on its own.
        let events = matches!(capture, CaptureMode::EventOnly | CaptureMode::SpanAndEvent);
        if details_as_log && events && backends.contains(&Backend::Otlp) && !backends.contains(&Backend::OtelLog) {
            sinks.push((backend::Sink::OtlpEvents, backend::OTLP_EVENTS));
        }

        Ok(Settings {
            disabled,
            resource,
            sampler,
            sinks,
            otlp,
            batch,
            span_buffer_bytes,
            metric_interval: metrics.interval,
            temporality: metrics.temporality,
            shutdown_timeout,
            max_level: self.max_level,
            set_global_subscriber: self.set_global_subscriber,
            fast_path,
            keep_query_values,
            self_metrics,
            genai_latest,
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

/// The resource attributes: the SDK's own, then `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_SERVICE_NAME`, then the builder's values, each over the last.
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

/// The backends: the builder's list, else `OBSERVRA_BACKEND`, else the one
/// the other settings point at (a user's exporter, a writer, a webhook, an
/// OTLP endpoint, a JSONL path), else stdout. A backend this build left
/// out is refused.
fn resolve_backends(b: &mut Builder, jsonl: &JsonlSettings, env: &EnvSource) -> Result<Vec<Backend>> {
    let any_otlp_env =
        ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
            .iter()
            .any(|k| env.get(k).is_some());
    let backends = match b.backends.take() {
        Some(list) => {
            let shown = list.iter().map(|item| item.name()).collect::<Vec<_>>().join(",");
            backend::check_backends(Setting::Builder("backends"), &list, &shown)?;
            list
        }
        None => match backend::parse_backends(env)? {
            Some(list) => list,
            None if !b.custom.is_empty() => Vec::new(),
            None if jsonl.writer.is_some() => vec![Backend::Stdout],
            #[cfg(feature = "webhook")]
            None if b.webhook.is_some() => vec![Backend::Webhook],
            None if b.otlp.has_endpoint() || any_otlp_env => {
                vec![Backend::Otlp]
            }
            None if jsonl.path.is_some() => vec![Backend::Jsonl],
            None => vec![Backend::Stdout],
        },
    };
    backend::check_features(&backends, env, any_otlp_env)?;
    Ok(backends)
}

/// The webhook settings: the builder's, or the `OBSERVRA_WEBHOOK_*` variables.
#[cfg(feature = "webhook")]
fn resolve_webhook(code: Option<Webhook>, env: &EnvSource) -> Result<Webhook> {
    let (hook, url_setting, header_setting) = match code {
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

/// The span queue and batches: code, then the `OTEL_BSP_*` variables, then
/// the defaults; and the span limits. Content stays off until the capture
/// mode is known.
fn resolve_batch(b: &Builder, env: &EnvSource) -> Result<BatchSettings> {
    let batch = BatchSettings {
        content_allowed: false,
        limits: SpanLimits::resolve(&|k| env.get(k))?,
        max_queue_size: pick(b.max_queue_size, env, "OTEL_BSP_MAX_QUEUE_SIZE", parse_usize)?
            .unwrap_or(DEFAULT_MAX_QUEUE_SIZE),
        max_export_batch_size: pick(b.max_export_batch_size, env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", parse_usize)?
            .unwrap_or(DEFAULT_MAX_EXPORT_BATCH_SIZE),
        scheduled_delay: pick(b.scheduled_delay, env, "OTEL_BSP_SCHEDULE_DELAY", parse_millis)?
            .unwrap_or(DEFAULT_SCHEDULED_DELAY),
    };
    // The queue's slots are allocated at install: a huge bound is a
    // typed error here, not an allocation failure that aborts.
    let queue_setting = match b.max_queue_size {
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
    Ok(batch)
}

/// `OBSERVRA_HTTP_QUERY_VALUES`: `redacted` or `non_sensitive`.
fn parse_query_values(v: &str) -> std::result::Result<QueryValues, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "redacted" => Ok(QueryValues::Redacted),
        "non_sensitive" => Ok(QueryValues::NonSensitive),
        _ => Err("expected redacted or non_sensitive"),
    }
}

/// The GenAI conventions to emit: code, then `gen_ai_latest_experimental`
/// in `OTEL_SEMCONV_STABILITY_OPT_IN` (a comma-separated list whose other
/// values name other conventions and are left alone, as every
/// OpenTelemetry instrumentation does), then v1.41.
fn resolve_conventions(code: Option<GenAiConventions>, env: &EnvSource) -> GenAiConventions {
    code.unwrap_or_else(|| {
        let opt_in = env.get("OTEL_SEMCONV_STABILITY_OPT_IN").unwrap_or_default();
        if opt_in.split(',').any(|v| v.trim().eq_ignore_ascii_case("gen_ai_latest_experimental")) {
            GenAiConventions::LatestExperimental
        } else {
            GenAiConventions::V1_41
        }
    })
}

fn parse_details_event(v: &str) -> std::result::Result<bool, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "log_record" => Ok(true),
        "span_event" => Ok(false),
        _ => Err("expected log_record or span_event"),
    }
}

/// The bound of the callers' span buffers: code, then
/// `OBSERVRA_SPAN_BUFFER_BYTES`, then 16 MiB.
fn resolve_span_buffer(code: Option<usize>, env: &EnvSource) -> Result<usize> {
    const RANGE: std::ops::RangeInclusive<usize> = 65_536..=(4 << 30);
    let bytes = pick(code, env, "OBSERVRA_SPAN_BUFFER_BYTES", parse_usize)?;
    match bytes {
        None => Ok(crate::base::queue::FrameQueue::DEFAULT_BYTES),
        Some(b) if RANGE.contains(&b) => Ok(b),
        Some(b) => {
            let setting = match code {
                Some(_) => Setting::Builder("span_buffer_bytes"),
                None => Setting::Env("OBSERVRA_SPAN_BUFFER_BYTES"),
            };
            Err(Error::invalid(setting, b.to_string(), "from 65536 (64 KiB) to 4294967296 (4 GiB) bytes"))
        }
    }
}

/// Message content capture: code, then
/// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, then off.
fn resolve_capture(code: Option<CaptureMode>, env: &EnvSource) -> Result<CaptureMode> {
    match code {
        Some(c) => Ok(c),
        None => match env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") {
            None => Ok(CaptureMode::NoContent),
            Some(v) => CaptureMode::parse(&v).ok_or_else(|| {
                Error::invalid(
                    Setting::Env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
                    v.clone(),
                    "expected NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT, true or false",
                )
            }),
        },
    }
}

/// The price table: the builder's, checked; else the built-in one extended
/// by the file `OBSERVRA_PRICES` names.
fn resolve_price_table(code: Option<CostTable>, env: &EnvSource) -> Result<CostTable> {
    match code {
        Some(t) => {
            t.check().map_err(|(model, reason)| Error::invalid(Setting::Builder("cost_table"), model, reason))?;
            Ok(t)
        }
        None => {
            let mut t = CostTable::builtin();
            if let Some(path) = env.get("OBSERVRA_PRICES") {
                t.extend(CostTable::from_path(std::path::Path::new(&path), Setting::Env("OBSERVRA_PRICES"))?);
            }
            Ok(t)
        }
    }
}

/// The builder's single prices, each checked, over the table.
fn add_prices(table: &mut CostTable, prices: Vec<(String, Price)>) -> Result<()> {
    for (model, price) in prices {
        price.check().map_err(|reason| Error::invalid(Setting::Builder("price"), model.clone(), reason))?;
        table.insert(model, price);
    }
    Ok(())
}

/// Every budget amount is finite and not negative.
fn check_budget(budget: &Budget) -> Result<()> {
    for (name, v) in [
        ("budget.per_call_usd", budget.call_usd),
        ("budget.per_agent_usd", budget.agent_usd),
        ("budget.per_window_usd", budget.window.map(|w| w.1)),
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
    Ok(())
}

/// How much observra says about its own trouble: code, then `OBSERVRA_LOG`,
/// then `OTEL_LOG_LEVEL`, then warnings.
fn resolve_diagnostics(code: Option<DiagnosticLevel>, env: &EnvSource) -> Result<DiagnosticLevel> {
    if let Some(l) = code {
        return Ok(l);
    }
    let from = |var: &'static str| {
        env.get(var).map(|v| {
            DiagnosticLevel::parse(&v)
                .ok_or_else(|| Error::invalid(Setting::Env(var), v.clone(), "expected off, error, warn, info or debug"))
        })
    };
    Ok(from("OBSERVRA_LOG").or_else(|| from("OTEL_LOG_LEVEL")).transpose()?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

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
