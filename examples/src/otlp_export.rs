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

use observra::{Instrument, traced};

#[traced(kind = client, attrs(gen_ai.operation.name = "chat", gen_ai.request.model = "fake-model"))]
async fn ask_model(question: &str) -> Result<String, std::io::Error> {
    tokio::task::yield_now().await;
    Ok(format!("echo: {question}"))
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
    Ok(format!("{answer} ({} hits)", hits.len()))
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
