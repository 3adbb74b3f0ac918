//! Bad input the `observra` command must survive: parent links that form a
//! cycle (a span that is its own parent, two spans each other's), figures
//! that are negative or too large for a sum, option values that overflow,
//! and (for `report`, which reads on) truncated lines, unknown fields and
//! files that are not JSONL. Each gets an answer, never a panic, a hang, a
//! stack overflow or a negative total.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::{Value, json};

const SELF_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CYCLE_TRACE: &str = "5bf92f3577b34da6a3ce929d0e0e4737";

fn span(trace: &str, id: &str, parent: Option<&str>, name: &str, start: u64, attributes: Value) -> String {
    json!({
        "trace_id": trace, "span_id": id, "parent_span_id": parent, "name": name, "kind": "internal",
        "start_time_unix_nano": start, "end_time_unix_nano": start + 1_000_000,
        "status": {"code": "unset", "message": ""}, "attributes": attributes, "events": [], "links": [],
        "resource": {"service.name": "svc"},
    })
    .to_string()
}

fn agent(name: &str) -> Value {
    json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name})
}

fn chat(tokens: f64, cost: f64) -> Value {
    json!({
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
        "gen_ai.usage.input_tokens": tokens, "gen_ai.usage.output_tokens": tokens, "observra.cost.usd": cost,
    })
}

fn write(name: &str, lines: &[String]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.jsonl"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// A self-parented agent with a call below it, and an agent and a call that
/// are each other's parent.
fn cycles() -> Vec<String> {
    vec![
        span(SELF_TRACE, "a000000000000001", Some("a000000000000001"), "invoke_agent self", 1_000, agent("self")),
        span(SELF_TRACE, "a000000000000002", Some("a000000000000001"), "chat self-call", 2_000, chat(10.0, 0.5)),
        span(CYCLE_TRACE, "b000000000000001", Some("b000000000000002"), "invoke_agent cyc", 3_000, agent("cyc")),
        span(CYCLE_TRACE, "b000000000000002", Some("b000000000000001"), "chat cyc-call", 4_000, chat(20.0, 0.25)),
    ]
}

/// `observra args.. file`: its exit code and output; fails on a panic, a
/// stack overflow (death by signal) or a run of more than 30 s (a hang).
fn observra(args: &[&str], file: &PathBuf) -> (i32, String, String) {
    let mut child = Command::cargo_bin("observra")
        .unwrap()
        .args(args)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("observra {args:?} hung on {}", file.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(!err.contains("panicked") && !err.contains("overflow"), "observra {args:?}: {err}");
    let code = status.code().unwrap_or_else(|| panic!("observra {args:?} was killed ({status}): {err}"));
    (code, out, err)
}

#[test]
fn tail_prints_each_span_of_a_cycle_once() {
    let file = write("cycles-tail", &cycles());
    let (code, out, err) = observra(&["tail"], &file);
    assert_eq!(code, 0, "{err}");
    for name in ["invoke_agent self", "chat self-call", "invoke_agent cyc", "chat cyc-call"] {
        assert_eq!(out.matches(&format!("─ {name}  ")).count(), 1, "{name} once:\n{out}");
    }
    // The self-parented agent is a root with its call below it; the cycle is
    // shown from its earliest span.
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows.iter().any(|r| r.starts_with("└─ invoke_agent self")), "{out}");
    assert!(rows.iter().any(|r| r.starts_with("   └─ chat self-call")), "{out}");
    assert!(rows.iter().any(|r| r.starts_with("└─ invoke_agent cyc")), "{out}");
    assert!(rows.iter().any(|r| r.starts_with("   └─ chat cyc-call")), "{out}");

    // A span whose id another span of the trace also has, making a loop
    // through the root's id: still each span once.
    let dup = write(
        "cycles-dup",
        &[
            span(SELF_TRACE, "c000000000000001", None, "root", 1_000, json!({})),
            span(SELF_TRACE, "c000000000000002", Some("c000000000000001"), "child", 2_000, json!({})),
            span(SELF_TRACE, "c000000000000001", Some("c000000000000002"), "same-id", 3_000, json!({})),
        ],
    );
    let (code, out, err) = observra(&["tail"], &dup);
    assert_eq!(code, 0, "{err}");
    for name in ["root", "child", "same-id"] {
        assert_eq!(out.matches(&format!("─ {name}  ")).count(), 1, "{name} once:\n{out}");
    }
}

#[test]
fn summary_and_baseline_count_each_span_of_a_cycle_once() {
    let file = write("cycles-summary", &cycles());
    let (code, out, err) = observra(&["summary", "--format", "json"], &file);
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["spans"], 4);
    assert_eq!(s["models"]["m"]["calls"], 2);
    assert_eq!(s["models"]["m"]["input_tokens"].as_f64(), Some(30.0));
    assert_eq!(s["cost_usd"].as_f64(), Some(0.75));
    let (code, out, err) = observra(&["summary"], &file);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("4 spans in 2 traces"), "{out}");

    let baseline = file.with_extension("baseline.json");
    let (code, out, err) = observra(&["baseline", "update", "--baseline", baseline.to_str().unwrap(), "--from"], &file);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("baseline of 2 run(s)"), "{out}");
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(b["agents"]["self"]["metrics"]["llm_calls"]["mean"], 1.0, "{b:#}");
    assert_eq!(b["agents"]["cyc"]["metrics"]["input_tokens"]["mean"], 20.0, "{b:#}");
}

