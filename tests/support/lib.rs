//! Test support: an in-process OTLP receiver that decodes what observra
//! exports, over HTTP/protobuf and gRPC, on 127.0.0.1 with ephemeral ports.
//!
//! Tests assert on decoded data (resource attributes, span names, kinds,
//! parent/child links, typed attributes, status, events, metrics), never on
//! what observra meant to send. The receiver runs its own Tokio runtime on a
//! background thread, so it works from sync tests, `#[tokio::test]` and
//! multi-threaded runtimes alike.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

/// The fake OpenAI-compatible server, shared with the examples (one file).
#[path = "../../examples/src/fake_openai.rs"]
pub mod fake_openai;

pub mod fake_providers;

/// The rig agent of the `rig-agent` example (one file).
#[path = "../../examples/src/rig_desk.rs"]
pub mod rig_desk;

pub mod prometheus;

pub mod dashboard_svg;

mod live_bytes;
pub use live_bytes::LiveBytes;

/// An API error with an HTTP status, as the tests' fake model clients
/// return it: `error.type` is the status code.
#[derive(Debug)]
pub struct ApiError(pub u16);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.0)
    }
}

impl observra::ErrorType for ApiError {
    fn error_type(&self) -> std::borrow::Cow<'static, str> {
        self.0.to_string().into()
    }
}

/// How a request reached the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/HTTP with a protobuf body.
    Http,
    /// OTLP/gRPC.
    Grpc,
}

/// One export request, as received.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// HTTP or gRPC.
    pub transport: Transport,
    /// URL path (HTTP) or gRPC method path.
    pub path: String,
    /// Request headers (HTTP) or metadata (gRPC), lower-case names.
    pub headers: BTreeMap<String, String>,
}

/// A decoded attribute value, keeping its OTLP type.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// `string_value`
    Str(String),
    /// `int_value`
    Int(i64),
    /// `double_value`
    Double(f64),
    /// `bool_value`
    Bool(bool),
    /// `array_value`
    Array(Vec<Val>),
    /// `kvlist_value` (a map, as structured log attributes carry).
    Map(BTreeMap<String, Val>),
    /// Anything else (bytes, empty).
    Other,
}

impl Val {
    /// The value as JSON (maps become objects, arrays arrays), for comparing
    /// structured values with `serde_json::json!`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Str(s) => serde_json::Value::String(s.clone()),
            Val::Int(i) => serde_json::json!(i),
            Val::Double(d) => serde_json::json!(d),
            Val::Bool(b) => serde_json::Value::Bool(*b),
            Val::Array(a) => serde_json::Value::Array(a.iter().map(Val::to_json).collect()),
            Val::Map(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Val::Other => serde_json::Value::Null,
        }
    }
    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn val(v: &Option<AnyValue>) -> Val {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Val::Str(s.clone()),
        Some(any_value::Value::IntValue(i)) => Val::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => Val::Double(*d),
        Some(any_value::Value::BoolValue(b)) => Val::Bool(*b),
        Some(any_value::Value::ArrayValue(a)) => Val::Array(a.values.iter().map(|v| val(&Some(v.clone()))).collect()),
        Some(any_value::Value::KvlistValue(m)) => Val::Map(attrs(&m.values)),
        _ => Val::Other,
    }
}

fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, Val> {
    kvs.iter().map(|kv| (kv.key.clone(), val(&kv.value))).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A span event, decoded.
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    /// Event name.
    pub name: String,
    /// Event attributes.
    pub attributes: BTreeMap<String, Val>,
}

/// A span, decoded and flattened with its resource and scope.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// How it arrived.
    pub transport: Transport,
    /// Resource attributes of the batch it came in.
    pub resource: BTreeMap<String, Val>,
    /// Instrumentation scope name.
    pub scope: String,
    /// Span name.
    pub name: String,
    /// OTLP span kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i32,
    /// Trace id, hex.
    pub trace_id: String,
    /// Span id, hex.
    pub span_id: String,
    /// Parent span id, hex, if any.
    pub parent_span_id: Option<String>,
    /// The W3C `tracestate` carried with the span's context.
    pub trace_state: String,
    /// Attributes with their types.
    pub attributes: BTreeMap<String, Val>,
    /// Status code: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    /// Status message.
    pub status_message: String,
    /// Events.
    pub events: Vec<ReceivedEvent>,
    /// Start, ns since the epoch.
    pub start_unix_nano: u64,
    /// End, ns since the epoch.
    pub end_unix_nano: u64,
}

