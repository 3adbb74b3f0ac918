//! # observra
//!
//! OpenTelemetry instrumentation for Rust LLM agents: one attribute on a
//! function, one line of set-up.
//!
//! ```no_run
//! use observra::traced;
//!
//! #[traced(kind = client, attrs(component = "rag"))]
//! fn retrieve(query: &str) -> Result<Vec<String>, std::io::Error> {
//!     Ok(vec![format!("doc about {query}")])
//! }
//!
//! fn main() -> Result<(), observra::Error> {
//!     // Reads OTEL_* and OBSERVRA_* from the environment; code overrides them.
//!     // With nothing configured, finished spans are JSON lines on stdout.
//!     let _telemetry = observra::init().service_name("support-bot").install()?;
//!     let _ = retrieve("orders");
//!     Ok(())
//! } // the guard flushes and shuts down here, within a deadline
//! ```
//!
//! - [`init`] returns a [`Builder`]; [`Builder::install`] validates the
//!   configuration (typed [`Error`]s naming the setting and the value) and
//!   returns a [`Guard`].
//! - [`traced`] instruments sync and async functions; spans are `tracing`
//!   spans, so they nest with your own `tracing` spans and events.
//! - Users with their own `tracing` subscriber add [`layer()`] to it.
//! - Export never blocks the caller: spans go through a bounded queue to an
//!   export thread; what does not fit is dropped and counted ([`health`]).
//!
//! ## Cargo features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `otlp` | yes | OTLP over HTTP/protobuf (traces, metrics, the `otel_log` backend) |
//! | `tls` | yes | `https://` endpoints (rustls with aws-lc-rs, Mozilla's roots, `OTEL_EXPORTER_OTLP_CERTIFICATE`, client certificates) |
//! | `grpc` | | OTLP over gRPC |
//! | `webhook` | | the `webhook` backend (`observra::Webhook`) |
//! | `audit` | | encrypted and hash-chained JSONL, `observra::audit` |
//! | `prometheus` | | the Prometheus pull endpoint |
//! | `analytics` | | `observra::analytics` |
//! | `toml` | | TOML price files |
//! | `async-openai`, `genai` | | instrumented clients ([`integrations`]) |
//! | `mcp` | | MCP through rmcp: traced client and server ([`integrations`]) |
//! | `tower`, `axum`, `reqwest` | | HTTP server and client spans and duration metrics ([`web`]), trace context ([`propagation`]) |
//!
//! Redaction and JSONL are always there. Asking for what a feature left out
//! is a typed [`Error`] at [`Builder::install`] naming the setting, the value
//! and the feature.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The macros name `::observra`; the integrations use them inside this crate.
extern crate self as observra;

// The layers, bottom to top. Each module imports only from the modules
// declared before it, never from this file (`tests/tests/layering.rs`
// reads this order and checks it).

// Redaction rules: every diagnostic, error and span goes through them.
pub mod redact;

// Diagnostics: rate-limited warnings, scrubbed of secrets.
mod diag;

// The typed `Error` and the setting it names.
mod error;

// Accounting rules: usage, prices and cost, budgets, agent totals.
mod account;

// The one record type, the collector's queue, the installed state.
mod base;

// What a span may carry when it leaves: content, limits, the span policy.
mod policy;

// The caller's side: the context stack, call guards, the `tracing` layer.
mod record;

// GenAI request, response, stream and retrieval recording.
mod genai;

// The backends: bounded queues, JSONL, audit, OTLP, webhook, Prometheus.
mod export;

// The collector thread: frames to spans and metrics, tail sampling.
mod collect;

// Settings: the builder and its resolution against the environment.
mod config;

// The composition root: install, health, flush and shutdown.
mod pipeline;

// What the macros expand to.
#[doc(hidden)]
pub mod __private;

// Instrumented clients and servers (OpenAI, genai, MCP, HTTP).
pub mod integrations;

// Offline analysis of exported JSON lines.
#[cfg(feature = "analytics")]
#[cfg_attr(docsrs, doc(cfg(feature = "analytics")))]
pub mod analytics;

/// Every attribute, metric and event name observra emits (the
/// `observra-semconv` crate).
pub use observra_semconv as semconv;

pub use account::budget::{Budget, BudgetEvent, BudgetKind, BudgetUnit};
pub use account::cost::{CostTable, Price};
pub use base::attr_value::{ArrayElement, AttributeValue, widen_f32};
pub use collect::tail::KeepInteresting;
pub use config::{Backend, Builder, GenAiConventions, Jsonl, Metrics, Otlp, QueryValues, Redaction, Sampler};
pub use diag::DiagnosticLevel;
pub use error::{Error, ErrorType, Result, Setting};
#[cfg(feature = "audit")]
pub use export::audit;
pub use export::jsonl::keep_off_stdout;
pub use export::otlp_settings::{Protocol, Temporality};
#[cfg(feature = "webhook")]
pub use export::webhook::{self, Webhook};
pub use genai::request::{LlmRequest, RequestParams};
pub use genai::retrieval::{RetrievalResponse, RetrievedDocument};
pub use genai::stream::{LlmChunk, LlmStream, StreamOutput};
pub use genai::{LlmCall, LlmResponse, Usage, current_llm_call};
pub use integrations::{propagation, web};
pub use observra_macros::{agent, llm_call, metrics, retrieval, tool_call, traced, workflow};
/// The `opentelemetry` API crate observra is built on, for version-matched use.
pub use opentelemetry;
/// A key-value pair, for metric attributes (`observra::meter(...)`).
pub use opentelemetry::KeyValue;
pub use pipeline::{
    BackendHealth, BackendReport, Guard, Health, ShutdownReport, flush, health, meter, prometheus_addr, shutdown,
};
pub use policy::content::{CaptureContent, CaptureMessages, CaptureMode, Message, Part};
pub use record::carry::{Carried, Instrument};
pub use record::declare::{LabelValue, Unbounded};
pub use record::evaluate::{Evaluated, Evaluation, evaluate};
pub use record::layer::ObservraLayer;
pub use record::span_ref::SpanRef;

/// Starts configuring observra. Finish with [`Builder::install`].
pub fn init() -> Builder {
    Builder::default()
}

/// The observra `tracing` layer, for users who build their own subscriber.
///
/// ```no_run
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::util::SubscriberInitExt;
///
/// tracing_subscriber::registry().with(observra::layer()).init();
/// // install() sees the layer in your subscriber and only starts the pipeline.
/// let _telemetry = observra::init().install().expect("telemetry");
/// ```
pub fn layer<S>() -> ObservraLayer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    ObservraLayer::new()
}

/// The span the current code runs in, whichever path records it: for
/// recording on it ([`SpanRef::set_attribute`]), propagating it
/// ([`propagation`]) or carrying it into a spawned future
/// ([`Instrument::instrument`]).
///
/// Inside an instrumented function on the frame path (see
/// [`Builder::fast_path`]) there is no `tracing` span for the call; with
/// the subscriber `install()` sets, `tracing::Span::current()` stands for
/// the call all the same (entering it elsewhere makes what runs there the
/// call's child), and this is the call itself.
pub fn current_span() -> SpanRef {
    SpanRef::current()
}
