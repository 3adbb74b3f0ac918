//! Every GenAI name observra exports is checked against the conventions'
//! registry, vendored as a list in `tests/semconv/gen_ai_registry.txt`
//! (made by `scripts/vendor-genai-registry.py`): attribute names on spans,
//! span events, log records and metric points, the values of the enum
//! attributes, metric names with their units, and event names. A renamed
//! or obsoleted name (`gen_ai.system`, `gen_ai.usage.prompt_tokens`,
//! `gen_ai.prompt`) or one the registry does not have fails the build.
//! "Moved" (the deprecation the general registry puts on every `gen_ai.*`
//! name since 1.42) is not a rename, so it is not in the list as one.
//!
//! Every `gen_ai.*` and `openai.*` name spelled in `semconv/src/lib.rs` (the `observra-semconv` crate)
//! is checked as well, exported by this workload or not.

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
use observra::{agent, tool_call, workflow};
use observra_test_support::fake_openai::FakeOpenAi;
use observra_test_support::{Receiver, Val, install_http, serial};

const REGISTRY: &str = include_str!("../semconv/gen_ai_registry.txt");
const SEMCONV_RS: &str = include_str!("../../semconv/src/lib.rs");

/// The vendored registry.
#[derive(Default)]
struct Registry {
    attributes: BTreeSet<String>,
    members: BTreeMap<String, BTreeSet<String>>,
    metrics: BTreeMap<String, String>,
    events: BTreeSet<String>,
    renamed: BTreeMap<String, String>,
    obsoleted: BTreeSet<String>,
}

impl Registry {
    fn load() -> Registry {
        let mut r = Registry::default();
        for line in REGISTRY.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["attribute", name, _type] => {
                    r.attributes.insert(name.to_string());
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
        match (self.members.get(name), value) {
            (Some(members), Some(Val::Str(v))) if !members.contains(v) => {
                Some(format!("{name} = {v:?} is not one of its members {members:?}"))
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
    let r = Registry::load();
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
    let r = Registry::load();
    let mut problems = Vec::new();
    let mut seen = 0;
    for literal in SEMCONV_RS.split('"').skip(1).step_by(2) {
        if !Registry::governs(literal) || literal.ends_with('.') {
            continue;
        }
        seen += 1;
        let ok = r.attributes.contains(literal) || r.metrics.contains_key(literal) || r.events.contains(literal);
        let renamed = r.renamed.contains_key(literal) || r.obsoleted.contains(literal);
        if !ok || renamed {
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
}

#[workflow(name = "triage")]
async fn triage(client: &observra::integrations::async_openai::TracedClient<OpenAIConfig>) {
    support(client).await;
}

#[test]
fn every_genai_name_observra_exports_is_current_in_the_registry() {
    let _s = serial();
    let r = Registry::load();
    let fake = FakeOpenAi::start().unwrap();
    let rx = Receiver::start();
    let guard = install_http(
        &rx,
        &[
            ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_AND_EVENT"),
            ("OBSERVRA_BACKEND", "otlp,otel_log"),
        ],
    );
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
}
