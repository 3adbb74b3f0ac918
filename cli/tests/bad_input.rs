//! Bad input the `observra` command must survive: parent links that form a
//! cycle (a span that is its own parent, two spans each other's), figures
//! that are negative or too large for a sum, and option values that
//! overflow. Each gets an answer, never a panic, a hang, a stack overflow
//! or a negative total.

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