impl ReceivedSpan {
    /// An attribute's value.
    pub fn attr(&self, key: &str) -> Option<&Val> {
        self.attributes.get(key)
    }
    /// A string attribute's value.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(Val::as_str)
    }
}

/// One metric data stream, decoded to the parts tests check.
#[derive(Debug, Clone)]
pub struct ReceivedMetric {
    /// Resource attributes.
    pub resource: BTreeMap<String, Val>,
    /// Metric name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Description.
    pub description: String,
    /// `sum`, `gauge`, `histogram`, ...
    pub kind: &'static str,
    /// Aggregation temporality of sums and histograms: 1 delta, 2 cumulative, 0 otherwise.
    pub temporality: i32,
    /// Points: attributes and value (sum / gauge value, or histogram count).
    pub points: Vec<(BTreeMap<String, Val>, f64)>,
    /// Histogram points in full.
    pub histogram_points: Vec<HistogramPoint>,
}

/// One histogram data point.
#[derive(Debug, Clone)]
pub struct HistogramPoint {
    /// Point attributes.
    pub attributes: BTreeMap<String, Val>,
    /// Number of records.
    pub count: u64,
    /// Sum of the records.
    pub sum: f64,
    /// Explicit bucket boundaries.
    pub bounds: Vec<f64>,
    /// Records per bucket (one more than the boundaries).
    pub bucket_counts: Vec<u64>,
}

/// A log record, decoded and flattened with its resource.
#[derive(Debug, Clone)]
pub struct ReceivedLog {
    /// How it arrived.
    pub transport: Transport,
    /// Resource attributes.
    pub resource: BTreeMap<String, Val>,
    /// Event name (empty if none).
    pub event_name: String,
    /// Severity number (9 INFO, 13 WARN, 17 ERROR, ...).
    pub severity_number: i32,
    /// Severity text.
    pub severity_text: String,
    /// The body, if it is a string.
    pub body: Option<String>,
    /// Trace id, hex (empty if none).
    pub trace_id: String,
    /// Span id, hex (empty if none).
    pub span_id: String,
    /// Attributes with their types.
    pub attributes: BTreeMap<String, Val>,
    /// Timestamp, ns since the epoch.
    pub time_unix_nano: u64,
}

impl ReceivedLog {
    /// An attribute's value.
    pub fn attr(&self, key: &str) -> Option<&Val> {
        self.attributes.get(key)
    }
}

/// A request to any non-OTLP path (a webhook delivery), as received.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// URL path.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The raw body (empty after [`Receiver::set_keep_bodies`]`(false)`).
    pub body: Vec<u8>,
    /// Elements of the body's JSON array, if it is one.
    pub records: Option<usize>,
    /// When it arrived.
    pub at: Instant,
    /// The status the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct Store {
    spans: Vec<ReceivedSpan>,
    metrics: Vec<ReceivedMetric>,
    logs: Vec<ReceivedLog>,
    webhooks: Vec<WebhookRequest>,
    requests: Vec<RequestInfo>,
    http_status: Option<u16>,
    /// Answers for the next HTTP requests, in order: status and `Retry-After`.
    script: std::collections::VecDeque<(u16, Option<String>)>,
    /// How long each HTTP request is held before it is answered.
    delay: Option<Duration>,
    /// Drop webhook bodies after counting their records (memory tests).
    drop_bodies: bool,
    /// Decode spans and count them without keeping them (throughput runs).
    count_only: bool,
    /// Spans decoded so far, kept or not.
    span_count: u64,
    /// Requests larger than this are refused with 413, as a collector's limit would.
    max_body: Option<usize>,
    /// Requests refused for their size.
    too_large: u64,
}

type Shared = Arc<Mutex<Store>>;

