//! OTLP export over HTTP/protobuf and gRPC, decoded by the in-process
//! receiver: every environment variable, code overriding the environment,
//! metrics, flush-on-drop, sampling, `OTEL_SDK_DISABLED`, re-installation,
//! and the JSONL backends (parsed, not string-matched).

use std::time::Duration;

use observra::traced;
use observra_test_support::{Receiver, SharedBuf, Transport, Val, install_http, otlp_env, serial, span};

#[traced(attrs(step = "one"))]
fn work(i: u64) -> u64 {
    i * 2
}

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn run_both_protocols(protocol: &str, expected: Transport) {
    let _s = serial();
    let rx = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx, protocol)).install().expect("install");
    work(1);
    let counter = observra::meter("export-test").u64_counter("test.requests").with_unit("{request}").build();
    counter.add(3, &[observra::KeyValue::new("route", "/a")]);
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "work");
    assert_eq!(s.transport, expected);
    assert_eq!(s.str_attr("step"), Some("one"));
    assert_eq!(s.resource.get("service.name"), Some(&Val::Str("observra-tests".into())));
    assert_eq!(s.resource.get("telemetry.sdk.language"), Some(&Val::Str("rust".into())));
    let m = rx.wait_for_metric("test.requests", Duration::from_secs(5)).expect("metric exported on shutdown");
    assert_eq!(m.kind, "sum");
    assert_eq!(m.unit, "{request}");
    assert_eq!(m.points.len(), 1);
    assert_eq!(m.points[0].1, 3.0);
    assert_eq!(m.points[0].0.get("route"), Some(&Val::Str("/a".into())));
    assert_eq!(m.resource.get("service.name"), Some(&Val::Str("observra-tests".into())));
    let paths: Vec<_> = rx.requests().iter().map(|r| r.path.clone()).collect();
    if expected == Transport::Http {
        assert!(paths.contains(&"/v1/traces".to_string()) && paths.contains(&"/v1/metrics".to_string()), "{paths:?}");
    }
}

#[test]
fn spans_and_metrics_arrive_over_otlp_http_protobuf() {
    run_both_protocols("http/protobuf", Transport::Http);
}

#[test]
fn spans_and_metrics_arrive_over_otlp_grpc() {
    run_both_protocols("grpc", Transport::Grpc);
}

#[test]
fn dropping_the_guard_flushes_every_queued_span() {
    let _s = serial();
    let rx = Receiver::start();
    // The timer would not fire for a minute: only the guard's flush can deliver.
    let guard = install_http(&rx, &[("OTEL_BSP_MAX_QUEUE_SIZE", "5000")]);
    for i in 0..1500 {
        work(i);
    }
    drop(guard);
    assert_eq!(rx.spans().len(), 1500, "all spans delivered by the time drop returns");
}

#[test]
fn flush_exports_without_shutting_down() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    work(1);
    observra::flush().expect("flush");
    assert_eq!(rx.spans().len(), 1);
    work(2);
    drop(guard);
    assert_eq!(rx.spans().len(), 2);
    assert!(matches!(observra::flush(), Err(observra::Error::NotInstalled)));
}

#[test]
fn resource_variables_are_read_and_code_overrides_them() {
    let _s = serial();
    let rx = Receiver::start();
    let mut e = otlp_env(&rx, "http/protobuf");
    e.push(("OTEL_RESOURCE_ATTRIBUTES".into(), "team=agents,region=eu%2Dwest,service.name=from-attrs".into()));
    let guard = observra::init()
        .env_from(e)
        .service_version("1.2.3")
        .environment("staging")
        .resource_attribute("team", "platform")
        .install()
        .expect("install");
    work(1);
    drop(guard);
    let r = &rx.spans()[0].resource;
    assert_eq!(
        r.get("service.name"),
        Some(&Val::Str("observra-tests".into())),
        "OTEL_SERVICE_NAME beats the attribute list"
    );
    assert_eq!(r.get("region"), Some(&Val::Str("eu-west".into())), "values are percent-decoded");
    assert_eq!(r.get("team"), Some(&Val::Str("platform".into())), "code beats the environment");
    assert_eq!(r.get("service.version"), Some(&Val::Str("1.2.3".into())));
    assert_eq!(r.get("deployment.environment.name"), Some(&Val::Str("staging".into())));

    let rx2 = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx2, "http/protobuf")).service_name("from-code").install().unwrap();
    work(1);
    drop(guard);
    assert_eq!(rx2.spans()[0].resource.get("service.name"), Some(&Val::Str("from-code".into())));
}