#[test]
fn tail_follow_shows_a_trace_whose_root_is_its_own_parent() {
    let file = write("cycles-follow", &cycles()[..2]);
    let mut child = Command::cargo_bin("observra")
        .unwrap()
        .args(["tail", "--follow"])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains("invoke_agent self");
                seen.push(line);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.iter().any(|l| l.contains("invoke_agent self")), "{seen:?}");
}

#[test]
fn negative_and_huge_figures_never_make_a_negative_or_null_total() {
    let lines = [
        span(SELF_TRACE, "d000000000000001", None, "invoke_agent a", 1_000, agent("a")),
        span(SELF_TRACE, "d000000000000002", Some("d000000000000001"), "chat neg", 2_000, chat(-50.0, -1.0)),
        span(SELF_TRACE, "d000000000000003", Some("d000000000000001"), "chat big", 3_000, chat(1e308, 1e308)),
        span(SELF_TRACE, "d000000000000004", Some("d000000000000001"), "chat big", 4_000, chat(1e308, 1e308)),
    ];
    let file = write("figures", &lines);
    let (code, out, err) = observra(&["summary", "--format", "json"], &file);
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    for v in [&s["cost_usd"], &s["models"]["m"]["cost_usd"], &s["models"]["m"]["input_tokens"]] {
        let v = v.as_f64().unwrap_or_else(|| panic!("a number, not {v}: {s:#}"));
        assert!(v.is_finite() && v >= 0.0, "{s:#}");
    }
    let baseline = file.with_extension("baseline.json");
    let (code, _, err) = observra(&["baseline", "update", "--baseline", baseline.to_str().unwrap(), "--from"], &file);
    assert_eq!(code, 0, "{err}");
    let b: Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    let cost = b["agents"]["a"]["metrics"]["cost_usd"]["mean"].as_f64();
    assert!(cost.is_some_and(|c| c.is_finite() && c >= 0.0), "{b:#}");
}

#[test]
fn durations_longer_than_the_clock_are_typed_errors_never_a_panic() {
    let file = write("durations", &cycles());
    for since in ["999999999999999999m", "30000000000s", "300000000000000d", "18446744073709551615h"] {
        let (code, _, err) = observra(&["summary", "--format", "json", "--since", since], &file);
        assert_eq!(code, 2, "--since {since}: {err}");
        assert!(err.contains("too long a duration") && !err.contains("panicked"), "--since {since}: {err}");
    }
    // The longest duration that can be counted reaches back to the epoch.
    let (code, out, err) = observra(&["summary", "--format", "json", "--since", "213503d"], &file);
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["spans"], 4);
}

