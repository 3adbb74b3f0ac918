//! OTLP export configured entirely from the environment.
//!
//! ```sh
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
//! OTEL_SERVICE_NAME=otlp-demo \
//! cargo run -p observra-examples --bin otlp-export
//! ```
//!
//! Any standard variable works: `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` (with an
//! endpoint on port 4317), `OTEL_EXPORTER_OTLP_HEADERS=authorization=...`,
//! `OTEL_TRACES_SAMPLER=traceidratio` with `OTEL_TRACES_SAMPLER_ARG=0.1`.
//! Without an endpoint it falls back to the embedded JSONL sink on stdout.
//! It also records one metric, `demo.questions`, through `observra::meter`.

use observra::{Instrument, LlmResponse, Usage, llm_call, traced};

/// A model's answer; `#[llm_call]` reads its usage.
struct Answer {
    text: String,
    usage: Usage,
}

impl LlmResponse for Answer {
    fn usage(&self) -> Option<Usage> {
        Some(self.usage)
    }
}

/// A model call (an echo, so the example needs no network): a valid GenAI
/// `chat gpt-4o-mini` CLIENT span with provider, model, usage and cost.
#[llm_call(provider = "openai", model = "gpt-4o-mini")]
async fn ask_model(question: &str) -> Result<Answer, std::io::Error> {
    tokio::task::yield_now().await;
    Ok(Answer { text: format!("echo: {question}"), usage: Usage::new(question.len() as u64, 6) })
}

#[traced(attrs(gen_ai.tool.name = "search"))]
async fn search(query: String) -> Vec<String> {
    vec![format!("result for {query}")]
}

#[traced(name = "invoke_agent demo")]
async fn run(question: &str) -> Result<String, std::io::Error> {
    // A spawned task stays in the trace when the future carries the span.
    let hits = tokio::spawn(search(question.to_string()).in_current_span()).await.unwrap_or_default();
    let answer = ask_model(question).await?;
    Ok(format!("{} ({} hits)", answer.text, hits.len()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let telemetry = observra::init().install()?;
    let questions = observra::meter("otlp-export").u64_counter("demo.questions").with_unit("{question}").build();
    for q in ["status of order 42", "refund policy"] {
        let answer = run(q).await?;
        questions.add(1, &[observra::KeyValue::new("demo.topic", "support")]);
        eprintln!("{answer}");
    }
    drop(telemetry); // flushes spans and metrics before exit
    Ok(())
}