#[test]
fn headers_reach_the_collector_and_per_signal_variables_win() {
    let _s = serial();
    for protocol in ["http/protobuf", "grpc"] {
        let rx = Receiver::start();
        let mut e = otlp_env(&rx, protocol);
        e.push(("OTEL_EXPORTER_OTLP_HEADERS".into(), "x-api-key=general,x-tenant=acme%20corp".into()));
        e.push(("OTEL_EXPORTER_OTLP_TRACES_HEADERS".into(), "x-api-key=traces-only".into()));
        let guard = observra::init().env_from(e).install().expect("install");
        work(1);
        drop(guard);
        let reqs = rx.requests();
        let traces = reqs.iter().find(|r| r.path.contains("trace")).expect("a trace request");
        assert_eq!(traces.headers.get("x-api-key").map(String::as_str), Some("traces-only"), "{protocol}");
        assert!(!traces.headers.contains_key("x-tenant"), "the per-signal list replaces the general one");
        let m = reqs.iter().find(|r| r.path.contains("metrics")).expect("the final metrics export");
        assert_eq!(m.headers.get("x-tenant").map(String::as_str), Some("acme corp"), "{protocol}");
        assert_eq!(m.headers.get("x-api-key").map(String::as_str), Some("general"), "{protocol}");
    }
}

#[test]
fn per_signal_endpoints_are_used_as_given() {
    let _s = serial();
    let rx = Receiver::start();
    let e = env(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", format!("{}/v1/traces", rx.http_endpoint())),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9".into()),
    ]);
    let guard = observra::init().env_from(e).install().expect("install");
    work(1);
    drop(guard);
    assert_eq!(rx.spans().len(), 1);

    // The builder's endpoint beats the variable, and its base gets /v1/traces.
    let rx2 = Receiver::start();
    let e = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9".into())]);
    let guard = observra::init().env_from(e).endpoint(rx2.http_endpoint()).install().expect("install");
    work(1);
    drop(guard);
    assert_eq!(rx2.spans().len(), 1);
    assert!(rx2.requests().iter().any(|r| r.path == "/v1/traces"));
}

#[test]
fn metric_endpoint_interval_and_temporality_come_from_the_environment() {
    let _s = serial();
    let traces = Receiver::start();
    let metrics = Receiver::start();
    let e = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", traces.http_endpoint()),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", format!("{}/v1/metrics", metrics.http_endpoint())),
        ("OTEL_METRIC_EXPORT_INTERVAL", "100".into()),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta".into()),
    ]);
    let guard = observra::init().env_from(e).install().expect("install");
    let counter = observra::meter("export-test").u64_counter("test.periodic").build();
    let histogram = observra::meter("export-test").f64_histogram("test.latency").with_unit("s").build();
    counter.add(2, &[]);
    histogram.record(0.25, &[]);
    // The 100 ms interval exports while the guard is still alive.
    let m = metrics.wait_for_metric("test.periodic", Duration::from_secs(10)).expect("periodic export");
    assert_eq!(m.temporality, 1, "delta");
    let h = metrics.wait_for_metric("test.latency", Duration::from_secs(10)).expect("histogram");
    assert_eq!((h.kind, h.temporality, h.unit.as_str()), ("histogram", 1, "s"));
    assert!(traces.metrics().is_empty(), "metrics went only to the per-signal endpoint");
    drop(guard);
}

#[test]
fn observra_backend_selects_stdout_or_otlp_explicitly() {
    let _s = serial();
    // `otlp` with no endpoint anywhere uses the default localhost:4318, which
    // nothing here listens on: installing still succeeds, exports just fail.
    let guard = observra::init()
        .env_from([
            ("OBSERVRA_BACKEND", "otlp"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "200"),
            ("OBSERVRA_LOG", "off"),
            // Fail at the first refusal: this test is about the endpoint.
            ("OBSERVRA_OTLP_RETRY_BUDGET", "0"),
        ])
        .install()
        .expect("install");
    assert_eq!(observra::health().backends.iter().map(|b| b.backend).collect::<Vec<_>>(), ["otlp"]);
    work(1);
    let err = observra::flush().expect_err("nothing listens on the default endpoint").to_string();
    assert!(err.contains("localhost:4318/v1/traces"), "the default endpoint was used: {err}");
    drop(guard);
    // `stdout` beats an endpoint in the environment.
    let rx = Receiver::start();
    let buf = SharedBuf::default();
    let mut e = otlp_env(&rx, "http/protobuf");
    e.push(("OBSERVRA_BACKEND".into(), "stdout".into()));
    let guard = observra::init().env_from(e).jsonl_writer(buf.clone()).install().expect("install");
    work(7);
    drop(guard);
    assert!(rx.requests().is_empty());
    assert_eq!(buf.lines().len(), 1);
}

