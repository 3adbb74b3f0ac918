//! The OTLP/HTTP span exporter (cargo feature `otlp`): each batch encoded
//! as an `ExportTraceServiceRequest` straight from the `SpanData`, into one
//! buffer reused across batches, and sent on observra's own client
//! ([`crate::export::http_client`], which retries).
//!
//! The SDK's exporter first converts every span into `opentelemetry-proto`
//! structs (every string, id and attribute copied into its own allocation)
//! and then encodes those; this writes the same protobuf bytes with no
//! intermediate copy. The resource is encoded once. What it writes decodes
//! to what the SDK's conversion makes of the same batch (the unit test
//! compares the two), including the span flags (`0x100`, and `0x300` for
//! a remote parent) and an explicit status on every span.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_http::{Bytes, HttpClient};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::export::http_client::CauseKeepingClient;

/// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn tag(buf: &mut Vec<u8>, field: u32, wire: u32) {
    varint(buf, u64::from((field << 3) | wire));
}

/// A length-delimited field whose body `body` writes: the body goes after a
/// five-byte gap, which is closed up once its length is known.
fn nested(buf: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    tag(buf, field, LEN);
    let gap = buf.len();
    buf.extend_from_slice(&[0; 5]);
    body(buf);
    let len = buf.len() - gap - 5;
    let mut prefix = Vec::with_capacity(5);
    varint(&mut prefix, len as u64);
    buf[gap..gap + prefix.len()].copy_from_slice(&prefix);
    buf.copy_within(gap + 5.., gap + prefix.len());
    buf.truncate(gap + prefix.len() + len);
}

fn bytes_field(buf: &mut Vec<u8>, field: u32, data: &[u8]) {
    tag(buf, field, LEN);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// A proto3 string: left out when empty, as the default.
fn string_field(buf: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        bytes_field(buf, field, s.as_bytes());
    }
}

fn uint_field(buf: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        tag(buf, field, VARINT);
        varint(buf, v);
    }
}

fn fixed64_field(buf: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        tag(buf, field, FIXED64);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// `AnyValue`: the oneof member is written even when it is its type's default.
fn any_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => bytes_field(buf, 1, s.as_str().as_bytes()),
        Value::Bool(b) => {
            tag(buf, 2, VARINT);
            varint(buf, u64::from(*b));
        }
        Value::I64(i) => {
            tag(buf, 3, VARINT);
            varint(buf, *i as u64);
        }
        Value::F64(f) => {
            tag(buf, 4, FIXED64);
            buf.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Array(a) => nested(buf, 5, |buf| array_value(buf, a)),
        // A value type newer than this encoder: its text.
        other => bytes_field(buf, 1, other.as_str().as_bytes()),
    }
}

fn array_value(buf: &mut Vec<u8>, a: &Array) {
    match a {
        Array::Bool(items) => items.iter().for_each(|b| nested(buf, 1, |buf| any_value(buf, &Value::Bool(*b)))),
        Array::I64(items) => items.iter().for_each(|i| nested(buf, 1, |buf| any_value(buf, &Value::I64(*i)))),
        Array::F64(items) => items.iter().for_each(|f| nested(buf, 1, |buf| any_value(buf, &Value::F64(*f)))),
        Array::String(items) => {
            items.iter().for_each(|s| nested(buf, 1, |buf| bytes_field(buf, 1, s.as_str().as_bytes())))
        }
        other => nested(buf, 1, |buf| bytes_field(buf, 1, other.to_string().as_bytes())),
    }
}

/// One `KeyValue` as field `field`.
fn key_value(buf: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    nested(buf, field, |buf| {
        string_field(buf, 1, key);
        nested(buf, 2, |buf| any_value(buf, value));
    });
}

/// `repeated KeyValue` as field `field`.
fn attributes<'a>(buf: &mut Vec<u8>, field: u32, attrs: impl IntoIterator<Item = &'a KeyValue>) {
    for kv in attrs {
        key_value(buf, field, kv.key.as_str(), &kv.value);
    }
}

/// The span flags: the W3C flags, "has is-remote" and "is remote".
fn flags(trace_flags: u8, remote: bool) -> u32 {
    u32::from(trace_flags) | 0x100 | if remote { 0x200 } else { 0 }
}