/// The JSON data a report page embeds.
fn page_data(page: &std::path::Path) -> Value {
    let html = std::fs::read_to_string(page).unwrap();
    let start = html.find(r#"<script type="application/json" id="report-data">"#).expect("the data block");
    let body = &html[start..];
    let body = &body[body.find('>').unwrap() + 1..body.find("</script>").unwrap()];
    serde_json::from_str(body).expect("the data block is JSON")
}

#[test]
fn report_skips_bad_lines_and_files_naming_each_on_stderr_and_on_the_page() {
    let good = span(SELF_TRACE, "e000000000000001", None, "invoke_agent ok", 1_000, agent("ok"));
    let truncated = good[..good.len() / 2].to_string();
    let mut unknown: Value = serde_json::from_str(&span(
        SELF_TRACE,
        "e000000000000002",
        Some("e000000000000001"),
        "chat x",
        2_000,
        chat(5.0, 0.5),
    ))
    .unwrap();
    unknown["colour"] = json!("red");
    let own = span(SELF_TRACE, "e000000000000003", Some("e000000000000003"), "loop", 3_000, json!({}));
    let file = write("report-mixed", &[good, truncated, unknown.to_string(), own]);
    let dir = file.parent().unwrap().join("report-folder");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&file, dir.join("spans.jsonl")).unwrap();
    std::fs::write(dir.join("notes.jsonl"), "# not JSON lines\nsome text\n").unwrap();
    let page = dir.with_extension("html");

    let (code, _, err) = observra(&["report", "-o", page.to_str().unwrap()], &dir);
    assert_eq!(code, 0, "{err}");
    let spans = dir.join("spans.jsonl").display().to_string();
    let expected = [
        format!("{spans}:2: not JSON"),
        format!("{spans}:3: unknown field \"colour\""),
        format!("{spans}:4: the span names itself as its parent"),
        format!("{}: not a JSONL span file", dir.join("notes.jsonl").display()),
    ];
    for e in &expected {
        assert!(err.contains(&format!("observra: warning: {e}")), "{e:?} in:\n{err}");
    }
    assert!(err.contains("(line skipped)") && err.contains("(file skipped)"), "{err}");
    let data = page_data(&page);
    let warnings: Vec<&str> = data["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    for e in &expected {
        assert!(warnings.iter().any(|w| w.starts_with(e.as_str())), "{e:?} on the page: {warnings:#?}");
    }
    assert_eq!(data["totals"]["spans"], 3, "the three readable spans are shown");
    assert_eq!(data["runs"][0]["llm_calls"], 1);
}

#[test]
fn report_shows_each_span_of_a_cycle_once_and_says_so() {
    let file = write("report-cycles", &cycles());
    let page = file.with_extension("html");
    let (code, _, err) = observra(&["report", "-o", page.to_str().unwrap()], &file);
    assert_eq!(code, 0, "{err}");
    let data = page_data(&page);
    for trace in [SELF_TRACE, CYCLE_TRACE] {
        let spans = data["traces"][trace]["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 2, "{trace}");
        assert_eq!(spans[0]["depth"], 0);
        assert_eq!(spans[1]["depth"], 1);
        assert_eq!(spans[1]["parent"], spans[0]["id"]);
    }
    assert!(err.contains("b000000000000001 (invoke_agent cyc) form a cycle"), "{err}");
    assert!(err.contains(":1: the span names itself as its parent"), "{err}");
}

#[test]
fn report_of_nothing_readable_still_writes_a_page_that_says_why() {
    let file = write("report-empty", &["{\"trace_id\": 1}".to_string(), "[]".to_string()]);
    let page = file.with_extension("html");
    let (code, _, err) = observra(&["report", "-o", page.to_str().unwrap()], &file);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("wrote ") && err.contains("0 trace(s)") && err.contains("2 warning(s)"), "{err}");
    let data = page_data(&page);
    assert_eq!(data["runs"], json!([]));
    assert_eq!(data["warnings"].as_array().unwrap().len(), 2);
}