fn lock(s: &Shared) -> MutexGuard<'_, Store> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn store_traces(store: &Shared, transport: Transport, req: ExportTraceServiceRequest) {
    let mut st = lock(store);
    let n: usize = req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
    st.span_count += n as u64;
    if st.count_only {
        return;
    }
    for rs in req.resource_spans {
        let resource = rs.resource.as_ref().map(|r| attrs(&r.attributes)).unwrap_or_default();
        for ss in rs.scope_spans {
            let scope = ss.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            for s in ss.spans {
                let status = s.status.clone().unwrap_or_default();
                st.spans.push(ReceivedSpan {
                    transport,
                    resource: resource.clone(),
                    scope: scope.clone(),
                    name: s.name.clone(),
                    kind: s.kind,
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: if s.parent_span_id.is_empty() { None } else { Some(hex(&s.parent_span_id)) },
                    trace_state: s.trace_state.clone(),
                    attributes: attrs(&s.attributes),
                    status_code: status.code,
                    status_message: status.message,
                    events: s
                        .events
                        .iter()
                        .map(|e| ReceivedEvent { name: e.name.clone(), attributes: attrs(&e.attributes) })
                        .collect(),
                    start_unix_nano: s.start_time_unix_nano,
                    end_unix_nano: s.end_time_unix_nano,
                });
            }
        }
    }
}

fn store_logs(store: &Shared, transport: Transport, req: ExportLogsServiceRequest) {
    let mut st = lock(store);
    for rl in req.resource_logs {
        let resource = rl.resource.as_ref().map(|r| attrs(&r.attributes)).unwrap_or_default();
        for sl in rl.scope_logs {
            for r in sl.log_records {
                let body = match val(&r.body) {
                    Val::Str(s) => Some(s),
                    _ => None,
                };
                st.logs.push(ReceivedLog {
                    transport,
                    resource: resource.clone(),
                    event_name: r.event_name.clone(),
                    severity_number: r.severity_number,
                    severity_text: r.severity_text.clone(),
                    body,
                    trace_id: hex(&r.trace_id),
                    span_id: hex(&r.span_id),
                    attributes: attrs(&r.attributes),
                    time_unix_nano: r.time_unix_nano,
                });
            }
        }
    }
}