#[test]
fn export_timeout_bounds_a_stuck_collector() {
    let _s = serial();
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let e = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "300".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000".into()),
        // One request, no retry: this test is about the request's timeout.
        ("OBSERVRA_OTLP_RETRY_BUDGET", "0".into()),
    ]);
    let guard = observra::init().env_from(e).shutdown_timeout(Duration::from_secs(20)).install().expect("install");
    let before = observra::health();
    work(1);
    let r = observra::flush();
    let err = r.expect_err("a stuck collector fails the flush").to_string();
    // The flush's own deadline (20 s) reports "flush: timed out"; the
    // exporter's 300 ms timeout reports the request timing out.
    assert!(!err.contains("flush: timed out"), "the 300 ms export timeout fired, not the flush deadline: {err}");
    assert!(err.contains("timed out"), "the request timed out: {err}");
    let h = observra::health();
    assert_eq!(h.spans_failed - before.spans_failed, 1);
    assert_eq!(h.export_errors - before.export_errors, 1);
    drop(guard);
    drop(listener);
}

#[test]
fn samplers_from_the_environment_decide_what_is_exported() {
    let _s = serial();
    let cases: &[(&str, Option<&str>, usize)] = &[
        ("always_on", None, 20),
        ("always_off", None, 0),
        ("traceidratio", Some("0"), 0),
        ("traceidratio", Some("1.0"), 20),
        ("parentbased_always_off", None, 0),
        ("parentbased_always_on", None, 20),
        ("parentbased_traceidratio", Some("1"), 20),
    ];
    for (sampler, arg, expected) in cases {
        let rx = Receiver::start();
        let mut e = otlp_env(&rx, "http/protobuf");
        e.push(("OTEL_TRACES_SAMPLER".into(), sampler.to_string()));
        if let Some(a) = arg {
            e.push(("OTEL_TRACES_SAMPLER_ARG".into(), a.to_string()));
        }
        let guard = observra::init().env_from(e).install().expect("install");
        for i in 0..20 {
            work(i);
        }
        drop(guard);
        assert_eq!(rx.spans().len(), *expected, "{sampler} {arg:?}");
    }
    // A ratio in between keeps some traces and drops others.
    let rx = Receiver::start();
    let guard = observra::init()
        .env_from(otlp_env(&rx, "http/protobuf"))
        .sampler(observra::Sampler::TraceIdRatio(0.5))
        .install()
        .unwrap();
    for i in 0..400 {
        work(i);
    }
    drop(guard);
    let spans = rx.spans();
    // The decision is the SDK's TraceIdRatioBased rule on each trace id:
    // every kept span obeys it. The count is binomial(400, 0.5): 100..300
    // is ten standard deviations either side, not a timing bound.
    for s in &spans {
        let low = u64::from_str_radix(&s.trace_id[16..], 16).unwrap();
        assert!(low >> 1 < 1 << 62, "kept although its trace id is over the ratio: {}", s.trace_id);
    }
    let n = spans.len();
    assert!(n > 100 && n < 300, "about half of 400 sampled, got {n}");
}

#[test]
fn otel_sdk_disabled_exports_nothing() {
    let _s = serial();
    let rx = Receiver::start();
    let mut e = otlp_env(&rx, "http/protobuf");
    e.push(("OTEL_SDK_DISABLED".into(), "true".into()));
    let before = observra::health();
    let guard = observra::init().env_from(e).install().expect("install");
    assert!(!guard.is_active());
    for i in 0..10 {
        work(i);
    }
    let _ = observra::meter("x").u64_counter("disabled.counter").build();
    drop(guard);
    // Nothing was even produced, so nothing can be in flight to the receiver.
    assert_eq!(observra::health().spans_produced, before.spans_produced);
    assert!(rx.requests().is_empty(), "nothing sent: {:?}", rx.requests());
    assert!(!observra::health().installed);
}

#[test]
fn a_second_install_is_an_error_until_the_first_guard_drops() {
    let _s = serial();
    let rx = Receiver::start();
    let first = install_http(&rx, &[]);
    let second = observra::init().env_from(otlp_env(&rx, "http/protobuf")).install();
    assert!(matches!(second, Err(observra::Error::AlreadyInstalled)), "{second:?}");
    work(1);
    drop(first);
    let again = install_http(&rx, &[]);
    work(2);
    drop(again);
    assert_eq!(rx.spans().len(), 2);
    assert!(matches!(observra::shutdown(Duration::from_secs(5)), Err(observra::Error::NotInstalled)));
}

