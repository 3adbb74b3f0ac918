//! The raw OpenTelemetry SDK side of the load benches (`throughput`,
//! `burst`): its OTLP/HTTP exporter to the loopback receiver, and the same
//! span `unit` makes (its name and its two attributes), so both benches
//! compare observra with one baseline.

use observra_test_support::Receiver;
use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracer;

/// The SDK's OTLP/HTTP span exporter, sending to `rx`.
pub fn exporter(rx: &Receiver) -> opentelemetry_otlp::SpanExporter {
    opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", rx.http_endpoint()))
        .build()
        .expect("exporter")
}

/// One span as `unit` makes it, through the SDK.
pub fn unit(tracer: &SdkTracer, i: u64) {
    let mut span = tracer
        .span_builder("unit")
        .with_attributes([
            opentelemetry::KeyValue::new("gen_ai.operation.name", "chat"),
            opentelemetry::KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
        ])
        .start(tracer);
    std::hint::black_box(i.wrapping_mul(31));
    span.end();
}