fn store_metrics(store: &Shared, req: ExportMetricsServiceRequest) {
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value as NV};
    let num = |v: &Option<NV>| match v {
        Some(NV::AsDouble(d)) => *d,
        Some(NV::AsInt(i)) => *i as f64,
        None => f64::NAN,
    };
    let mut st = lock(store);
    for rm in req.resource_metrics {
        let resource = rm.resource.as_ref().map(|r| attrs(&r.attributes)).unwrap_or_default();
        for sm in rm.scope_metrics {
            for m in sm.metrics {
                let (kind, temporality, points) = match &m.data {
                    Some(Data::Sum(s)) => (
                        "sum",
                        s.aggregation_temporality,
                        s.data_points.iter().map(|p| (attrs(&p.attributes), num(&p.value))).collect(),
                    ),
                    Some(Data::Gauge(g)) => {
                        ("gauge", 0, g.data_points.iter().map(|p| (attrs(&p.attributes), num(&p.value))).collect())
                    }
                    Some(Data::Histogram(h)) => (
                        "histogram",
                        h.aggregation_temporality,
                        h.data_points.iter().map(|p| (attrs(&p.attributes), p.count as f64)).collect(),
                    ),
                    _ => ("other", 0, Vec::new()),
                };
                let histogram_points = match &m.data {
                    Some(Data::Histogram(h)) => h
                        .data_points
                        .iter()
                        .map(|p| HistogramPoint {
                            attributes: attrs(&p.attributes),
                            count: p.count,
                            sum: p.sum.unwrap_or(f64::NAN),
                            bounds: p.explicit_bounds.clone(),
                            bucket_counts: p.bucket_counts.clone(),
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                st.metrics.push(ReceivedMetric {
                    histogram_points,
                    resource: resource.clone(),
                    name: m.name.clone(),
                    unit: m.unit.clone(),
                    description: m.description.clone(),
                    kind,
                    temporality,
                    points,
                });
            }
        }
    }
}

#[derive(Clone)]
struct Grpc(Shared);

fn metadata_map(m: &tonic::metadata::MetadataMap) -> BTreeMap<String, String> {
    m.clone()
        .into_headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = metadata_map(request.metadata());
        lock(&self.0).requests.push(RequestInfo {
            transport: Transport::Grpc,
            path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export".into(),
            headers,
        });
        store_traces(&self.0, Transport::Grpc, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let headers = metadata_map(request.metadata());
        lock(&self.0).requests.push(RequestInfo {
            transport: Transport::Grpc,
            path: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export".into(),
            headers,
        });
        store_metrics(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let headers = metadata_map(request.metadata());
        lock(&self.0).requests.push(RequestInfo {
            transport: Transport::Grpc,
            path: "/opentelemetry.proto.collector.logs.v1.LogsService/Export".into(),
            headers,
        });
        store_logs(&self.0, Transport::Grpc, request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// A gzip body's bytes; `None` when it is not gzip.
fn gunzip(body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut out).ok()?;
    Some(out)
}

async fn http_handler(store: Shared, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    let headers: BTreeMap<String, String> =
        req.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let gzip = headers.get("content-encoding").is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
    let body = req.into_body().collect().await?.to_bytes();
    // OTLP allows gzip-compressed bodies (rotel sends them so).
    let body = if gzip { gunzip(&body).map(Bytes::from).unwrap_or(body) } else { body };
    let at = Instant::now();
    {
        let mut st = lock(&store);
        if st.max_body.is_some_and(|max| body.len() > max) {
            st.too_large += 1;
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return Ok(resp);
        }
    }
    lock(&store).requests.push(RequestInfo {
        transport: Transport::Http,
        path: path.clone(),
        headers: headers.clone(),
    });
    let delay = lock(&store).delay;
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let (scripted, fixed) = {
        let mut st = lock(&store);
        (st.script.pop_front(), st.http_status)
    };
    let forced = scripted.or(fixed.map(|c| (c, None)));
    if !path.starts_with("/v1/") {
        let status = forced.as_ref().map(|f| f.0).unwrap_or(200);
        let records = serde_json::from_slice::<Vec<serde_json::Value>>(&body).ok().map(|v| v.len());
        let mut st = lock(&store);
        let body = if st.drop_bodies { Vec::new() } else { body.to_vec() };
        st.webhooks.push(WebhookRequest { path: path.clone(), headers, body, records, at, status });
    }
    if let Some((code, retry_after)) = forced {
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(ra) = retry_after {
            resp.headers_mut().insert("retry-after", hyper::header::HeaderValue::from_str(&ra).expect("header"));
        }
        return Ok(resp);
    }
    let (status, body) = match path.as_str() {
        "/v1/traces" => match ExportTraceServiceRequest::decode(body) {
            Ok(r) => {
                store_traces(&store, Transport::Http, r);
                (StatusCode::OK, ExportTraceServiceResponse::default().encode_to_vec())
            }
            Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
        },
        "/v1/metrics" => match ExportMetricsServiceRequest::decode(body) {
            Ok(r) => {
                store_metrics(&store, r);
                (StatusCode::OK, ExportMetricsServiceResponse::default().encode_to_vec())
            }
            Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
        },
        "/v1/logs" => match ExportLogsServiceRequest::decode(body) {
            Ok(r) => {
                store_logs(&store, Transport::Http, r);
                (StatusCode::OK, ExportLogsServiceResponse::default().encode_to_vec())
            }
            Err(_) => (StatusCode::BAD_REQUEST, Vec::new()),
        },
        p if p.starts_with("/v1/") => (StatusCode::NOT_FOUND, Vec::new()),
        _ => (StatusCode::OK, Vec::new()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/x-protobuf"));
    Ok(resp)
}

/// A running OTLP receiver (HTTP and gRPC). Stops when dropped.
pub struct Receiver {
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    store: Shared,
    runtime: Option<tokio::runtime::Runtime>,
    tls: bool,
}

/// A certificate authority made at test time, and a server certificate it
/// signed for `localhost` and `127.0.0.1`, for the HTTPS receiver.
pub struct TestCa {
    /// The CA's certificate (PEM): what a client trusts.
    pub ca_cert_pem: String,
    /// The server's certificate (PEM).
    pub server_cert_pem: String,
    /// The server's private key (PEM).
    pub server_key_pem: String,
}

impl TestCa {
    /// A fresh CA and server certificate.
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "observra test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().expect("server key");
        let server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("server params");
        let server_cert = server_params.signed_by(&server_key, &issuer).expect("server cert");
        TestCa {
            ca_cert_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `path`, for `OTEL_EXPORTER_OTLP_CERTIFICATE`.
    pub fn write_ca(&self, path: &std::path::Path) {
        std::fs::write(path, &self.ca_cert_pem).expect("write the CA certificate");
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(self.server_cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("server cert");
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).expect("server key");
        let config =
            rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("protocols")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("server config");
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl Receiver {
    /// Starts both listeners on 127.0.0.1 with ephemeral ports.
    pub fn start() -> Receiver {
        Self::start_on("127.0.0.1:0".parse().expect("addr"))
    }

    /// Starts with the HTTP listener on `http_addr`; gRPC gets an ephemeral port.
    pub fn start_on(http_addr: SocketAddr) -> Receiver {
        let http = std::net::TcpListener::bind(http_addr).expect("bind http");
        Self::start_with(http)
    }

    /// Starts with `http` as the HTTP listener (e.g. [`RefusingPort::listen`]:
    /// a collector coming up on a port that refused connections until now).
    pub fn start_with(http: std::net::TcpListener) -> Receiver {
        Self::start_inner(http, None)
    }

    /// Starts with both listeners behind TLS, with `ca`'s server
    /// certificate (for `localhost` and `127.0.0.1`): `https://` endpoints.
    pub fn start_tls(ca: &TestCa) -> Receiver {
        // tonic's server takes rustls's process-wide provider, which this
        // test binary (ring for the test server, aws-lc-rs in observra) must
        // name; observra's own clients always name theirs.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let http = std::net::TcpListener::bind("127.0.0.1:0").expect("bind https");
        let mut r = Self::start_inner(http, Some(ca));
        r.tls = true;
        r
    }

    fn start_inner(http: std::net::TcpListener, tls: Option<&TestCa>) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test receiver runtime");
        let store: Shared = Arc::default();
        http.set_nonblocking(true).expect("nonblocking listener");
        let http = {
            let _g = runtime.enter();
            tokio::net::TcpListener::from_std(http).expect("http listener")
        };
        let http_addr = http.local_addr().expect("http addr");
        let http_store = store.clone();
        let acceptor = tls.map(TestCa::acceptor);
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = http.accept().await else { continue };
                let store = http_store.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| http_handler(store.clone(), req));
                    let http1 = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        None => {
                            let _ = http1.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            // A client that does not trust the certificate fails here.
                            let Ok(tls) = acceptor.accept(stream).await else { return };
                            let _ = http1.serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
                        }
                    }
                });
            }
        });
        let incoming = {
            let _g = runtime.enter();
            tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().expect("addr")).expect("bind grpc")
        };
        let grpc_addr = incoming.local_addr().expect("grpc addr");
        let svc = Grpc(store.clone());
        let mut server = tonic::transport::Server::builder();
        if let Some(ca) = tls {
            let identity = tonic::transport::Identity::from_pem(&ca.server_cert_pem, &ca.server_key_pem);
            server = server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)).expect("grpc tls");
        }
        runtime.spawn(async move {
            let _ = server
                .add_service(TraceServiceServer::new(svc.clone()))
                .add_service(MetricsServiceServer::new(svc.clone()))
                .add_service(LogsServiceServer::new(svc))
                .serve_with_incoming(incoming)
                .await;
        });
        Receiver { http_addr, grpc_addr, store, runtime: Some(runtime), tls: false }
    }

    /// Base URL of the OTLP/HTTP listener, e.g. `http://127.0.0.1:41234`
    /// (`https://` from [`Receiver::start_tls`]).
    pub fn http_endpoint(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.http_addr)
    }

    /// URL of the OTLP/gRPC listener.
    pub fn grpc_endpoint(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.grpc_addr)
    }

    /// Makes every HTTP request fail with `status` (None: answer normally).
    pub fn set_http_status(&self, status: Option<u16>) {
        lock(&self.store).http_status = status;
    }

    /// Answers the next HTTP requests with these statuses (and `Retry-After`
    /// values), in order, before answering normally again.
    pub fn script(&self, answers: &[(u16, Option<&str>)]) {
        lock(&self.store).script.extend(answers.iter().map(|(c, r)| (*c, r.map(str::to_string))));
    }

    /// Decodes spans and only counts them (see [`Receiver::span_count`]), as
    /// a collector that forwards would: throughput runs measure observra,
    /// not this receiver's bookkeeping.
    pub fn set_count_only(&self, yes: bool) {
        lock(&self.store).count_only = yes;
    }

    /// Refuses HTTP requests whose body is over `max` bytes with 413 (None: any size).
    pub fn set_max_body(&self, max: Option<usize>) {
        lock(&self.store).max_body = max;
    }

    /// Requests refused with 413 for their size.
    pub fn too_large(&self) -> u64 {
        lock(&self.store).too_large
    }

    /// Spans decoded so far, kept or not.
    pub fn span_count(&self) -> u64 {
        lock(&self.store).span_count
    }

    /// Whether webhook bodies are kept (the default) or only counted.
    pub fn set_keep_bodies(&self, keep: bool) {
        lock(&self.store).drop_bodies = !keep;
    }

    /// Forgets the scripted answers not used yet.
    pub fn clear_script(&self) {
        lock(&self.store).script.clear();
    }

    /// Holds every HTTP request this long before answering (None: answer at once).
    pub fn set_delay(&self, delay: Option<Duration>) {
        lock(&self.store).delay = delay;
    }

    /// The address of the HTTP listener.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Log records received so far.
    pub fn logs(&self) -> Vec<ReceivedLog> {
        lock(&self.store).logs.clone()
    }

    /// Requests to non-OTLP paths (webhook deliveries) so far.
    pub fn webhooks(&self) -> Vec<WebhookRequest> {
        lock(&self.store).webhooks.clone()
    }

    /// Spans received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        lock(&self.store).spans.clone()
    }

    /// Metric streams received so far.
    pub fn metrics(&self) -> Vec<ReceivedMetric> {
        lock(&self.store).metrics.clone()
    }

    /// Export requests received so far.
    pub fn requests(&self) -> Vec<RequestInfo> {
        lock(&self.store).requests.clone()
    }

    /// Waits until at least `n` spans arrived (or `timeout` passed) and returns them.
    pub fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<ReceivedSpan> {
        let start = Instant::now();
        loop {
            let spans = self.spans();
            if spans.len() >= n || start.elapsed() >= timeout {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every received stream of the metric named `name`, oldest first.
    pub fn metric_streams(&self, name: &str) -> Vec<ReceivedMetric> {
        self.metrics().into_iter().filter(|m| m.name == name).collect()
    }

    /// Waits until a metric named `name` arrived (or `timeout` passed).
    pub fn wait_for_metric(&self, name: &str, timeout: Duration) -> Option<ReceivedMetric> {
        let start = Instant::now();
        loop {
            if let Some(m) = self.metrics().into_iter().rev().find(|m| m.name == name) {
                return Some(m);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A 127.0.0.1 port that refuses connections for as long as this lives.
///
/// The socket is bound and never listens, so connecting gets a reset
/// (`ECONNREFUSED`) and no other test or process can take the port in the
/// meantime: unlike binding, dropping and reusing a port, nothing races.
pub struct RefusingPort {
    fd: i32,
    addr: SocketAddr,
}

impl RefusingPort {
    /// Binds a fresh port on 127.0.0.1 without listening.
    pub fn new() -> RefusingPort {
        // SAFETY: plain socket calls on a descriptor this function owns;
        // `sa` and `len` are valid for the calls that write them.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            let rc = libc::bind(fd, (&raw const sa).cast(), len);
            assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
            let mut len = len;
            let rc = libc::getsockname(fd, (&raw mut sa).cast(), &mut len);
            assert_eq!(rc, 0, "getsockname: {}", std::io::Error::last_os_error());
            let addr = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, u16::from_be(sa.sin_port)));
            RefusingPort { fd, addr }
        }
    }

    /// The refusing address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts listening on the same socket: the port now accepts connections.
    pub fn listen(self) -> std::net::TcpListener {
        use std::os::fd::FromRawFd;
        let fd = self.fd;
        std::mem::forget(self);
        // SAFETY: `fd` is a bound TCP socket this value owned; ownership
        // passes to the listener.
        unsafe {
            assert_eq!(libc::listen(fd, 128), 0, "listen: {}", std::io::Error::last_os_error());
            std::net::TcpListener::from_raw_fd(fd)
        }
    }
}

impl Default for RefusingPort {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RefusingPort {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor this value owns.
        unsafe {
            libc::close(self.fd);
        }
    }
}

/// `cargo run` of one of the examples from the workspace root, with every
/// `OTEL_*` / `OBSERVRA_*` variable of the test's own environment removed,
/// so a test sets exactly what the example sees.
pub fn example(bin: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO"));
    c.args(["run", "--quiet", "-p", "observra-examples", "--bin", bin]);
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k.starts_with("OBSERVRA_") {
            c.env_remove(k);
        }
    }
    c
}

/// Runs `cmd` to its end and returns its output; a failure panics with its
/// exit status and the end of its standard error (cargo's build errors, a
/// full disk, the example's own message), never a bare `false`.
pub fn run_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("could not start {cmd:?}: {e}"));
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!("{cmd:?} failed ({}); its standard error ends:\n{}", out.status, tail.join("\n"));
    }
    out
}

