//! The Prometheus pull endpoint: `GET /metrics` on `OBSERVRA_PROMETHEUS_ADDR`
//! in the Prometheus text exposition format (version 0.0.4).
//!
//! Values are read from the meter provider at scrape time (a manual reader
//! with cumulative temporality), so a scrape always sees current totals.
//! The OpenTelemetry-to-Prometheus name translation lives here, in one
//! place: characters outside `[a-zA-Z0-9_:]` become `_`; the unit becomes a
//! suffix (`s` → `_seconds`, `ms` → `_milliseconds`, `By` → `_bytes`;
//! `{annotations}` add nothing) unless the name already ends with it;
//! monotonic counters end in `_total` (added only when missing, so
//! `observra.agent.requests` is `observra_agent_requests_total`); histograms expose
//! `_bucket{le=...}`, `_sum` and `_count`. Resource attributes are exposed
//! once as `target_info`.
//!
//! The server is hyper's HTTP/1 server on a one-thread tokio runtime, on a
//! thread of its own ("observra-prometheus"); it only answers scrapes and
//! never touches the instrumented program's threads. Each connection serves
//! one request (no keep-alive) and has a deadline for the whole of it
//! ([`REQUEST_DEADLINE`], the head within [`HEAD_DEADLINE`]), after which it
//! is closed. Connections are served concurrently, and a scrape's collection
//! runs on a blocking thread, so a slow client never holds up another's
//! scrape. [`Endpoint::stop`] cuts every connection and waits for the thread
//! no longer than the shutdown's deadline.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Weak, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A manual reader the meter provider owns and the endpoint reads through.
#[derive(Debug, Clone)]
pub(crate) struct SharedReader(Arc<ManualReader>);

impl SharedReader {
    pub(crate) fn new() -> Self {
        SharedReader(Arc::new(ManualReader::builder().with_temporality(Temporality::Cumulative).build()))
    }
}

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// The deadline of one connection, from its accept to the last byte of the
/// answer: a client slower than this is disconnected.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// The deadline of a request's head (method, path, headers).
const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// Threads that collect and render scrapes, off the accept loop.
const SCRAPE_THREADS: usize = 2;
/// How long dropping an endpoint that was not stopped waits for its thread.
const DROP_WAIT: Duration = Duration::from_secs(1);

/// The running endpoint; [`Endpoint::stop`] stops it within a deadline,
/// dropping it does the same within [`DROP_WAIT`].
pub(crate) struct Endpoint {
    addr: SocketAddr,
    /// Tells the server thread to stop, and by when its runtime must be down.
    stop: Option<oneshot::Sender<Instant>>,
    /// Disconnected when the server thread ends (a panic included).
    ended: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Binds `addr` and serves scrapes from `reader` on a background thread.
    /// Every set-up error (the bind, the runtime, the listener's
    /// registration) is returned here.
    pub(crate) fn start(addr: SocketAddr, reader: SharedReader) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<Instant>();
        let (ended_tx, ended) = mpsc::sync_channel::<()>(0);
        let (ready_tx, ready) = mpsc::sync_channel::<std::io::Result<()>>(1);
        let thread = std::thread::Builder::new().name("observra-prometheus".into()).spawn(move || {
            crate::base::state::suppress_current_thread();
            // Dropped last, when the thread ends, however it ends.
            let _ended = ended_tx;
            let (runtime, listener) = match server(listener) {
                Ok(server) => server,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let until = runtime.block_on(async move {
                tokio::spawn(accept(listener, reader));
                // A dropped sender (the endpoint gone without a word) stops it too.
                stopped.await.unwrap_or_else(|_| Instant::now())
            });
            // Drops the accept loop (closing the listener) and every
            // connection at once; waits for a scrape being collected at
            // most until the deadline.
            runtime.shutdown_timeout(until.saturating_duration_since(Instant::now()));
        })?;
        match ready.recv() {
            Ok(Ok(())) => Ok(Endpoint { addr, stop: Some(stop), ended, thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(std::io::Error::other("the Prometheus endpoint's thread ended while starting"))
            }
        }
    }

    /// The address actually bound (useful with port 0).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving: connections in progress are cut, and the server thread
    /// is waited for until `until` at most, then left to end on its own.
    /// Whether it ended in time.
    pub(crate) fn stop(mut self, until: Instant) -> bool {
        self.halt(until)
    }

    fn halt(&mut self, until: Instant) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(until);
        }
        let Some(thread) = self.thread.take() else { return true };
        match self.ended.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Err(mpsc::RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                true
            }
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.halt(crate::base::deadline::until(DROP_WAIT));
    }
}

/// The server thread's runtime (one thread: the caller's), and the
/// listener registered with it.
fn server(listener: std::net::TcpListener) -> std::io::Result<(tokio::runtime::Runtime, TcpListener)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .thread_name("observra-prometheus")
        .max_blocking_threads(SCRAPE_THREADS)
        .on_thread_start(crate::base::state::suppress_current_thread)
        .build()?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(listener)?
    };
    Ok((runtime, listener))
}

/// Accepts connections until the runtime shuts down, each served on a task
/// of its own: one request, no keep-alive, within [`REQUEST_DEADLINE`].
async fn accept(listener: TcpListener, reader: SharedReader) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).keep_alive(false).header_read_timeout(HEAD_DEADLINE);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let reader = reader.clone();
                let conn = http
                    .serve_connection(TokioIo::new(stream), service_fn(move |request| answer(request, reader.clone())));
                tokio::spawn(async move {
                    // Past the deadline the connection is dropped, and closed.
                    let _ = tokio::time::timeout(REQUEST_DEADLINE, conn).await;
                });
            }
            // Out of descriptors, for example: wait for some to close.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// `GET /metrics` answers the scrape; anything else is a 404.
