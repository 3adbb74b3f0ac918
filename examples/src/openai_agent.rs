//! An agent calling OpenAI through async-openai, instrumented with one
//! line: `observra::integrations::async_openai::instrument` wraps the
//! client, and every chat completion through it is a GenAI span recording
//! the request (model, every sampling parameter, server address), the
//! response (usage, ids, models, finish reasons, service tier) and, when
//! content capture is on, the messages.
//!
//! With `OPENAI_BASE_URL` (and `OPENAI_API_KEY`) set, it talks to that API;
//! otherwise it starts a fake OpenAI-compatible server on 127.0.0.1, so
//! `cargo run -p observra-examples --bin openai-agent` needs no network and
//! no key. Telemetry comes from the environment as in every example.

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use observra::integrations::async_openai::TracedClient;
use observra::{agent, tool_call};

#[path = "fake_openai.rs"]
mod fake_openai;
#[path = "openai_client.rs"]
mod openai_client;

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
async fn answer(client: &TracedClient<OpenAIConfig>, question: &str) -> Result<String, OpenAIError> {
    let plan =
        client.chat().create(ask("gpt-4o-mini", format!("Which order does this ask about? {question}"))?).await?;
    let facts = lookup_order("A-1001").await;
    let _ = plan;
    let reply = client.chat().create(ask("gpt-4o-mini", format!("{question}\nFacts: {facts}"))?).await?;
    Ok(reply.choices.first().and_then(|c| c.message.content.clone()).unwrap_or_default())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let _telemetry = observra::init().service_name("openai-agent").install()?;
    let (client, _fake) = openai_client::instrumented()?;
    let reply = answer(&client, "Where is my order?").await?;
    eprintln!("agent: {reply}");
    Ok(())
}
