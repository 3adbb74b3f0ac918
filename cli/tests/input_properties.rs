//! Property tests over the JSONL files the `observra` command reads: any
//! bytes, and real records with any one field changed, given to `summary`,
//! `tail`, `report`, `verify` and `baseline update`. Each answers with an exit code
//! (0 to 3) and a message, never a panic.

use std::path::PathBuf;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use proptest::prelude::*;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A real record of the schema, to mutate.
const RECORD: &str = r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","parent_span_id":null,"name":"chat gpt-4o-mini","kind":"client","start_time":"2026-11-30T10:00:00.000000000Z","end_time":"2026-11-30T10:00:01.000000000Z","start_time_unix_nano":1796032800000000000,"end_time_unix_nano":1796032801000000000,"duration_ns":1000000000,"status":{"code":"ok","message":""},"attributes":{"gen_ai.operation.name":"chat","gen_ai.usage.input_tokens":10,"observra.cost.usd":0.001},"events":[],"resource":{"service.name":"s"},"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","hmac":"00"}"#;

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        // The record with one field replaced by any JSON-ish value.
        (
            prop::sample::select(vec![
                "trace_id",
                "span_id",
                "name",
                "kind",
                "start_time",
                "end_time",
                "start_time_unix_nano",
                "end_time_unix_nano",
                "status",
                "attributes",
                "events",
                "resource",
                "seq",
                "prev",
                "hmac",
            ]),
            prop_oneof![
                Just("null".to_string()),
                Just("[]".to_string()),
                Just("{}".to_string()),
                "-?[0-9]{1,25}(\\.[0-9]{1,3})?(e[0-9]{1,3})?",
                "\"[ -~]{0,30}\"",
            ],
        )
            .prop_map(|(field, v)| {
                let mut r: serde_json::Map<String, serde_json::Value> = serde_json::from_str(RECORD).unwrap();
                let value = serde_json::from_str(&v).unwrap_or(serde_json::Value::Null);
                r.insert(field.to_string(), value);
                serde_json::Value::Object(r).to_string()
            }),
        Just(RECORD.to_string()),
        Just(r#"{"seal":true,"seq":2}"#.to_string()),
    ]
}

fn run(args: &[&str], file: &PathBuf) -> (Option<i32>, String) {
    let out =
        Command::cargo_bin("observra").unwrap().args(args).arg(file).env_remove("OBSERVRA_AUDIT_KEY").output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_jsonl_file_gets_an_exit_code_and_a_message_never_a_panic(lines in prop::collection::vec(line(), 0..6)) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-prop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("input.jsonl");
        std::fs::write(&file, lines.join("\n")).unwrap();
        let baseline = dir.join("baseline.json");
        let baseline = baseline.to_str().unwrap();
        let page = dir.join("report.html");
        let page = page.to_str().unwrap();
        for args in [
            vec!["report", "-o", page],
            vec!["summary"],
            vec!["summary", "--format", "json"],
            vec!["tail"],
            vec!["verify", "--key", KEY],
            vec!["baseline", "update", "--baseline", baseline, "--from"],
        ] {
            let (code, stderr) = run(&args, &file);
            prop_assert!(!stderr.contains("panicked"), "{:?} panicked on {:?}: {}", args, lines, stderr);
            prop_assert!(matches!(code, Some(0..=3)), "{:?} exited {:?} on {:?}: {}", args, code, lines, stderr);
        }
    }
}
