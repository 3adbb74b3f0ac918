//! A real rig 0.44 agent (`rig-core` + `rig-agent`, one tool, rig's
//! OpenAI-compatible provider against the fake OpenAI server) under
//! `observra::init().install()` and nothing else: the `rig-agent` example
//! run as a child process, and the same agent in process for budgets.
//! Decoded from the in-process OTLP receiver.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use observra::Budget;
use observra_test_support::fake_openai::FakeOpenAi;
use observra_test_support::{ReceivedSpan, Receiver, Val, example, otlp_env, rig_desk, run_ok, serial, span};
use rig_core::providers::openai::OpenAIConfig;

/// The content attributes rig records when its content recording is on
/// (the example turns it on, so only observra's policy keeps it out).
const CONTENT: &[&str] = &[
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
];

fn run_example(rx: &Receiver, extra: &[(&str, &str)]) {
    let mut cmd = example("rig-agent");
    cmd.envs(otlp_env(rx, "http/protobuf")).env("OTEL_SERVICE_NAME", "rig-agent");
    cmd.envs(extra.iter().copied());
    let out = run_ok(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("agent: Your order ships today."), "{stderr}");
    assert!(!stderr.contains("observra:"), "a clean run: observra says nothing: {stderr}");
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn int(s: &ReceivedSpan, key: &str) -> i64 {
    match s.attr(key) {
        Some(Val::Int(v)) => *v,
        other => panic!("{}: {key} = {other:?}", s.name),
    }
}

/// The whole export as text, to look for content anywhere in it.
/// The conventions' details event: an OTLP log record when OTLP is configured.
const DETAILS: &str = "gen_ai.client.inference.operation.details";

fn all_text(spans: &[ReceivedSpan]) -> String {
    format!("{spans:?}")
}

#[test]
fn the_rig_example_exports_one_genai_tree_with_the_conventions_names_metrics_and_cost() {
    let rx = Receiver::start();
    run_example(&rx, &[]);
    let spans = rx.spans();
    assert_eq!(spans.len(), 5, "workflow, agent, 2 model calls, 1 tool call: {:?}", names(&spans));

    // One trace: the user's workflow, rig's agent span beneath it, rig's
    // model and tool spans beneath that.
    let root = span(&spans, "invoke_workflow rig-desk");
    assert_eq!(root.parent_span_id, None);
    assert!(spans.iter().all(|s| s.trace_id == root.trace_id), "one trace");
    let agent = span(&spans, "invoke_agent support");
    assert_eq!(agent.kind, 1, "INTERNAL");
    assert_eq!(agent.parent_span_id.as_deref(), Some(root.span_id.as_str()), "rig's agent span under the workflow");
    let chats = named(&spans, "chat gpt-4o-mini");
    assert_eq!(chats.len(), 2, "one model-call span per model call: {:?}", names(&spans));
    let tool = span(&spans, "execute_tool lookup_order");
    for child in chats.iter().copied().chain([tool]) {
        assert_eq!(child.parent_span_id.as_deref(), Some(agent.span_id.as_str()), "{} under the agent", child.name);
    }
    assert_eq!(tool.kind, 1);
    assert_eq!(tool.str_attr("gen_ai.tool.call.id"), Some("call_fake_1"));

    let mut total_cost = 0.0;
    for c in &chats {
        assert_eq!(c.kind, 3, "a model call is CLIENT");
        assert_eq!(c.str_attr("gen_ai.operation.name"), Some("chat"));
        assert_eq!(c.str_attr("gen_ai.provider.name"), Some("openai"));
        assert_eq!(c.str_attr("gen_ai.request.model"), Some("gpt-4o-mini"));
        assert_eq!(c.str_attr("gen_ai.response.model"), Some("gpt-4o-mini-2024-07-18"));
        assert_eq!(c.str_attr("gen_ai.agent.name"), Some("support"));
        assert!(c.attr("gen_ai.usage.reasoning_tokens").is_none(), "rig's name is normalised");
        assert!(c.attr("gen_ai.usage.tool_use_prompt_tokens").is_none());
        assert_eq!(int(c, "gen_ai.usage.reasoning.output_tokens"), 16);
        // gpt-4o-mini: 0.15 input, 0.075 cached input, 0.60 output per million.
        let (input, cached, output) = (
            int(c, "gen_ai.usage.input_tokens"),
            int(c, "gen_ai.usage.cache_read.input_tokens"),
            int(c, "gen_ai.usage.output_tokens"),
        );
        assert!(cached > 0 && input > cached);
        let expected = ((input - cached) as f64 * 0.15 + cached as f64 * 0.075 + output as f64 * 0.60) / 1e6;
        match c.attr("observra.cost.usd") {
            Some(Val::Double(cost)) => {
                assert!((cost - expected).abs() < 1e-12, "cache reads priced as cache reads: {cost} vs {expected}");
                total_cost += cost;
            }
            other => panic!("cost: {other:?}"),
        }
    }
    // The totals of the agent and of the workflow above it.
    for keeper in [agent, root] {
        assert_eq!(int(keeper, "observra.total.llm_calls"), 2, "{}", keeper.name);
        assert_eq!(int(keeper, "observra.total.tool_calls"), 1, "{}", keeper.name);
        match keeper.attr("observra.total.cost.usd") {
            Some(Val::Double(c)) => assert!((c - total_cost).abs() < 1e-12),
            other => panic!("{}: total cost {other:?}", keeper.name),
        }
    }

    // Content is absent by default, though rig recorded it.
    for s in &spans {
        for k in CONTENT {
            assert!(s.attr(k).is_none(), "{}: {k} exported with capture off", s.name);
        }
        assert!(s.events.iter().all(|e| !e.name.starts_with("gen_ai.")), "{}: no details event", s.name);
    }
    let text = all_text(&spans);
    assert!(!text.contains("sk-TEST") && !text.contains("A-1001"), "no prompt, argument or result anywhere");

    // The GenAI metrics and the agent metric set, as the macros give them.
    let durations = rx.metric_streams("gen_ai.client.operation.duration");
    let chat_calls: u64 = durations
        .iter()
        .flat_map(|m| m.histogram_points.iter())
        .filter(|p| p.attributes.get("gen_ai.request.model") == Some(&Val::Str("gpt-4o-mini".into())))
        .filter(|p| p.attributes.get("gen_ai.provider.name") == Some(&Val::Str("openai".into())))
        .map(|p| p.count)
        .sum();
    assert_eq!(chat_calls, 2, "{durations:?}");
    let usage = rx.metric_streams("gen_ai.client.token.usage");
    for kind in ["input", "output"] {
        assert!(
            usage
                .iter()
                .flat_map(|m| m.histogram_points.iter())
                .any(|p| p.attributes.get("gen_ai.token.type") == Some(&Val::Str(kind.into())) && p.count == 2),
            "{kind} tokens: {usage:?}"
        );
    }
    let support = Val::Str("support".into());
    let sum_for_agent = |name: &str| -> f64 {
        rx.metric_streams(name)
            .iter()
            .flat_map(|m| m.points.iter())
            .filter(|(a, _)| a.get("gen_ai.agent.name") == Some(&support))
            .map(|(_, v)| *v)
            .sum()
    };
    assert_eq!(sum_for_agent("observra.agent.requests"), 1.0);
    assert_eq!(sum_for_agent("observra.agent.errors"), 0.0);
    assert_eq!(sum_for_agent("observra.agent.tool.calls"), 1.0);
    assert!(sum_for_agent("observra.agent.tokens") > 0.0);
    assert!((sum_for_agent("observra.agent.cost") - total_cost).abs() < 1e-9);
    let agent_durations = rx.metric_streams("gen_ai.invoke_agent.duration");
    assert!(
        agent_durations
            .iter()
            .flat_map(|m| m.histogram_points.iter())
            .any(|p| p.attributes.get("gen_ai.agent.name") == Some(&support) && p.count == 1),
        "{agent_durations:?}"
    );
    let tool_durations = rx.metric_streams("gen_ai.execute_tool.duration");
    assert!(tool_durations.iter().flat_map(|m| m.histogram_points.iter()).any(|p| p.count == 1));
    let cost: f64 = rx.metric_streams("observra.cost").iter().flat_map(|m| m.points.iter()).map(|(_, v)| *v).sum();
    assert!((cost - total_cost).abs() < 1e-9, "{cost} vs {total_cost}");
}

#[test]
fn with_capture_on_rigs_messages_are_exported_redacted_on_the_span_and_the_details_event() {
    let rx = Receiver::start();
    run_example(&rx, &[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_AND_EVENT")]);
    let spans = rx.spans();
    let logs = rx.logs();
    let text = format!("{}{logs:?}", all_text(&spans));
    assert!(!text.contains("sk-TEST"), "the pasted key is redacted everywhere");
    let agent = span(&spans, "invoke_agent support");
    let input: serde_json::Value = serde_json::from_str(agent.str_attr("gen_ai.input.messages").unwrap()).unwrap();
    assert_eq!(input[0]["role"], "user");
    assert_eq!(
        input[0]["parts"][0]["content"], "Where is my order A-1001? My key is [REDACTED:openai_key] if needed.",
        "rig's deprecated gen_ai.prompt, as the current messages attribute"
    );
    assert!(agent.attr("gen_ai.prompt").is_none() && agent.attr("gen_ai.completion").is_none());
    // rig adopts the example's `#[agent]` span (the span current when
    // `prompt` is called) and records the completion only on an agent span
    // it made itself: the answer is on the last chat span.
    assert!(agent.attr("gen_ai.output.messages").is_none());
    let chats = named(&spans, "chat gpt-4o-mini");
    assert_eq!(chats.len(), 2);
    for c in &chats {
        let messages = c.str_attr("gen_ai.input.messages").expect("input messages");
        assert!(messages.contains("[REDACTED:openai_key]"), "{messages}");
        assert!(c.str_attr("gen_ai.system_instructions").unwrap().contains("You answer questions about orders"));
        // With OTLP, the details event is a log record in the call's trace.
        assert!(c.events.iter().all(|e| e.name != DETAILS), "{}: a log record, not a span event", c.name);
        let details: Vec<_> = logs.iter().filter(|l| l.event_name == DETAILS && l.span_id == c.span_id).collect();
        assert_eq!(details.len(), 1, "{}: one details event", c.name);
        let d = details[0];
        for k in ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"] {
            assert!(d.attr(k).is_some(), "details event lacks {k}: {d:?}");
        }
        assert_eq!(d.attr("gen_ai.request.model"), Some(&Val::Str("gpt-4o-mini".into())));
    }
    let tool = span(&spans, "execute_tool lookup_order");
    assert_eq!(tool.str_attr("gen_ai.tool.call.arguments"), Some(r#"{"id":"A-1001"}"#));
    assert_eq!(tool.str_attr("gen_ai.tool.call.result"), Some("order A-1001 shipped yesterday"));
}

#[test]
fn with_event_only_rigs_messages_go_to_the_details_event_alone() {
    let rx = Receiver::start();
    run_example(&rx, &[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "EVENT_ONLY")]);
    let spans = rx.spans();
    let logs = rx.logs();
    for c in named(&spans, "chat gpt-4o-mini") {
        for k in CONTENT {
            assert!(c.attr(k).is_none(), "{k} on the span under EVENT_ONLY");
        }
        let d = logs.iter().find(|l| l.event_name == DETAILS && l.span_id == c.span_id).expect("details");
        assert!(d.attr("gen_ai.input.messages").is_some());
    }
}

#[test]
fn rigs_model_calls_count_against_observras_budgets() {
    let _s = serial();
    let rx = Receiver::start();
    let crossed = Arc::new(AtomicUsize::new(0));
    let seen = crossed.clone();
    let guard = observra::init()
        .env_from(otlp_env(&rx, "http/protobuf"))
        .budget(Budget::new().per_call_usd(0.000_01))
        .on_budget_exceeded(move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .install()
        .expect("install");
    let fake = FakeOpenAi::start().unwrap();
    let agent = rig_desk::support_agent(OpenAIConfig::new("not-needed").with_base_url(fake.api_base()), "gpt-4o-mini");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let reply = runtime.block_on(rig_desk::handle(&agent, "Where is my order A-1001?")).expect("agent run");
    assert_eq!(reply, "Your order ships today.");
    drop(guard);
    assert_eq!(crossed.load(Ordering::Relaxed), 2, "both model calls cost more than the per-call budget");
    let spans = rx.spans();
    // The warning is a tracing event on the span current when the call ended: rig's agent span.
    let agent = span(&spans, "invoke_agent support");
    assert_eq!(agent.events.iter().filter(|e| e.name == "budget exceeded").count(), 2, "{:?}", agent.events);
    let crossings: f64 =
        rx.metric_streams("observra.budget.exceeded").iter().flat_map(|m| m.points.iter()).map(|(_, v)| *v).sum();
    assert_eq!(crossings, 2.0);
}

fn names(spans: &[ReceivedSpan]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}
