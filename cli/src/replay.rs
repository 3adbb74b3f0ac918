//! `observra replay`: sends a JSONL file's spans to an OTLP endpoint, with
//! their original ids, times, typed attributes, events, links, resource and
//! scope, so an air-gapped audit trail can be loaded into a backend later.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value as OtelValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use serde_json::{Map, Value};

use crate::spans::Span;

/// A JSON value back to a typed attribute value (arrays by element type).
fn otel_value(v: &Value) -> Option<OtelValue> {
    Some(match v {
        Value::Bool(b) => OtelValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => OtelValue::I64(i),
            None => OtelValue::F64(n.as_f64()?),
        },
        Value::String(s) => OtelValue::String(s.clone().into()),
        Value::Array(items) => {
            if items.iter().all(Value::is_string) {
                OtelValue::Array(Array::String(
                    items.iter().filter_map(Value::as_str).map(|s| StringValue::from(s.to_string())).collect(),
                ))
            } else if items.iter().all(Value::is_i64) {
                OtelValue::Array(Array::I64(items.iter().filter_map(Value::as_i64).collect()))
            } else if items.iter().all(Value::is_number) {
                OtelValue::Array(Array::F64(items.iter().filter_map(Value::as_f64).collect()))
            } else if items.iter().all(Value::is_boolean) {
                OtelValue::Array(Array::Bool(items.iter().filter_map(Value::as_bool).collect()))
            } else {
                OtelValue::String(v.to_string().into())
            }
        }
        Value::Null => return None,
        Value::Object(_) => OtelValue::String(v.to_string().into()),
    })
}

fn attributes(m: &Map<String, Value>) -> Vec<KeyValue> {
    m.iter().filter_map(|(k, v)| otel_value(v).map(|v| KeyValue::new(k.clone(), v))).collect()
}

fn time(ns: u64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Rebuilds the `SpanData` observra exported.
pub fn span_data(s: &Span) -> Result<SpanData, String> {
    let trace_id = TraceId::from_hex(&s.trace_id).map_err(|_| format!("bad trace_id {:?}", s.trace_id))?;
    let span_id = SpanId::from_hex(&s.span_id).map_err(|_| format!("bad span_id {:?}", s.span_id))?;
    let parent = match &s.parent_span_id {
        Some(p) => SpanId::from_hex(p).map_err(|_| format!("bad parent_span_id {p:?}"))?,
        None => SpanId::INVALID,
    };
    let kind = match s.kind.as_str() {
        "client" => SpanKind::Client,
        "server" => SpanKind::Server,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => SpanKind::Internal,
    };
    let status = match s.status_code.as_str() {
        "error" => Status::error(s.status_message.clone()),
        "ok" => Status::Ok,
        _ => Status::Unset,
    };
    let mut events = SpanEvents::default();
    events.events = s
        .events
        .iter()
        .map(|e| {
            Event::new(
                e["name"].as_str().unwrap_or("event").to_string(),
                time(e["time_unix_nano"].as_u64().unwrap_or(s.start_ns)),
                e["attributes"].as_object().map(attributes).unwrap_or_default(),
                0,
            )
        })
        .collect();
    let mut links = SpanLinks::default();
    links.links = s
        .links
        .iter()
        .filter_map(|l| {
            let t = TraceId::from_hex(l["trace_id"].as_str()?).ok()?;
            let sp = SpanId::from_hex(l["span_id"].as_str()?).ok()?;
            let cx = SpanContext::new(t, sp, TraceFlags::SAMPLED, true, TraceState::default());
            Some(Link::new(cx, l["attributes"].as_object().map(attributes).unwrap_or_default(), 0))
        })
        .collect();
    let mut scope = InstrumentationScope::builder(s.scope_name.clone());
    if let Some(v) = &s.scope_version {
        scope = scope.with_version(v.clone());
    }
    Ok(SpanData {
        span_context: SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, false, TraceState::default()),
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: kind,
        name: s.name.clone().into(),
        start_time: time(s.start_ns),
        end_time: time(s.end_ns),
        attributes: attributes(&s.attributes),
        dropped_attributes_count: 0,
        events,
        links,
        status,
        instrumentation_scope: scope.build(),
    })
}

/// Where and how to send.
pub struct Target {
    pub endpoint: String,
    pub grpc: bool,
    pub headers: Vec<(String, String)>,
}

/// Sends `spans`, grouped by resource, in batches; returns how many were sent.
pub fn replay(spans: &[Span], target: &Target, progress: &indicatif::ProgressBar) -> Result<usize, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
    let mut groups: BTreeMap<String, (Map<String, Value>, Vec<&Span>)> = BTreeMap::new();
    for s in spans {
        let key = Value::Object(s.resource.clone()).to_string();
        groups.entry(key).or_insert_with(|| (s.resource.clone(), Vec::new())).1.push(s);
    }
    let runtime = if target.grpc {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| format!("starting the gRPC runtime: {e}"))?,
        )
    } else {
        None
    };
    let mut sent = 0;
    for (resource, group) in groups.into_values() {
        let _enter = runtime.as_ref().map(|r| r.enter());
        let mut exporter = if target.grpc {
            let mut headers = http::HeaderMap::new();
            for (k, v) in &target.headers {
                if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(v)) {
                    headers.append(k, v);
                }
            }
            let metadata = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(target.endpoint.clone())
                .with_metadata(metadata)
                .build()
        } else {
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", target.endpoint.trim_end_matches('/')))
                .with_headers(target.headers.iter().cloned().collect())
                .build()
        }
        .map_err(|e| format!("building the OTLP exporter: {e}"))?;
        exporter.set_resource(&Resource::builder_empty().with_attributes(attributes(&resource)).build());
        for chunk in group.chunks(512) {
            let batch = chunk.iter().map(|s| span_data(s)).collect::<Result<Vec<_>, _>>()?;
            futures_executor::block_on(exporter.export(batch)).map_err(|e| format!("export failed: {e}"))?;
            sent += chunk.len();
            progress.inc(chunk.len() as u64);
        }
        let _ = exporter.shutdown();
    }
    if let Some(rt) = runtime {
        rt.shutdown_background();
    }
    Ok(sent)
}
