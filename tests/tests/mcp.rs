//! MCP through rmcp, across two processes: the `mcp-server` binary (a real
//! rmcp server wrapped in `TracedServer`) in a child process, over stdio
//! and over streamable HTTP on 127.0.0.1, and a client in this process
//! wrapped in `TracedClient`, inside an `#[agent]`. Both processes export
//! to the same in-process OTLP receiver; what it decodes must be one trace
//! with the client and server spans, the MCP attributes, correct parents,
//! both duration metrics, and no tool arguments or results unless capture
//! is on.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use observra::integrations::mcp::TracedClient;
use observra::{agent, tool_call};
use observra_test_support::{ReceivedSpan, Receiver, Val, otlp_env, serial};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams};
use rmcp::service::{Peer, RoleClient, ServiceError};

fn args(id: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), serde_json::Value::String(id.into()));
    m
}

fn call(tool: &'static str, id: &str) -> CallToolRequestParams {
    CallToolRequestParams::new(tool).with_arguments(args(id))
}

type Client<C> = TracedClient<C>;

/// The enclosing `#[tool_call]` of the same tool: the MCP attributes go on it.
#[tool_call(name = "lookup_order")]
async fn lookup_order<C: std::ops::Deref<Target = Peer<RoleClient>>>(
    client: &Client<C>,
    id: &str,
) -> Result<String, ServiceError> {
    let r = client.call_tool(call("lookup_order", id)).await?;
    Ok(format!("{:?}", r.content))
}

#[agent(name = "support")]
async fn support<C: std::ops::Deref<Target = Peer<RoleClient>>>(
    client: &Client<C>,
    secret: &str,
) -> Result<(), ServiceError> {
    lookup_order(client, "A-1001").await?;
    let cancelled = client.call_tool(call("cancel_order", secret)).await?;
    assert_eq!(cancelled.is_error, Some(true));
    let unknown = client.call_tool(call("no_such_tool", "x")).await;
    assert!(matches!(unknown, Err(ServiceError::McpError(ref e)) if e.code.0 == -32602), "{unknown:?}");
    let prompt = client.get_prompt(GetPromptRequestParams::new("triage")).await?;
    assert_eq!(prompt.messages.len(), 1);
    let recent = client.read_resource(ReadResourceRequestParams::new("orders://recent")).await?;
    assert_eq!(recent.contents.len(), 1);
    Ok(())
}

fn server_command(mode: &str, rx: &Receiver, extra: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcp-server"));
    c.arg(mode);
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k.starts_with("OBSERVRA_") {
            c.env_remove(k);
        }
    }
    c.envs(otlp_env(rx, "http/protobuf"));
    c.envs(extra.iter().copied());
    c
}

/// Runs the agent against the server over `mode`; returns the decoded spans.
fn run(mode: &str, extra: &[(&str, &str)]) -> (Receiver, Vec<ReceivedSpan>) {
    let rx = Receiver::start();
    let mut env = otlp_env(&rx, "http/protobuf");
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let guard = observra::init().env_from(env).install().expect("install");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let secret = "sk-TESTabcdefghijklmnopqrstuvwx0123";
    match mode {
        "stdio" => runtime.block_on(async {
            let marker = std::env::temp_dir().join(format!("observra-mcp-cancel-{}", std::process::id()));
            let _ = std::fs::remove_file(&marker);
            let mut cmd = server_command("stdio", &rx, extra);
            cmd.env("MCP_CANCEL_MARKER", &marker);
            let transport =
                rmcp::transport::TokioChildProcess::new(tokio::process::Command::from(cmd)).expect("spawn the server");
            let client = TracedClient::new(().serve(transport).await.expect("initialize")).stdio();
            support(&client, secret).await.expect("agent");
            // A call given up on: the server is told (notifications/cancelled).
            let gave_up =
                tokio::time::timeout(Duration::from_millis(200), client.call_tool(call("slow_order", "x"))).await;
            assert!(gave_up.is_err(), "the slow tool answers only when cancelled");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !marker.exists() && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(marker.exists(), "the server saw the cancellation within 10 s");
            let _ = std::fs::remove_file(&marker);
            let _ = client.into_inner().cancel().await;
        }),
        _ => {
            let mut child: Child = server_command("http", &rx, extra)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn the server");
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
            let url = line.trim().strip_prefix("LISTEN ").expect("the server's address").to_string();
            runtime.block_on(async {
                let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url.as_str());
                let client = TracedClient::new(().serve(transport).await.expect("initialize")).http(&url);
                support(&client, secret).await.expect("agent");
                let _ = client.into_inner().cancel().await;
            });
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
    drop(runtime);
    drop(guard);
    let spans = rx.spans();
    (rx, spans)
}

fn service(s: &ReceivedSpan) -> &str {
    s.resource.get("service.name").and_then(Val::as_str).unwrap_or("")
}

fn find<'a>(spans: &'a [ReceivedSpan], name: &str, kind: i32) -> &'a ReceivedSpan {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name && s.kind == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "{name} (kind {kind}): {:?}",
        spans.iter().map(|s| (&s.name, s.kind, service(s))).collect::<Vec<_>>()
    );
    found[0]
}