async fn answer(request: Request<Incoming>, reader: SharedReader) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = if request.method() == Method::GET && request.uri().path() == "/metrics" {
        // Collecting blocks (the queue's flush, the SDK's locks): off the accept loop.
        tokio::task::spawn_blocking(move || scrape(&reader)).await.unwrap_or_else(|e| {
            (StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("collecting metrics failed: {e}\n"))
        })
    } else {
        (StatusCode::NOT_FOUND, "text/plain", "observra serves GET /metrics\n".to_string())
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// One scrape: what is in the meter provider now, rendered.
fn scrape(reader: &SharedReader) -> (StatusCode, &'static str, String) {
    // What was recorded before the scrape is in it, even while still queued.
    if let Some(installed) = crate::base::state::installed() {
        installed.queue.flush(Duration::from_millis(250));
    }
    let mut rm = ResourceMetrics::default();
    match reader.collect(&mut rm) {
        Ok(()) => (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", render(&rm)),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("collecting metrics failed: {e}\n")),
    }
}

/// Prometheus-safe name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn sanitize(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    if out.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn unit_suffix(unit: &str) -> Option<&'static str> {
    match unit {
        "s" => Some("seconds"),
        "ms" => Some("milliseconds"),
        "us" => Some("microseconds"),
        "ns" => Some("nanoseconds"),
        "min" => Some("minutes"),
        "h" => Some("hours"),
        "By" => Some("bytes"),
        "KiBy" => Some("kibibytes"),
        "MiBy" => Some("mebibytes"),
        "%" => Some("percent"),
        _ => None,
    }
}

/// The Prometheus family name of an OpenTelemetry metric.
pub(crate) fn family_name(name: &str, unit: &str, counter: bool) -> String {
    let mut out = sanitize(name);
    if let Some(suffix) = unit_suffix(unit) {
        if !out.ends_with(&format!("_{suffix}")) {
            out.push('_');
            out.push_str(suffix);
        }
    }
    if counter && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn label_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.as_str().to_string(),
        other => other.to_string(),
    }
}

fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = attrs
        .map(|kv| format!("{}=\"{}\"", sanitize(kv.key.as_str()), escape_label(&label_value(&kv.value))))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{}\"", escape_label(&v)));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        v.to_string()
    }
}

trait AsF64: Copy {
    fn as_f64(self) -> f64;
}
impl AsF64 for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}
impl AsF64 for u64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}
impl AsF64 for i64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    if !help.is_empty() {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    }
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn render_data<T: AsF64>(out: &mut String, m: &Metric, data: &MetricData<T>) {
    match data {
        MetricData::Gauge(g) => {
            let name = family_name(m.name(), m.unit(), false);
            header(out, &name, m.description(), "gauge");
            for p in g.data_points() {
                let _ = writeln!(out, "{name}{} {}", labels(p.attributes(), None), number(p.value().as_f64()));
            }
        }
        MetricData::Sum(s) => {
            let counter = s.is_monotonic();
            let name = family_name(m.name(), m.unit(), counter);
            header(out, &name, m.description(), if counter { "counter" } else { "gauge" });
            for p in s.data_points() {
                let _ = writeln!(out, "{name}{} {}", labels(p.attributes(), None), number(p.value().as_f64()));
            }
        }
        MetricData::Histogram(h) => {
            let name = family_name(m.name(), m.unit(), false);
            header(out, &name, m.description(), "histogram");
            for p in h.data_points() {
                let mut cumulative = 0u64;
                let counts: Vec<u64> = p.bucket_counts().collect();
                for (i, bound) in p.bounds().enumerate() {
                    cumulative += counts.get(i).copied().unwrap_or(0);
                    let l = labels(p.attributes(), Some(("le", number(bound))));
                    let _ = writeln!(out, "{name}_bucket{l} {cumulative}");
                }
                let l = labels(p.attributes(), Some(("le", "+Inf".to_string())));
                let _ = writeln!(out, "{name}_bucket{l} {}", p.count());
                let base = labels(p.attributes(), None);
                let _ = writeln!(out, "{name}_sum{base} {}", number(p.sum().as_f64()));
                let _ = writeln!(out, "{name}_count{base} {}", p.count());
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// Renders collected metrics in the Prometheus text format.
pub(crate) fn render(rm: &ResourceMetrics) -> String {
    let mut out = String::with_capacity(4096);
    header(&mut out, "target_info", "Target metadata", "gauge");
    let _ = writeln!(
        out,
        "target_info{} 1",
        labels(rm.resource().iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect::<Vec<_>>().iter(), None)
    );
    for sm in rm.scope_metrics() {
        for m in sm.metrics() {
            match m.data() {
                AggregatedMetrics::F64(d) => render_data(&mut out, m, d),
                AggregatedMetrics::U64(d) => render_data(&mut out, m, d),
                AggregatedMetrics::I64(d) => render_data(&mut out, m, d),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::family_name;

    #[test]
    fn names_follow_the_usual_translation() {
        assert_eq!(family_name("observra.agent.requests", "{request}", true), "observra_agent_requests_total");
        assert_eq!(family_name("agent.requests.total", "{request}", true), "agent_requests_total");
        assert_eq!(family_name("observra.agent.errors", "{request}", true), "observra_agent_errors_total");
        assert_eq!(
            family_name("observra.agent.request.duration", "s", false),
            "observra_agent_request_duration_seconds"
        );
        assert_eq!(family_name("observra.agent.requests.active", "{request}", false), "observra_agent_requests_active");
        assert_eq!(family_name("http.server.duration_seconds", "s", false), "http_server_duration_seconds");
        assert_eq!(family_name("queue.size", "By", false), "queue_size_bytes");
        assert_eq!(family_name("9lives", "", false), "_9lives");
    }
}
