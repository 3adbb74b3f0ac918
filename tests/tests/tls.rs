//! TLS end to end with the default features: an OTLP receiver behind
//! rustls with a certificate authority made at test time. With
//! `OTEL_EXPORTER_OTLP_CERTIFICATE` pointing at that CA, spans arrive over
//! https (HTTP/protobuf, and gRPC with the `grpc` feature); without it, the
//! export fails with a certificate error that health() and stderr name.

use observra_test_support::{Receiver, TestCa, Transport, serial};

#[observra::traced]
fn over_tls() {}

fn ca_file(ca: &TestCa) -> (std::path::PathBuf, impl Drop) {
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let dir = std::env::var_os("CARGO_TARGET_TMPDIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("observra-test-ca-{}-{:?}.pem", std::process::id(), std::thread::current().id()));
    ca.write_ca(&path);
    (path.clone(), Cleanup(path))
}

fn env(rx: &Receiver, protocol: &str, ca: Option<&std::path::Path>) -> Vec<(String, String)> {
    let endpoint = if protocol == "grpc" { rx.grpc_endpoint() } else { rx.http_endpoint() };
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let mut e = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL".to_string(), protocol.to_string()),
        ("OTEL_BSP_SCHEDULE_DELAY".to_string(), "60000".to_string()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT".to_string(), "5000".to_string()),
        ("OTEL_METRICS_EXPORTER".to_string(), "none".to_string()),
    ];
    if let Some(ca) = ca {
        e.push(("OTEL_EXPORTER_OTLP_CERTIFICATE".to_string(), ca.display().to_string()));
    }
    e
}

#[test]
fn spans_arrive_over_https_when_the_collectors_ca_is_trusted() {
    let _s = serial();
    let ca = TestCa::new();
    let (path, _cleanup) = ca_file(&ca);
    for (protocol, transport) in [("http/protobuf", Transport::Http), ("grpc", Transport::Grpc)] {
        let rx = Receiver::start_tls(&ca);
        let guard = observra::init().env_from(env(&rx, protocol, Some(&path))).install().expect("install");
        over_tls();
        observra::flush().unwrap_or_else(|e| panic!("{protocol}: flush over TLS: {e}"));
        drop(guard);
        let spans = rx.spans();
        assert_eq!(spans.len(), 1, "{protocol}: the span arrived over https");
        assert_eq!(spans[0].transport, transport);
        assert_eq!(spans[0].name, "over_tls");
    }
}

#[test]
fn without_the_ca_the_export_fails_with_a_certificate_error_in_health_and_on_stderr() {
    if let Some(protocol) = std::env::var_os("OBSERVRA_TLS_CHILD") {
        let protocol = protocol.to_string_lossy().into_owned();
        let _s = serial();
        let ca = TestCa::new();
        let rx = Receiver::start_tls(&ca);
        let guard = observra::init().env_from(env(&rx, &protocol, None)).install().expect("install");
        over_tls();
        let flushed = observra::flush();
        assert!(flushed.is_err(), "{protocol}: an untrusted certificate must fail the export");
        let health = observra::health();
        let otlp = health.backends.iter().find(|b| b.backend == "otlp").expect("the otlp backend");
        assert_eq!(otlp.failed, 1, "{protocol}: the span is counted as failed, not lost silently");
        let error = otlp.last_error.clone().unwrap_or_default();
        assert!(error.to_lowercase().contains("certificate"), "{protocol}: health names the certificate: {error}");
        drop(guard);
        assert!(rx.spans().is_empty(), "nothing was accepted without trust");
        return;
    }
    for protocol in ["http/protobuf", "grpc"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "without_the_ca_the_export_fails_with_a_certificate_error_in_health_and_on_stderr",
                "--nocapture",
            ])
            .env("OBSERVRA_TLS_CHILD", protocol)
            .output()
            .expect("run the child");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{protocol}: {stderr}");
        let line =
            stderr.lines().find(|l| l.starts_with("observra:") && l.contains("export failed")).unwrap_or_default();
        assert!(line.to_lowercase().contains("certificate"), "{protocol}: stderr names the certificate: {stderr}");
    }
}

#[test]
fn a_certificate_setting_that_cannot_be_read_is_a_typed_error_at_install() {
    let rx = Receiver::start();
    let missing = std::path::Path::new("/nonexistent/observra-ca.pem");
    let mut e = env_plain(&rx);
    e.push(("OTEL_EXPORTER_OTLP_CERTIFICATE".to_string(), missing.display().to_string()));
    let err = observra::init().env_from(e).install().expect_err("an unreadable CA file");
    let msg = err.to_string();
    assert!(msg.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && msg.contains("/nonexistent/observra-ca.pem"), "{msg}");

    let not_pem = std::env::temp_dir().join(format!("observra-not-pem-{}.txt", std::process::id()));
    std::fs::write(&not_pem, "hello").unwrap();
    let mut e = env_plain(&rx);
    e.push(("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE".to_string(), not_pem.display().to_string()));
    let msg = observra::init().env_from(e).install().expect_err("not a PEM file").to_string();
    let _ = std::fs::remove_file(&not_pem);
    assert!(msg.contains("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE") && msg.contains("PEM"), "{msg}");

    let mut e = env_plain(&rx);
    e.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY".to_string(), missing.display().to_string()));
    assert!(observra::init().env_from(e).install().is_err(), "a key without its file is refused");
}

fn env_plain(rx: &Receiver) -> Vec<(String, String)> {
    vec![("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), rx.http_endpoint())]
}
