//! A library's own `tracing` spans, shaped as rig 0.44 makes them (read
//! from `rig-core/src/telemetry/mod.rs` and `rig-agent/src/agent/telemetry.rs`:
//! bare `chat` / `invoke_agent` / `execute_tool` names, no `otel.kind`,
//! `gen_ai.usage.reasoning_tokens`, `gen_ai.usage.tool_use_prompt_tokens`,
//! the deprecated `gen_ai.prompt`/`gen_ai.completion`, and
//! `gen_ai.tool.call.outcome`), get the conventions' names, kinds and
//! attributes, and observra's metrics and cost, under `init().install()`
//! alone. Decoded from the in-process OTLP receiver.

use observra_test_support::{ReceivedSpan, Receiver, Val, install_http, serial, span};

fn rig_like_run(fail_tool: bool) {
    let agent = tracing::info_span!(
        parent: None,
        "invoke_agent",
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = "support",
        gen_ai.prompt = tracing::field::Empty,
        gen_ai.completion = tracing::field::Empty,
        gen_ai.usage.tool_use_prompt_tokens = tracing::field::Empty,
        gen_ai.usage.reasoning_tokens = tracing::field::Empty,
    );
    let _a = agent.enter();
    agent.record("gen_ai.prompt", "Where is my order A-1001?");
    {
        let chat = tracing::info_span!(
            "chat",
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = "openai",
            gen_ai.request.model = "gpt-4o-mini",
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            gen_ai.usage.cache_read.input_tokens = tracing::field::Empty,
            gen_ai.usage.tool_use_prompt_tokens = tracing::field::Empty,
            gen_ai.usage.reasoning_tokens = tracing::field::Empty,
        );
        let _c = chat.enter();
        chat.record("gen_ai.response.model", "gpt-4o-mini-2024-07-18");
        chat.record("gen_ai.usage.input_tokens", 1200_i64);
        chat.record("gen_ai.usage.cache_read.input_tokens", 1000_i64);
        chat.record("gen_ai.usage.output_tokens", 50_i64);
        chat.record("gen_ai.usage.reasoning_tokens", 20_i64);
        chat.record("gen_ai.usage.tool_use_prompt_tokens", 7_i64);
    }
    {
        let tool = tracing::info_span!(
            "execute_tool",
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.type = "function",
            gen_ai.tool.name = tracing::field::Empty,
            gen_ai.tool.call.outcome = tracing::field::Empty,
            gen_ai.tool.error.type = tracing::field::Empty,
        );
        let _t = tool.enter();
        tool.record("gen_ai.tool.name", "lookup_order");
        if fail_tool {
            tool.record("gen_ai.tool.call.outcome", "error");
        } else {
            tool.record("gen_ai.tool.call.outcome", "success");
        }
    }
    agent.record("gen_ai.completion", "It ships today.");
}

