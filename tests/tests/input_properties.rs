//! Property tests over every input a user or a peer controls: any value of
//! any `OTEL_*` / `OBSERVRA_*` variable, the headers list, the price file,
//! and what a webhook's server answers. None may panic; a bad setting is a
//! typed error naming that setting.
//!
//! Nothing here sends telemetry anywhere: metrics export is off, no span is
//! made, and the variables that name a destination get loopback values or
//! malformed ones only.

use observra::{Error, Setting, Webhook};
use observra_test_support::{Receiver, serial};
use proptest::prelude::*;

/// Every variable observra reads whose value cannot send anything anywhere.
const VARS: &[&str] = &[
    "OBSERVRA_AUDIT_KEY",
    "OBSERVRA_BACKEND",
    "OBSERVRA_BACKENDS",
    "OBSERVRA_CONTENT_MAX_BYTES",
    "OBSERVRA_EXPORT_MAX_BYTES",
    "OBSERVRA_FAST_PATH",
    "OBSERVRA_JSONL_KEY",
    "OBSERVRA_JSONL_MAX_BYTES",
    "OBSERVRA_LOG",
    "OBSERVRA_PRICES",
    "OBSERVRA_REDACTION",
    "OBSERVRA_WEBHOOK_HEADERS",
    "OBSERVRA_WEBHOOK_MAX_RETRIES",
    "OBSERVRA_WEBHOOK_SECRET",
    "OBSERVRA_WEBHOOK_TIMEOUT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "OTEL_LINK_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_LOG_LEVEL",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT",
    "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
];

/// Variables whose value can require another one.
const REQUIRES: &[(&str, &str)] =
    &[("OBSERVRA_BACKEND", "OBSERVRA_WEBHOOK_URL"), ("OBSERVRA_BACKENDS", "OBSERVRA_WEBHOOK_URL")];

/// Values shaped like settings (numbers, lists, pairs, keys) and anything else.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,80}",
        "-?[0-9]{0,25}(\\.[0-9]{0,5})?",
        "([a-z_.%0-9]{0,12}=[ -~]{0,12},?){0,4}",
        "(otlp|jsonl|stdout|webhook|otel_log|multi|grpc|http/protobuf|on|off|true|false|none|debug)(,[a-z_]{0,8}){0,3}",
        "[A-Za-z0-9+/=]{0,64}",
        "[0-9a-f]{60,68}",
    ]
}

fn install_with(var: &str, value: &str) -> observra::Result<observra::Guard> {
    // A backend list naming `jsonl` twice over (or beside `stdout`) writes a file: never in the source tree.
    let file = std::env::temp_dir().join(format!("observra-prop-{}.jsonl", std::process::id()));
    let env = vec![
        (var.to_string(), value.to_string()),
        ("OTEL_METRICS_EXPORTER".to_string(), "none".to_string()),
        ("OBSERVRA_LOG".to_string(), "off".to_string()),
        ("OBSERVRA_JSONL_PATH".to_string(), file.display().to_string()),
    ];
    // The variable under test comes first, so it wins over the quiet defaults when it is one of them.
    let mut seen = std::collections::HashSet::new();
    let env: Vec<_> = env.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect();
    observra::init().env_from(env).jsonl_writer(std::io::sink()).install()
}

fn check(var: &str, result: observra::Result<observra::Guard>) -> Result<(), TestCaseError> {
    match result {
        Ok(guard) => drop(guard),
        // The error names the variable, or the one its value requires
        // (`OBSERVRA_BACKEND=webhook` without `OBSERVRA_WEBHOOK_URL`).
        Err(e @ Error::InvalidConfig { .. }) => {
            let named = e.setting().cloned();
            let required = REQUIRES.iter().any(|(v, r)| *v == var && named == Some(Setting::Env(r)));
            prop_assert!(named == Some(Setting::Env(var_static(var))) || required, "{var}: {e}");
        }
        // Others are typed too (an exporter that cannot be built, a file
        // that cannot be opened); none is a panic.
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

fn var_static(var: &str) -> &'static str {
    VARS.iter().copied().find(|v| *v == var).unwrap_or("?")
}

/// Found by the property test below: a queue bound in the trillions aborted the process.
#[test]
fn a_huge_queue_bound_is_a_typed_error_not_an_abort() {
    let _s = serial();
    for v in ["82778522861580288", "18446744073709551615", "0"] {
        let err = install_with("OTEL_BSP_MAX_QUEUE_SIZE", v).expect_err("refused");
        assert_eq!(err.setting(), Some(&Setting::Env("OTEL_BSP_MAX_QUEUE_SIZE")), "{err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_value_of_any_setting_installs_or_is_a_typed_error_naming_it(
        var in prop::sample::select(VARS),
        v in value(),
    ) {
        let _s = serial();
        // (An abort, such as a queue too large to allocate, fails the whole binary.)
        let result = std::panic::catch_unwind(|| install_with(var, &v));
        prop_assert!(result.is_ok(), "install() panicked for {}={:?}", var, v);
        check(var, result.unwrap())?;
    }

    #[test]
    fn any_price_file_installs_or_is_a_typed_error(text in prop_oneof![
        any::<String>(),
        "\\{\"models\": \\{\"[a-z0-9-]{0,10}\": \\{\"(input|output|cache_read)\": -?[0-9e.]{0,8}\\}\\}\\}",
        "\\[models\\.[a-z]{0,5}\\]\ninput = [ -~]{0,10}",
    ]) {
        let _s = serial();
        let path = std::env::temp_dir().join(format!("observra-prices-prop-{}.json", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let result = std::panic::catch_unwind(|| install_with("OBSERVRA_PRICES", path.to_str().unwrap()));
        prop_assert!(result.is_ok(), "install() panicked on the price file {:?}", text);
        check("OBSERVRA_PRICES", result.unwrap())?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Whatever the webhook's server answers (any status, any Retry-After), nothing panics.
    #[test]
    fn any_answer_from_a_webhook_server_is_a_result(status in 200u16..600, retry_after in value()) {
        let _s = serial();
        let rx = Receiver::start();
        let header = http::HeaderValue::from_str(&retry_after).ok().map(|_| retry_after.as_str());
        rx.script(&[(status, header)]);
        let hook = Webhook::new(format!("{}/in", rx.http_endpoint())).max_retries(0);
        let env = [("OBSERVRA_LOG".to_string(), "off".to_string()), ("OTEL_METRICS_EXPORTER".into(), "none".into())];
        let guard = observra::init().env_from(env).webhook(hook).install().expect("install");
        tracing::info_span!("one").in_scope(|| {});
        let flushed = std::panic::catch_unwind(observra::flush);
        prop_assert!(flushed.is_ok(), "flush panicked on HTTP {} with Retry-After {:?}", status, retry_after);
        drop(guard);
    }
}
