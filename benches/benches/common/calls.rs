//! What `compare` and `caller_loop` both measure: the discarding exporter
//! and reporter, and the instrumented functions (each does the same
//! [`super::work`]). Included with `#[path]` by the benches that use it.

use divan::black_box;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::common::work;

/// A span exporter that discards.
#[derive(Debug)]
pub struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch.len());
        Ok(())
    }
}

/// A fastrace reporter that discards.
pub struct DiscardReporter;

impl fastrace::collector::Reporter for DiscardReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans.len());
    }
}

/// A model's reply with usage.
pub struct Reply(pub u64);

impl observra::LlmResponse for Reply {
    fn usage(&self) -> Option<observra::Usage> {
        Some(observra::Usage::new(1200, 150))
    }
}

#[observra::traced]
#[inline(never)]
pub fn traced_fn(x: u64) -> u64 {
    work(x)
}

#[observra::agent(name = "bench")]
#[inline(never)]
pub fn agent_fn(x: u64) -> u64 {
    work(x)
}

#[observra::llm_call(provider = "openai", model = "gpt-4o-mini")]
#[inline(never)]
pub fn llm_call(x: u64) -> Result<Reply, std::io::Error> {
    Ok(Reply(work(x)))
}

/// fastrace's cheapest span: a `LocalSpan` under a local parent.
#[inline(never)]
pub fn fastrace_child(x: u64) -> u64 {
    let _span = fastrace::local::LocalSpan::enter_with_local_parent("traced_fn");
    work(x)
}
