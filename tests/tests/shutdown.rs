//! Shutdown keeps its deadline whatever the collector does, and dropping
//! the guard inside an async runtime neither deadlocks nor waits for the
//! exporters' own timeouts (opentelemetry-rust #2715, #3176 are the SDK's
//! versions of this on a current-thread runtime).
//!
//! The collector here accepts connections and never answers; the exporters'
//! timeout is 30 s and the shutdown deadline 200 ms. A shutdown that waited
//! for any exporter (traces, metrics or logs) would take at least 30 s, and
//! the SDK's meter provider adds a wait of its own of 5 s (mutation tried:
//! calling its shutdown on the caller's thread, as observra did, took
//! 5.2 s here), so "done within 3 s" leaves a correct shutdown fifteen
//! times its deadline and such a bug no room.

use std::time::{Duration, Instant};

use observra::traced;
use observra_test_support::serial;

#[traced]
fn work(i: u64) -> u64 {
    i * 2
}

/// A collector that accepts every connection (the kernel's backlog does)
/// and never reads or answers.
fn silent_collector() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind")
}

fn install(endpoint: &str, backends: &str) -> observra::Guard {
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.to_string()),
        ("OBSERVRA_BACKEND", backends.to_string()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "30000".to_string()),
        ("OTEL_BSP_SCHEDULE_DELAY", "60000".to_string()),
        ("OBSERVRA_LOG", "off".to_string()),
        // The `jsonl` backend's file, never in the source tree.
        (
            "OBSERVRA_JSONL_PATH",
            std::env::temp_dir().join(format!("observra-shutdown-{}.jsonl", std::process::id())).display().to_string(),
        ),
    ];
    observra::init()
        .env_from(env.map(|(k, v)| (k.to_string(), v)))
        .shutdown_timeout(Duration::from_millis(200))
        .install()
        .expect("install")
}

const MARGIN: Duration = Duration::from_secs(3);

fn check(what: &str, took: Duration) {
    eprintln!("{what}: the guard dropped in {took:?}");
    assert!(
        took < MARGIN,
        "{what}: dropping the guard took {took:?}; the deadline is 200 ms, the exporters' timeout 30 s"
    );
}

#[test]
fn dropping_the_guard_on_a_current_thread_runtime_keeps_the_deadline() {
    let _s = serial();
    let collector = silent_collector();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for backends in ["otlp", "otlp,otel_log", "otlp,jsonl"] {
        let took = rt.block_on(async {
            let guard = install(&endpoint, backends);
            for i in 0..50 {
                work(i);
            }
            tokio::task::yield_now().await;
            let start = Instant::now();
            drop(guard);
            start.elapsed()
        });
        check(&format!("current-thread, {backends}"), took);
    }
    drop(collector);
}

#[test]
fn dropping_the_guard_on_a_multi_thread_runtime_keeps_the_deadline() {
    let _s = serial();
    let collector = silent_collector();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let took = rt.block_on(async {
        let guard = install(&endpoint, "otlp,otel_log");
        for i in 0..50 {
            work(i);
        }
        let start = Instant::now();
        drop(guard);
        start.elapsed()
    });
    check("multi-thread", took);
    // The same from a blocking task, as the README recommends in async code.
    let took = rt.block_on(async {
        let guard = install(&endpoint, "otlp");
        work(1);
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let report = guard.shutdown().expect("report");
            assert!(!report.is_clean(), "nothing reached a silent collector: {report}");
            start.elapsed()
        })
        .await
        .unwrap()
    });
    check("spawn_blocking", took);
    drop(collector);
}

#[test]
fn a_shutdown_timeout_of_duration_max_does_not_panic() {
    let _s = serial();
    let rx = observra_test_support::Receiver::start();
    let mut env = observra_test_support::otlp_env(&rx, "http/protobuf");
    env.push(("OBSERVRA_LOG".into(), "off".into()));
    let guard = observra::init().env_from(env).shutdown_timeout(Duration::MAX).install().expect("install");
    work(1);
    observra::flush().expect("flush with no deadline");
    drop(guard);
    assert_eq!(rx.spans().len(), 1);
}
