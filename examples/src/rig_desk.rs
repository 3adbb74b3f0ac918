//! The rig agent of the `rig-agent` example, shared with the tests: a
//! rig 0.44 agent named `support` with one tool, on rig's OpenAI-compatible
//! provider, under the user's `#[workflow]`. Nothing here is observra's but
//! the `#[workflow]`.

use rig_agent::prelude::*;
use rig_core::providers::openai::OpenAIConfig;
use serde::Deserialize;

/// The agent's one tool, in rig's own terms: rig opens its span.
pub struct LookupOrder;

/// The tool's arguments.
#[derive(Deserialize)]
pub struct LookupArgs {
    /// The order id.
    pub id: String,
}

/// What the tool fails with.
#[derive(Debug)]
pub struct NoSuchOrder(pub String);

impl std::fmt::Display for NoSuchOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no order {}", self.0)
    }
}

impl std::error::Error for NoSuchOrder {}

impl rig_core::tool::PortableTool for LookupOrder {
    const NAME: &'static str = "lookup_order";
    type Args = LookupArgs;
    type Output = String;
    type Error = NoSuchOrder;

    fn description(&self) -> String {
        "Looks an order up by its id.".into()
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "object",
            "properties": {"id": {"type": "string", "description": "The order id, like A-1001."}},
            "required": ["id"],
        })
    }

    async fn call(&self, args: LookupArgs) -> Result<String, NoSuchOrder> {
        match args.id.as_str() {
            "A-1001" => Ok("order A-1001 shipped yesterday".into()),
            other => Err(NoSuchOrder(other.into())),
        }
    }
}

/// The user's own code around the agent: the root of the trace.
#[observra::workflow(name = "rig-desk")]
pub async fn handle(agent: &Agent, question: &str) -> Result<String, PromptError> {
    ask(agent, question).await
}

/// The agent's run. rig adopts the span current when `prompt` is called as
/// its agent span (it opens `invoke_agent` of its own only when there is
/// none): this is that span, named as rig names its agent.
#[observra::agent(name = "support")]
async fn ask(agent: &Agent, question: &str) -> Result<String, PromptError> {
    agent.prompt(question).await.map(|r| r.output())
}

/// The `support` agent on `config`'s OpenAI-compatible endpoint, with rig's
/// own content recording on: observra's content policy decides what of it
/// is exported.
pub fn support_agent(config: OpenAIConfig, model: &str) -> Agent {
    AgentBuilder::new(config.client().chat(model))
        .name("support")
        .preamble("You answer questions about orders. Use lookup_order.")
        .tool(LookupOrder)
        .default_max_turns(3)
        .record_content_telemetry(true)
        .build()
}

/// The question the example asks: it pastes an API key, which redaction
/// must remove from captured content.
pub const QUESTION: &str = "Where is my order A-1001? My key is sk-TESTabcdefghijklmnopqrstuvwx0123 if needed.";
