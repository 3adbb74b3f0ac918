//! The same small agent instrumented by hand: tracing spans carrying the
//! GenAI attributes, tracing-opentelemetry, an OTLP/HTTP batch exporter
//! with TLS, and the two GenAI client metrics recorded by hand.

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

struct Metrics {
    duration: opentelemetry::metrics::Histogram<f64>,
    tokens: opentelemetry::metrics::Histogram<u64>,
}

fn complete(m: &Metrics, prompt: &str) -> Result<String, std::io::Error> {
    let start = std::time::Instant::now();
    let span = info_span!(
        "chat gpt-4o-mini",
        otel.kind = "client",
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.request.temperature = 0.2,
        gen_ai.response.id = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
    );
    let _e = span.enter();
    let text = format!("answer to {prompt}");
    let (input, output) = (prompt.len() as u64, 12u64);
    span.record("gen_ai.response.id", "chatcmpl-1");
    span.record("gen_ai.usage.input_tokens", input);
    span.record("gen_ai.usage.output_tokens", output);
    let attrs = [
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", "openai"),
        KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
    ];
    m.duration.record(start.elapsed().as_secs_f64(), &attrs);
    for (kind, n) in [("input", input), ("output", output)] {
        let mut a = attrs.to_vec();
        a.push(KeyValue::new("gen_ai.token.type", kind));
        m.tokens.record(n, &a);
    }
    Ok(text)
}

fn lookup_order(id: &str) -> String {
    let _s = info_span!("execute_tool lookup_order", gen_ai.operation.name = "execute_tool", gen_ai.tool.name = "lookup_order")
        .entered();
    format!("order {id} shipped")
}

fn answer(m: &Metrics, question: &str) -> Result<String, std::io::Error> {
    let _s = info_span!("invoke_agent support", gen_ai.operation.name = "invoke_agent", gen_ai.agent.name = "support")
        .entered();
    let plan = complete(m, question)?;
    let facts = lookup_order("A-1001");
    Ok(format!("{plan} ({facts})"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_else(|_| "http://localhost:4318".into());
    let spans = SpanExporter::builder().with_http().with_endpoint(format!("{endpoint}/v1/traces")).build()?;
    let tracer_provider = SdkTracerProvider::builder().with_batch_exporter(spans).build();
    let metrics = MetricExporter::builder().with_http().with_endpoint(format!("{endpoint}/v1/metrics")).build()?;
    let meter_provider = SdkMeterProvider::builder().with_reader(PeriodicReader::builder(metrics).build()).build();
    let meter = meter_provider.meter("agent");
    let m = Metrics {
        duration: meter.f64_histogram("gen_ai.client.operation.duration").with_unit("s").build(),
        tokens: meter.u64_histogram("gen_ai.client.token.usage").with_unit("{token}").build(),
    };
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("agent")))
        .init();
    println!("{}", answer(&m, "Where is my order?")?);
    tracer_provider.shutdown()?;
    meter_provider.shutdown()?;
    Ok(())
}
