//! Every bad configuration value is a typed error from `install()` that
//! names the variable (or builder setting) and the value. Nothing here gets
//! far enough to install anything.

use observra::{Error, Setting};

fn install_err(vars: &[(&str, &str)]) -> Error {
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    match observra::init().env_from(vars.clone()).install() {
        Ok(_) => panic!("{vars:?} was accepted"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_names(vars: &[(&str, &str)], var: &'static str, value: &str) {
    let err = install_err(vars);
    match &err {
        Error::InvalidConfig { setting, value: v, .. } => {
            assert_eq!(setting, &Setting::Env(var), "{err}");
            assert_eq!(v, value, "{err}");
        }
        other => panic!("expected InvalidConfig for {var}, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains(var) && msg.contains(value), "message names the variable and the value: {msg}");
}

#[test]
fn an_unknown_backend_is_rejected() {
    assert_names(&[("OBSERVRA_BACKEND", "kafka")], "OBSERVRA_BACKEND", "kafka");
    let msg = install_err(&[("OBSERVRA_BACKEND", "kafka")]).to_string();
    assert!(msg.contains("otlp, otel_log, jsonl, stdout, webhook"), "says what is allowed: {msg}");
}

#[test]
fn bad_backend_lists_and_webhook_settings_are_rejected() {
    assert_names(&[("OBSERVRA_BACKEND", "otlp,kafka")], "OBSERVRA_BACKEND", "otlp,kafka");
    assert_names(&[("OBSERVRA_BACKEND", "otlp,otlp")], "OBSERVRA_BACKEND", "otlp,otlp");
    assert_names(&[("OBSERVRA_BACKEND", "jsonl,stdout")], "OBSERVRA_BACKEND", "jsonl,stdout");
    assert_names(&[("OBSERVRA_BACKEND", "multi")], "OBSERVRA_BACKEND", "multi");
    assert_names(&[("OBSERVRA_BACKEND", "multi"), ("OBSERVRA_BACKENDS", ",")], "OBSERVRA_BACKENDS", ",");
    assert!(install_err(&[("OBSERVRA_BACKEND", "otlp,otlp")]).to_string().contains("listed twice"));
    // The webhook backend needs a URL, and checks what it is given.
    assert_names(&[("OBSERVRA_BACKEND", "webhook")], "OBSERVRA_WEBHOOK_URL", "");
    let hook = ("OBSERVRA_BACKEND", "webhook");
    assert_names(&[hook, ("OBSERVRA_WEBHOOK_URL", "ftp://x")], "OBSERVRA_WEBHOOK_URL", "ftp://x");
    let url = ("OBSERVRA_WEBHOOK_URL", "http://127.0.0.1:9");
    assert_withheld(&[hook, url, ("OBSERVRA_WEBHOOK_HEADERS", "novalue")], "OBSERVRA_WEBHOOK_HEADERS", "novalue");
    assert_withheld(&[hook, url, ("OBSERVRA_WEBHOOK_HEADERS", "bad name=v")], "OBSERVRA_WEBHOOK_HEADERS", "bad name");
    assert_names(&[hook, url, ("OBSERVRA_WEBHOOK_TIMEOUT", "soon")], "OBSERVRA_WEBHOOK_TIMEOUT", "soon");
    assert_names(&[hook, url, ("OBSERVRA_WEBHOOK_MAX_RETRIES", "-1")], "OBSERVRA_WEBHOOK_MAX_RETRIES", "-1");
    // The same from code.
    let err = observra::init()
        .backends([observra::Backend::Otlp, observra::Backend::Otlp])
        .install()
        .expect_err("a backend twice");
    assert!(
        matches!(&err, observra::Error::InvalidConfig { setting: Setting::Builder("backends"), value, .. } if value == "otlp,otlp"),
        "{err:?}"
    );
    let err = observra::init().webhook(observra::Webhook::new("nope")).install().expect_err("a bad URL");
    assert!(
        matches!(&err, observra::Error::InvalidConfig { setting: Setting::Builder("webhook"), value, .. } if value == "nope"),
        "{err:?}"
    );
}

/// A header list's value may hold an API key: the error names the
/// variable, never the value or any piece of it.
#[track_caller]
fn assert_withheld(vars: &[(&str, &str)], var: &'static str, secret: &str) {
    let err = install_err(vars);
    match &err {
        Error::InvalidConfig { setting, value, .. } => {
            assert_eq!(setting, &Setting::Env(var), "{err}");
            assert!(value.starts_with("<withheld"), "{err}");
        }
        other => panic!("expected InvalidConfig for {var}, got {other:?}"),
    }
    let (text, debug) = (err.to_string(), format!("{err:?}"));
    assert!(text.contains(var), "message names the variable: {text}");
    assert!(!text.contains(secret) && !debug.contains(secret), "no secret in Display or Debug: {text} / {debug}");
}

#[test]
fn malformed_header_lists_are_rejected_without_showing_their_values() {
    let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
    assert_withheld(&[base, ("OTEL_EXPORTER_OTLP_HEADERS", "novalue")], "OTEL_EXPORTER_OTLP_HEADERS", "novalue");
    assert_withheld(&[base, ("OTEL_EXPORTER_OTLP_HEADERS", "=v1234")], "OTEL_EXPORTER_OTLP_HEADERS", "v1234");
    assert_withheld(&[base, ("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz99")], "OTEL_EXPORTER_OTLP_HEADERS", "%zz99");
    assert_withheld(
        &[base, ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "xyzw")],
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "xyzw",
    );
    assert_withheld(&[base, ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1")], "OTEL_EXPORTER_OTLP_HEADERS", "bad name");
    // Catches: `invalid environment variable OTEL_EXPORTER_OTLP_HEADERS:
    // "authorization=Bearer%20S3CRETTOKEN,oops": entry "oops" has no '='`.
    let leaky = "authorization=Bearer%20S3CRETTOKEN,oops";
    assert_withheld(&[base, ("OTEL_EXPORTER_OTLP_HEADERS", leaky)], "OTEL_EXPORTER_OTLP_HEADERS", "S3CRETTOKEN");
    assert_withheld(&[base, ("OTEL_EXPORTER_OTLP_HEADERS", leaky)], "OTEL_EXPORTER_OTLP_HEADERS", "oops");
    assert_withheld(
        &[
            ("OBSERVRA_BACKEND", "webhook"),
            ("OBSERVRA_WEBHOOK_URL", "http://127.0.0.1:9/in"),
            ("OBSERVRA_WEBHOOK_HEADERS", "x-api-key:k-live-S3CRET"),
        ],
        "OBSERVRA_WEBHOOK_HEADERS",
        "S3CRET",
    );
}

/// Catches: a bad endpoint's password and query string echoed in the error.
#[test]
fn a_bad_endpoint_is_named_without_its_password_or_query_string() {
    for bad in
        ["http://user:hunter2pw@collector:99999/v1?token=S3CRETQ", "ftp://user:hunter2pw@collector/x?token=S3CRETQ"]
    {
        let err = install_err(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]);
        assert_eq!(err.setting(), Some(&Setting::Env("OTEL_EXPORTER_OTLP_ENDPOINT")), "{err}");
        let (text, debug) = (err.to_string(), format!("{err:?}"));
        assert!(text.contains("collector"), "the host is still named: {text}");
        for secret in ["hunter2pw", "S3CRETQ"] {
            assert!(!text.contains(secret) && !debug.contains(secret), "{text} / {debug}");
        }
    }
}

#[test]
fn unparsable_endpoints_are_rejected() {
    for bad in ["localhost:4318", "not a url", "http://", "http://host:port", "ftp://collector:21"] {
        assert_names(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)], "OTEL_EXPORTER_OTLP_ENDPOINT", bad);
    }
    assert_names(
        &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318")],
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "collector:4318",
    );
}

#[test]
fn sampler_names_and_ratios_outside_zero_to_one_are_rejected() {
    assert_names(&[("OTEL_TRACES_SAMPLER", "sometimes")], "OTEL_TRACES_SAMPLER", "sometimes");
    for bad in ["1.5", "-0.1", "half"] {
        assert_names(
            &[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", bad)],
            "OTEL_TRACES_SAMPLER_ARG",
            bad,
        );
    }
    let err = observra::init().sampler(observra::Sampler::TraceIdRatio(2.0)).install().unwrap_err();
    assert_eq!(err.setting(), Some(&Setting::Builder("sampler")), "{err}");
}

#[test]
fn protocols_timeouts_and_flags_are_validated() {
    let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
    assert_names(&[base, ("OBSERVRA_OTLP_RETRY_BUDGET", "soon")], "OBSERVRA_OTLP_RETRY_BUDGET", "soon");
    assert_names(
        &[base, ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")],
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "carrier-pigeon",
    );
    assert_names(&[base, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")], "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
    assert_names(&[base, ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp")], "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp");
    assert_names(&[base, ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")], "OTEL_EXPORTER_OTLP_TIMEOUT", "soon");
    assert_names(&[base, ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "1.5s")], "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "1.5s");
    assert_names(&[("OTEL_SDK_DISABLED", "maybe")], "OTEL_SDK_DISABLED", "maybe");
    assert_names(&[("OTEL_BSP_MAX_QUEUE_SIZE", "-1")], "OTEL_BSP_MAX_QUEUE_SIZE", "-1");
    assert_names(&[("OTEL_BSP_SCHEDULE_DELAY", "5s")], "OTEL_BSP_SCHEDULE_DELAY", "5s");
    assert_names(&[("OTEL_METRIC_EXPORT_INTERVAL", "often")], "OTEL_METRIC_EXPORT_INTERVAL", "often");
    assert_names(
        &[("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes")],
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        "sometimes",
    );
}

#[test]
fn malformed_resource_attributes_are_rejected() {
    assert_names(&[("OTEL_RESOURCE_ATTRIBUTES", "team")], "OTEL_RESOURCE_ATTRIBUTES", "team");
    assert_names(&[("OTEL_RESOURCE_ATTRIBUTES", "a=1,=2")], "OTEL_RESOURCE_ATTRIBUTES", "a=1,=2");
}

#[test]
fn a_jsonl_path_that_cannot_be_opened_names_the_setting_and_path() {
    let err = install_err(&[("OBSERVRA_BACKEND", "jsonl"), ("OBSERVRA_JSONL_PATH", "/nonexistent-dir/x/spans.jsonl")]);
    match &err {
        Error::Io { setting, path, .. } => {
            assert_eq!(setting, &Setting::Env("OBSERVRA_JSONL_PATH"));
            assert_eq!(path.to_str(), Some("/nonexistent-dir/x/spans.jsonl"));
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn builder_values_are_validated_too() {
    let err = observra::init().endpoint("collector:4318").install().unwrap_err();
    assert_eq!(err.setting(), Some(&Setting::Builder("endpoint")), "{err}");
    let err = observra::init().service_name(" ").install().unwrap_err();
    assert_eq!(err.setting(), Some(&Setting::Builder("service_name")), "{err}");
    let err = observra::init().max_queue_size(0).install().unwrap_err();
    assert_eq!(err.setting(), Some(&Setting::Builder("max_queue_size")), "{err}");
}

#[test]
fn an_empty_variable_counts_as_unset() {
    // The spec treats empty values as unset; this must not be an error.
    let guard = observra::init()
        .env_from([("OBSERVRA_BACKEND", ""), ("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_SAMPLER", " ")])
        .install()
        .expect("empty values are ignored");
    assert!(!guard.is_active());
}

#[test]
fn switches_with_named_values_are_rejected_with_the_values_they_take() {
    for (var, value, allowed) in [
        ("OBSERVRA_DETAILS_EVENT", "log", "log_record or span_event"),
        ("OBSERVRA_HTTP_QUERY_VALUES", "some", "redacted or non_sensitive"),
        ("OBSERVRA_SELF_METRICS", "maybe", "true"),
    ] {
        assert_names(&[(var, value)], var, value);
        let msg = install_err(&[(var, value)]).to_string();
        assert!(msg.contains(allowed), "says what is allowed: {msg}");
    }
}