fn fixed32_field(buf: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        tag(buf, field, FIXED32);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn span(buf: &mut Vec<u8>, s: &SpanData) {
    let cx = &s.span_context;
    bytes_field(buf, 1, &cx.trace_id().to_bytes());
    bytes_field(buf, 2, &cx.span_id().to_bytes());
    string_field(buf, 3, &cx.trace_state().header());
    if s.parent_span_id != SpanId::INVALID {
        bytes_field(buf, 4, &s.parent_span_id.to_bytes());
    }
    string_field(buf, 5, &s.name);
    let kind = match s.span_kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    };
    uint_field(buf, 6, kind);
    fixed64_field(buf, 7, nanos(s.start_time));
    fixed64_field(buf, 8, nanos(s.end_time));
    attributes(buf, 9, &s.attributes);
    uint_field(buf, 10, u64::from(s.dropped_attributes_count));
    for e in s.events.iter() {
        nested(buf, 11, |buf| {
            fixed64_field(buf, 1, nanos(e.timestamp));
            string_field(buf, 2, &e.name);
            attributes(buf, 3, &e.attributes);
            uint_field(buf, 4, u64::from(e.dropped_attributes_count));
        });
    }
    uint_field(buf, 12, u64::from(s.events.dropped_count));
    for l in s.links.iter() {
        nested(buf, 13, |buf| {
            let cx = &l.span_context;
            bytes_field(buf, 1, &cx.trace_id().to_bytes());
            bytes_field(buf, 2, &cx.span_id().to_bytes());
            string_field(buf, 3, &cx.trace_state().header());
            attributes(buf, 4, &l.attributes);
            uint_field(buf, 5, u64::from(l.dropped_attributes_count));
            fixed32_field(buf, 6, flags(cx.trace_flags().to_u8(), cx.is_remote()));
        });
    }
    uint_field(buf, 14, u64::from(s.links.dropped_count));
    nested(buf, 15, |buf| match &s.status {
        Status::Error { description } => {
            string_field(buf, 2, description);
            uint_field(buf, 3, 2);
        }
        Status::Ok => uint_field(buf, 3, 1),
        Status::Unset => {}
    });
    fixed32_field(buf, 16, flags(cx.trace_flags().to_u8(), s.parent_span_is_remote));
}

fn scope(buf: &mut Vec<u8>, scope: &InstrumentationScope) {
    string_field(buf, 1, scope.name());
    string_field(buf, 2, scope.version().unwrap_or_default());
    attributes(buf, 3, scope.attributes());
}

/// The resource's part of a request, encoded once: the `Resource` message
/// (field 1 of `ResourceSpans`) and the schema URL (its field 3).
#[derive(Default)]
pub(crate) struct EncodedResource {
    message: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    fn of(resource: &Resource) -> Self {
        let mut message = Vec::new();
        nested(&mut message, 1, |buf| {
            for (k, v) in resource.iter() {
                key_value(buf, 1, k.as_str(), v);
            }
        });
        EncodedResource { message, schema_url: resource.schema_url().unwrap_or_default().to_string() }
    }
}

/// Writes `batch` as an `ExportTraceServiceRequest` into `buf`: one
/// `ResourceSpans`, a `ScopeSpans` per instrumentation scope in the order
/// first seen.
pub(crate) fn encode_request(buf: &mut Vec<u8>, resource: &EncodedResource, batch: &[SpanData]) {
    let mut scopes: Vec<&InstrumentationScope> = Vec::new();
    for s in batch {
        if !scopes.contains(&&s.instrumentation_scope) {
            scopes.push(&s.instrumentation_scope);
        }
    }
    nested(buf, 1, |buf| {
        buf.extend_from_slice(&resource.message);
        for sc in &scopes {
            nested(buf, 2, |buf| {
                nested(buf, 1, |buf| scope(buf, sc));
                for s in batch.iter().filter(|s| &&s.instrumentation_scope == sc) {
                    nested(buf, 2, |buf| span(buf, s));
                }
                string_field(buf, 3, sc.schema_url().unwrap_or_default());
            });
        }
        string_field(buf, 3, &resource.schema_url);
    });
}

/// Sends span batches as OTLP/HTTP protobuf to one endpoint.
pub(crate) struct OtlpHttpSpans {
    client: CauseKeepingClient,
    endpoint: http::Uri,
    headers: http::HeaderMap,
    /// The resource the batch processor sets, encoded.
    resource: EncodedResource,
    /// The request being encoded, reused across batches.
    buf: Mutex<Vec<u8>>,
}

impl std::fmt::Debug for OtlpHttpSpans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpHttpSpans").field("endpoint", &self.endpoint).finish()
    }
}

impl OtlpHttpSpans {
    pub(crate) fn new(
        client: CauseKeepingClient,
        endpoint: &str,
        headers: &[(String, String)],
    ) -> Result<Self, String> {
        let endpoint = endpoint.parse::<http::Uri>().map_err(|e| format!("the endpoint is not a URL: {e}"))?;
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("header name `{k}`"))?;
            let value = http::HeaderValue::from_str(v).map_err(|_| format!("the value of header `{k}`"))?;
            map.insert(name, value);
        }
        Ok(OtlpHttpSpans {
            client,
            endpoint,
            headers: map,
            resource: EncodedResource::default(),
            buf: Mutex::default(),
        })
    }

    fn request(&self, batch: &[SpanData]) -> http::Request<Bytes> {
        let body = {
            let mut buf = self.buf.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            buf.clear();
            encode_request(&mut buf, &self.resource, batch);
            Bytes::copy_from_slice(&buf)
        };
        let mut request = http::Request::new(body);
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = self.endpoint.clone();
        let headers = request.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-protobuf"));
        for (k, v) in &self.headers {
            headers.insert(k.clone(), v.clone());
        }
        request
    }
}

