//! The examples, run as child processes with real environment variables:
//! proves the process environment is honoured and that the README's example
//! works with no collector, and that the OTLP example reaches a collector
//! when pointed at one.

use observra_test_support::{Receiver, RefusingPort, Transport, example, run_ok};

#[test]
fn the_main_example_prints_the_full_genai_tree_with_usage_and_cost_to_stdout() {
    let out = run_ok(&mut example("support-agent"));
    assert_eq!(observra_lines(&out), Vec::<String>::new(), "a clean run: observra prints nothing on stderr");
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
    let out = run_ok(example("support-agent").env("OBSERVRA_JSONL_PATH", &path));
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
        let out = run_ok(
            example("otlp-export")
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
                .env("OTEL_SERVICE_NAME", "otlp-demo")
                .env("OTEL_EXPORTER_OTLP_HEADERS", "x-demo=yes"),
        );
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
        let ask = spans.iter().find(|s| s.name == "chat gpt-4o-mini").unwrap();
        assert_eq!(ask.kind, 3);
        assert_eq!(ask.str_attr("gen_ai.provider.name"), Some("openai"), "a valid GenAI span");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("GenAI conventions require"), "no lint warning: {stderr}");
        assert!(spans.iter().all(|s| s.resource.get("service.name").and_then(|v| v.as_str()) == Some("otlp-demo")));
        assert!(rx.requests().iter().all(|r| r.headers.get("x-demo").map(String::as_str) == Some("yes")));
        let m = rx.wait_for_metric("demo.questions", std::time::Duration::from_secs(5)).expect("metric");
        assert_eq!(m.points.iter().map(|p| p.1).sum::<f64>(), 2.0);
    }
}

