//! Redaction in the export path, decoded from what was exported: a recall
//! corpus where every secret format is caught (plain, inside JSON strings
//! and quoted values), a false-positive corpus left untouched, user rules
//! and key names, and redaction turned off only explicitly.

use observra::{CaptureMode, Usage, llm_call};
use observra_test_support::{Receiver, SharedBuf, Val, otlp_env, serial};
use proptest::prelude::*;

/// (kind, text containing the secret, the secret itself).
const RECALL: &[(&str, &str, &str)] = &[
    ("openai_key", "key sk-abcdefghijklmnopqrstuvwxyz012345 end", "sk-abcdefghijklmnopqrstuvwxyz012345"),
    ("openai_project_key", "sk-proj-Abc123_def456-ghi789jklmnop", "sk-proj-Abc123_def456-ghi789jklmnop"),
    ("anthropic_key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
    ("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_access_key_id", "session ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
    (
        "aws_secret_access_key",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("github_token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("github_token", "gho_abcdefghijklmnopqrstuvwxyz0123456789", "gho_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("github_token", "ghs_abcdefghijklmnopqrstuvwxyz0123456789", "ghs_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("github_token", "ghu_abcdefghijklmnopqrstuvwxyz0123456789", "ghu_abcdefghijklmnopqrstuvwxyz0123456789"),
    (
        "github_fine_grained_token",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
    ),
    ("gitlab_token", "glpat-abcdefghij0123456789", "glpat-abcdefghij0123456789"),
    ("slack_token", "xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    ("slack_token", "xoxp-1234567890-abcdefghij", "xoxp-1234567890-abcdefghij"),
    ("slack_webhook", "https://hooks.slack.com/services/T000/B000/XXXXXXXX", "T000/B000/XXXXXXXX"),
    ("discord_webhook", "https://discord.com/api/webhooks/123456/abcDEF_ghi", "abcDEF_ghi"),
    ("stripe_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("stripe_key", "rk_live_4eC39HqLyjWDarjtT1zdp7dc", "rk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("google_api_key", "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234", "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234"),
    ("google_oauth_token", "ya29.a0AfH6SMBabcdefghijklmnopqrstuv", "ya29.a0AfH6SMBabcdefghijklmnopqrstuv"),
    ("huggingface_token", "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"),
    (
        "groq_key",
        "gsk_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN0123",
        "gsk_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN0123",
    ),
    ("npm_token", "npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("sendgrid_key", "SG.abcdefghijklmnop.qrstuvwxyz0123456789", "SG.abcdefghijklmnop.qrstuvwxyz0123456789"),
    ("twilio_key", "SK0123456789abcdef0123456789abcdef", "SK0123456789abcdef0123456789abcdef"),
    ("mailgun_key", "key-0123456789abcdef0123456789abcdef", "key-0123456789abcdef0123456789abcdef"),
    ("telegram_bot_token", "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"),
    (
        "azure_storage_key",
        "DefaultEndpointsProtocol=https;AccountKey=abcdefghijklmnopqrstuvwxyz0123456789ABCDEF==",
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF==",
    ),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    (
        "private_key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA",
    ),
    (
        "private_key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXk",
    ),
    ("bearer", "Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
    ("basic_auth", "Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    ("url_credentials", "postgres://admin:hunter2@db.internal:5432/app", "hunter2"),
    ("credential", "GET /cb?user=bob&password=hunter2&x=1", "hunter2"),
    ("credential", "form: username=bob&api_key=AbC123xyz", "AbC123xyz"),
    ("credential", "token=abcdef123456", "abcdef123456"),
    ("credential", "DB_PASSWORD: s3cr3t-value", "s3cr3t-value"),
    ("json_secret", r#"{"user":"bob","password":"hunter2","n":1}"#, "hunter2"),
    ("json_secret", r#"{"headers":{"Authorization":"opaque-credential-value"}}"#, "opaque-credential-value"),
    ("json_secret", r#"{"client_secret":"x-y-z-123"}"#, "x-y-z-123"),
    ("cookie", "Cookie: session=abcdef; theme=dark", "session=abcdef"),
    // Keys named `*_KEY`, `*_SECRET`, `*_TOKEN`, `*_PASSWORD`: the value goes whatever it holds.
    ("credential", "export SIGNING_KEY=abc123", "abc123"),
    ("credential", r#"{"webhook_secret":"plain words"}"#, "plain words"),
    ("credential", "db-password := hunter2", "hunter2"),
    ("credential", "SERVICE_TOKEN: 'opaque value'", "opaque value"),
    ("credential", "Session_Password=\"correct horse\"", "correct horse"),
    // The context rule: a secret-named key and a random-looking value.
    (
        "generic_secret",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLE",
    ),
    ("generic_secret", "export STRIPE_PRIVATE_KEY=x9Kf2LmQ8vRt4WzP7nBc3Yd", "x9Kf2LmQ8vRt4WzP7nBc3Yd"),
    ("generic_secret", "db_encryption_key: 5f4dcc3b5aa765d61d8327deb882cf99", "5f4dcc3b5aa765d61d8327deb882cf99"),
    ("generic_secret", "settings['signing_key'] => 'Zx8Lq2Vn7Rt5Wp3Ks9Dm1Fh6Jb4'", "Zx8Lq2Vn7Rt5Wp3Ks9Dm1Fh6Jb4"),
    ("generic_secret", "AzureClientCredential := Qm9vX2J1Y2tldC0yMDI2LXNlY3JldA", "Qm9vX2J1Y2tldC0yMDI2LXNlY3JldA"),
    ("card_number", "card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111"),
    ("card_number", "amex 378282246310005", "378282246310005"),
    ("card_number", "mc 5500-0000-0000-0004", "5500-0000-0000-0004"),
];

/// Text that must reach the backend unchanged.
const FALSE_POSITIVES: &[&str] = &[
    "version 1.2.3-beta.4+build.5",
    "host 192.168.10.254 and 10.0.0.1",
    "ipv6 2001:db8:85a3::8a2e:370:7334 and ::1",
    "request 123e4567-e89b-12d3-a456-426614174000",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    "2026-11-23T09:41:00.123Z and 2026-11-23",
    "model gpt-4o-2024-08-06 and claude-sonnet-4-5 and o4-mini",
    "order 4111 1111 1111 1112 is not a card (fails Luhn)",
    "the tokens were counted: 1024 input tokens",
    "ask-me-anything, task-1234, risk-assessment",
    "see https://example.com/docs?page=2&sort=asc",
    // Secret-named keys whose values are not random: left alone.
    "max_tokens: 4096 and top_k: 40",
    "token_count = 12345678901234567890",
    "sort_key: created_at_descending_order",
    "primary_key = tenant_id_then_user_id",
    "the keyboard: us-international-dead-keys",
    "auth_method: oauth2_client_credentials",
    // Counts named `*_tokens` are not tokens; a `*_key` naming a field is not a key.
    "max_tokens: 256, input_tokens=12, gen_ai.usage.output_tokens = 40",
    r#"{"max_tokens": 256, "output_tokens": 12}"#,
    "sort_key = created_at",
    r#"{"partition_key": "tenant-id"}"#,
    "The key to a good secret is length: 16 characters or more.",
];

fn export(
    attributes: &[(&'static str, String)],
    build: impl FnOnce(observra::Builder) -> observra::Builder,
) -> serde_json::Value {
    let _s = serial();
    let buf = SharedBuf::default();
    let guard = build(observra::init().jsonl_writer(buf.clone())).install().expect("install");
    let span = tracing::info_span!("corpus");
    for (k, v) in attributes {
        observra::__private::set_attribute(&span, k, v.as_str());
    }
    drop(span);
    drop(guard);
    buf.lines().remove(0)["attributes"].clone()
}

#[test]
fn every_secret_format_is_caught_plain_and_inside_json_and_quotes() {
    let keys: Vec<&'static str> =
        (0..RECALL.len()).map(|i| &*Box::leak(format!("text.{i}").into_boxed_str())).collect();
    let mut attrs = Vec::new();
    for (i, (_, text, _)) in RECALL.iter().enumerate() {
        attrs.push((keys[i], text.to_string()));
    }
    let jkeys: Vec<&'static str> =
        (0..RECALL.len()).map(|i| &*Box::leak(format!("json.{i}").into_boxed_str())).collect();
    for (i, (_, text, _)) in RECALL.iter().enumerate() {
        attrs.push((jkeys[i], serde_json::json!({"note": text, "quoted": format!("'{text}'")}).to_string()));
    }
    let exported = export(&attrs, |b| b);
    let mut kinds = std::collections::BTreeSet::new();
    for (i, (kind, _, secret)) in RECALL.iter().enumerate() {
        let plain = exported[keys[i]].as_str().unwrap();
        assert!(!plain.contains(secret), "{kind}: {secret:?} leaked in {plain:?}");
        assert!(plain.contains("[REDACTED:"), "{kind}: {plain:?}");
        let json = exported[jkeys[i]].as_str().unwrap();
        assert!(!json.contains(secret), "{kind} inside JSON: {json:?}");
        kinds.insert(*kind);
    }
    assert!(kinds.len() >= 30, "{} distinct formats: {kinds:?}", kinds.len());
}

#[test]
fn ordinary_values_are_left_untouched() {
    let keys: Vec<&'static str> =
        (0..FALSE_POSITIVES.len()).map(|i| &*Box::leak(format!("fp.{i}").into_boxed_str())).collect();
    let attrs: Vec<_> = FALSE_POSITIVES.iter().enumerate().map(|(i, t)| (keys[i], t.to_string())).collect();
    let exported = export(&attrs, |b| b);
    for (i, text) in FALSE_POSITIVES.iter().enumerate() {
        assert_eq!(exported[keys[i]].as_str(), Some(*text), "changed");
    }
}

#[test]
fn user_rules_and_key_names_apply_and_redaction_is_off_only_when_asked() {
    let attrs = vec![
        ("note", "employee E-123456 called".to_string()),
        ("customer.ssn", "078-05-1120".to_string()),
        ("user.password", "plain words".to_string()),
    ];
    let exported = export(&attrs, |b| b.redact_rule("employee_id", r"E-\d{6}").redact_key("ssn"));
    assert_eq!(exported["note"], "employee [REDACTED:employee_id] called");
    assert_eq!(exported["customer.ssn"], "[REDACTED:ssn]");
    assert_eq!(exported["user.password"], "[REDACTED:password]", "secret-named keys are redacted whatever their value");

    let off = export(&attrs, |b| b.redaction(false));
    assert_eq!(off["user.password"], "plain words");
    let off_env = export(&[("k", "sk-abcdefghijklmnopqrstuvwxyz012345".to_string())], |b| {
        b.env_from([("OBSERVRA_REDACTION", "off")])
    });
    assert_eq!(off_env["k"], "sk-abcdefghijklmnopqrstuvwxyz012345");

    let err = observra::init().redact_rule("broken", "(unclosed").install().unwrap_err();
    assert_eq!(err.setting(), Some(&observra::Setting::Builder("redact_rule")), "{err}");
    assert!(err.to_string().contains("(unclosed"));
    let err = observra::init().env_from([("OBSERVRA_REDACTION", "sometimes")]).install().unwrap_err();
    assert_eq!(err.setting(), Some(&observra::Setting::Env("OBSERVRA_REDACTION")));
}

/// Whether `out` holds any 12-character window of `secret`: the first one found.
fn leaked<'a>(out: &str, secret: &'a str) -> Option<&'a str> {
    (0..=secret.len().saturating_sub(12)).map(|i| &secret[i..(i + 12).min(secret.len())]).find(|w| out.contains(w))
}

/// `n` characters of base64, the same every run (xorshift).
fn base64_text(n: usize, mut seed: u64) -> String {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            B64[(seed % 64) as usize] as char
        })
        .collect()
}

#[llm_call(provider = "openai", model = "gpt-4o-mini", input = prompt)]
fn ask(prompt: &str) -> Result<Usage, std::io::Error> {
    let _ = prompt;
    Ok(Usage::new(10, 2))
}

/// The issue: a 600-character base64 key after `SIGNING_KEY=` and in
/// `{"signing_key":"..."}` left everything past character 256 in the JSONL
/// (`SIGNING_KEY=[REDACTED:generic_secret]jxXSIv+1rw...`), through content
/// capture and as a plain attribute alike.
#[test]
fn a_600_character_key_is_redacted_whole_through_content_capture_and_attributes() {
    let secret = base64_text(600, 0x9e37_79b9_7f4a_7c15);
    for text in [format!("SIGNING_KEY={secret}"), format!(r#"{{"signing_key":"{secret}"}}"#)] {
        let jsonl = {
            let _s = serial();
            let buf = SharedBuf::default();
            let guard = observra::init()
                .jsonl_writer(buf.clone())
                .capture_content(CaptureMode::SpanOnly)
                .install()
                .expect("install");
            ask(&text).unwrap();
            drop(guard);
            let lines = buf.lines();
            let input = lines[0]["attributes"]["gen_ai.input.messages"].as_str().expect("captured").to_string();
            assert!(input.contains("[REDACTED:"), "{input}");
            String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
        };
        assert_eq!(leaked(&jsonl, &secret), None, "content capture of {:?}: {jsonl}", &text[..20]);
        let exported = export(&[("note", text.clone())], |b| b);
        let note = exported["note"].as_str().unwrap();
        assert!(note.contains("[REDACTED:"), "{note}");
        assert_eq!(leaked(note, &secret), None, "attribute {:?}: {note}", &text[..20]);
        assert_eq!(leaked(&observra::redact::redact(&text), &secret), None);
    }
}

#[llm_call(provider = "openai", model = model)]
fn call_model(model: &str) -> Result<Usage, std::io::Error> {
    let _ = model;
    Ok(Usage::new(10, 2))
}

/// Metric labels are copied from a span's attributes before the span is
/// redacted on its way out: a model named from a parameter, or a tool name
/// a library set at run time, reach the metrics redacted too, by the
/// built-in rules and the user's alike.
#[test]
fn a_secret_in_a_model_or_tool_name_does_not_reach_metric_labels() {
    let _s = serial();
    let key = "sk-proj-abcdefghijklmnopqrstuvwxyz123456";
    let ticket = "TCK-123456";
    let rx = Receiver::start();
    let guard = observra::init()
        .env_from(otlp_env(&rx, "http/protobuf"))
        .redact_rule("ticket", "TCK-[0-9]{6}")
        .install()
        .expect("install");
    call_model(&format!("gpt-4o {key}")).unwrap();
    let tool = format!("lookup {ticket}");
    tracing::info_span!("execute_tool", gen_ai.operation.name = "execute_tool", gen_ai.tool.name = %tool)
        .in_scope(|| {});
    drop(guard);
    let metrics = rx.metrics();
    let mut labels = Vec::new();
    for m in &metrics {
        for (attrs, _) in &m.points {
            for (k, v) in attrs {
                let Val::Str(v) = v else { continue };
                assert!(!v.contains(key) && !v.contains(ticket), "{}: {k} = {v}", m.name);
                labels.push((m.name.as_str(), k.as_str(), v.as_str()));
            }
        }
    }
    let has = |metric: &str, key: &str, value: &str| labels.contains(&(metric, key, value));
    assert!(
        has("gen_ai.client.operation.duration", "gen_ai.request.model", "gpt-4o [REDACTED:openai_project_key]"),
        "{labels:#?}"
    );
    assert!(has("gen_ai.execute_tool.duration", "gen_ai.tool.name", "lookup [REDACTED:ticket]"), "{labels:#?}");
}

/// The warning about a model span without its provider names the span as
/// it is exported: redacted by the user's rules too, not only the built-in
/// ones every diagnostic line goes through. Run in a child process (the
/// warning goes to its stderr).
#[test]
fn the_warning_about_a_span_names_it_redacted() {
    if std::env::var_os("OBSERVRA_REDACTION_LINT_CHILD").is_some() {
        let guard = observra::init()
            .jsonl_writer(SharedBuf::default())
            .redact_rule("ticket", "TCK-[0-9]{6}")
            .install()
            .expect("install");
        let name = "chat TCK-123456".to_string();
        tracing::info_span!("chat", otel.name = %name, gen_ai.operation.name = "chat").in_scope(|| {});
        drop(guard);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "the_warning_about_a_span_names_it_redacted", "--nocapture"])
        .env("OBSERVRA_REDACTION_LINT_CHILD", "1")
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warning = stderr.lines().find(|l| l.contains("GenAI conventions require")).expect("the warning");
    assert!(warning.contains("`chat [REDACTED:ticket]`") && !warning.contains("TCK-123456"), "{warning}");
}

/// Attributes whose key's last segment ends in `_key`, `_secret`,
/// `_token` or `_password` are replaced whole; `*_tokens` counts stay.
#[test]
fn attributes_named_like_secrets_are_replaced_whole() {
    let attrs = vec![
        ("app.signing_key", "plain words".to_string()),
        ("webhook_secret", "x".to_string()),
        ("db.ADMIN_PASSWORD", "hunter2".to_string()),
        ("svc/refresh-token", "abc".to_string()),
        ("gen_ai.usage.input_tokens", "12".to_string()),
        ("gen_ai.request.max_tokens", "256".to_string()),
        ("keyboard", "us".to_string()),
    ];
    let exported = export(&attrs, |b| b);
    assert_eq!(exported["app.signing_key"], "[REDACTED:signing_key]");
    assert_eq!(exported["webhook_secret"], "[REDACTED:webhook_secret]");
    assert_eq!(exported["db.ADMIN_PASSWORD"], "[REDACTED:ADMIN_PASSWORD]");
    assert_eq!(exported["svc/refresh-token"], "[REDACTED:refresh-token]");
    assert_eq!(exported["gen_ai.usage.input_tokens"], "12");
    assert_eq!(exported["gen_ai.request.max_tokens"], "256");
    assert_eq!(exported["keyboard"], "us");
}

/// A secret of 16 to 4,096 characters from a base64, hex or token alphabet.
fn secret() -> impl Strategy<Value = String> {
    const ALPHABETS: [&[u8]; 3] = [
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        b"0123456789abcdef",
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~",
    ];
    (0..ALPHABETS.len(), prop::collection::vec(any::<prop::sample::Index>(), 16..=4096), any::<bool>()).prop_map(
        |(a, picks, pad)| {
            let alphabet = ALPHABETS[a];
            let mut s: String = picks.iter().map(|i| alphabet[i.index(alphabet.len())] as char).collect();
            if a == 0 && pad {
                s.push_str("==");
            }
            s
        },
    )
}

/// A key named like a secret: any prefix, `_` or `-`, then key, secret,
/// token or password, in any case.
fn secret_name() -> impl Strategy<Value = String> {
    (
        "[A-Za-z][A-Za-z0-9]{0,11}",
        prop::sample::select(vec!["_", "-"]),
        prop::sample::select(vec!["key", "secret", "token", "password"]),
        0..3u8,
    )
        .prop_map(|(prefix, sep, suffix, case)| {
            let suffix = match case {
                0 => suffix.to_string(),
                1 => suffix.to_ascii_uppercase(),
                _ => suffix[..1].to_ascii_uppercase() + &suffix[1..],
            };
            format!("{prefix}{sep}{suffix}")
        })
}

/// Every form a secret is assigned in: `K=V`, `K: V`, `K := V`, a quoted
/// value, JSON, JSON nested in a JSON string, YAML.
fn planted(name: &str, secret: &str, before: &str, after: &str) -> Vec<String> {
    let json = format!(r#"{{"note":"x","{name}":"{secret}","n":1}}"#);
    vec![
        format!("{before} {name}={secret} {after}"),
        format!("{before} {name}: {secret} {after}"),
        format!("{before} {name} := {secret} {after}"),
        format!("{before} {name}=\"{secret}\" {after}"),
        format!("{before} {{\"{name}\": \"{secret}\"}} {after}"),
        format!("{before} {json} {after}"),
        format!("{before} {} {after}", serde_json::Value::String(json.clone())),
        format!("{before}\nconfig:\n  {name}: {secret}\n  other: 1\n{after}"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever its length, a secret assigned to a secret-named key is
    /// replaced whole: no 12 characters of it are left.
    #[test]
    fn a_secret_of_any_length_is_redacted_whole_in_every_form(
        secret in secret(),
        name in secret_name(),
        before in "[a-z]{1,8}( [a-z]{1,8}){0,4}",
        after in "[a-z]{1,8}( [a-z]{1,8}){0,4}",
    ) {
        // A `*_key` value made of lowercase words only names something
        // (`sort_key: created_at`): left alone by design.
        let word = secret.bytes().all(|b| b.is_ascii_lowercase() || matches!(b, b'_' | b'-' | b'.'));
        prop_assume!(!(word && name.to_ascii_lowercase().ends_with("key")));
        for text in planted(&name, &secret, &before, &after) {
            let out = observra::redact::redact(&text);
            prop_assert!(out.contains("[REDACTED:"), "{}", out);
            prop_assert_eq!(leaked(&out, &secret), None, "{}", out);
        }
    }
}
