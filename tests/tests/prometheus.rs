//! The Prometheus pull endpoint: the text format with the usual name
//! translation, then a real Prometheus server (Debian's package, installed
//! by scripts/test.sh) scraping it and answering the agent dashboard's
//! queries. Everything listens on 127.0.0.1 only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use observra::{Usage, agent, llm_call, tool_call};
use observra_test_support::prometheus::{Prometheus, value, which};
use observra_test_support::{http_get, serial};

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
fn think() -> Usage {
    std::thread::sleep(Duration::from_millis(3));
    Usage::new(300, 40)
}

#[tool_call(name = "lookup")]
fn lookup() -> u8 {
    std::thread::sleep(Duration::from_millis(1));
    1
}

#[agent(name = "support")]
fn support() -> Result<(), std::io::Error> {
    let _ = think();
    let _ = lookup();
    Ok(())
}

fn install_with_prometheus() -> observra::Guard {
    observra::init()
        .env_from([("OBSERVRA_PROMETHEUS_ADDR", "127.0.0.1:0"), ("OTEL_SERVICE_NAME", "prom-test")])
        .jsonl_writer(std::io::sink())
        .install()
        .expect("install")
}

#[test]
fn the_endpoint_serves_the_text_format_with_the_usual_names() {
    let _s = serial();
    let guard = install_with_prometheus();
    for _ in 0..3 {
        support().unwrap();
    }
    let addr = observra::prometheus_addr().expect("endpoint running").to_string();
    let (status, body) = http_get(&addr, "/metrics").expect("scrape");
    assert_eq!(status, 200);
    for line in [
        "# TYPE observra_agent_requests_total counter",
        "observra_agent_requests_total{gen_ai_agent_name=\"support\"} 3",
        "observra_agent_errors_total{gen_ai_agent_name=\"support\"} 0",
        "# TYPE observra_agent_request_duration_seconds histogram",
        "observra_agent_request_duration_seconds_bucket{gen_ai_agent_name=\"support\",le=\"+Inf\"} 3",
        "observra_agent_request_duration_seconds_count{gen_ai_agent_name=\"support\"} 3",
        "# TYPE observra_agent_requests_active gauge",
        "observra_agent_requests_active{gen_ai_agent_name=\"support\"} 0",
        "observra_agent_tokens_total{gen_ai_agent_name=\"support\",gen_ai_request_model=\"gpt-4o-mini\"} 1020",
        "observra_agent_tool_calls_total{gen_ai_agent_name=\"support\",gen_ai_tool_name=\"lookup\"} 3",
        "# HELP observra_agent_requests_total Total agent requests.",
    ] {
        assert!(body.lines().any(|l| l == line), "missing `{line}` in:\n{body}");
    }
    assert!(body.contains("gen_ai_client_operation_duration_seconds_bucket{"), "{body}");
    assert!(body.contains("target_info{") && body.contains("service_name=\"prom-test\""), "{body}");
    assert!(!body.contains("_total_total"), "never a doubled suffix");
    let (status, _) = http_get(&addr, "/nope").unwrap();
    assert_eq!(status, 404);
    drop(guard);
    assert!(http_get(&addr, "/metrics").is_err(), "the endpoint stops with the pipeline");
}

