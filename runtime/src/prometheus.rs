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
//! once as `target_info`. The server runs on its own thread and only answers
//! scrapes; it never touches the instrumented program's threads.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{InstrumentKind, ManualReader, Pipeline, Temporality};

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

/// The running endpoint; stops when dropped.
pub(crate) struct Endpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Endpoint {
    /// Binds `addr` and serves scrapes from `reader` on a background thread.
    pub(crate) fn start(addr: SocketAddr, reader: SharedReader) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("observra-prometheus".into()).spawn(move || {
            crate::base::state::suppress_current_thread();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &reader),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })?;
        Ok(Endpoint { addr, stop, thread: Mutex::new(Some(thread)) })
    }

    /// The address actually bound (useful with port 0).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: TcpStream, reader: &SharedReader) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
        // What was recorded before the scrape is in it, even while still queued.
        if let Some(installed) = crate::base::state::installed() {
            installed.queue.flush(Duration::from_millis(250));
        }
        let mut rm = ResourceMetrics::default();
        match reader.collect(&mut rm) {
            Ok(()) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", render(&rm)),
            Err(e) => ("500 Internal Server Error", "text/plain", format!("collecting metrics failed: {e}\n")),
        }
    } else {
        ("404 Not Found", "text/plain", "observra serves GET /metrics\n".to_string())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
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
