//! Every GenAI name observra exports is checked against the conventions'
//! registry, vendored as lists, one per conventions mode: v1.41 (the
//! default) in `tests/semconv/gen_ai_registry.txt` (made by
//! `scripts/vendor-genai-registry.py`), the newest GenAI conventions
//! (`OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`) in
//! `tests/semconv/gen_ai_registry_latest.txt` (made by
//! `scripts/vendor-genai-registry-latest.py`). Checked: attribute names on
//! spans, span events, log records and metric points, the types of integer
//! and double attributes, the values of the enum attributes, metric names
//! with their units, and event names. A renamed or obsoleted name
//! (`gen_ai.system`, `gen_ai.usage.prompt_tokens`, `gen_ai.prompt`) or one
//! the registry does not have fails the build. "Moved" (the deprecation the
//! general registry puts on every `gen_ai.*` name since 1.42) is not a
//! rename, so it is not in the list as one.
//!
//! Every `gen_ai.*` and `openai.*` name spelled in `semconv/src/lib.rs` (the
//! `observra-semconv` crate) is checked as well, exported by this workload
//! or not: it must be current in one of the two lists.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequestArgs, FunctionObjectArgs,
};
use async_openai::types::embeddings::CreateEmbeddingRequestArgs;
use futures_core::Stream;
use observra::{LlmResponse, RetrievedDocument, Usage, agent, llm_call, retrieval, tool_call, workflow};
use observra_test_support::fake_openai::FakeOpenAi;
use observra_test_support::{HistogramPoint, ReceivedMetric, ReceivedSpan, Receiver, Val, install_http, serial};

const REGISTRY: &str = include_str!("../semconv/gen_ai_registry.txt");
const REGISTRY_LATEST: &str = include_str!("../semconv/gen_ai_registry_latest.txt");
const SEMCONV_RS: &str = include_str!("../../semconv/src/lib.rs");

/// The vendored registry.
#[derive(Default)]
struct Registry {
    attributes: BTreeSet<String>,
    types: BTreeMap<String, String>,
    members: BTreeMap<String, BTreeSet<String>>,
    metrics: BTreeMap<String, String>,
    events: BTreeSet<String>,
    renamed: BTreeMap<String, String>,
    obsoleted: BTreeSet<String>,
}

impl Registry {
    fn load(list: &str) -> Registry {
        let mut r = Registry::default();
        for line in list.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["attribute", name, kind] => {
                    r.attributes.insert(name.to_string());
                    r.types.insert(name.to_string(), kind.to_string());
                }
                ["member", attr, value] => {
                    r.members.entry(attr.to_string()).or_default().insert(value.to_string());
                }
                ["metric", name, unit] => {
                    r.metrics.insert(name.to_string(), unit.to_string());
                }
                ["event", name] => {
                    r.events.insert(name.to_string());
                }
                ["renamed", old, new] => {
                    r.renamed.insert(old.to_string(), new.to_string());
                }
                ["obsoleted", name] => {
                    r.obsoleted.insert(name.to_string());
                }
                _ => panic!("unreadable registry line: {line}"),
            }
        }
        assert!(r.attributes.len() > 40 && r.metrics.len() >= 7 && !r.renamed.is_empty(), "the list loaded");
        r
    }

    /// Whether a name is the conventions' (gen_ai.* and openai.* only; other
    /// namespaces are not this list's business).
    fn governs(name: &str) -> bool {
        name.starts_with("gen_ai.") || name.starts_with("openai.")
    }

    /// What is wrong with exporting attribute `name` = `value`, if anything.
    fn attribute(&self, name: &str, value: Option<&Val>) -> Option<String> {
        if !Self::governs(name) {
            return None;
        }
        if let Some(new) = self.renamed.get(name) {
            return Some(format!("{name} is deprecated: renamed to {new}"));
        }
        if self.obsoleted.contains(name) {
            return Some(format!("{name} is obsoleted"));
        }
        if !self.attributes.contains(name) {
            return Some(format!("{name} is not in the registry"));
        }
        match (self.members.get(name), self.types.get(name).map(String::as_str), value) {
            (Some(members), _, Some(Val::Str(v))) if !members.contains(v) => {
                Some(format!("{name} = {v:?} is not one of its members {members:?}"))
            }
            (_, Some("int"), Some(v @ Val::Double(_))) | (_, Some("double"), Some(v @ Val::Int(_))) => {
                Some(format!("{name} = {v:?} is not of the registry's type {}", self.types[name]))
            }
            _ => None,
        }
    }

    fn metric(&self, name: &str, unit: &str) -> Option<String> {
        if !Self::governs(name) {
            return None;
        }
        match self.metrics.get(name) {
            None => Some(format!("metric {name} is not in the registry")),
            Some(u) if u != unit => Some(format!("metric {name} has unit {unit:?}, the registry says {u:?}")),
            Some(_) => None,
        }
    }

    fn event(&self, name: &str) -> Option<String> {
        if !Self::governs(name) {
            return None;
        }
        if self.obsoleted.contains(name) {
            return Some(format!("event {name} is obsoleted"));
        }
        (!self.events.contains(name)).then(|| format!("event {name} is not in the registry"))
    }
}

