//! `observra baseline` and `observra export --format audit` on JSONL the
//! support-agent example wrote (hash-chained across five sessions):
//! a normal run passes, an injected anomalous run (10× cost and a tool
//! retry loop) fails the check, degenerate baselines say so, the export
//! validates against the shipped JSON Schema, tampering with a source
//! file makes `verify --from-export` fail, and so does editing the package
//! itself (it carries an HMAC of its exact bytes under the audit key).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::{Value, json};

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("analytics-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// Runs the support-agent example, appending to `path`.
fn run_example(path: &Path, chained: bool) {
    let mut c = observra_test_support::example("support-agent");
    c.env("OBSERVRA_JSONL_PATH", path);
    if chained {
        c.env("OBSERVRA_AUDIT_KEY", KEY);
    }
    observra_test_support::run_ok(&mut c);
}

/// History: five sessions of the example in one hash-chained file (10 runs).
fn history() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = dir().join("history.jsonl");
        for _ in 0..5 {
            run_example(&path, true);
        }
        path
    })
}

/// One more session, not in the baseline.
fn fresh() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = dir().join("fresh.jsonl");
        run_example(&path, false);
        path
    })
}

fn read(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn observra() -> Command {
    let mut c = Command::cargo_bin("observra").expect("the observra binary");
    c.env_remove("OBSERVRA_AUDIT_KEY").env_remove("OBSERVRA_BASELINE");
    c
}

fn baseline_from(files: &[&Path], name: &str) -> PathBuf {
    let out = dir().join(name);
    let mut c = observra();
    c.args(["baseline", "update", "--baseline"]).arg(&out).arg("--from").args(files);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn check(baseline: &Path, id: &str, file: &Path) -> (i32, Value) {
    let o = observra()
        .args(["baseline", "check", id, "--format", "json", "--baseline"])
        .arg(baseline)
        .arg("--from")
        .arg(file)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
    (o.status.code().unwrap_or(-1), v)
}

#[test]
fn a_normal_run_passes_and_an_injected_anomaly_fails_the_check() {
    let baseline = baseline_from(&[history()], "baseline.json");
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(b["agents"]["support"]["runs"], 10);
    let stat = &b["agents"]["support"]["metrics"];
    assert_eq!(stat["llm_calls"], json!({"mean": 2.0, "std": 0.0}));
    assert_eq!(stat["error_rate"]["mean"], 0.125, "one failed lookup in every other run (1 of 4 calls)");
    // A lower bound the example guarantees (each model call sleeps at least 15 ms): no machine makes it shorter.
    assert!(stat["duration_s"]["mean"].as_f64().unwrap() > 0.03);

    // `show` prints it.
    let o = observra().args(["baseline", "show", "--baseline"]).arg(&baseline).output().unwrap();
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(table.lines().any(|l| l.starts_with("support") && l.contains("cost_usd")), "{table}");

    // A normal session: both runs of its trace are within the baseline.
    let spans = read(fresh());
    let trace = spans[0]["trace_id"].as_str().unwrap().to_string();
    let (code, report) = check(&baseline, &trace, fresh());
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["anomalous"], false);
    assert_eq!(report["runs"].as_array().unwrap().len(), 2);
    for r in report["runs"].as_array().unwrap() {
        assert_eq!(r["verdict"], "normal", "{r:#}");
    }

    // Inject an anomalous run: 10× the cost and a retry loop of the same tool call.
    let agent = spans.iter().find(|s| s["name"] == "invoke_agent support").unwrap().clone();
    let agent_id = agent["span_id"].as_str().unwrap().to_string();
    let mut injected: Vec<Value> = spans
        .iter()
        .filter(|s| s["trace_id"] == agent["trace_id"])
        .cloned()
        .map(|mut s| {
            if let Some(c) = s["attributes"]["observra.cost.usd"].as_f64() {
                s["attributes"]["observra.cost.usd"] = json!(c * 10.0);
            }
            s
        })
        .collect();
    let tool = spans
        .iter()
        .find(|s| s["name"] == "execute_tool retrieve_policy" && s["parent_span_id"] == agent["span_id"])
        .unwrap();
    for i in 0..6 {
        let mut copy = tool.clone();
        copy["span_id"] = json!(format!("{:016x}", 0xabc0 + i));
        copy["start_time_unix_nano"] = json!(tool["start_time_unix_nano"].as_u64().unwrap() + i + 1);
        injected.push(copy);
    }
    let path = dir().join("anomalous.jsonl");
    std::fs::write(&path, injected.iter().map(|v| v.to_string() + "\n").collect::<String>()).unwrap();
    let (code, report) = check(&baseline, &agent_id, &path);
    assert_eq!(code, 1, "exit code 1 gates CI: {report:#}");
    let run = &report["runs"][0];
    assert_eq!(run["verdict"], "anomalous");
    let flagged: Vec<&str> = run["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["flagged"] == true)
        .map(|f| f["metric"].as_str().unwrap())
        .collect();
    for m in ["cost_usd", "tool_calls", "retry_rate"] {
        assert!(flagged.contains(&m), "{m} flagged: {flagged:?}");
    }
    assert!(!flagged.contains(&"input_tokens"), "tokens were untouched: {flagged:?}");
    // The table form says the same.
    let o = observra()
        .args(["baseline", "check", &agent_id, "--baseline"])
        .arg(&baseline)
        .arg("--from")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("ANOMALOUS") && text.contains("cost_usd"), "{text}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 anomalous run"));
}

