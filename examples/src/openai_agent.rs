//! An agent calling OpenAI through async-openai, instrumented with no
//! response-handling code: observra's `async-openai` feature reads usage,
//! ids, models and finish reasons from async-openai's own types.
//!
//! With `OPENAI_BASE_URL` (and `OPENAI_API_KEY`) set, it talks to that API;
//! otherwise it starts a fake OpenAI-compatible server on 127.0.0.1, so
//! `cargo run -p observra-examples --bin openai-agent` needs no network and
//! no key. Telemetry comes from the environment as in every example.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
    CreateChatCompletionResponse,
};
use observra::{agent, llm_call, tool_call};

#[path = "fake_openai.rs"]
mod fake_openai;

#[llm_call(provider = "openai", model = req.model, temperature = req.temperature.unwrap_or(1.0), server_address = "api.openai.com")]
async fn complete(
    client: &Client<OpenAIConfig>,
    req: CreateChatCompletionRequest,
) -> Result<CreateChatCompletionResponse, OpenAIError> {
    client.chat().create(req).await
}

#[tool_call(name = "lookup_order", arguments = id)]
async fn lookup_order(id: &str) -> String {
    format!("order {id} shipped yesterday")
}

fn ask(model: &str, prompt: String) -> Result<CreateChatCompletionRequest, OpenAIError> {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .temperature(0.2)
        .messages([ChatCompletionRequestUserMessageArgs::default().content(prompt).build()?.into()])
        .build()
}

#[agent(name = "order-helper", conversation_id = "demo-session")]
async fn answer(client: &Client<OpenAIConfig>, question: &str) -> Result<String, OpenAIError> {
    let plan = complete(client, ask("gpt-4o-mini", format!("Which order does this ask about? {question}"))?).await?;
    let facts = lookup_order("A-1001").await;
    let _ = plan;
    let reply = complete(client, ask("gpt-4o-mini", format!("{question}\nFacts: {facts}"))?).await?;
    Ok(reply.choices.first().and_then(|c| c.message.content.clone()).unwrap_or_default())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let _telemetry = observra::init().service_name("openai-agent").install()?;
    let (_fake, config) = match std::env::var("OPENAI_BASE_URL") {
        Ok(base) => (None, OpenAIConfig::new().with_api_base(base)),
        Err(_) => {
            let fake = fake_openai::FakeOpenAi::start()?;
            let config = OpenAIConfig::new().with_api_base(fake.api_base()).with_api_key("not-needed");
            (Some(fake), config)
        }
    };
    let client = Client::with_config(config);
    let reply = answer(&client, "Where is my order?").await?;
    eprintln!("agent: {reply}");
    Ok(())
}
