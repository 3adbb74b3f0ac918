//! Property tests (proptest): arbitrary strings, huge values and invalid
//! UTF-8 go through span attributes, events and the redaction engine
//! without a panic; redaction is idempotent and never lets a planted secret
//! through, whatever surrounds it.

use std::sync::OnceLock;

use observra::redact::Redactor;
use observra_test_support::{SharedBuf, serial};
use proptest::prelude::*;

fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| Redactor::new(&[], &[]).expect("built-in rules"))
}

/// Any text: every Unicode scalar, control characters, quotes and
/// backslashes included.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<char>(), 0..2_000).prop_map(|c| c.into_iter().collect()),
        "[ -~]{0,400}",
        // Text made of the characters secrets are made of, to hit partial matches.
        "[A-Za-z0-9_\\-=:/+.\"' ]{0,400}",
    ]
}

/// Bytes decoded lossily: what a program does with invalid UTF-8 before it
/// can become a `String` attribute.
fn lossy_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..1_000).prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Secrets whose body must never survive redaction.
fn secret() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9]{40}".prop_map(|s| format!("sk-proj-{s}")),
        "[A-Za-z0-9]{36}".prop_map(|s| format!("ghp_{s}")),
        "[A-Z2-7]{16}".prop_map(|s| format!("AKIA{s}")),
        "[A-Za-z0-9_\\-]{35}".prop_map(|s| format!("AIza{s}")),
        "[A-Za-z0-9]{24}".prop_map(|s| format!("sk_live_{s}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn redaction_never_panics_and_is_idempotent(text in prop_oneof![any_text(), lossy_text()]) {
        let once = redactor().redact(&text).into_owned();
        let twice = redactor().redact(&once).into_owned();
        prop_assert_eq!(&once, &twice, "redacting twice changes nothing");
    }

    #[test]
    fn a_planted_secret_never_survives(
        before in "[ -~]{0,60}",
        secret in secret(),
        after in "[ -~]{0,60}",
        quote in prop_oneof![Just(""), Just("\""), Just("'"), Just("\\\"")],
    ) {
        let text = format!("{before} {quote}{secret}{quote} {after}");
        let out = redactor().redact(&text);
        prop_assert!(!out.contains(&secret), "{secret} survived in {out}");
        prop_assert!(out.contains("[REDACTED:"), "{out}");
    }
}

#[tracing::instrument(skip_all, fields(value = %value, bytes = ?bytes))]
fn record(value: &str, bytes: &[u8]) {
    tracing::info!(inner = %value, "event with {} chars", value.chars().count());
}

/// Through the whole pipeline: spans with arbitrary, huge and lossy values
/// are written as valid JSON lines, one per span, with nothing lost.
#[test]
fn arbitrary_attribute_values_go_through_the_pipeline_without_a_panic() {
    let _s = serial();
    let buf = SharedBuf::default();
    let guard = observra::init()
        .env_from([("OTEL_BSP_SCHEDULE_DELAY", "60000"), ("OTEL_BSP_MAX_QUEUE_SIZE", "100000")])
        .jsonl_writer(buf.clone())
        .install()
        .expect("install");
    let before = observra::health();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 300, ..ProptestConfig::default() });
    let counted = std::cell::Cell::new(0u64);
    runner
        .run(&(prop_oneof![any_text(), lossy_text()], prop::collection::vec(any::<u8>(), 0..64)), |(text, bytes)| {
            record(&text, &bytes);
            counted.set(counted.get() + 1);
            Ok(())
        })
        .expect("no case fails");
    let mut cases = counted.get();
    // Huge values: 1 MiB of text and of secrets-looking text.
    let huge = "x".repeat(1 << 20);
    record(&huge, &[0xff; 1024]);
    let huge_secrets = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD ".repeat(20_000);
    record(&huge_secrets, b"\xc3\x28 invalid");
    cases += 2;
    observra::flush().expect("flush");
    let after = observra::health();
    assert_eq!(after.spans_exported - before.spans_exported, cases, "{after:?}");
    let lines = buf.lines();
    assert_eq!(lines.len() as u64, cases, "one valid JSON line per span");
    let last = &lines[lines.len() - 1];
    let value = last["attributes"]["value"].as_str().expect("a string");
    assert!(!value.contains("sk-proj-abc"), "huge values are redacted too");
    drop(guard);
}