#[test]
fn degenerate_baselines_and_bad_ids_are_explained() {
    // One session: two runs, fewer than three.
    let small = baseline_from(&[fresh()], "small.json");
    let o = observra()
        .args(["baseline", "update", "--from"])
        .arg(fresh())
        .arg("--baseline")
        .arg(dir().join("small2.json"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("support: 2 run(s) (fewer than 3"));
    let trace = read(fresh())[0]["trace_id"].as_str().unwrap().to_string();
    let (code, report) = check(&small, &trace, fresh());
    assert_eq!(code, 0, "not enough history is not a failure: {report:#}");
    assert_eq!(report["runs"][0]["verdict"], "insufficient_baseline");
    assert!(report["runs"][0]["message"].as_str().unwrap().contains("at least 3"));
    // --last keeps the newest runs of each agent.
    let last = baseline_from(&[history()], "last.json");
    let o = observra()
        .args(["baseline", "update", "--last", "4", "--baseline"])
        .arg(&last)
        .arg("--from")
        .arg(history())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("support: 4 run(s)"));
    // --since in the future keeps nothing.
    let o = observra()
        .args(["baseline", "update", "--since", "2999-01-01T00:00:00Z", "--baseline"])
        .arg(dir().join("none.json"))
        .arg("--from")
        .arg(history())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("no agent runs found"));
    // An id that is not there, a bad threshold, a missing baseline: exit 2.
    assert_eq!(check(&small, "ffffffffffffffff", fresh()).0, 2);
    let o = observra().args(["baseline", "check", &trace, "--threshold", "-1", "--from"]).arg(fresh()).output();
    assert_eq!(o.unwrap().status.code(), Some(2));
    let o = observra().args(["baseline", "show", "--baseline", "/nonexistent/b.json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("observra baseline update"));
}

#[test]
fn the_audit_export_validates_and_detects_tampering_with_its_sources() {
    // A copy, so tampering does not disturb the other tests.
    let source = dir().join("audit.jsonl");
    std::fs::copy(history(), &source).unwrap();
    std::fs::copy(observra::audit::head_path(history()), observra::audit::head_path(&source)).unwrap();
    let report = dir().join("report.json");
    let o = observra()
        .args(["export", "--format", "audit", "--since", "1h", "-o"])
        .arg(&report)
        .args(["--key", KEY, "--from"])
        .arg(&source)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let package: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();

    let schema: Value =
        serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/audit-export.schema.json")))
            .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> =
        validator.iter_errors(&package).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "the package follows the schema: {errors:#?}");
    // The schema is not vacuous: a package missing its integrity part fails.
    let mut broken = package.clone();
    broken.as_object_mut().unwrap().remove("integrity");
    assert!(!validator.is_valid(&broken));

    // Contents, checked against the source file.
    let spans: Vec<Value> = read(&source).into_iter().filter(|v| v.get("trace_id").is_some()).collect();
    assert_eq!(package["totals"]["spans"], spans.len());
    assert_eq!(package["totals"]["runs"], 10);
    assert_eq!(package["inventory"]["agents"], json!({"support": 10}));
    assert_eq!(package["inventory"]["tools"], json!({"lookup_order": 10, "retrieve_policy": 10}));
    assert_eq!(package["inventory"]["providers"], json!({"openai": 20}));
    assert_eq!(package["errors"].as_array().unwrap().len(), 5, "one failed lookup per session");
    assert_eq!(package["errors"][0]["error_type"], "unknown_order");
    let oversight = package["human_oversight"].as_array().unwrap();
    assert_eq!(oversight.len(), 5);
    assert_eq!(oversight[0]["decision"], "escalated");
    assert_eq!(oversight[0]["actor"], "support-queue");
    let cost: f64 = spans.iter().filter_map(|s| s["attributes"]["observra.cost.usd"].as_f64()).sum();
    assert!((package["totals"]["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12);
    assert_eq!(package["data_categories"]["content_captured_runs"], json!([]), "content capture is off");
    let integrity = &package["integrity"];
    assert_eq!(integrity["verification"]["status"], "intact", "{integrity:#}");
    let file = &integrity["files"][0];
    assert_eq!(file["first_seq"], 1);
    assert_eq!(file["seals"].as_array().unwrap().len(), 5, "one seal per session");
    assert_eq!(file["last_seq"], file["chained_records"]);

    // Re-checked against the untouched sources: fine.
    let verify = || observra().args(["verify", "--key", KEY, "--from-export"]).arg(&report).output().unwrap();
    let o = verify();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("export verified: 1 source file(s) unchanged"));

    // Tamper: lower one recorded cost.
    let text = std::fs::read_to_string(&source).unwrap();
    let line = text.lines().position(|l| l.contains("observra.cost.usd")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut v: Value = serde_json::from_str(&lines[line]).unwrap();
    v["attributes"]["observra.cost.usd"] = json!(0.0);
    lines[line] = v.to_string();
    std::fs::write(&source, lines.join("\n") + "\n").unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("EXPORT DOES NOT MATCH") && err.contains("sha256"), "{err}");
    assert!(err.contains("hash chain") && err.contains("\"tampered\""), "{err}");
    assert!(
        err.contains("TAMPERED") && err.contains("at sequence") && err.contains("in ") && err.contains("audit.jsonl"),
        "names the file: {err}"
    );
}

/// Exports a private copy of the history (so the other tests' tampering
/// does not reach it), with the audit key or without; returns the package.
fn export_copy(name: &str, with_key: bool) -> PathBuf {
    let source = dir().join(format!("{name}.jsonl"));
    std::fs::copy(history(), &source).unwrap();
    std::fs::copy(observra::audit::head_path(history()), observra::audit::head_path(&source)).unwrap();
    let report = dir().join(format!("{name}.report.json"));
    let mut c = observra();
    c.args(["export", "--format", "audit", "-o"]).arg(&report).arg("--from").arg(&source);
    if with_key {
        c.args(["--key", KEY]);
    }
    observra_test_support::run_ok(&mut c);
    report
}

/// `verify --from-export`: exit code, stdout, stderr.
fn verify_export(report: &Path) -> (i32, String, String) {
    let o = observra().args(["verify", "--key", KEY, "--from-export"]).arg(report).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (o.status.code().unwrap_or(-1), text(&o.stdout), text(&o.stderr))
}

#[test]
fn an_export_whose_totals_are_edited_fails_verification() {
    let report = export_copy("edited-totals", true);
    let (code, out, err) = verify_export(&report);
    assert_eq!(code, 0, "the untouched package verifies: {err}");
    assert!(out.starts_with("export verified: 1 source file(s) unchanged"), "{out}");

    // Edit the recorded total cost in place, byte for byte, as someone
    // trimming the bill in a text editor would: the sources stay untouched.
    let text = std::fs::read_to_string(&report).unwrap();
    let totals = text.find("\"totals\": {").expect("a totals part");
    let value = totals + text[totals..].find("\"cost_usd\": ").unwrap() + "\"cost_usd\": ".len();
    let end = value + text[value..].find([',', '\n']).unwrap();
    let edited = format!("{}0.0{}", &text[..value], &text[end..]);
    let package: Value = serde_json::from_str(&edited).expect("still JSON");
    assert_eq!(package["totals"]["cost_usd"], json!(0.0));
    assert!(text[value..end].parse::<f64>().unwrap() > 0.0, "the edit changes the total");
    std::fs::write(&report, &edited).unwrap();

    let (code, _, err) = verify_export(&report);
    assert_eq!(code, 1, "an edited package must not verify: {err}");
    assert!(err.contains("EXPORT IS NOT AUTHENTIC") && err.contains("package_hmac does not match"), "{err}");
    assert!(err.contains("edited after it was exported"), "says what it means: {err}");
    assert!(!err.contains("EXPORT DOES NOT MATCH ITS SOURCES"), "the sources are unchanged: {err}");

    // Re-serialising the untouched JSON (as jq or an editor's formatter
    // would) loses the exact bytes the HMAC covers: refused, saying so.
    let original: Value = serde_json::from_str(&text).unwrap();
    std::fs::write(&report, serde_json::to_string(&original).unwrap()).unwrap();
    let (code, _, err) = verify_export(&report);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("reformatted"), "{err}");

    // Restored byte for byte: verifies again, and says the package is authentic.
    std::fs::write(&report, &text).unwrap();
    let (code, out, err) = verify_export(&report);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("package_hmac matches"), "{out}");
}

#[test]
fn an_export_made_without_the_key_is_refused_by_verify() {
    let report = export_copy("keyless", false);
    let package: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(package.get("package_hmac").is_none());
    assert_eq!(package["integrity"]["verification"]["status"], "not_verified");
    let (code, _, err) = verify_export(&report);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no package_hmac") && err.contains("--key"), "says how to make one: {err}");
}
