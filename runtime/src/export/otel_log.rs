//! The `otel_log` backend: GenAI operations and `tracing` events as OTLP log
//! records.
//!
//! It sits behind the same bounded span queue as every other backend and, on
//! the export thread, turns each finished span into log records handed to
//! the OTel SDK's OTLP `LogExporter` (HTTP/protobuf or gRPC):
//!
//! - a GenAI span (one with `gen_ai.operation.name`) becomes one record:
//!   body = the span name, event name `observra.genai.operation`, the span's
//!   attributes with their types, `observra.duration` in seconds, severity
//!   `ERROR` when the span failed and `INFO` otherwise;
//! - every event on any span (a `tracing` event inside a span, an exception)
//!   becomes one record: body = the message, the event's attributes,
//!   severity from its `tracing` level;
//! - the `gen_ai.client.inference.operation.details` event becomes the
//!   conventions' OpenTelemetry event: a record with that event name, the
//!   operation's attributes, and the messages as **structured** values
//!   (arrays and maps, not JSON strings). When this backend is configured,
//!   the OTLP traces backend leaves that event off the span
//!   ([`WithoutDetails`]), so it is delivered once, as a log record.
//!
//! The same exporter, in its details-only mode, is the `otlp_events`
//! backend observra adds beside the OTLP traces backend when content is
//! captured as events and no `otel_log` backend is configured: it sends
//! only those events, so the conventions' event is a log record whenever
//! there is an OTLP endpoint.
//!
//! Every record carries the trace and span ids of its span, so a log backend
//! links it to the trace.

use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::Status;
use opentelemetry::{InstrumentationScope, Key, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord, SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use observra_semconv as sc;

/// Turns spans into log records for an SDK [`LogExporter`].
pub(crate) struct OtelLogExporter<E> {
    inner: E,
    /// Only used to create records; it has no processors.
    logger: SdkLogger,
    _provider: SdkLoggerProvider,
    scope: InstrumentationScope,
    last_records: AtomicU64,
    /// The OTLP/HTTP client's hidden transport cause.
    cause: Option<crate::export::http_client::LastCause>,
    /// Only the details events (the OTLP backend's, sent as the
    /// conventions' events when no `otel_log` backend is configured).
    details_only: bool,
}

impl<E: LogExporter> std::fmt::Debug for OtelLogExporter<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelLogExporter").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<E: LogExporter> OtelLogExporter<E> {
    pub(crate) fn new(inner: E, cause: Option<crate::export::http_client::LastCause>, details_only: bool) -> Self {
        let provider = SdkLoggerProvider::builder().build();
        let logger = provider.logger(sc::SCOPE_NAME);
        OtelLogExporter {
            inner,
            logger,
            _provider: provider,
            scope: InstrumentationScope::builder(sc::SCOPE_NAME).with_version(env!("CARGO_PKG_VERSION")).build(),
            last_records: AtomicU64::new(0),
            cause,
            details_only,
        }
    }

    fn records(&self, span: &SpanData, out: &mut Vec<SdkLogRecord>) {
        let ctx = &span.span_context;
        let flags = Some(ctx.trace_flags());
        let operation = span.attributes.iter().any(|kv| kv.key.as_str() == sc::GEN_AI_OPERATION_NAME);
        if operation && !self.details_only {
            let mut r = self.logger.create_log_record();
            r.set_event_name(sc::GENAI_OPERATION_LOG_EVENT);
            r.set_timestamp(span.start_time);
            r.set_observed_timestamp(span.end_time);
            let failed = matches!(span.status, Status::Error { .. });
            r.set_severity_number(if failed { Severity::Error } else { Severity::Info });
            r.set_severity_text(if failed { "ERROR" } else { "INFO" });
            r.set_body(AnyValue::String(span.name.to_string().into()));
            r.set_trace_context(ctx.trace_id(), ctx.span_id(), flags);
            for kv in &span.attributes {
                r.add_attribute(kv.key.clone(), any_value(&kv.value));
            }
            let secs = span.end_time.duration_since(span.start_time).map(|d| d.as_secs_f64()).unwrap_or(0.0);
            r.add_attribute(Key::from_static_str(sc::OBSERVRA_DURATION), AnyValue::Double(secs));
            if let Status::Error { description } = &span.status {
                if !description.is_empty() {
                    r.add_attribute(Key::from_static_str(sc::OBSERVRA_STATUS_MESSAGE), description.to_string());
                }
            }
            out.push(r);
        }
        for event in span.events.iter() {
            if self.details_only && event.name != sc::GEN_AI_DETAILS_EVENT {
                continue;
            }
            let mut r = self.logger.create_log_record();
            let evaluation = event.name == sc::GEN_AI_EVALUATION_EVENT;
            if event.name == sc::GEN_AI_DETAILS_EVENT {
                r.set_event_name(sc::GEN_AI_DETAILS_EVENT);
            } else if evaluation {
                r.set_event_name(sc::GEN_AI_EVALUATION_EVENT);
            }
            r.set_timestamp(event.timestamp);
            r.set_observed_timestamp(event.timestamp);
            let level =
                event.attributes.iter().find(|kv| kv.key.as_str() == sc::EVENT_LEVEL).map(|kv| kv.value.as_str());
            let (number, text) = match level.as_deref() {
                Some("ERROR") => (Severity::Error, "ERROR"),
                Some("WARN") => (Severity::Warn, "WARN"),
                Some("DEBUG") => (Severity::Debug, "DEBUG"),
                Some("TRACE") => (Severity::Trace, "TRACE"),
                _ if event.name == "exception" => (Severity::Error, "ERROR"),
                _ => (Severity::Info, "INFO"),
            };
            r.set_severity_number(number);
            r.set_severity_text(text);
            if event.name != sc::GEN_AI_DETAILS_EVENT && !evaluation {
                r.set_body(AnyValue::String(event.name.to_string().into()));
            }
            // A late evaluation's span is a child of the call it grades: the
            // event is the graded call's, so its context is.
            let late = evaluation
                && span.parent_span_id != opentelemetry::trace::SpanId::INVALID
                && span.name.starts_with(crate::base::graded::EVALUATION_SPAN);
            let span_id = if late { span.parent_span_id } else { ctx.span_id() };
            r.set_trace_context(ctx.trace_id(), span_id, flags);
            let details = event.name == sc::GEN_AI_DETAILS_EVENT;
            for kv in &event.attributes {
                if kv.key.as_str() == sc::EVENT_LEVEL {
                    continue;
                }
                let value = match (&kv.value, details && crate::policy::content::is_content_attribute(kv.key.as_str()))
                {
                    // Captured content travels as JSON text inside observra; events carry it structured.
                    (Value::String(text), true) => match serde_json::from_str::<serde_json::Value>(text.as_str()) {
                        Ok(json) => json_value(json),
                        Err(_) => AnyValue::String(text.clone()),
                    },
                    (v, _) => any_value(v),
                };
                r.add_attribute(kv.key.clone(), value);
            }
            out.push(r);
        }
    }
}