fn check(mode: &str, transport: &str, spans: &[ReceivedSpan], rx: &Receiver) {
    // rmcp's own session-long spans are not exported, at either end.
    let internal = ["serve_inner", "streamable_http_session", "transport_worker"];
    assert!(!spans.iter().any(|s| internal.contains(&s.name.as_str())), "{mode}: rmcp's own spans exported");
    let agent = find(spans, "invoke_agent support", 1);
    // The call inside `#[tool_call(name = "lookup_order")]` is that span's: no second client span.
    let tool = find(spans, "execute_tool lookup_order", 1);
    assert_eq!(service(tool), "observra-tests");
    assert_eq!(tool.str_attr("mcp.method.name"), Some("tools/call"), "{mode}");
    assert!(tool.str_attr("jsonrpc.request.id").is_some());
    assert!(!spans.iter().any(|s| s.name == "tools/call lookup_order" && s.kind == 3), "no second span");
    let cancel = find(spans, "tools/call cancel_order", 3);
    let unknown = find(spans, "tools/call no_such_tool", 3);
    for c in [tool, cancel, unknown] {
        assert_eq!(c.parent_span_id.as_deref(), Some(agent.span_id.as_str()), "{}", c.name);
        assert_eq!(c.str_attr("network.transport"), Some(transport), "{mode}: {}", c.name);
        assert!(c.str_attr("mcp.protocol.version").is_some_and(|v| v.starts_with("20")), "{}", c.name);
        if transport == "tcp" {
            assert_eq!(c.str_attr("server.address"), Some("127.0.0.1"));
            assert!(matches!(c.attr("server.port"), Some(Val::Int(p)) if *p > 0));
        }
    }
    for c in [cancel, unknown] {
        assert_eq!(c.str_attr("gen_ai.operation.name"), Some("execute_tool"));
        assert_eq!(c.str_attr("mcp.method.name"), Some("tools/call"));
        assert!(c.str_attr("jsonrpc.request.id").is_some());
        assert_eq!(c.status_code, 2);
    }
    assert_eq!(cancel.str_attr("gen_ai.tool.name"), Some("cancel_order"));
    assert_eq!(cancel.str_attr("error.type"), Some("tool_error"));
    assert_eq!(unknown.str_attr("error.type"), Some("-32602"));
    assert_eq!(unknown.str_attr("rpc.response.status_code"), Some("-32602"));
    // The status description is the JSON-RPC error's message, on both sides.
    assert_eq!(unknown.status_message, "no tool named no_such_tool", "{mode}: the client's");
    let unknown_served = find(spans, "tools/call no_such_tool", 2);
    assert_eq!(unknown_served.status_message, "no tool named no_such_tool", "{mode}: the server's");
    // `initialize` names the version the session negotiated (the one the
    // client's spans carry), not the one the client asked for.
    let initialize = find(spans, "initialize", 2);
    assert_eq!(initialize.str_attr("mcp.protocol.version"), tool.str_attr("mcp.protocol.version"), "{mode}");

    // The server's spans, in the other process, children of the client's.
    for (name, client) in
        [("tools/call lookup_order", tool), ("tools/call cancel_order", cancel), ("tools/call no_such_tool", unknown)]
    {
        let server = find(spans, name, 2);
        assert_eq!(service(server), "mcp-server");
        assert_eq!(server.trace_id, agent.trace_id, "{mode}: one trace across the two processes");
        assert_eq!(server.parent_span_id.as_deref(), Some(client.span_id.as_str()), "{mode}: {name}");
        assert_eq!(server.str_attr("mcp.method.name"), Some("tools/call"));
        assert_eq!(server.str_attr("network.transport"), Some(transport));
        assert_eq!(
            server.str_attr("jsonrpc.request.id"),
            client.str_attr("jsonrpc.request.id"),
            "the same request on both sides"
        );
    }
    if transport == "tcp" {
        // The HTTP session, as the server sees it in the Mcp-Session-Id header.
        let sessions: std::collections::BTreeSet<&str> = ["tools/call lookup_order", "tools/call cancel_order"]
            .iter()
            .map(|n| find(spans, n, 2).str_attr("mcp.session.id").expect("mcp.session.id"))
            .collect();
        assert_eq!(sessions.len(), 1, "one session: {sessions:?}");
    }
    // A prompt and a resource: named by gen_ai.prompt.name / mcp.resource.uri on both sides.
    for kind in [3, 2] {
        let prompt = find(spans, "prompts/get triage", kind);
        assert_eq!(prompt.str_attr("mcp.method.name"), Some("prompts/get"));
        assert_eq!(prompt.str_attr("gen_ai.prompt.name"), Some("triage"), "kind {kind}");
        assert!(prompt.attr("gen_ai.operation.name").is_none(), "not a tool call");
        let read = find(spans, "resources/read", kind);
        assert_eq!(read.str_attr("mcp.resource.uri"), Some("orders://recent"), "kind {kind}");
        for s in [prompt, read] {
            assert_eq!(s.str_attr("network.transport"), Some(transport), "{}", s.name);
            assert!(s.str_attr("jsonrpc.request.id").is_some(), "{}", s.name);
        }
    }
    for name in ["prompts/get triage", "resources/read"] {
        let (client, server) = (find(spans, name, 3), find(spans, name, 2));
        assert_eq!(client.parent_span_id.as_deref(), Some(agent.span_id.as_str()), "{name}");
        assert_eq!(server.parent_span_id.as_deref(), Some(client.span_id.as_str()), "{mode}: {name}");
        assert_eq!(server.str_attr("jsonrpc.request.id"), client.str_attr("jsonrpc.request.id"));
    }
    assert_eq!(find(spans, "tools/call cancel_order", 2).str_attr("error.type"), Some("tool_error"));
    assert_eq!(find(spans, "tools/call no_such_tool", 2).str_attr("error.type"), Some("-32602"));
    assert!(spans.iter().any(|s| s.name == "initialize" && s.kind == 2), "the handshake, on the server");

    // Both metrics: the client's from this process, the server's from the other.
    let points = |name: &str| -> Vec<(String, u64, Option<String>)> {
        rx.metric_streams(name)
            .into_iter()
            .flat_map(|m| {
                let svc = m.resource.get("service.name").and_then(Val::as_str).unwrap_or("").to_string();
                m.histogram_points.into_iter().map(move |p| {
                    (svc.clone(), p.count, p.attributes.get("error.type").and_then(Val::as_str).map(str::to_string))
                })
            })
            .collect()
    };
    let client_points = points("mcp.client.operation.duration");
    // Three tool calls, a prompt and a resource; over stdio one more call is given up on (cancelled).
    let calls = if transport == "pipe" { 6 } else { 5 };
    assert_eq!(client_points.iter().map(|p| p.1).sum::<u64>(), calls, "{client_points:?}");
    assert!(client_points.iter().any(|p| p.2.as_deref() == Some("-32602")));
    let server_points = points("mcp.server.operation.duration");
    assert!(server_points.iter().all(|p| p.0 == "mcp-server"));
    assert!(server_points.iter().map(|p| p.1).sum::<u64>() >= 4, "initialize and three calls: {server_points:?}");
    assert!(server_points.iter().any(|p| p.2.as_deref() == Some("tool_error")));
    // The prompt's name is a metric attribute; the resource's unbounded URI is not (opt-in).
    for name in ["mcp.client.operation.duration", "mcp.server.operation.duration"] {
        let points: Vec<_> = rx.metric_streams(name).into_iter().flat_map(|m| m.histogram_points).collect();
        let of = |method: &str| -> Vec<_> {
            points
                .iter()
                .filter(|p| p.attributes.get("mcp.method.name").and_then(Val::as_str) == Some(method))
                .collect()
        };
        let prompt = of("prompts/get");
        assert_eq!(prompt.len(), 1, "{name}: {points:?}");
        assert_eq!(prompt[0].attributes.get("gen_ai.prompt.name").and_then(Val::as_str), Some("triage"), "{name}");
        assert_eq!(of("resources/read").len(), 1, "{name}: {points:?}");
        assert!(points.iter().all(|p| !p.attributes.contains_key("mcp.resource.uri")), "{name}: {points:?}");
    }
    // The server's metrics name the tools it declares; `no_such_tool`, asked for by the client, is `_OTHER`.
    let server_tools = tool_names(rx, "mcp.server.operation.duration", "mcp-server");
    let mut declared = vec!["_OTHER", "cancel_order", "lookup_order"];
    if transport == "pipe" {
        declared.push("slow_order");
    }
    assert_eq!(server_tools.keys().map(String::as_str).collect::<Vec<_>>(), declared);
    assert_eq!(server_tools["_OTHER"], 1, "no_such_tool: {server_tools:?}");
}