/// Finds the one span named `name`; panics with the names present otherwise.
pub fn span<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one span named {name:?}, got: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

/// This process's resident memory now, in bytes (`VmRSS` of
/// `/proc/self/status`; 0 where there is none): a bound on what a test
/// holds, read before and after.
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Serialises tests that install the process-wide pipeline: one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A `Write` that appends to a shared buffer, for capturing JSONL output.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    /// Parses every line written so far as JSON.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8(bytes)
            .expect("JSONL is UTF-8")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line is not JSON ({e}): {l}")))
            .collect()
    }
}

/// Settings that send OTLP to `rx` over `protocol` (`http/protobuf` or `grpc`),
/// with a long scheduled delay so only flush and shutdown export.
pub fn otlp_env(rx: &Receiver, protocol: &str) -> Vec<(String, String)> {
    let endpoint = if protocol == "grpc" { rx.grpc_endpoint() } else { rx.http_endpoint() };
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), protocol.into()),
        ("OTEL_BSP_SCHEDULE_DELAY".into(), "60000".into()),
        ("OTEL_SERVICE_NAME".into(), "observra-tests".into()),
    ]
}

/// Installs observra exporting OTLP/HTTP to `rx`, plus `extra` settings.
pub fn install_http(rx: &Receiver, extra: &[(&str, &str)]) -> observra::Guard {
    let mut env = otlp_env(rx, "http/protobuf");
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    observra::init().env_from(env).install().expect("install")
}

