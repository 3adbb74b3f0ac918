//! The `otel_log`, `webhook` and multi-backend set-ups, end to end: log
//! records decoded from OTLP (HTTP and gRPC), webhook bodies parsed and their
//! signatures checked with an independent HMAC, retries with `Retry-After`
//! timed, a stalled backend that does not hold the others back, the shutdown
//! report, and a disk error that is counted instead of panicking.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::Mac;
use observra::{Backend, LlmResponse, Usage, Webhook, agent, llm_call, tool_call};
use observra_test_support::{ApiError, Receiver, SharedBuf, Transport, Val, otlp_env, serial};

#[derive(Debug)]
struct Reply;

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(120, 30))
    }
}

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
fn ask(prompt: &str, fail: bool) -> Result<Reply, ApiError> {
    let _ = prompt;
    if fail { Err(ApiError(503)) } else { Ok(Reply) }
}

#[tool_call(name = "lookup")]
fn lookup(id: &str) -> String {
    tracing::warn!(id, "slow lookup");
    format!("order {id}")
}

#[agent(name = "support")]
fn run(fail: bool) -> Result<String, ApiError> {
    ask("hello", false)?;
    let order = lookup("A-1");
    ask(&order, fail)?;
    Ok(order)
}

fn env(rx: &Receiver, protocol: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut e = otlp_env(rx, protocol);
    e.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    e
}

#[test]
fn otel_log_sends_genai_operations_and_events_as_typed_log_records() {
    let _s = serial();
    for (protocol, transport) in [("http/protobuf", Transport::Http), ("grpc", Transport::Grpc)] {
        let rx = Receiver::start();
        let before = observra::health();
        let guard = observra::init()
            .env_from(env(&rx, protocol, &[("OBSERVRA_BACKEND", "otlp,otel_log")]))
            .install()
            .expect("install");
        let names: Vec<_> = observra::health().backends.iter().map(|b| b.backend).collect();
        assert_eq!(names, ["otlp", "otel_log"]);
        let _ = run(true);
        drop(guard);
        let spans = rx.spans();
        let logs = rx.logs();
        assert_eq!(spans.len(), 4, "{protocol}: the agent, two chats and a tool");
        let ops: Vec<_> = logs.iter().filter(|l| l.event_name == "observra.genai.operation").collect();
        assert_eq!(ops.len(), 4, "{protocol}: one record per GenAI span: {logs:#?}");
        for op in &ops {
            assert_eq!(op.transport, transport);
            assert_eq!(op.resource.get("service.name"), Some(&Val::Str("observra-tests".into())));
            let span = spans.iter().find(|s| s.span_id == op.span_id).expect("the record names its span");
            assert_eq!(op.trace_id, span.trace_id);
            assert_eq!(op.body.as_deref(), Some(span.name.as_str()));
            assert_eq!(op.attr("gen_ai.operation.name"), span.attr("gen_ai.operation.name"));
            assert!(matches!(op.attr("observra.duration"), Some(Val::Double(d)) if *d >= 0.0));
        }
        let chats: Vec<_> = ops.iter().filter(|l| l.body.as_deref() == Some("chat gpt-4o-mini")).collect();
        assert_eq!(chats.len(), 2);
        for chat in &chats {
            assert_eq!(chat.attr("gen_ai.request.model"), Some(&Val::Str("gpt-4o-mini".into())));
        }
        let failed = chats.iter().find(|c| c.attr("error.type").is_some()).expect("the failed chat");
        assert_eq!((failed.severity_number, failed.severity_text.as_str()), (17, "ERROR"));
        assert_eq!(failed.attr("error.type"), Some(&Val::Str("503".into())));
        let ok = chats.iter().find(|c| c.attr("error.type").is_none()).expect("the good chat");
        assert_eq!((ok.severity_number, ok.severity_text.as_str()), (9, "INFO"));
        assert_eq!(ok.attr("gen_ai.usage.input_tokens"), Some(&Val::Int(120)), "typed, not strings");
        // The tracing event inside the tool.
        let warn = logs.iter().find(|l| l.body.as_deref() == Some("slow lookup")).expect("the warn event");
        let tool = spans.iter().find(|s| s.name == "execute_tool lookup").expect("tool span");
        assert_eq!((warn.span_id.as_str(), warn.trace_id.as_str()), (tool.span_id.as_str(), tool.trace_id.as_str()));
        assert_eq!((warn.severity_number, warn.severity_text.as_str()), (13, "WARN"));
        assert_eq!(warn.attr("id"), Some(&Val::Str("A-1".into())));
        let after = observra::health();
        assert_eq!(after.logs_exported - before.logs_exported, logs.len() as u64, "every record received is counted");
    }
}

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