/// JSON as a structured log value: objects become maps, arrays lists.
fn json_value(json: serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    match json {
        J::Null => AnyValue::String("".into()),
        J::Bool(b) => AnyValue::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => AnyValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => AnyValue::String(s.into()),
        J::Array(a) => AnyValue::ListAny(Box::new(a.into_iter().map(json_value).collect())),
        J::Object(o) => AnyValue::Map(Box::new(o.into_iter().map(|(k, v)| (Key::new(k), json_value(v))).collect())),
    }
}

/// The OTLP traces exporter when the `otel_log` backend is configured too:
/// the details event is delivered as a log record there, so it is left off
/// the span here (the conventions' events are log records).
#[derive(Debug)]
pub(crate) struct WithoutDetails<E>(pub E);

impl<E: SpanExporter> SpanExporter for WithoutDetails<E> {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        for span in batch.iter_mut() {
            span.events.events.retain(|e| e.name != sc::GEN_AI_DETAILS_EVENT);
        }
        self.0.export(batch).await
    }
    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// An attribute value as a log `AnyValue`, keeping its type.
fn any_value(v: &Value) -> AnyValue {
    use opentelemetry::Array;
    match v {
        Value::Bool(b) => AnyValue::Boolean(*b),
        Value::I64(i) => AnyValue::Int(*i),
        Value::F64(f) => AnyValue::Double(*f),
        Value::String(s) => AnyValue::String(s.clone()),
        Value::Array(Array::Bool(a)) => a.iter().map(|b| AnyValue::Boolean(*b)).collect(),
        Value::Array(Array::I64(a)) => a.iter().map(|i| AnyValue::Int(*i)).collect(),
        Value::Array(Array::F64(a)) => a.iter().map(|f| AnyValue::Double(*f)).collect(),
        Value::Array(Array::String(a)) => a.iter().map(|s| AnyValue::String(s.clone())).collect(),
        other => AnyValue::String(other.to_string().into()),
    }
}

impl<E: LogExporter> SpanExporter for OtelLogExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut records = Vec::with_capacity(batch.len());
        for span in &batch {
            self.records(span, &mut records);
        }
        self.last_records.store(records.len() as u64, Ordering::Release);
        if records.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(&SdkLogRecord, &InstrumentationScope)> = records.iter().map(|r| (r, &self.scope)).collect();
        self.inner.export(LogBatch::new(&pairs)).await
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: LogExporter> crate::export::batch::BackendExporter for OtelLogExporter<E> {
    fn log_records(&self) -> u64 {
        self.last_records.load(Ordering::Acquire)
    }
    fn delivers_logs(&self) -> bool {
        true
    }
    fn explain(&self, error: String) -> String {
        crate::export::http_client::explain(error, self.cause.as_ref())
    }
}