/// A plain HTTP/1.0 GET on loopback: (status code, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

/// Percent-encodes a URL query value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Holds the `observra-collector` thread still, so a test can fill the
/// collector's queue without racing it: a redaction matcher (install it
/// with `Builder::redact_with("gate", gate.matcher())`) that, on the
/// first text containing [`Gate::HOLD`], waits until [`Gate::release`].
/// Nothing is timed: the test waits until the collector is held, fills
/// the queue, then lets it go.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<GateState>, std::sync::Condvar)>);

#[derive(Default)]
struct GateState {
    held: bool,
    released: bool,
}

impl Gate {
    /// The text that holds the collector (in a span's attribute or name).
    pub const HOLD: &'static str = "hold the collector here";

    /// A new, closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// The matcher to install: it redacts nothing.
    pub fn matcher(&self) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let gate = self.0.clone();
        move |text| {
            if text.contains(Gate::HOLD) {
                let (state, cv) = &*gate;
                let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                s.held = true;
                cv.notify_all();
                while !s.released {
                    s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
                }
            }
            None
        }
    }

    /// Waits until the collector is held in the matcher (the deadline only
    /// bounds a broken run).
    pub fn wait_held(&self) {
        let (state, cv) = &*self.0;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        while !s.held {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the collector never reached the gate");
            s = cv.wait_timeout(s, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Lets the collector go (for good).
    pub fn release(&self) {
        let (state, cv) = &*self.0;
        state.lock().unwrap_or_else(|p| p.into_inner()).released = true;
        cv.notify_all();
    }
}