#[tracing::instrument(fields(note = "key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"))]
fn leaky() {}

#[test]
fn webhook_posts_signed_redacted_json_batches_configured_from_the_environment() {
    let _s = serial();
    let rx = Receiver::start();
    let url = format!("{}/hooks/observra", rx.http_endpoint());
    let e = [
        ("OBSERVRA_BACKEND", "webhook"),
        ("OBSERVRA_WEBHOOK_URL", url.as_str()),
        ("OBSERVRA_WEBHOOK_SECRET", "s3cret"),
        ("OBSERVRA_WEBHOOK_HEADERS", "x-tenant=acme,x-env=ci"),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ("OTEL_SERVICE_NAME", "hook-test"),
    ];
    let guard = observra::init().env_from(e.map(|(k, v)| (k.to_string(), v.to_string()))).install().expect("install");
    run(false).expect("run");
    leaky();
    let report = guard.shutdown().expect("a report");
    assert!(report.is_clean(), "{report}");
    assert_eq!((report.backends[0].backend, report.backends[0].flushed), ("webhook", 5), "{report:?}");
    let hooks = rx.webhooks();
    assert_eq!(hooks.len(), 1, "one batch");
    let h = &hooks[0];
    assert_eq!(h.path, "/hooks/observra");
    assert_eq!(h.headers.get("content-type").map(String::as_str), Some("application/json"));
    assert_eq!(h.headers.get("x-tenant").map(String::as_str), Some("acme"));
    assert_eq!(h.headers.get("x-env").map(String::as_str), Some("ci"));
    assert!(h.headers.get("user-agent").is_some_and(|u| u.starts_with("observra/")));
    assert!(h.headers.get("idempotency-key").is_some_and(|k| k.len() == 32));
    let expected = format!("sha256={}", hmac_hex(b"s3cret", &h.body));
    assert_eq!(h.headers.get("x-observra-signature"), Some(&expected), "HMAC-SHA256 over the exact body");
    assert_ne!(h.headers.get("x-observra-signature"), Some(&format!("sha256={}", hmac_hex(b"wrong", &h.body))));
    let records: Vec<serde_json::Value> = serde_json::from_slice(&h.body).expect("a JSON array");
    assert_eq!(records.len(), 5);
    for r in &records {
        assert_eq!(r["trace_id"].as_str().map(str::len), Some(32), "{r}");
        assert_eq!(r["resource"]["service.name"], "hook-test");
    }
    let chat = records.iter().find(|r| r["name"] == "chat gpt-4o-mini").expect("chat");
    assert_eq!(chat["attributes"]["gen_ai.usage.input_tokens"], 120);
    let leak = records.iter().find(|r| r["name"] == "leaky").expect("leaky");
    assert_eq!(leak["attributes"]["note"], "key [REDACTED:openai_project_key]", "redacted before it left");
}