/// The tool names (`gen_ai.tool.name`) in `service`'s last export of the
/// histogram `metric`, with their counts.
fn tool_names(rx: &Receiver, metric: &str, service: &str) -> std::collections::BTreeMap<String, u64> {
    let last = rx
        .metric_streams(metric)
        .into_iter()
        .rfind(|m| m.resource.get("service.name").and_then(Val::as_str) == Some(service));
    let mut names = std::collections::BTreeMap::new();
    for p in last.map(|m| m.histogram_points).unwrap_or_default() {
        if let Some(name) = p.attributes.get("gen_ai.tool.name").and_then(Val::as_str) {
            *names.entry(name.to_string()).or_default() += p.count;
        }
    }
    names
}

/// Catches: the server's metrics keyed by whatever tool or prompt name a
/// client sends, so a client calling random names fills the metric SDK's
/// 2,000-series limit for good (every later series lands in its overflow).
#[test]
fn tool_and_prompt_names_the_server_does_not_declare_are_other_in_its_metrics() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).install().expect("install");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let random: Vec<String> =
        (0..50u32).map(|i| format!("tool_{i}_{:08x}", i.wrapping_add(1).wrapping_mul(2_654_435_761))).collect();
    runtime.block_on(async {
        let transport =
            rmcp::transport::TokioChildProcess::new(tokio::process::Command::from(server_command("stdio", &rx, &[])))
                .expect("spawn the server");
        let client = TracedClient::new(().serve(transport).await.expect("initialize")).stdio();
        client.call_tool(call("lookup_order", "A-1")).await.expect("a declared tool");
        for name in &random {
            let unknown = client.call_tool(CallToolRequestParams::new(name.clone())).await;
            assert!(matches!(unknown, Err(ServiceError::McpError(ref e)) if e.code.0 == -32602), "{unknown:?}");
        }
        client.get_prompt(GetPromptRequestParams::new("triage")).await.expect("a declared prompt");
        for name in ["prompt_1f3a", "prompt_9c2e"] {
            assert!(client.get_prompt(GetPromptRequestParams::new(name)).await.is_err());
        }
        let _ = client.into_inner().cancel().await;
    });
    drop(runtime);
    drop(guard);
    let spans = rx.spans();

    // The server's metrics: the declared tool by name, the 50 others as one `_OTHER` series.
    for metric in ["mcp.server.operation.duration", "gen_ai.execute_tool.duration"] {
        let names = tool_names(&rx, metric, "mcp-server");
        assert_eq!(names.keys().map(String::as_str).collect::<Vec<_>>(), ["_OTHER", "lookup_order"], "{metric}");
        assert_eq!((names["_OTHER"], names["lookup_order"]), (50, 1), "{metric}: {names:?}");
    }
    let last = rx
        .metric_streams("mcp.server.operation.duration")
        .into_iter()
        .rfind(|m| m.resource.get("service.name").and_then(Val::as_str) == Some("mcp-server"))
        .expect("the server's metric");
    let mut prompts: Vec<(&str, u64)> = last
        .histogram_points
        .iter()
        .filter_map(|p| p.attributes.get("gen_ai.prompt.name").and_then(Val::as_str).map(|n| (n, p.count)))
        .collect();
    prompts.sort();
    assert_eq!(prompts, [("_OTHER", 2), ("triage", 1)], "the declared prompt by name, the others as _OTHER");

    // The spans keep the names asked for.
    for name in &random {
        let server = find(&spans, &format!("tools/call {name}"), 2);
        assert_eq!(server.str_attr("gen_ai.tool.name"), Some(name.as_str()));
        assert_eq!(server.str_attr("error.type"), Some("-32602"));
    }
    let prompt = find(&spans, "prompts/get prompt_1f3a", 2);
    assert_eq!(prompt.str_attr("gen_ai.prompt.name"), Some("prompt_1f3a"));
}

