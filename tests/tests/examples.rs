//! The examples, run as child processes with real environment variables:
//! proves the process environment is honoured and that the README's example
//! works with no collector, and that the OTLP example reaches a collector
//! when pointed at one.

use std::process::Command;

use observra_test_support::{Receiver, Transport};

fn example(bin: &str) -> Command {
    let mut c = Command::new(env!("CARGO"));
    c.args(["run", "--quiet", "-p", "observra-examples", "--bin", bin]);
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k.starts_with("OBSERVRA_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn the_main_example_prints_the_full_genai_tree_with_usage_and_cost_to_stdout() {
    let out = example("support-agent").output().expect("cargo run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let spans: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let named = |n: &str| spans.iter().filter(|s| s["name"] == n).collect::<Vec<_>>();
    let roots: Vec<_> = spans.iter().filter(|s| s["parent_span_id"].is_null()).collect();
    assert_eq!(roots.len(), 1, "{stdout}");
    assert_eq!(roots[0]["name"], "invoke_workflow support-desk");
    let agents = named("invoke_agent support");
    assert_eq!(agents.len(), 2);
    assert_eq!(named("chat gpt-4o-mini").len(), 4);
    assert_eq!(named("execute_tool lookup_order").len(), 2);
    assert_eq!(named("execute_tool retrieve_policy").len(), 2);
    assert!(spans.iter().all(|s| s["resource"]["service.name"] == "support-agent"));
    for a in &agents {
        assert_eq!(a["parent_span_id"], roots[0]["span_id"]);
        assert_eq!(a["attributes"]["observra.total.llm_calls"], 2);
        assert_eq!(a["attributes"]["observra.total.tool_calls"], 2);
        assert!(a["attributes"]["observra.total.cost.usd"].as_f64().unwrap() > 0.0);
    }
    for call in named("chat gpt-4o-mini") {
        let attrs = &call["attributes"];
        assert_eq!(call["kind"], "client");
        assert_eq!(attrs["gen_ai.provider.name"], "openai");
        assert!(attrs["gen_ai.usage.input_tokens"].as_i64().unwrap() > 900);
        assert!(attrs["observra.cost.usd"].as_f64().unwrap() > 0.0, "gpt-4o-mini is in the built-in price table");
        assert!(attrs["gen_ai.conversation.id"].as_str().unwrap().starts_with("ticket-"));
        assert!(attrs.get("gen_ai.input.messages").is_none(), "content is off by default");
    }
    let failed =
        named("execute_tool lookup_order").into_iter().find(|s| s["status"]["code"] == "error").expect("failed lookup");
    assert_eq!(failed["attributes"]["error.type"], "unknown_order");
}

#[test]
fn the_main_example_writes_a_file_when_observra_jsonl_path_is_set() {
    let dir = std::env::temp_dir().join(format!("observra-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agent.jsonl");
    let out = example("support-agent").env("OBSERVRA_JSONL_PATH", &path).output().expect("cargo run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "spans went to the file, not stdout");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 13, "workflow, 2 agents, 4 model calls, 4 tool calls, 2 helpers: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_otlp_example_exports_to_the_collector_named_in_the_environment() {
    for (protocol, transport) in [("http/protobuf", Transport::Http), ("grpc", Transport::Grpc)] {
        let rx = Receiver::start();
        let endpoint = if protocol == "grpc" { rx.grpc_endpoint() } else { rx.http_endpoint() };
        let out = example("otlp-export")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("OTEL_SERVICE_NAME", "otlp-demo")
            .env("OTEL_EXPORTER_OTLP_HEADERS", "x-demo=yes")
            .output()
            .expect("cargo run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let spans = rx.spans();
        assert_eq!(spans.len(), 6, "{protocol}: run, search and ask_model for two questions: {spans:#?}");
        assert!(spans.iter().all(|s| s.transport == transport));
        let roots: Vec<_> = spans.iter().filter(|s| s.name == "invoke_agent demo").collect();
        assert_eq!(roots.len(), 2);
        let searches: Vec<_> = spans.iter().filter(|s| s.name == "search").collect();
        for s in searches {
            assert!(
                roots.iter().any(|r| Some(&r.span_id) == s.parent_span_id.as_ref()),
                "spawned child stays in the trace"
            );
        }
        let ask = spans.iter().find(|s| s.name == "ask_model").unwrap();
        assert_eq!(ask.kind, 3);
        assert!(spans.iter().all(|s| s.resource.get("service.name").and_then(|v| v.as_str()) == Some("otlp-demo")));
        assert!(rx.requests().iter().all(|r| r.headers.get("x-demo").map(String::as_str) == Some("yes")));
        let m = rx.wait_for_metric("demo.questions", std::time::Duration::from_secs(5)).expect("metric");
        assert_eq!(m.points.iter().map(|p| p.1).sum::<f64>(), 2.0);
    }
}

#[test]
fn the_openai_example_records_async_openai_calls_against_the_fake_server() {
    let out = example("openai-agent").env_remove("OPENAI_BASE_URL").output().expect("cargo run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spans: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let calls: Vec<_> = spans.iter().filter(|s| s["name"] == "chat gpt-4o-mini").collect();
    assert_eq!(calls.len(), 2);
    for c in calls {
        assert_eq!(c["attributes"]["gen_ai.usage.output_tokens"], 48);
        assert_eq!(c["attributes"]["gen_ai.usage.cache_read.input_tokens"], 768);
        assert!(c["attributes"]["gen_ai.response.id"].as_str().unwrap().starts_with("chatcmpl-fake-"));
    }
    let agent = spans.iter().find(|s| s["name"] == "invoke_agent order-helper").expect("agent");
    assert_eq!(agent["attributes"]["observra.total.llm_calls"], 2);
}

#[test]
fn the_service_example_flushes_and_reports_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("observra-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spans.jsonl");
    let _ = std::fs::remove_file(&path);
    let mut child = example("graceful-shutdown")
        .env("OBSERVRA_JSONL_PATH", &path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cargo run");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let pid: i32 = loop {
        let line = lines.next().expect("the example starts").expect("stderr");
        if let Some(rest) = line.strip_prefix("serving as pid ") {
            break rest.split(';').next().unwrap().parse().unwrap();
        }
    };
    // Let it handle a few tickets, with spans still queued (5 s batch delay).
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    assert!(rest.iter().any(|l| l == "SIGTERM: shutting down"), "{rest:?}");
    let report = rest.iter().find(|l| l.starts_with("observra shutdown in")).expect("a report");
    let flushed: usize = report
        .split("jsonl flushed ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("jsonl flushed N");
    let text = std::fs::read_to_string(&path).unwrap();
    let spans: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert!(flushed >= 4, "several tickets were flushed at shutdown: {report}");
    assert_eq!(spans.len(), flushed, "what the report says was flushed is in the file: {report}");
    let _ = std::fs::remove_dir_all(&dir);
}
