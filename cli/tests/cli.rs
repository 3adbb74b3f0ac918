//! The `observra` binary on real files produced by the examples:
//! tail, summary (checked against figures computed here from the same
//! file), replay into the in-process OTLP receiver, and bad input.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use observra_test_support::{Receiver, Transport, Val, example, run_ok};

/// One JSONL file written by the support-agent example, shared by the tests.
fn agent_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-agent-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        run_ok(example("support-agent").env("OBSERVRA_JSONL_PATH", &path));
        path
    })
}

fn lines(path: &PathBuf) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn observra() -> Command {
    Command::cargo_bin("observra").expect("the observra binary")
}

#[test]
fn tail_prints_each_trace_as_a_tree() {
    let out = run_ok(observra().arg("tail").arg(agent_file()));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "no colour when stdout is not a terminal");
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("trace ") && rows[0].ends_with("support-agent"), "{text}");
    assert!(rows[1].starts_with("└─ invoke_workflow support-desk"), "{text}");
    assert_eq!(
        rows.iter().filter(|r| r.contains("├─ invoke_agent support") || r.contains("└─ invoke_agent support")).count(),
        2
    );
    assert!(rows.iter().any(|r| r.contains("│  ├─ chat gpt-4o-mini") && r.contains("tokens 1076/127")), "{text}");
    assert!(
        rows.iter().any(|r| r.contains("execute_tool lookup_order") && r.contains("ERROR no order with id Z-9")),
        "{text}"
    );
    let coloured = observra().args(["tail", "--color", "always"]).arg(agent_file()).output().unwrap();
    assert!(String::from_utf8_lossy(&coloured.stdout).contains("\x1b[31mERROR"));
}

#[test]
fn summary_matches_figures_computed_from_the_file() {
    let spans = lines(agent_file());
    let llm: Vec<_> = spans.iter().filter(|s| s["attributes"]["gen_ai.operation.name"] == "chat").collect();
    let input: f64 = llm.iter().map(|s| s["attributes"]["gen_ai.usage.input_tokens"].as_f64().unwrap()).sum();
    let cost: f64 = llm.iter().map(|s| s["attributes"]["observra.cost.usd"].as_f64().unwrap()).sum();

    let out = observra().args(["summary", "--format", "json"]).arg(agent_file()).output().unwrap();
    assert!(out.status.success());
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["spans"], 13);
    assert_eq!(s["errors"], 1);
    let m = &s["models"]["gpt-4o-mini"];
    assert_eq!(m["calls"], 4);
    assert_eq!(m["input_tokens"].as_f64(), Some(input));
    assert!((m["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12);
    assert!((s["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12);
    assert_eq!(s["agents"]["support"]["calls"], 2);
    assert_eq!(s["agents"]["support"]["input_tokens"].as_f64(), Some(input), "agents count what ran beneath them");
    assert_eq!(s["tools"]["lookup_order"]["errors"], 1);
    assert!(m["latency_ms"]["p95"].as_f64().unwrap() >= m["latency_ms"]["p50"].as_f64().unwrap());

    let table = observra().arg("summary").arg(agent_file()).output().unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("gpt-4o-mini") && text.contains("lookup_order"), "{text}");

    let future = observra()
        .args(["summary", "--format", "json", "--since", "2999-01-01T00:00:00Z"])
        .arg(agent_file())
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&future.stdout).unwrap();
    assert_eq!(s["spans"], 0, "the time filter applies");
    let recent = observra().args(["summary", "--format", "json", "--since", "1d"]).arg(agent_file()).output().unwrap();
    let s: serde_json::Value = serde_json::from_slice(&recent.stdout).unwrap();
    assert_eq!(s["spans"], 13);
}

#[test]
fn replay_sends_the_spans_with_their_ids_and_types_over_http_and_grpc() {
    let original = lines(agent_file());
    for (protocol, transport) in [("http/protobuf", Transport::Http), ("grpc", Transport::Grpc)] {
        let rx = Receiver::start();
        let endpoint = if protocol == "grpc" { rx.grpc_endpoint() } else { rx.http_endpoint() };
        let out = run_ok(
            observra()
                .args(["replay", "--endpoint", &endpoint, "--protocol", protocol, "--header", "x-replay=yes"])
                .arg(agent_file()),
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("replayed 13 spans"));
        let spans = rx.spans();
        assert_eq!(spans.len(), 13);
        assert!(spans.iter().all(|s| s.transport == transport));
        for o in &original {
            let r = spans.iter().find(|s| s.span_id == o["span_id"].as_str().unwrap()).expect("same span id");
            assert_eq!(r.trace_id, o["trace_id"].as_str().unwrap());
            assert_eq!(r.parent_span_id.as_deref(), o["parent_span_id"].as_str());
            assert_eq!(r.name, o["name"].as_str().unwrap());
            assert_eq!(r.start_unix_nano, o["start_time_unix_nano"].as_u64().unwrap());
            assert_eq!(r.resource.get("service.name"), Some(&Val::Str("support-agent".into())));
            if let Some(t) = o["attributes"]["gen_ai.usage.input_tokens"].as_i64() {
                assert_eq!(r.attr("gen_ai.usage.input_tokens"), Some(&Val::Int(t)), "ints stay ints");
                assert!(matches!(r.attr("observra.cost.usd"), Some(Val::Double(_))), "doubles stay doubles");
                assert_eq!(r.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("stop".into())])));
            }
            if o["status"]["code"] == "error" {
                assert_eq!(r.status_code, 2);
                assert_eq!(r.status_message, o["status"]["message"].as_str().unwrap());
                assert_eq!(r.events.len(), o["events"].as_array().unwrap().len());
            }
        }
        assert!(rx.requests().iter().all(|r| r.headers.get("x-replay").map(String::as_str) == Some("yes")));
    }
}