/// Catches: a stdio MCP server under the default backend (`stdout`, JSON
/// lines) writing its spans to standard output, the protocol's channel:
/// the client dropped them, so the server's telemetry was silently lost,
/// and a stricter client would have seen a corrupt stream. `TracedServer::
/// stdio()` keeps observra off stdout: the lines go to standard error,
/// said once there, and the session works.
#[test]
fn a_stdio_server_under_the_default_backend_writes_its_spans_to_stderr_never_stdout() {
    let _s = serial();
    let rx = Receiver::start();
    let mut cmd = server_command("stdio", &rx, &[]);
    for (k, _) in otlp_env(&rx, "http/protobuf") {
        cmd.env_remove(k);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let stderr = runtime.block_on(async {
        let (transport, stderr) = rmcp::transport::TokioChildProcess::builder(tokio::process::Command::from(cmd))
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the server");
        let mut stderr = stderr.expect("the server's stderr");
        let reading = tokio::spawn(async move {
            let mut text = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
            text
        });
        let client = ().serve(transport).await.expect("initialize");
        let found = client.call_tool(call("lookup_order", "A-1001")).await.expect("the tool call");
        assert_ne!(found.is_error, Some(true));
        let _ = client.cancel().await;
        tokio::time::timeout(Duration::from_secs(30), reading).await.expect("the server exits").unwrap()
    });
    let spans: Vec<serde_json::Value> =
        stderr.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).collect();
    let names: Vec<&str> = spans.iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(names.contains(&"tools/call lookup_order"), "the server's span on its stderr: {names:?}\n{stderr}");
    assert!(names.contains(&"initialize"), "{names:?}");
    assert_eq!(stderr.matches("standard output carries a protocol").count(), 1, "said once on stderr:\n{stderr}");
}