fn by_name<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[test]
fn rig_shaped_spans_get_the_conventions_names_kinds_attributes_metrics_and_cost() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    rig_like_run(false);
    rig_like_run(true);
    drop(guard);
    let spans = rx.spans();

    let agents = by_name(&spans, "invoke_agent support");
    assert_eq!(agents.len(), 2, "{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    assert_eq!(agents[0].kind, 1, "INTERNAL");
    let chats = by_name(&spans, "chat gpt-4o-mini");
    assert_eq!(chats.len(), 2);
    let c = chats[0];
    assert_eq!(c.kind, 3, "a model call is CLIENT when the library does not say");
    assert_eq!(c.attr("gen_ai.usage.reasoning.output_tokens"), Some(&Val::Int(20)), "rig's name, normalised");
    assert!(c.attr("gen_ai.usage.reasoning_tokens").is_none());
    assert!(c.attr("gen_ai.usage.tool_use_prompt_tokens").is_none(), "part of the input tokens already");
    // 200 uncached input at 0.15, 1000 cached at 0.075, 50 output at 0.60 (per million): priced as cache reads.
    let expected = (200.0 * 0.15 + 1000.0 * 0.075 + 50.0 * 0.60) / 1e6;
    match c.attr("observra.cost.usd") {
        Some(Val::Double(cost)) => assert!((cost - expected).abs() < 1e-12, "{cost} vs {expected}"),
        other => panic!("cost: {other:?}"),
    }
    let tools = by_name(&spans, "execute_tool lookup_order");
    assert_eq!(tools.len(), 2);
    let failed: Vec<_> = tools.iter().filter(|t| t.status_code == 2).collect();
    assert_eq!(failed.len(), 1, "outcome=error marks the tool call failed");
    assert_eq!(failed[0].str_attr("error.type"), Some("tool_error"));
    assert!(tools.iter().all(|t| t.attr("gen_ai.tool.call.outcome").is_none()));
    // Capture is off: the deprecated prompt/completion became messages and were dropped.
    for a in &agents {
        for k in ["gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages"] {
            assert!(a.attr(k).is_none(), "{k} exported with capture off");
        }
    }
    // One trace per run: the model and tool calls beneath the agent.
    for a in &agents {
        let children = spans.iter().filter(|s| s.parent_span_id.as_deref() == Some(a.span_id.as_str())).count();
        assert_eq!(children, 2, "chat and tool beneath the agent");
    }
    // The metrics observra's own macros would give.
    let agent_requests = rx.metric_streams("observra.agent.requests");
    let total: f64 = agent_requests.iter().flat_map(|m| m.points.iter()).map(|p| p.1).sum();
    assert_eq!(total, 2.0, "{agent_requests:?}");
    let tool_errors = rx.metric_streams("observra.agent.tool.errors");
    assert!(
        tool_errors.iter().flat_map(|m| m.points.iter()).any(|(a, v)| {
            a.get("gen_ai.agent.name") == Some(&Val::Str("support".into()))
                && a.get("gen_ai.tool.name") == Some(&Val::Str("lookup_order".into()))
                && *v == 1.0
        }),
        "{tool_errors:?}"
    );
    let durations = rx.metric_streams("gen_ai.client.operation.duration");
    assert!(durations.iter().flat_map(|m| m.histogram_points.iter()).any(|p| p.count == 2));
    assert!(!rx.metric_streams("gen_ai.invoke_agent.duration").is_empty());
}

#[test]
fn with_capture_on_the_deprecated_prompt_and_completion_are_the_current_message_attributes() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")]);
    rig_like_run(false);
    drop(guard);
    let spans = rx.spans();
    let a = span(&spans, "invoke_agent support");
    assert!(
        a.attr("gen_ai.prompt").is_none() && a.attr("gen_ai.completion").is_none(),
        "the deprecated names are gone"
    );
    let input: serde_json::Value = serde_json::from_str(a.str_attr("gen_ai.input.messages").unwrap()).unwrap();
    assert_eq!(
        input,
        serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": "Where is my order A-1001?"}]}])
    );
    let output: serde_json::Value = serde_json::from_str(a.str_attr("gen_ai.output.messages").unwrap()).unwrap();
    assert_eq!(output[0]["parts"][0]["content"], "It ships today.");
}

#[observra::traced]
fn instrumented_caller() {
    // What rig's agent does when `Span::current()` is disabled, as it is
    // inside a call on the frame path.
    let span = tracing::info_span!(parent: None, "library_root");
    let _e = span.enter();
}

#[test]
fn an_explicit_root_inside_an_instrumented_call_is_its_child_and_stays_a_root_under_a_tracing_span() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    instrumented_caller();
    {
        let plain = tracing::info_span!("plain_parent");
        let _p = plain.enter();
        let detached = tracing::info_span!(parent: None, "deliberate_root");
        let _d = detached.enter();
    }
    drop(guard);
    let spans = rx.spans();
    let caller = span(&spans, "instrumented_caller");
    let child = span(&spans, "library_root");
    assert_eq!(child.parent_span_id.as_deref(), Some(caller.span_id.as_str()));
    assert_eq!(child.trace_id, caller.trace_id);
    let root = span(&spans, "deliberate_root");
    assert_eq!(root.parent_span_id, None, "a root asked for under a visible tracing span stays a root");
    assert_ne!(root.trace_id, span(&spans, "plain_parent").trace_id);
}