#[test]
fn the_checker_tells_renamed_obsoleted_and_unknown_names_from_current_ones() {
    let latest = Registry::load(REGISTRY_LATEST);
    let top_k = |r: &Registry, v: Val| r.attribute("gen_ai.request.top_k", Some(&v));
    assert!(top_k(&latest, Val::Double(40.0)).is_some_and(|e| e.contains("type int")));
    assert!(top_k(&latest, Val::Int(40)).is_none());
    assert!(latest.attribute("gen_ai.retrieval.top_k", None).is_none());
    assert!(latest.metric("gen_ai.invoke_agent.inference_calls", "{inference_call}").is_none());
    assert!(latest.attribute("gen_ai.system", None).is_some(), "renamed names carried into the newest list");
    let r = Registry::load(REGISTRY);
    assert!(top_k(&r, Val::Int(40)).is_some_and(|e| e.contains("type double")));
    assert!(top_k(&r, Val::Double(40.0)).is_none());
    assert!(r.attribute("gen_ai.retrieval.top_k", None).is_some(), "not in v1.41");
    assert!(r.attribute("gen_ai.system", None).is_some_and(|e| e.contains("renamed to gen_ai.provider.name")));
    assert!(r.attribute("gen_ai.usage.prompt_tokens", None).is_some_and(|e| e.contains("renamed")));
    assert!(r.attribute("gen_ai.prompt", None).is_some());
    assert!(r.attribute("gen_ai.usage.reasoning_tokens", None).is_some(), "rig's spelling is not the registry's");
    assert!(r.attribute("gen_ai.operation.name", Some(&Val::Str("chat".into()))).is_none());
    assert!(r.attribute("gen_ai.operation.name", Some(&Val::Str("chatting".into()))).is_some());
    assert!(r.attribute("gen_ai.usage.input_tokens", None).is_none());
    assert!(r.attribute("observra.cost.usd", None).is_none(), "observra's own namespace is its own registry's");
    assert!(r.metric("gen_ai.client.token.usage", "{token}").is_none());
    assert!(r.metric("gen_ai.client.token.usage", "tokens").is_some());
    assert!(r.event("gen_ai.choice").is_some());
}

#[test]
fn every_genai_name_spelled_in_observra_semconv_is_in_the_registry() {
    let lists = [Registry::load(REGISTRY), Registry::load(REGISTRY_LATEST)];
    let mut problems = Vec::new();
    let mut seen = 0;
    for literal in SEMCONV_RS.split('"').skip(1).step_by(2) {
        if !Registry::governs(literal) || literal.ends_with('.') {
            continue;
        }
        seen += 1;
        // Current in the list of the mode that emits it.
        let current = |r: &Registry| {
            let ok = r.attributes.contains(literal) || r.metrics.contains_key(literal) || r.events.contains(literal);
            ok && !r.renamed.contains_key(literal) && !r.obsoleted.contains(literal)
        };
        if !lists.iter().any(current) {
            problems.push(literal.to_string());
        }
    }
    assert!(seen > 50, "read the constants: {seen}");
    assert!(problems.is_empty(), "names not current in the registry: {problems:?}");
}