#[test]
fn shutdown_then_spans_are_counted_not_exported() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let open = tracing::info_span!("outlives_pipeline");
    observra::shutdown(Duration::from_secs(5)).expect("shutdown");
    let before = observra::health();
    drop(open); // ends after shutdown: must not panic, must not be sent
    drop(guard); // the guard after an explicit shutdown is a no-op
    let after = observra::health();
    assert_eq!(after.spans_produced - before.spans_produced, 1, "the late span is counted: {after:?}");
    assert_eq!(after.spans_dropped - before.spans_dropped, 1, "as dropped: {after:?}");
    assert!(rx.spans().is_empty());
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let _s = serial();
    let rx = Receiver::start();
    rx.set_http_status(Some(503));
    let guard = install_http(&rx, &[("OTEL_BSP_MAX_QUEUE_SIZE", "16"), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16")]);
    let before = observra::health();
    // The exporter is busy retrying the 503s: a blocking pipeline would stall
    // here; ours drops what does not fit and counts it.
    for i in 0..500 {
        work(i);
    }
    // Closed spans reach the backend's queue through the collector thread.
    let drained = std::time::Instant::now();
    while observra::health().metric_queue_depth > 0 && drained.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let during = observra::health();
    assert!(during.spans_dropped > before.spans_dropped, "{during:?}");
    drop(guard);
    let after = observra::health();
    let accounted = (after.spans_dropped - before.spans_dropped)
        + (after.spans_exported - before.spans_exported)
        + (after.spans_failed - before.spans_failed);
    assert_eq!(accounted, 500, "every span is exported, failed or dropped: {before:?} -> {after:?}");
    assert!(rx.spans().is_empty(), "the collector refused everything");
}

#[test]
fn jsonl_file_backend_writes_the_documented_schema() {
    let _s = serial();
    let dir = std::env::temp_dir().join(format!("observra-jsonl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spans.jsonl");
    let _ = std::fs::remove_file(&path);
    let e = env(&[
        ("OBSERVRA_BACKEND", "jsonl".into()),
        ("OBSERVRA_JSONL_PATH", path.display().to_string()),
        ("OTEL_SERVICE_NAME", "jsonl-test".into()),
    ]);
    let guard = observra::init().env_from(e).install().expect("install");
    outer_for_jsonl();
    drop(guard);
    let text = std::fs::read_to_string(&path).expect("file written");
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    check_schema(&lines);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stdout_backend_with_a_writer_writes_the_documented_schema() {
    let _s = serial();
    let buf = SharedBuf::default();
    let e = env(&[("OTEL_SERVICE_NAME", "jsonl-test".into())]);
    let guard = observra::init().env_from(e).jsonl_writer(buf.clone()).install().expect("install");
    outer_for_jsonl();
    drop(guard);
    check_schema(&buf.lines());
}

#[traced(kind = client, attrs(models = vec!["a", "b"], n = 3, ratio = 0.5, ok = true))]
fn inner_for_jsonl() -> Result<(), std::io::Error> {
    tracing::info!(k = 1_i64, "note");
    Err(std::io::Error::other("bad"))
}

#[traced]
fn outer_for_jsonl() {
    let _ = inner_for_jsonl();
}

fn check_schema(lines: &[serde_json::Value]) {
    use serde_json::json;
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let inner = lines.iter().find(|l| l["name"] == "inner_for_jsonl").expect("inner");
    let outer = lines.iter().find(|l| l["name"] == "outer_for_jsonl").expect("outer");
    for l in [inner, outer] {
        assert_eq!(l["trace_id"].as_str().map(str::len), Some(32));
        assert_eq!(l["span_id"].as_str().map(str::len), Some(16));
        let start = l["start_time_unix_nano"].as_u64().unwrap();
        let end = l["end_time_unix_nano"].as_u64().unwrap();
        assert_eq!(l["duration_ns"].as_u64(), Some(end - start));
        assert!(l["start_time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(l["resource"]["service.name"], json!("jsonl-test"));
        assert_eq!(l["scope"]["name"], json!("observra"));
    }
    assert_eq!(outer["parent_span_id"], serde_json::Value::Null);
    assert_eq!(inner["parent_span_id"], outer["span_id"]);
    assert_eq!(inner["trace_id"], outer["trace_id"]);
    assert_eq!(inner["kind"], json!("client"));
    assert_eq!(outer["kind"], json!("internal"));
    assert_eq!(inner["status"], json!({"code": "error", "message": "bad"}));
    assert_eq!(outer["status"]["code"], json!("unset"));
    assert_eq!(inner["attributes"]["models"], json!(["a", "b"]), "arrays stay arrays");
    assert_eq!(inner["attributes"]["n"], json!(3));
    assert_eq!(inner["attributes"]["ratio"], json!(0.5));
    assert_eq!(inner["attributes"]["ok"], json!(true));
    assert_eq!(inner["attributes"]["error.type"], json!("std::io::error::Error"));
    let events = inner["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["name"], json!("note"));
    assert_eq!(events[0]["attributes"]["k"], json!(1));
    assert_eq!(events[1]["name"], json!("exception"));
    assert_eq!(events[1]["attributes"]["exception.message"], json!("bad"));
}

#[test]
fn a_401_collector_leaves_no_credential_in_health_errors_or_the_report() {
    let _s = serial();
    const MARKER: &str = "tok-health-5d1e8a90c3b7";
    let rx = Receiver::start();
    rx.set_http_status(Some(401));
    let mut e = otlp_env(&rx, "http/protobuf");
    e.push(("OTEL_EXPORTER_OTLP_HEADERS".into(), format!("authorization=Bearer {MARKER}")));
    let guard = observra::init().env_from(e).install().expect("install");
    work(3);
    let err = observra::flush().expect_err("401 fails the flush").to_string();
    assert!(err.contains("401"), "the status is named: {err}");
    let health = format!("{:?}", observra::health());
    assert!(health.contains("401"), "{health}");
    let report = guard.shutdown().expect("report");
    let texts = [err, health, format!("{report:?}"), report.to_string()];
    assert!(rx.requests().iter().any(|r| r.headers.get("authorization").is_some_and(|v| v.contains(MARKER))));
    for t in texts {
        assert!(!t.contains(MARKER), "a credential leaked: {t}");
    }
}

#[traced(fields(ticket))]
fn handle_ticket(ticket: &str) -> usize {
    ticket.len()
}

/// The per-concern builders (`Otlp`, `Jsonl`, `Redaction`, `Metrics`) set
/// what the flat setters and the variables set, and code wins over the
/// environment: the OTLP endpoint and header, the JSONL file, a redaction
/// rule, and a Prometheus endpoint, all from code, with the environment
/// pointing elsewhere.
#[test]
fn the_per_concern_builders_configure_otlp_jsonl_redaction_and_metrics() {
    let _s = serial();
    let rx = Receiver::start();
    let dir = std::env::temp_dir().join(format!("observra-builders-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spans.jsonl");
    let _ = std::fs::remove_file(&path);
    let env = vec![
        // Code wins over these.
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), "http://127.0.0.1:9".to_string()),
        ("OBSERVRA_JSONL_PATH".to_string(), dir.join("not-this.jsonl").display().to_string()),
        ("OBSERVRA_LOG".to_string(), "off".to_string()),
    ];
    let guard = observra::init()
        .env_from(env)
        .backends([observra::Backend::Otlp, observra::Backend::Jsonl])
        .otlp(
            observra::Otlp::new()
                .endpoint(rx.http_endpoint())
                .header("x-tenant", "acme")
                .protocol(observra::Protocol::HttpProtobuf)
                .timeout(Duration::from_secs(5)),
        )
        .jsonl(observra::Jsonl::new().path(&path))
        .redact(observra::Redaction::new().rule("ticket", "TCK-[0-9]{6}"))
        .metrics(observra::Metrics::new().prometheus_addr("127.0.0.1:0".parse().unwrap()))
        .install()
        .expect("install");
    assert!(observra::prometheus_addr().is_some(), "the Prometheus endpoint from Metrics is serving");
    handle_ticket("TCK-123456");
    drop(guard);
    let spans = rx.wait_for_spans(1, Duration::from_secs(5));
    let s = span(&spans, "handle_ticket");
    assert_eq!(s.str_attr("ticket"), Some("\"[REDACTED:ticket]\""), "the rule from Redaction: {s:#?}");
    assert!(rx.requests().iter().all(|r| r.headers.get("x-tenant").map(String::as_str) == Some("acme")));
    let text = std::fs::read_to_string(&path).expect("the JSONL file from Jsonl");
    assert!(text.contains("handle_ticket") && text.contains("[REDACTED:ticket]") && !text.contains("TCK-123456"));
    assert!(!dir.join("not-this.jsonl").exists(), "code wins over OBSERVRA_JSONL_PATH");
}