#[test]
fn webhook_retries_with_backoff_honours_retry_after_and_gives_up_on_client_errors() {
    let _s = serial();
    let rx = Receiver::start();
    let hook = Webhook::new(format!("{}/in", rx.http_endpoint()))
        .max_retries(2)
        .backoff(Duration::from_millis(50), Duration::from_millis(100));
    let e = [("OTEL_BSP_SCHEDULE_DELAY".to_string(), "60000".to_string())];
    let guard = observra::init().env_from(e).webhook(hook).install().expect("install");

    // 500, then 429 with Retry-After: 1, then accepted.
    rx.script(&[(500, None), (429, Some("1"))]);
    leaky();
    observra::flush().expect("delivered on the third attempt");
    let hooks = rx.webhooks();
    assert_eq!(hooks.iter().map(|h| h.status).collect::<Vec<_>>(), [500, 429, 200]);
    let keys: Vec<_> = hooks.iter().map(|h| h.headers["idempotency-key"].clone()).collect();
    assert!(keys.iter().all(|k| *k == keys[0]), "one idempotency key for every retry of a batch");
    assert!(hooks.iter().all(|h| h.body == hooks[0].body), "the same body each time");
    let first_gap = hooks[1].at - hooks[0].at;
    let second_gap = hooks[2].at - hooks[1].at;
    // Lower bounds only: a wait the client must make cannot be cut short by
    // a slow machine (an upper bound could be, so none is asserted).
    assert!(first_gap >= Duration::from_millis(25), "a back-off of 25-50 ms before the retry, took {first_gap:?}");
    assert!(second_gap >= Duration::from_millis(950), "Retry-After: 1 honoured, took {second_gap:?}");
    let h = observra::health();
    assert_eq!((h.backends[0].exported, h.backends[0].successes, h.backends[0].failures), (1, 1, 0));

    // A client error is not retried.
    rx.script(&[(400, None)]);
    leaky();
    let err = observra::flush().expect_err("400 fails the batch").to_string();
    assert!(err.contains("HTTP 400") && err.contains("after 1 attempt"), "{err}");
    assert_eq!(rx.webhooks().len(), 4);

    // Retries run out.
    rx.script(&[(503, None), (503, None), (503, None)]);
    leaky();
    let err = observra::flush().expect_err("three 503s").to_string();
    assert!(err.contains("HTTP 503") && err.contains("after 3 attempt"), "{err}");
    assert_eq!(rx.webhooks().len(), 7);
    let h = observra::health();
    let b = &h.backends[0];
    assert_eq!((b.exported, b.failed, b.successes, b.failures), (1, 2, 1, 2), "{b:?}");
    assert!(b.last_error.as_deref().is_some_and(|e| e.contains("HTTP 503")), "{b:?}");
    assert_eq!(h.last_error, b.last_error);
    assert!(b.latency_p50.is_some() && b.latency_p99 >= b.latency_p50);
    drop(guard);
}

#[test]
fn a_stalled_leg_does_not_delay_or_lose_data_on_the_others() {
    let _s = serial();
    let otlp = Receiver::start();
    let slow = Receiver::start();
    // Held far longer than anything here takes: while the stalled request
    // is unanswered, `slow.webhooks()` stays empty (it records answered
    // requests), so the other backends finishing first proves they did not wait.
    let stall = Duration::from_secs(60);
    slow.set_delay(Some(stall));
    let buf = SharedBuf::default();
    let guard = observra::init()
        .env_from(env(&otlp, "http/protobuf", &[("OTEL_BSP_SCHEDULE_DELAY", "50")]))
        .backends([Backend::Otlp, Backend::Jsonl, Backend::Webhook])
        .jsonl_writer(buf.clone())
        .webhook(Webhook::new(format!("{}/slow", slow.http_endpoint())))
        .install()
        .expect("install");
    for _ in 0..10 {
        run(false).expect("run");
    }
    // The deadlines only bound a broken run.
    let spans = otlp.wait_for_spans(40, Duration::from_secs(30));
    assert_eq!(spans.len(), 40, "the OTLP backend got everything");
    let start = Instant::now();
    while buf.lines().len() < 40 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(buf.lines().len(), 40, "the JSONL backend got everything");
    assert!(slow.webhooks().is_empty(), "...while the webhook's first request is still unanswered");
    // The webhook backend sends on its own schedule: wait for its request to
    // arrive (it then stays unanswered for the whole stall).
    let start = Instant::now();
    while slow.requests().is_empty() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!slow.requests().is_empty(), "the webhook did send it");
    assert!(slow.webhooks().is_empty(), "and it is still unanswered");

    let report = observra::shutdown(Duration::from_millis(500)).expect("report");
    drop(guard);
    let names: Vec<_> = report.backends.iter().map(|b| b.backend).collect();
    assert_eq!(names, ["otlp", "jsonl", "webhook"]);
    assert!(report.backends[..2].iter().all(|b| !b.timed_out && b.error.is_none()), "{report:?}");
    let w = &report.backends[2];
    assert!(w.timed_out && w.abandoned > 0, "{report:?}");
    assert!(!report.is_clean());
    assert!(report.to_string().contains("webhook flushed 0, timed out with"), "{report}");
    assert!(report.elapsed < stall, "the 500 ms deadline held, not the {stall:?} stall: {:?}", report.elapsed);
}