#[test]
fn an_mcp_tool_call_over_stdio_is_one_trace_across_the_two_processes() {
    let _s = serial();
    let (rx, spans) = run("stdio", &[]);
    check("stdio", "pipe", &spans, &rx);
    let abandoned = find(&spans, "tools/call slow_order", 3);
    assert_eq!(abandoned.str_attr("error.type"), Some("cancelled"), "the client's span says it gave up");
    let slow = find(&spans, "tools/call slow_order", 2);
    assert_eq!(slow.attr("order.cancelled"), Some(&Val::Bool(true)), "the handler ran under its span, cancelled");
    for s in &spans {
        for k in ["gen_ai.tool.call.arguments", "gen_ai.tool.call.result"] {
            assert!(s.attr(k).is_none(), "{}: {k} with capture off", s.name);
        }
    }
    assert!(!format!("{spans:?}").contains("A-1001"), "no argument anywhere");
}

#[test]
fn an_mcp_tool_call_over_streamable_http_with_capture_on_is_redacted() {
    let _s = serial();
    let (rx, spans) = run("http", &[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")]);
    check("http", "tcp", &spans, &rx);
    assert!(!format!("{spans:?}").contains("sk-TEST"), "the key passed as an argument is redacted everywhere");
    for kind in [3, 2] {
        let cancel = find(&spans, "tools/call cancel_order", kind);
        let arguments = cancel.str_attr("gen_ai.tool.call.arguments").expect("arguments");
        assert!(arguments.contains("[REDACTED:openai_key]"), "{arguments}");
        // A tool that answered `isError: true` failed: no result is recorded.
        assert_eq!(cancel.str_attr("gen_ai.tool.call.result"), None);
        let found = find(&spans, "tools/call lookup_order", 2);
        assert!(found.str_attr("gen_ai.tool.call.result").is_some(), "a tool that succeeded has its result");
    }
}