/// A client that connects to the endpoint and sends the head of a request
/// one byte a second, never finishing it, for 60 s or until stopped.
struct Dribbler {
    /// True from the first byte sent until a write fails or the run ends:
    /// the connection is open and still being fed.
    dribbling: Arc<AtomicBool>,
    /// True until the thread's run ends (60 s, or `finish`), whatever the
    /// server does with the connection.
    running: Arc<AtomicBool>,
    /// How many bytes have been sent, one message per byte.
    sent: mpsc::Receiver<usize>,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Dribbler {
    /// Connects, and returns once the first byte is sent.
    fn start(addr: &str) -> Self {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let dribbling = Arc::new(AtomicBool::new(true));
        let running = Arc::new(AtomicBool::new(true));
        let (stop, stopped) = mpsc::channel::<()>();
        let (tell, sent) = mpsc::channel();
        let (feeding, alive) = (dribbling.clone(), running.clone());
        let thread = std::thread::spawn(move || {
            let head = b"GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Slow: ";
            let end = Instant::now() + Duration::from_secs(60);
            for n in 0.. {
                if feeding.load(Ordering::SeqCst) {
                    if stream.write_all(&[head.get(n).copied().unwrap_or(b'a')]).is_ok() {
                        let _ = tell.send(n + 1);
                    } else {
                        feeding.store(false, Ordering::SeqCst);
                    }
                }
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() || stopped.recv_timeout(left.min(Duration::from_secs(1))).is_ok() {
                    break;
                }
            }
            // The flags first; the connection closes after (`stream` drops).
            feeding.store(false, Ordering::SeqCst);
            alive.store(false, Ordering::SeqCst);
        });
        let slow = Dribbler { dribbling, running, sent, stop, thread };
        slow.wait_for(1);
        slow
    }

    /// Returns once `n` bytes have been sent (`false` if the run ended first).
    fn wait_for(&self, n: usize) -> bool {
        self.sent.iter().any(|sent| sent >= n)
    }

    fn finish(self) {
        let _ = self.stop.send(());
        self.thread.join().expect("the dribbler thread");
    }
}

/// `GET /metrics` with no read timeout: returns when the server answers
/// and closes, however long that takes.
fn scrape_unbounded(addr: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// Catches: one thread serving every scrape, held by a client that sends
/// its request one byte at a time (each byte within the per-read timeout).
#[test]
fn a_slow_client_does_not_hold_up_another_clients_scrape() {
    let _s = serial();
    let guard = install_with_prometheus();
    support().unwrap();
    let addr = observra::prometheus_addr().expect("endpoint running").to_string();
    let slow = Dribbler::start(&addr);
    let (status, body) = scrape_unbounded(&addr);
    // Read before anything else: the answer came while the slow client was
    // still connected and still sending its request.
    let still_dribbling = slow.dribbling.load(Ordering::SeqCst);
    assert!(still_dribbling, "the scrape was answered only once the slow client was gone");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("observra_agent_requests_total{gen_ai_agent_name=\"support\"} 1"), "{body}");
    slow.finish();
    drop(guard);
}

/// Catches: the endpoint's thread joined with no deadline at shutdown, while
/// it serves a client that never finishes its request.
#[test]
fn shutdown_keeps_its_deadline_while_a_slow_client_is_connected() {
    let _s = serial();
    let guard = observra::init()
        .env_from([("OBSERVRA_PROMETHEUS_ADDR", "127.0.0.1:0"), ("OTEL_SERVICE_NAME", "prom-test")])
        .jsonl_writer(std::io::sink())
        .shutdown_timeout(Duration::from_millis(500))
        .install()
        .expect("install");
    let addr = observra::prometheus_addr().expect("endpoint running").to_string();
    let slow = Dribbler::start(&addr);
    // A second byte a second later: the server has taken the connection
    // (and, on the old single-thread server, was busy reading it).
    assert!(slow.wait_for(2), "the slow client is connected");
    drop(guard);
    // Read right after the drop returned: the slow client's 60 s run had not ended.
    let still_running = slow.running.load(Ordering::SeqCst);
    assert!(still_running, "dropping the guard waited for the slow client to give up");
    assert!(TcpStream::connect(&addr).is_err(), "the endpoint stops with the pipeline");
    slow.finish();
}

#[test]
fn a_bad_prometheus_address_is_a_typed_error() {
    let err = observra::init().env_from([("OBSERVRA_PROMETHEUS_ADDR", "localhost")]).install().unwrap_err();
    assert_eq!(err.setting(), Some(&observra::Setting::Env("OBSERVRA_PROMETHEUS_ADDR")), "{err}");
    // An address already in use fails at install, naming where it came from.
    let _s = serial();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = observra::init().jsonl_writer(std::io::sink()).prometheus_addr(addr).install().unwrap_err();
    assert_eq!(err.setting(), Some(&observra::Setting::Builder("prometheus_addr")), "{err}");
    assert!(err.to_string().contains(&addr.to_string()) && err.to_string().contains("cannot listen"), "{err}");
    assert!(!observra::health().installed, "nothing left installed after the error");
}

#[test]
fn a_real_prometheus_scrapes_the_endpoint_and_answers_the_dashboard_queries() {
    if which("prometheus").is_none() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: the `prometheus` binary is not installed and scripts/test.sh could not install it \
             (Debian package `prometheus`). The real-Prometheus test did not run. !!!!!!!!\n"
        );
        return;
    }
    let _s = serial();
    let guard = install_with_prometheus();
    let target = observra::prometheus_addr().expect("endpoint").to_string();

    // Keep the agent busy while Prometheus scrapes.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let made = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = made.clone();
    let workload = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let _ = support();
            counted.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
        }
    });

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("prometheus-{}", std::process::id()));
    let server = Prometheus::start(&target, &dir, &[]).expect("prometheus is installed");

    let queries = [
        "rate(observra_agent_requests_total[1m])",
        "histogram_quantile(0.95, rate(observra_agent_request_duration_seconds_bucket[1m]))",
        "observra_agent_requests_active",
        "rate(observra_agent_tokens_total[1m])",
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut results = Vec::new();
    while Instant::now() < deadline {
        results = queries.iter().map(|q| server.query(q)).collect::<Vec<_>>();
        let rate_ok = results[0].first().map(value).is_some_and(|v| v > 0.0);
        let p95_ok = results[1].first().map(value).is_some_and(|v| v.is_finite() && v > 0.0);
        if rate_ok && p95_ok && !results[2].is_empty() && !results[3].is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = workload.join();
    drop(guard);

    let up = server.query("up{job=\"observra\"}");
    assert_eq!(up.first().map(value), Some(1.0), "Prometheus scraped the endpoint: {up:?}");
    let rate = results[0].first().map(value).unwrap_or(f64::NAN);
    assert!(rate > 0.0, "requests/s: {:?}", results[0]);
    assert_eq!(results[0][0]["metric"]["gen_ai_agent_name"], "support");
    // What Prometheus stored is what the program did: never more requests than were made.
    let total = server.query("observra_agent_requests_total").first().map(value).unwrap_or(f64::NAN);
    let made = made.load(Ordering::Relaxed) as f64;
    assert!(total >= 1.0 && total <= made, "{total} requests stored, {made} made");
    let p95 = results[1].first().map(value).unwrap_or(f64::NAN);
    assert!(p95.is_finite() && p95 > 0.0, "p95 latency in seconds: {:?}", results[1]);
    let active = results[2].first().map(value).unwrap_or(f64::NAN);
    assert!((0.0..=1.0).contains(&active), "at most one request in flight: {:?}", results[2]);
    assert!(results[3].first().map(value).is_some_and(|v| v > 0.0), "tokens/s: {:?}", results[3]);
}

#[test]
fn otel_metrics_exporter_selects_prometheus_otlp_or_none() {
    let _s = serial();
    // Port 0: the system picks a free one, so no other test can race for it.
    let guard = observra::init()
        .env_from([
            ("OTEL_METRICS_EXPORTER", "prometheus".to_string()),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "localhost".to_string()),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0".to_string()),
        ])
        .jsonl_writer(std::io::sink())
        .install()
        .expect("install");
    support().unwrap();
    let port = observra::prometheus_addr().map(|a| a.port()).expect("listening");
    assert!(port != 0 && observra::prometheus_addr().unwrap().ip().is_loopback());
    let (status, body) = http_get(&format!("127.0.0.1:{port}"), "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("observra_agent_requests_total{gen_ai_agent_name=\"support\"} 1"), "{body}");
    drop(guard);

    // `none`: spans still go out over OTLP, metrics do not.
    let rx = observra_test_support::Receiver::start();
    let mut e = observra_test_support::otlp_env(&rx, "http/protobuf");
    e.push(("OTEL_METRICS_EXPORTER".into(), "none".into()));
    let guard = observra::init().env_from(e).install().unwrap();
    support().unwrap();
    drop(guard);
    assert_eq!(rx.spans().len(), 3);
    assert!(rx.requests().iter().all(|r| r.path != "/v1/metrics"), "no metrics requests: {:?}", rx.requests());

    let err = observra::init().env_from([("OTEL_METRICS_EXPORTER", "statsd")]).install().unwrap_err();
    assert_eq!(err.setting(), Some(&observra::Setting::Env("OTEL_METRICS_EXPORTER")), "{err}");
}