#[test]
fn a_disk_error_after_install_is_counted_not_a_panic() {
    let _s = serial();
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("!!!! /dev/full is missing: disk-error test SKIPPED");
        return;
    }
    let e = [("OBSERVRA_JSONL_PATH", "/dev/full"), ("OTEL_BSP_SCHEDULE_DELAY", "60000")];
    let guard =
        observra::init().env_from(e.map(|(k, v)| (k.to_string(), v.to_string()))).install().expect("opens fine");
    for _ in 0..3 {
        run(false).expect("the program is unaffected");
    }
    let err = observra::flush().expect_err("the disk is full").to_string();
    assert!(err.contains("jsonl") && err.contains("writing JSONL"), "{err}");
    let h = observra::health();
    let b = &h.backends[0];
    assert_eq!((b.backend, b.failed, b.failures), ("jsonl", 12, 1), "{b:?}");
    assert!(b.last_error.as_deref().is_some_and(|e| e.contains("No space left")), "{b:?}");
    let report = guard.shutdown().expect("report");
    assert_eq!(report.backends[0].flushed, 0);
}

/// A user's exporter: collects span names.
#[derive(Debug, Clone, Default)]
struct Collect(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl opentelemetry_sdk::trace::SpanExporter for Collect {
    async fn export(&self, batch: Vec<opentelemetry_sdk::trace::SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.lock().unwrap().extend(batch.into_iter().map(|s| s.name.to_string()));
        Ok(())
    }
}

#[test]
fn any_sdk_span_exporter_can_be_a_backend_of_its_own() {
    let _s = serial();
    let mine = Collect::default();
    let e = [("OTEL_BSP_SCHEDULE_DELAY".to_string(), "60000".to_string())];
    let guard = observra::init().env_from(e).exporter("mine", mine.clone()).install().expect("install");
    assert_eq!(observra::health().backends.iter().map(|b| b.backend).collect::<Vec<_>>(), ["mine"], "the only one");
    run(false).expect("run");
    leaky();
    let report = guard.shutdown().expect("report");
    assert_eq!((report.backends[0].backend, report.backends[0].flushed), ("mine", 5));
    let mut names = mine.0.lock().unwrap().clone();
    names.sort();
    assert_eq!(names, ["chat gpt-4o-mini", "chat gpt-4o-mini", "execute_tool lookup", "invoke_agent support", "leaky"]);
}

/// The webhook retries exactly the statuses the README lists, and no others.
#[test]
fn the_webhook_retries_exactly_408_425_429_500_502_503_504() {
    let _s = serial();
    let rx = Receiver::start();
    let hook = Webhook::new(format!("{}/codes", rx.http_endpoint()))
        .max_retries(1)
        .backoff(Duration::from_millis(1), Duration::from_millis(2));
    let e = [("OTEL_BSP_SCHEDULE_DELAY".to_string(), "60000".to_string()), ("OBSERVRA_LOG".into(), "off".into())];
    let guard = observra::init().env_from(e).webhook(hook).install().expect("install");
    for code in [408u16, 425, 429, 500, 502, 503, 504] {
        let before = rx.webhooks().len();
        rx.script(&[(code, None)]);
        leaky();
        observra::flush().unwrap_or_else(|e| panic!("{code} is retried and the retry succeeds: {e}"));
        assert_eq!(rx.webhooks().len() - before, 2, "{code}: one failure, one retry");
    }
    for code in [400u16, 401, 403, 404, 409, 413, 501, 505] {
        let before = rx.webhooks().len();
        rx.script(&[(code, None)]);
        leaky();
        let err = observra::flush().expect_err("not retried").to_string();
        assert!(err.contains(&format!("HTTP {code}")), "{err}");
        assert_eq!(rx.webhooks().len() - before, 1, "{code}: no retry");
    }
    drop(guard);
}

/// A server on 127.0.0.1 answering every request with `status` and
/// `Location: location`; it keeps each request's first line. It serves at
/// most 8 connections, then stops.
fn redirecting(status: u16, location: String) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            let _ = s.read_exact(&mut body);
            log.lock().unwrap().push(head.lines().next().unwrap_or_default().to_string());
            let answer = format!(
                "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.write_all(answer.as_bytes());
        }
    });
    (addr, seen)
}