#[test]
fn bad_input_is_reported_with_file_and_line_and_exit_code_2() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-bad-{}.jsonl", std::process::id()));
    let first = std::fs::read_to_string(agent_file()).unwrap().lines().next().unwrap().to_string();
    std::fs::write(&path, format!("{first}\n{{not json\n")).unwrap();
    let out = observra().arg("summary").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2", path.display())) && err.contains("not JSON"), "{err}");
    let out = observra().args(["replay", "--endpoint", "collector:4318"]).arg(agent_file()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = observra().args(["summary", "--since", "last tuesday"]).arg(agent_file()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn tail_follow_shows_a_trace_once_its_root_is_written() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-follow-{}.jsonl", std::process::id()));
    std::fs::write(&path, "").unwrap();
    let mut child = observra().args(["tail", "--follow"]).arg(&path).stdout(Stdio::piped()).spawn().unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    for line in std::fs::read_to_string(agent_file()).unwrap().lines() {
        writeln!(file, "{line}").unwrap();
    }
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut line = String::new();
    while Instant::now() < deadline && !seen.iter().any(|l: &String| l.contains("invoke_workflow support-desk")) {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push(line.clone());
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.iter().any(|l| l.contains("invoke_workflow support-desk")), "{seen:?}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn verify_and_decrypt_work_on_a_file_the_example_wrote() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audited.jsonl");
    let (audit_key, enc_key) = ("11".repeat(32), "22".repeat(32));
    run_ok(
        example("support-agent")
            .env("OBSERVRA_JSONL_PATH", &path)
            .env("OBSERVRA_AUDIT_KEY", &audit_key)
            .env("OBSERVRA_JSONL_KEY", &enc_key),
    );

    let ok = observra().arg("verify").arg(&path).env("OBSERVRA_AUDIT_KEY", &audit_key).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(out.starts_with("intact: 14 records, sequence 1..14, 1 seal(s), chain "), "{out}");

    let plain = observra().arg("decrypt").arg(&path).args(["--key", &enc_key]).output().unwrap();
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
    let records: Vec<serde_json::Value> =
        String::from_utf8(plain.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 13);
    assert!(records.iter().any(|r| r["name"] == "invoke_workflow support-desk"));

    // Tamper: drop the 5th line.
    let lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
    let tampered = dir.join("tampered.jsonl");
    let kept: Vec<&String> = lines.iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, l)| l).collect();
    std::fs::write(&tampered, kept.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    std::fs::copy(observra::audit::head_path(&path), observra::audit::head_path(&tampered)).unwrap();
    let bad = observra().arg("verify").arg(&tampered).args(["--key", &audit_key]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at sequence 5"), "{}", String::from_utf8_lossy(&bad.stderr));

    let wrong = observra().arg("decrypt").arg(&path).args(["--key", &"33".repeat(32)]).output().unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no key given has that id"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Catches: a trail and its anchor restored together from an earlier copy
/// verified intact with nothing to tell; a head saved elsewhere now does.
#[test]
fn a_saved_head_catches_a_trail_rolled_back_with_its_anchor() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-rollback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (path, copy, safe) = (dir.join("trail.jsonl"), dir.join("copy.jsonl"), dir.join("safe.head"));
    let key = "33".repeat(32);
    let write = || run_ok(example("support-agent").env("OBSERVRA_JSONL_PATH", &path).env("OBSERVRA_AUDIT_KEY", &key));
    write();
    std::fs::copy(&path, &copy).unwrap();
    std::fs::copy(observra::audit::head_path(&path), observra::audit::head_path(&copy)).unwrap();
    write();
    let saved =
        observra().arg("verify").arg(&path).args(["--key", &key]).arg("--save-head").arg(&safe).output().unwrap();
    assert!(saved.status.success() && safe.exists(), "{}", String::from_utf8_lossy(&saved.stderr));
    // Put the old trail and its old anchor back: both authentic.
    std::fs::copy(&copy, &path).unwrap();
    std::fs::copy(observra::audit::head_path(&copy), observra::audit::head_path(&path)).unwrap();
    let alone = observra().arg("verify").arg(&path).args(["--key", &key]).output().unwrap();
    assert!(alone.status.success(), "the trail alone cannot tell: {}", String::from_utf8_lossy(&alone.stdout));
    let checked =
        observra().arg("verify").arg(&path).args(["--key", &key]).arg("--expect-head").arg(&safe).output().unwrap();
    let err = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(1), "{err}");
    assert!(err.contains("TAMPERED (rolled back)"), "{err}");
}