impl SpanExporter for OtlpHttpSpans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let request = self.request(&batch);
        drop(batch);
        // The same messages as the SDK's exporter: the cause of a network
        // error is kept by the client.
        match self.client.send_bytes(request).await {
            Err(_) => Err(OTelSdkError::InternalFailure("HTTP export failed: network error".to_string())),
            Ok(r) if !r.status().is_success() => Err(OTelSdkError::InternalFailure(format!(
                "HTTP export failed with status code: {}",
                r.status().as_u16()
            ))),
            Ok(_) => Ok(()),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = EncodedResource::of(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Event, Link, SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message;

    fn span_data(i: u8, scope: &InstrumentationScope) -> SpanData {
        let state = TraceState::from_key_value([("vendor", "x1")]).unwrap();
        let cx = SpanContext::new(
            TraceId::from_bytes([i; 16]),
            SpanId::from_bytes([i + 1; 8]),
            TraceFlags::SAMPLED,
            false,
            if i % 2 == 0 { state.clone() } else { TraceState::default() },
        );
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "exception",
            UNIX_EPOCH + std::time::Duration::from_nanos(7),
            vec![KeyValue::new("exception.message", "boom")],
            1,
        ));
        events.dropped_count = 2;
        let mut links = SpanLinks::default();
        let linked = SpanContext::new(
            TraceId::from_bytes([9; 16]),
            SpanId::from_bytes([8; 8]),
            TraceFlags::default(),
            true,
            state,
        );
        links.links.push(Link::new(linked, vec![KeyValue::new("why", "retry")], 0));
        SpanData {
            span_context: cx,
            parent_span_id: if i == 0 { SpanId::INVALID } else { SpanId::from_bytes([1; 8]) },
            parent_span_is_remote: i == 2,
            span_kind: [SpanKind::Internal, SpanKind::Client, SpanKind::Server][usize::from(i % 3)].clone(),
            name: format!("span é {i}").into(),
            start_time: UNIX_EPOCH + std::time::Duration::from_nanos(1_700_000_000_000_000_000 + u64::from(i)),
            end_time: UNIX_EPOCH + std::time::Duration::from_nanos(1_700_000_000_500_000_000),
            attributes: vec![
                KeyValue::new("s", "text"),
                KeyValue::new("empty", ""),
                KeyValue::new("i", -42i64),
                KeyValue::new("zero", 0i64),
                KeyValue::new("f", 0.25),
                KeyValue::new("b", false),
                KeyValue::new("as", Value::Array(Array::String(vec!["a".into(), "".into()]))),
                KeyValue::new("ai", Value::Array(Array::I64(vec![1, -1]))),
                KeyValue::new("af", Value::Array(Array::F64(vec![0.5]))),
                KeyValue::new("ab", Value::Array(Array::Bool(vec![true, false]))),
            ],
            dropped_attributes_count: u32::from(i),
            events,
            links,
            status: match i % 3 {
                0 => Status::Unset,
                1 => Status::Ok,
                _ => Status::error("it failed"),
            },
            instrumentation_scope: scope.clone(),
        }
    }

    #[test]
    fn the_request_decodes_to_what_the_sdks_conversion_makes() {
        let ours = InstrumentationScope::builder("observra").with_version("0.1.0").build();
        let theirs = InstrumentationScope::builder("tracing")
            .with_attributes([KeyValue::new("k", 1i64)])
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .build();
        let batch: Vec<SpanData> = (0..6).map(|i| span_data(i, if i % 2 == 0 { &ours } else { &theirs })).collect();
        let resource = Resource::builder_empty()
            .with_attributes([KeyValue::new("service.name", "svc"), KeyValue::new("n", 3i64)])
            .build();
        let mut buf = Vec::new();
        encode_request(&mut buf, &EncodedResource::of(&resource), &batch);
        let decoded = ExportTraceServiceRequest::decode(buf.as_slice()).expect("valid protobuf");
        let expected = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &ResourceAttributesWithSchema::from(&resource)),
        };
        assert_eq!(decoded, expected);
        assert_eq!(buf, expected.encode_to_vec(), "the same bytes as prost writes");
    }

    #[test]
    fn nested_lengths_of_every_size_close_up() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 2_097_152] {
            let mut buf = vec![7];
            nested(&mut buf, 1, |b| b.extend(std::iter::repeat_n(1u8, len)));
            let mut prefix = Vec::new();
            varint(&mut prefix, len as u64);
            assert_eq!(buf[..2], [7, 0x0a]);
            assert_eq!(buf[2..2 + prefix.len()], prefix[..]);
            assert_eq!(buf.len(), 2 + prefix.len() + len);
        }
    }
}
