//! A small multi-step support agent, instrumented with `#[traced]`.
//!
//! Plain Rust with a fake model: no network, no API key. Run it with
//! `cargo run -p observra-examples --bin support-agent`; with nothing
//! configured, every finished span is printed to stdout as one JSON line.
//! Point it at a collector without editing it:
//! `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run ...`, or
//! write a file with `OBSERVRA_JSONL_PATH=spans.jsonl`.

use std::fmt;

use observra::traced;

/// The agent's failure modes.
#[derive(Debug)]
enum AgentError {
    /// The order lookup found nothing.
    UnknownOrder(String),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::UnknownOrder(id) => write!(f, "no order with id {id}"),
        }
    }
}

impl std::error::Error for AgentError {}

impl observra::ErrorType for AgentError {
    fn error_type(&self) -> std::borrow::Cow<'static, str> {
        match self {
            AgentError::UnknownOrder(_) => "unknown_order".into(),
        }
    }
}

/// A stand-in for a chat model: picks a tool from keywords.
struct FakeModel {
    model: &'static str,
}

impl FakeModel {
    #[traced(name = "chat", kind = client, attrs(gen_ai.operation.name = "chat", gen_ai.request.model = self.model))]
    fn plan(&self, question: &str) -> Vec<&'static str> {
        let mut steps = vec!["retrieve_policy"];
        if question.contains("order") {
            steps.push("lookup_order");
        }
        steps
    }

    #[traced(name = "chat", kind = client, attrs(gen_ai.operation.name = "chat", gen_ai.request.model = self.model))]
    fn answer(&self, question: &str, facts: &[String]) -> String {
        format!("Answer to {question:?} using {} facts: {}", facts.len(), facts.join("; "))
    }
}

#[traced(attrs(component = "rag", top_k = 2))]
fn retrieve_policy(topic: &str) -> Vec<String> {
    vec![format!("{topic}: shipping takes 3-5 days"), format!("{topic}: refunds within 30 days")]
}

#[traced(fields(order_id), attrs(gen_ai.tool.name = "lookup_order"))]
fn lookup_order(order_id: &str) -> Result<String, AgentError> {
    match order_id {
        "A-1001" => Ok("order A-1001 shipped yesterday".to_string()),
        other => Err(AgentError::UnknownOrder(other.to_string())),
    }
}

#[traced(name = "invoke_agent support", attrs(gen_ai.agent.name = "support"))]
fn answer(model: &FakeModel, question: &str, order_id: &str) -> Result<String, AgentError> {
    let mut facts = Vec::new();
    for step in model.plan(question) {
        match step {
            "retrieve_policy" => facts.extend(retrieve_policy("shipping")),
            "lookup_order" => facts.push(lookup_order(order_id)?),
            _ => {}
        }
    }
    Ok(model.answer(question, &facts))
}

fn main() -> anyhow::Result<()> {
    // One line of set-up: reads OTEL_* / OBSERVRA_* from the environment.
    let _telemetry = observra::init().service_name("support-agent").install()?;
    let model = FakeModel { model: "fake-gpt" };
    match answer(&model, "where is my order?", "A-1001") {
        Ok(text) => eprintln!("agent: {text}"),
        Err(e) => eprintln!("agent failed: {e}"),
    }
    // A failing run: the error is recorded on the spans and the agent goes on.
    if let Err(e) = answer(&model, "and my other order?", "Z-9") {
        eprintln!("agent failed: {e}");
    }
    Ok(())
}
