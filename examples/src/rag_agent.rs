//! A retrieval-augmented agent, graded: the question is embedded
//! (async-openai's embeddings, instrumented), the order index is searched
//! (`#[retrieval]`), the model answers (chat, instrumented), and a judge's
//! score is attached to that answer by its response id after the call
//! ended (`observra::evaluate`), as an LLM-as-judge pipeline does.
//!
//! With `OPENAI_BASE_URL` (and `OPENAI_API_KEY`) set, it talks to that API;
//! otherwise it starts a fake OpenAI-compatible server on 127.0.0.1, so
//! `cargo run -p observra-examples --bin rag-agent` needs no network and no
//! key. Telemetry comes from the environment as in every example.

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs};
use async_openai::types::embeddings::CreateEmbeddingRequestArgs;
use observra::integrations::async_openai::TracedClient;
use observra::{Evaluation, RetrievedDocument, agent, retrieval};

#[path = "fake_openai.rs"]
mod fake_openai;
#[path = "openai_client.rs"]
mod openai_client;

/// The order index: a vector store the example fakes.
#[retrieval(data_source = "orders-index", top_k = k, query = question)]
async fn search(question: &str, _embedding: &[f32], k: usize) -> anyhow::Result<Vec<RetrievedDocument>> {
    let hits = [("orders/A-1001", 0.93), ("policies/shipping", 0.81), ("orders/A-0999", 0.42)];
    Ok(hits.iter().take(k).map(|(id, s)| RetrievedDocument::new(*id, *s)).collect())
}

#[agent(name = "order-rag")]
async fn answer(client: &TracedClient<OpenAIConfig>, question: &str) -> anyhow::Result<(String, String)> {
    let embedding = client
        .embeddings()
        .create(CreateEmbeddingRequestArgs::default().model("text-embedding-3-small").input(question).build()?)
        .await?;
    let vector = embedding.data.first().map(|e| e.embedding.clone()).unwrap_or_default();
    let docs = search(question, &vector, 2).await?;
    let context: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o-mini")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content(format!("{question}\nContext: {}", context.join(", ")))
            .build()?
            .into()])
        .build()?;
    let reply = client.chat().create(request).await?;
    let text = reply.choices.first().and_then(|c| c.message.content.clone()).unwrap_or_default();
    Ok((reply.id, text))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let _telemetry = observra::init().service_name("rag-agent").install()?;
    let (client, _fake) = openai_client::instrumented()?;
    let (response_id, text) = answer(&client, "Where is my order A-1001?").await?;
    // The judge: here a rule; in production another model call.
    let relevant = text.to_lowercase().contains("order") || text.to_lowercase().contains("ship");
    let score = if relevant { 0.9 } else { 0.1 };
    observra::evaluate(
        response_id.as_str(),
        Evaluation::new("relevance")
            .score(score)
            .label(if relevant { "relevant" } else { "not_relevant" })
            .explanation("Does the answer talk about the order?"),
    );
    eprintln!("agent: {text}");
    Ok(())
}