#[test]
fn the_openai_example_records_async_openai_calls_against_the_fake_server() {
    let out = run_ok(example("openai-agent").env_remove("OPENAI_BASE_URL"));
    let spans: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let calls: Vec<_> = spans.iter().filter(|s| s["name"] == "chat gpt-4o-mini").collect();
    assert_eq!(calls.len(), 2);
    for c in calls {
        assert_eq!(c["attributes"]["gen_ai.usage.output_tokens"], 48);
        assert_eq!(c["attributes"]["gen_ai.usage.cache_read.input_tokens"], 768);
        assert!(c["attributes"]["gen_ai.response.id"].as_str().unwrap().starts_with("chatcmpl-fake-"));
        // Read from the request by the instrumented client: no macro argument.
        assert_eq!(c["attributes"]["gen_ai.request.temperature"], 0.2);
        assert_eq!(c["attributes"]["server.address"], "127.0.0.1");
        assert_eq!(c["attributes"]["openai.response.service_tier"], "default");
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
    // Two tickets handled, their spans still queued (5 s batch delay).
    for line in lines.by_ref() {
        if line.expect("stderr") == "handled tickets 0 and 1" {
            break;
        }
    }
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
    assert!(flushed >= 4, "both tickets' agent and model spans were flushed at shutdown: {report}");
    assert_eq!(spans.len(), flushed, "what the report says was flushed is in the file: {report}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The example's stderr as lines.
fn stderr_lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().map(str::to_string).collect()
}

/// What observra itself wrote on stderr (the example prints a line of its own).
fn observra_lines(out: &std::process::Output) -> Vec<String> {
    stderr_lines(out).into_iter().filter(|l| l.to_ascii_lowercase().contains("observra")).collect()
}

#[test]
fn an_unreachable_collector_is_reported_once_on_stderr_with_a_shutdown_summary() {
    // Catches: export failures that are only counted (the example used to
    // exit 0 and print nothing while every span was lost).
    let port = RefusingPort::new();
    let traces = format!("{}/v1/traces", port.url());
    let out = example("support-agent").env("OTEL_EXPORTER_OTLP_ENDPOINT", port.url()).output().expect("cargo run");
    assert!(out.status.success(), "the program is unaffected: {:?}", stderr_lines(&out));
    let lines = observra_lines(&out);
    let about_traces: Vec<_> = lines.iter().filter(|l| l.contains(&traces)).collect();
    assert_eq!(about_traces.len(), 2, "the first failure and the shutdown summary: {lines:#?}");
    assert!(
        about_traces[0].starts_with(&format!("observra: otlp {traces}: export failed (connection refused)"))
            && about_traces[0].contains("13 spans not delivered; later batches"),
        "{lines:#?}"
    );
    assert_eq!(
        about_traces[1],
        &format!("observra: otlp {traces}: 13 spans not delivered (connection refused)"),
        "{lines:#?}"
    );
    // Metrics go to the same collector and fail the same way, said once each.
    let metrics = format!("{}/v1/metrics", port.url());
    assert!(lines.iter().any(|l| l.contains(&metrics) && l.contains("metric points not delivered")), "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("observra: ")), "{lines:#?}");
    assert_eq!(lines.len(), 4, "one first-failure line and one summary per signal: {lines:#?}");

    // OBSERVRA_LOG=off (or OTEL_LOG_LEVEL=off) silences it.
    for var in ["OBSERVRA_LOG", "OTEL_LOG_LEVEL"] {
        let quiet = example("support-agent")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", port.url())
            .env(var, "off")
            .output()
            .expect("cargo run");
        assert!(quiet.status.success());
        assert_eq!(observra_lines(&quiet), Vec::<String>::new(), "{var}=off");
    }
    // A bad level is a typed error naming the variable and the value.
    let bad = example("support-agent").env("OBSERVRA_LOG", "loud").output().expect("cargo run");
    assert!(!bad.status.success());
    let text = String::from_utf8_lossy(&bad.stderr);
    assert!(text.contains("OBSERVRA_LOG") && text.contains("loud"), "{text}");
}

#[test]
fn a_401_names_the_endpoint_and_status_and_never_the_credentials() {
    const MARKER: &str = "sk-marker-7f3a9c2e41d8b6";
    let rx = Receiver::start();
    rx.set_http_status(Some(401));
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("diag-401-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = dir.join("spans.jsonl");
    let _ = std::fs::remove_file(&jsonl);
    let out = example("support-agent")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.http_endpoint())
        .env("OTEL_EXPORTER_OTLP_HEADERS", format!("authorization=Bearer {MARKER},x-api-key={MARKER}"))
        .env("OBSERVRA_BACKEND", "otlp,jsonl")
        .env("OBSERVRA_JSONL_PATH", &jsonl)
        .env("OBSERVRA_LOG", "debug")
        .output()
        .expect("cargo run");
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    // The credentials really were sent, so a leak had every chance to show.
    let reqs = rx.requests();
    assert!(reqs.iter().any(|r| r.headers.get("authorization") == Some(&format!("Bearer {MARKER}"))), "{reqs:?}");
    let lines = stderr_lines(&out);
    let traces = format!("{}/v1/traces", rx.http_endpoint());
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("observra: otlp {traces}: export failed (HTTP 401 Unauthorized"))),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("observra: otlp {traces}: 13 spans not delivered (HTTP 401"))),
        "{lines:#?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(MARKER), "no credential on stderr, even at debug: {stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(MARKER));
    let file = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(file.lines().count(), 13, "the JSONL backend still got every span");
    assert!(!file.contains(MARKER), "no credential in the JSONL");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_healthy_collector_run_prints_nothing_on_stderr() {
    let rx = Receiver::start();
    let out =
        example("support-agent").env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.http_endpoint()).output().expect("cargo run");
    assert!(out.status.success());
    assert_eq!(observra_lines(&out), Vec::<String>::new());
    assert_eq!(rx.spans().len(), 13, "and every span arrived");
}

#[test]
fn the_conformance_scenarios_run_against_the_fake_server() {
    let out = example("openai-conformance")
        .arg("all")
        .env_remove("OPENAI_BASE_URL")
        .env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
        .output()
        .expect("cargo run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("GenAI conventions require"), "every span is a valid GenAI span: {stderr}");
    let spans: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let chats = spans.iter().filter(|s| s["name"] == "chat gpt-4o-mini").count();
    assert_eq!(chats, 6, "inference, streaming, two tool-calling rounds, structured output, multimodal");
    let structured = spans.iter().find(|s| s["attributes"]["gen_ai.output.type"] == "json").expect("json output type");
    assert_eq!(structured["attributes"]["gen_ai.provider.name"], "openai");
    let embeddings = spans.iter().find(|s| s["name"] == "embeddings text-embedding-3-small").expect("embeddings");
    assert_eq!(embeddings["attributes"]["gen_ai.embeddings.dimension.count"], 256);
    let multimodal = spans
        .iter()
        .find(|s| s["attributes"]["gen_ai.input.messages"].as_str().is_some_and(|m| m.contains("\"uri\"")))
        .expect("the image is captured as a uri part");
    assert!(
        multimodal["attributes"]["gen_ai.input.messages"].as_str().unwrap().contains("https://example.com/cat.png")
    );
    // The second tool-calling round carries the tool's answer back as input.
    assert!(spans.iter().any(|s| {
        s["attributes"]["gen_ai.input.messages"]
            .as_str()
            .is_some_and(|m| m.contains("tool_call_response") && m.contains("70 degrees and sunny"))
    }));
}
