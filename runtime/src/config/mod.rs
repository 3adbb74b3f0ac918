//! Configuration: the `init()` builder, a builder per concern ([`Otlp`],
//! [`Jsonl`], [`Redaction`], [`Metrics`], beside `Webhook` and `Budget`),
//! the environment variables they honour, and every default.
//!
//! One rule resolves every setting ([`pick`](env::pick)): a value set in
//! code wins, then the standard `OTEL_*` (or `OBSERVRA_*`) environment
//! variable, then the default. Each concern resolves its own settings;
//! [`Builder::resolve`] puts them together. Every value is validated here,
//! so a bad one is a typed
//! [`Error::InvalidConfig`](crate::error::Error::InvalidConfig) from
//! [`Builder::install`] naming the variable (or builder method) and the
//! value, never a panic and never a silent default.
//!
//! The files, bottom to top: `defaults.rs` (every default), `env.rs` (the
//! environment, [`pick`](env::pick) and the value parsers), a file per
//! concern (`sampler.rs`, `otlp.rs`, `jsonl.rs`, `metrics.rs`,
//! `redaction.rs`, then `backend.rs`, which turns the JSONL settings into
//! a sink), `builder.rs` (the [`Builder`] and its setters) and `resolve.rs`
//! (the [`Builder`] and the environment into [`Settings`]).

use std::time::Duration;

use opentelemetry::KeyValue;

use crate::account::budget::{Budget, BudgetCallback};
use crate::account::cost::CostTable;
use crate::error::Setting;
use crate::export::batch::BatchSettings;
use crate::export::otlp_settings::{OtlpSettings, Temporality};
use crate::policy::content::CaptureMode;

mod backend;
mod builder;
mod defaults;
mod env;
mod jsonl;
mod metrics;
mod otlp;
mod redaction;
mod resolve;
mod sampler;

pub use backend::Backend;
pub(crate) use backend::Sink;
pub use builder::{Builder, GenAiConventions, QueryValues};
pub use jsonl::Jsonl;
pub use metrics::Metrics;
pub use otlp::Otlp;
pub use redaction::Redaction;
pub use sampler::Sampler;

/// Everything `install()` needs, resolved and validated.
pub(crate) struct Settings {
    pub disabled: bool,
    pub resource: Vec<KeyValue>,
    pub sampler: Sampler,
    /// One per backend, with the backend's name.
    pub sinks: Vec<(Sink, &'static str)>,
    pub otlp: Option<OtlpSettings>,
    pub batch: BatchSettings,
    /// Bound of the callers' span buffers, in bytes.
    pub span_buffer_bytes: usize,
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub metric_interval: Duration,
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub temporality: Temporality,
    pub shutdown_timeout: Duration,
    pub max_level: tracing::Level,
    pub set_global_subscriber: bool,
    /// Whether the macros may take the frame path.
    pub fast_path: bool,
    /// Whether `url.query` keeps the values of keys that are not sensitive.
    pub keep_query_values: bool,
    /// Whether the `observra.pipeline.*` metrics are exported.
    pub self_metrics: bool,
    /// Whether the newest GenAI conventions are emitted
    /// (`gen_ai_latest_experimental`) rather than v1.41.
    pub genai_latest: bool,
    /// How much observra says about its own trouble.
    pub diagnostics: crate::diag::DiagnosticLevel,
    pub capture: CaptureMode,
    pub prices: CostTable,
    pub budget: Budget,
    pub budget_callback: Option<BudgetCallback>,
    /// The address and the setting it came from (for bind errors).
    #[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
    pub prometheus_addr: Option<(std::net::SocketAddr, Setting)>,
    /// Whether metrics also go out over OTLP (`OTEL_METRICS_EXPORTER`).
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub otlp_metrics: bool,
    /// JSONL encryption key.
    pub encryption_key: Option<[u8; 32]>,
    /// JSONL hash-chain key.
    pub audit_key: Option<[u8; 32]>,
    /// The redaction engine, unless turned off.
    pub redactor: Option<std::sync::Arc<crate::redact::Redactor>>,
    /// Rotate the JSONL file past this size.
    pub jsonl_max_bytes: Option<u64>,
    /// Sync JSONL batches and the head anchor to disk.
    pub jsonl_fsync: bool,
}