#[tool_call(name = "lookup_order", arguments = id)]
async fn lookup_order(id: &str) -> String {
    format!("order {id} shipped")
}

#[agent(name = "support", conversation_id = "conv-1")]
async fn support(client: &observra::integrations::async_openai::TracedClient<OpenAIConfig>) {
    let tools = vec![ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObjectArgs::default()
            .name("lookup_order")
            .parameters(serde_json::json!({"type": "object"}))
            .build()
            .unwrap(),
    })];
    let user =
        || vec![ChatCompletionRequestUserMessageArgs::default().content("Where is A-1001?").build().unwrap().into()];
    let req = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o-mini")
        .temperature(0.3)
        .messages(user())
        .tools(tools)
        .build()
        .unwrap();
    client.chat().create(req).await.unwrap();
    lookup_order("A-1001").await;
    let req = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o-mini")
        .messages(user())
        .stream_options(ChatCompletionStreamOptions { include_usage: Some(true), ..Default::default() })
        .build()
        .unwrap();
    let mut stream = Box::pin(client.chat().create_stream(req).await.unwrap());
    while std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await.is_some() {}
    let req = CreateEmbeddingRequestArgs::default().model("text-embedding-3-small").input("orders").build().unwrap();
    client.embeddings().create(req).await.unwrap();
    sample_with_top_k().await;
    search_orders().await;
}

/// A reply with usage, for the `#[llm_call]` below.
struct Reply;

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(12, 3))
    }
}

#[llm_call(provider = "openai", model = "gpt-4o-mini", top_k = 40)]
async fn sample_with_top_k() -> Reply {
    Reply
}

#[retrieval(data_source = "orders-index", top_k = 3)]
async fn search_orders() -> Vec<RetrievedDocument> {
    vec![RetrievedDocument::new("A-1001", 0.9)]
}

#[workflow(name = "triage")]
async fn triage(client: &observra::integrations::async_openai::TracedClient<OpenAIConfig>) {
    support(client).await;
}

#[test]
fn every_genai_name_observra_exports_is_current_in_the_v1_41_registry() {
    let _s = serial();
    let (spans, metrics) = exported_names_are_current(&Registry::load(REGISTRY), None);
    let search = spans.iter().find(|s| s.name == "retrieval orders-index").expect("the retrieval span");
    assert_eq!(search.attr("gen_ai.request.top_k"), Some(&Val::Double(3.0)));
    let sample = spans.iter().find(|s| s.attr("gen_ai.request.top_k").is_some() && s.kind == 3).expect("top_k");
    assert_eq!(sample.attr("gen_ai.request.top_k"), Some(&Val::Double(40.0)));
    assert!(points(&metrics, "gen_ai.invoke_agent.inference_calls").is_empty(), "v1.41 has no such metric");
}

/// The newest conventions behind the standard switch: `top_k` an integer,
/// retrieval's own `gen_ai.retrieval.top_k`, and the per-invocation call
/// counts of the agent (its own calls: four model calls and one tool).
#[test]
fn under_gen_ai_latest_experimental_every_genai_name_is_current_in_the_newest_registry() {
    let _s = serial();
    let opt_in = ("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental");
    let (spans, metrics) = exported_names_are_current(&Registry::load(REGISTRY_LATEST), Some(opt_in));
    let search = spans.iter().find(|s| s.name == "retrieval orders-index").expect("the retrieval span");
    assert_eq!(search.attr("gen_ai.retrieval.top_k"), Some(&Val::Int(3)));
    assert!(search.attr("gen_ai.request.top_k").is_none());
    let sample = spans.iter().find(|s| s.attr("gen_ai.request.top_k").is_some()).expect("top_k");
    assert_eq!(sample.attr("gen_ai.request.top_k"), Some(&Val::Int(40)));
    for (name, sum) in [("gen_ai.invoke_agent.inference_calls", 4.0), ("gen_ai.invoke_agent.tool_calls", 1.0)] {
        let points = points(&metrics, name);
        assert_eq!(points.len(), 1, "{name}: one invocation, one point: {points:?}");
        let p = &points[0];
        assert_eq!((p.count, p.sum), (1, sum), "{name}");
        assert_eq!(p.attributes.get("gen_ai.agent.name"), Some(&Val::Str("support".into())), "{name}");
        assert_eq!(p.bounds, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0], "{name}: the conventions' advice");
    }
    let agent = points(&metrics, "gen_ai.invoke_agent.duration");
    assert!(agent.iter().all(|p| !p.attributes.contains_key("gen_ai.operation.name")), "{agent:?}");
}

