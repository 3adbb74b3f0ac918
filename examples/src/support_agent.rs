//! A multi-step support agent instrumented with observra's four GenAI
//! macros, against a fake model client: no network, no API key.
//!
//! Run it with `cargo run -p observra-examples --bin support-agent`; with
//! nothing configured, each finished span is printed to stdout as one JSON
//! line: a `invoke_workflow support-desk` root, one `invoke_agent support`
//! per ticket, and beneath each the model calls (`chat gpt-4o-mini`, with
//! token usage and `observra.cost.usd`) and tool calls (`execute_tool ...`).
//! The agent spans carry `observra.total.*` totals of what ran beneath them.
//!
//! Point it elsewhere without editing it:
//! `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318`, or
//! `OBSERVRA_JSONL_PATH=spans.jsonl`; capture (redacted) prompts and
//! completions with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY`.

use std::fmt;

use observra::{LlmResponse, Message, Usage, agent, llm_call, tool_call, traced, workflow};

/// What the fake client is asked.
struct ChatRequest {
    model: &'static str,
    temperature: f64,
    max_tokens: u32,
    prompt: String,
}

/// What the fake client answers, shaped like an OpenAI chat completion.
struct ChatResponse {
    id: String,
    model: String,
    text: String,
    prompt_tokens: u64,
    cached_tokens: u64,
    completion_tokens: u64,
}

impl LlmResponse for ChatResponse {
    fn usage(&self) -> Option<Usage> {
        // OpenAI's prompt_tokens already include the cached ones.
        Some(Usage::openai(self.prompt_tokens, self.completion_tokens, Some(self.cached_tokens), None))
    }
    fn response_id(&self) -> Option<&str> {
        Some(&self.id)
    }
    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        vec!["stop"]
    }
    fn output_messages(&self) -> Option<Vec<Message>> {
        Some(vec![Message::text("assistant", self.text.clone()).with_finish_reason("stop")])
    }
}

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

/// A stand-in for an OpenAI client with realistic token counts.
struct FakeClient {
    calls: u64,
}

impl FakeClient {
    #[llm_call(
        provider = "openai",
        model = req.model,
        temperature = req.temperature,
        max_tokens = req.max_tokens,
        server_address = "api.openai.com",
        server_port = 443,
        input = req.prompt,
        system = "You are a concise support agent."
    )]
    fn chat(&mut self, req: &ChatRequest) -> Result<ChatResponse, AgentError> {
        self.calls += 1;
        let prompt_tokens = 900 + 4 * req.prompt.len() as u64;
        // Model latency: what dominates an agent run's duration.
        std::thread::sleep(std::time::Duration::from_millis(15 + prompt_tokens / 100));
        Ok(ChatResponse {
            id: format!("chatcmpl-{:04}", self.calls),
            model: format!("{}-2024-07-18", req.model),
            text: format!("(model answer to: {})", req.prompt.lines().next().unwrap_or_default()),
            prompt_tokens,
            cached_tokens: if self.calls > 1 { 768 } else { 0 },
            completion_tokens: 120 + 7 * self.calls,
        })
    }
}

#[tool_call(name = "lookup_order", description = "Finds an order by id", call_id = call_id, arguments = order_id)]
fn lookup_order(order_id: &str, call_id: &str) -> Result<String, AgentError> {
    match order_id {
        "A-1001" => Ok("order A-1001 shipped yesterday, arrives Thursday".to_string()),
        other => Err(AgentError::UnknownOrder(other.to_string())),
    }
}

#[tool_call(name = "retrieve_policy", tool_type = datastore, arguments = topic)]
fn retrieve_policy(topic: &str) -> Vec<String> {
    vec![format!("{topic}: shipping takes 3-5 days"), format!("{topic}: refunds within 30 days")]
}

#[traced(attrs(component = "formatting"))]
fn compose_prompt(question: &str, facts: &[String]) -> String {
    format!("{question}\nFacts:\n- {}", facts.join("\n- "))
}

/// A support ticket.
struct Ticket {
    id: &'static str,
    question: &'static str,
    order_id: &'static str,
}

#[agent(name = "support", version = "1.0", description = "Answers order questions", conversation_id = ticket.id)]
fn answer(client: &mut FakeClient, ticket: &Ticket) -> Result<String, AgentError> {
    let plan = client.chat(&ChatRequest {
        model: "gpt-4o-mini",
        temperature: 0.0,
        max_tokens: 200,
        prompt: format!("Plan the steps to answer: {}", ticket.question),
    })?;
    let mut facts = retrieve_policy("shipping");
    match lookup_order(ticket.order_id, &format!("call_{}", plan.id)) {
        Ok(order) => facts.push(order),
        // A failed tool call is recorded on its span; the agent carries on,
        // and the ticket is handed to a person: a human-oversight point the
        // audit export lists (`observra export --format audit`).
        Err(e) => {
            tracing::info!(
                observra.human_oversight = "escalated",
                observra.human_oversight.actor = "support-queue",
                observra.human_oversight.reason = "order not found",
                "handed to a human"
            );
            facts.push(format!("lookup failed: {e}"));
        }
    }
    let reply = client.chat(&ChatRequest {
        model: "gpt-4o-mini",
        temperature: 0.3,
        max_tokens: 400,
        prompt: compose_prompt(ticket.question, &facts),
    })?;
    Ok(reply.text)
}

#[workflow(name = "support-desk")]
fn run_desk(tickets: &[Ticket]) -> usize {
    let mut client = FakeClient { calls: 0 };
    tickets.iter().filter_map(|t| answer(&mut client, t).ok()).count()
}

fn main() -> anyhow::Result<()> {
    // One line of set-up: reads OTEL_* / OBSERVRA_* from the environment.
    let _telemetry = observra::init().service_name("support-agent").install()?;
    let tickets = [
        Ticket { id: "ticket-17", question: "Where is my order?", order_id: "A-1001" },
        Ticket { id: "ticket-18", question: "And my other order?", order_id: "Z-9" },
    ];
    let answered = run_desk(&tickets);
    eprintln!("answered {answered} of {} tickets", tickets.len());
    Ok(())
}