/// Installs `hook` alone (no timer export, diagnostics off), sends one
/// span, and returns the error `flush()` must give and the figures after it.
fn one_failed_webhook_batch(hook: Webhook) -> (observra::Error, observra::Health) {
    let e = [("OTEL_BSP_SCHEDULE_DELAY", "60000"), ("OBSERVRA_LOG", "off")];
    let guard = observra::init()
        .env_from(e.map(|(k, v)| (k.to_string(), v.to_string())))
        .webhook(hook)
        .install()
        .expect("install");
    leaky();
    let err = observra::flush().expect_err("the webhook fails the batch");
    let h = observra::health();
    drop(guard);
    (err, h)
}

/// Catches: the webhook client following redirects, so a 301 turned the
/// POST into a body-less GET whose 200 counted the batch as delivered, and
/// a 307 sent the body, the API key header and the URL's secret (in
/// `Referer`) to another port.
#[test]
fn the_webhook_never_follows_a_redirect_and_fails_the_batch() {
    let _s = serial();
    let rx = Receiver::start();
    let elsewhere = format!("{}/steal", rx.http_endpoint());
    for (status, location) in [(301, "/ok".to_string()), (307, elsewhere)] {
        let (addr, seen) = redirecting(status, location);
        let hook =
            Webhook::new(format!("http://{addr}/in?code=S3CRETCODE")).header("X-Api-Key", "k-live-1234").max_retries(0);
        let (err, h) = one_failed_webhook_batch(hook);
        let err = err.to_string();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{status}: one request, never a second to the Location: {seen:?}");
        assert!(seen[0].starts_with("POST /in?code="), "{seen:?}");
        assert!(rx.webhooks().is_empty(), "{status}: nothing reached the other port");
        let hook = h.backends.iter().find(|b| b.backend == "webhook").expect("the webhook backend");
        assert_eq!((hook.exported, hook.failed), (0, 1), "{status}: {hook:?}");
        let last = hook.last_error.clone().unwrap_or_default();
        assert!(err.contains("redirect") && last.contains("redirect"), "{status}: {err} / {last}");
        for text in [&err, &last, h.last_error.as_ref().unwrap(), &format!("{h:?}")] {
            assert!(!text.contains("S3CRETCODE"), "{status}: the URL's query stays out: {text}");
        }
    }
}

/// Catches: `...for url (http://127.0.0.1:9/in?code=S3CRETCODE)` in
/// `health().last_error`, the backend's `last_error` and `flush()`'s error
/// when the webhook cannot connect, and the webhook settings' `Debug`
/// printing the whole URL.
#[test]
fn a_webhook_url_secret_stays_out_of_errors_health_and_debug() {
    let _s = serial();
    let refusing = observra_test_support::RefusingPort::new();
    let url = format!("http://{}/in?code=S3CRETCODE", refusing.addr());
    let hook = Webhook::new(url.clone()).max_retries(0);
    assert!(!format!("{hook:?}").contains("S3CRETCODE"), "{hook:?}");
    let (err, h) = one_failed_webhook_batch(hook);
    assert!(h.last_error.is_some(), "{h:?}");
    for text in [err.to_string(), format!("{err:?}"), format!("{h:?}")] {
        assert!(!text.contains("S3CRETCODE"), "{text}");
    }
}