/// The histogram points of metric `name`.
fn points(metrics: &[ReceivedMetric], name: &str) -> Vec<HistogramPoint> {
    metrics.iter().filter(|m| m.name == name).flat_map(|m| m.histogram_points.clone()).collect()
}

/// Runs the workload under `registry`'s mode and checks every GenAI name
/// exported against it; returns the spans and the metrics.
fn exported_names_are_current(r: &Registry, opt_in: Option<(&str, &str)>) -> (Vec<ReceivedSpan>, Vec<ReceivedMetric>) {
    let fake = FakeOpenAi::start().unwrap();
    let rx = Receiver::start();
    let mut settings = vec![
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_AND_EVENT"),
        ("OBSERVRA_BACKEND", "otlp,otel_log"),
    ];
    settings.extend(opt_in);
    let guard = install_http(&rx, &settings);
    let client = observra::integrations::async_openai::instrument(Client::with_config(
        OpenAIConfig::new().with_api_base(fake.api_base()).with_api_key("k"),
    ));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(triage(&client));
    drop(guard);

    let mut problems = BTreeSet::new();
    let mut checked = BTreeSet::new();
    let mut check = |name: &str, value: Option<&Val>, problems: &mut BTreeSet<String>| {
        if Registry::governs(name) {
            checked.insert(name.to_string());
        }
        problems.extend(r.attribute(name, value));
    };
    let spans = rx.spans();
    assert!(spans.len() >= 6, "{} spans", spans.len());
    for s in &spans {
        for (k, v) in &s.attributes {
            check(k, Some(v), &mut problems);
        }
        for e in &s.events {
            problems.extend(r.event(&e.name));
            for (k, v) in &e.attributes {
                check(k, Some(v), &mut problems);
            }
        }
    }
    let logs = rx.logs();
    assert!(logs.iter().any(|l| l.event_name == "gen_ai.client.inference.operation.details"));
    for l in &logs {
        problems.extend(r.event(&l.event_name));
        for (k, v) in &l.attributes {
            check(k, Some(v), &mut problems);
        }
    }
    let metrics = rx.metrics();
    let mut metric_names = BTreeSet::new();
    for m in &metrics {
        problems.extend(r.metric(&m.name, &m.unit));
        metric_names.insert(m.name.clone());
        for (attrs, _) in &m.points {
            for (k, v) in attrs {
                check(k, Some(v), &mut problems);
            }
        }
        for p in &m.histogram_points {
            for (k, v) in &p.attributes {
                check(k, Some(v), &mut problems);
            }
        }
    }
    assert!(problems.is_empty(), "exported names the registry does not have as current: {problems:#?}");
    // The workload reached what it is meant to check.
    for name in [
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.temperature",
        "gen_ai.output.messages",
        "gen_ai.tool.definitions",
        "gen_ai.embeddings.dimension.count",
        "openai.response.service_tier",
        "gen_ai.agent.name",
        "gen_ai.workflow.name",
        "gen_ai.tool.call.arguments",
        "gen_ai.token.type",
    ] {
        assert!(checked.contains(name), "{name} was not exported by the workload: {checked:?}");
    }
    for name in [
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.invoke_agent.duration",
        "gen_ai.execute_tool.duration",
        "gen_ai.workflow.duration",
    ] {
        assert!(metric_names.contains(name), "{name} missing: {metric_names:?}");
    }
    (spans, metrics)
}
