//! A small agent instrumented with observra: one attribute per function,
//! one line of set-up; telemetry from the environment (OTLP when
//! OTEL_EXPORTER_OTLP_ENDPOINT is set, JSONL on stdout otherwise).

use observra::{LlmResponse, Usage, agent, llm_call, tool_call};

struct Reply {
    text: String,
    prompt: u64,
    completion: u64,
}

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(self.prompt, self.completion))
    }
    fn response_id(&self) -> Option<&str> {
        Some("chatcmpl-1")
    }
}

#[llm_call(provider = "openai", model = "gpt-4o-mini", temperature = 0.2)]
fn complete(prompt: &str) -> Result<Reply, std::io::Error> {
    Ok(Reply { text: format!("answer to {prompt}"), prompt: prompt.len() as u64, completion: 12 })
}

#[tool_call(name = "lookup_order")]
fn lookup_order(id: &str) -> String {
    format!("order {id} shipped")
}

#[agent(name = "support")]
fn answer(question: &str) -> Result<String, std::io::Error> {
    let plan = complete(question)?;
    let facts = lookup_order("A-1001");
    Ok(format!("{} ({facts})", plan.text))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _telemetry = observra::init().service_name("build-cost-agent").install()?;
    println!("{}", answer("Where is my order?")?);
    Ok(())
}
