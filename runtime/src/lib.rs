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

mod accounting;
#[cfg(feature = "analytics")]
#[cfg_attr(docsrs, doc(cfg(feature = "analytics")))]
pub mod analytics;
mod attr_value;
#[cfg(feature = "audit")]
#[cfg_attr(docsrs, doc(cfg(feature = "audit")))]
pub mod audit;
#[cfg(not(feature = "audit"))]
#[path = "audit_off.rs"]
mod audit;
mod base;
mod batch;
mod budget;
mod collect;
mod config;
mod content;
mod cost;
mod declare;
mod diag;
mod error;
mod evaluate;
mod genai;
#[cfg(feature = "otlp")]
mod http_client;
pub mod integrations;
mod jsonl;
mod limits;
#[cfg(feature = "otlp")]
mod otel_log;
#[cfg(feature = "otlp")]
mod otlp;
mod pipeline;
#[cfg(feature = "prometheus")]
mod prometheus;
pub mod propagation;
mod record;
pub mod redact;
#[cfg(any(feature = "otlp", feature = "webhook"))]
mod retry;
#[cfg(any(feature = "audit", feature = "webhook"))]
mod sign;
mod tail;
mod usage;
pub mod web;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub mod webhook;

#[doc(hidden)]
pub mod __private;

/// Every attribute, metric and event name observra emits (the
/// `observra-semconv` crate).
pub use observra_semconv as semconv;

use std::borrow::Cow;

pub use attr_value::{ArrayElement, AttributeValue, widen_f32};
pub use budget::{Budget, BudgetEvent, BudgetKind, BudgetUnit};
pub use config::{Backend, Builder, Jsonl, KeepInteresting, Metrics, Otlp, Protocol, Redaction, Sampler, Temporality};
pub use content::{CaptureContent, CaptureMessages, CaptureMode, Message, Part};
pub use cost::{CostTable, Price};
pub use declare::{LabelValue, Unbounded};
pub use diag::DiagnosticLevel;
pub use error::{Error, Result, Setting};
pub use evaluate::{Evaluated, Evaluation, evaluate};
pub use genai::request::{LlmRequest, RequestParams};
pub use genai::retrieval::{RetrievalResponse, RetrievedDocument};
pub use genai::stream::{LlmChunk, LlmStream, StreamOutput};
pub use genai::{LlmCall, LlmResponse, Usage, current_llm_call};
pub use observra_macros::{agent, llm_call, metrics, retrieval, tool_call, traced, workflow};
/// The `opentelemetry` API crate observra is built on, for version-matched use.
pub use opentelemetry;
/// A key-value pair, for metric attributes (`observra::meter(...)`).
pub use opentelemetry::KeyValue;
pub use pipeline::{
    BackendHealth, BackendReport, Health, ShutdownReport, flush, health, meter, prometheus_addr, shutdown,
};
pub use record::carry::{Carried, Instrument};
pub use record::layer::ObservraLayer;
pub use record::span_ref::SpanRef;
#[cfg(feature = "webhook")]
pub use webhook::Webhook;

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

/// Keeps the pipeline running; dropping it flushes and shuts down within the
/// configured deadline ([`Builder::shutdown_timeout`], 5 s by default).
#[must_use = "dropping the guard shuts telemetry down at once; bind it: `let _telemetry = ...`"]
#[derive(Debug)]
pub struct Guard {
    pub(crate) active: bool,
}

impl Guard {
    /// Whether this guard owns a running pipeline (false when telemetry is
    /// disabled by `OTEL_SDK_DISABLED` or [`Builder::disabled`]).
    pub fn is_active(&self) -> bool {
        self.active
    }
}

/// The span the current code runs in, whichever path records it: for
/// recording on it ([`SpanRef::set_attribute`]), propagating it
/// ([`propagation`]) or carrying it into a spawned future
/// ([`Instrument::instrument`]).
///
/// Inside an instrumented function on the frame path (see
/// [`Builder::fast_path`]) there is no `tracing` span for the call:
/// `tracing::Span::current()` is the enclosing `tracing` span, while this
/// is the call itself.
pub fn current_span() -> SpanRef {
    SpanRef::current()
}

/// Chooses the `error.type` an error is reported with.
///
/// By default `#[traced]` reports an `Err` with its Rust type name. Implement
/// this for your error type to report a low-cardinality class instead:
///
/// ```
/// use std::borrow::Cow;
///
/// enum FetchError { Timeout, Status(u16) }
///
/// impl observra::ErrorType for FetchError {
///     fn error_type(&self) -> Cow<'static, str> {
///         match self {
///             FetchError::Timeout => "timeout".into(),
///             FetchError::Status(code) => code.to_string().into(),
///         }
///     }
/// }
/// ```
pub trait ErrorType {
    /// The value of the `error.type` attribute for this error.
    fn error_type(&self) -> Cow<'static, str>;
}