/// A backend that takes `per_batch` to export each batch, after waiting
/// for `gate` to open (it starts open), and counts what it exported.
#[derive(Clone, Debug)]
struct Paced {
    per_batch: Duration,
    gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
    exported: Arc<std::sync::atomic::AtomicU64>,
}

impl Paced {
    fn new(per_batch: Duration, open: bool) -> Self {
        Paced { per_batch, gate: Arc::new((Mutex::new(open), std::sync::Condvar::new())), exported: Arc::default() }
    }
    fn open(&self) {
        *self.gate.0.lock().unwrap() = true;
        self.gate.1.notify_all();
    }
}

impl opentelemetry_sdk::trace::SpanExporter for Paced {
    async fn export(&self, batch: Vec<opentelemetry_sdk::trace::SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        let (lock, cvar) = &*self.gate;
        let _open = cvar.wait_while(lock.lock().unwrap(), |open| !*open).unwrap();
        std::thread::sleep(self.per_batch);
        self.exported.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[observra::traced]
fn burst_unit(i: u64) -> u64 {
    std::hint::black_box(i.wrapping_mul(31))
}

/// Spans `calls` of `burst_unit` in a tight loop make, and what the pipeline
/// counted as exported and dropped meanwhile.
fn burst(calls: u64) -> (u64, u64) {
    let before = observra::health();
    for i in 0..calls {
        burst_unit(i);
    }
    observra::flush().expect("flush");
    let after = observra::health();
    (after.spans_exported - before.spans_exported, after.spans_dropped - before.spans_dropped)
}

#[test]
fn a_burst_three_times_a_backends_queue_is_carried_whole_while_the_backend_keeps_up() {
    let _s = serial();
    // The default queue (2,048 spans); each batch of 512 takes 2 ms to export.
    let paced = Paced::new(Duration::from_millis(2), true);
    let guard = observra::init().env_from(Vec::<(String, String)>::new()).exporter("paced", paced.clone()).install();
    let guard = guard.expect("install");
    let (exported, dropped) = burst(6_000);
    assert_eq!((exported, dropped), (6_000, 0), "the burst waited for room in the collector's queue");
    assert_eq!(paced.exported.load(std::sync::atomic::Ordering::SeqCst), 6_000);
    drop(guard);
}

#[test]
fn a_stalled_backend_costs_the_others_no_span_in_a_burst_and_its_drops_are_counted() {
    let _s = serial();
    // Its first export waits until the end of the test: it never keeps up.
    let stalled = Paced::new(Duration::ZERO, false);
    let fast = Paced::new(Duration::ZERO, true);
    let guard = observra::init()
        .env_from([("OTEL_BSP_SCHEDULE_DELAY".to_string(), "50".to_string())])
        .exporter("stalled", stalled.clone())
        .exporter("fast", fast.clone())
        .install()
        .expect("install");
    let before = observra::health();
    for i in 0..6_000 {
        burst_unit(i);
    }
    // The fast backend gets every span while the stalled one still holds its first batch.
    let start = Instant::now();
    while fast.exported.load(std::sync::atomic::Ordering::SeqCst) < 6_000 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(fast.exported.load(std::sync::atomic::Ordering::SeqCst), 6_000, "nothing lost on the other backend");
    let h = observra::health();
    let stalled_health = h.backends.iter().find(|b| b.backend == "stalled").expect("stalled backend").clone();
    // Its queue (2,048) and the batch it holds (512) are kept; the rest is dropped and counted.
    assert_eq!(stalled_health.dropped, 6_000 - 2_048 - 512, "{stalled_health:?}");
    assert_eq!(h.spans_dropped_backend_queue - before.spans_dropped_backend_queue, 6_000 - 2_048 - 512);
    assert_eq!(
        h.spans_dropped_collector_queue, before.spans_dropped_collector_queue,
        "no frame lost before the backends"
    );
    stalled.open();
    drop(guard);
}
