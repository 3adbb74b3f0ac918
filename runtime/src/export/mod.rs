//! The backends: one bounded queue and thread per backend ([`batch`]),
//! and what each one writes: JSON lines ([`jsonl`], chained and encrypted
//! by [`audit`]), OTLP over HTTP or gRPC ([`otlp`], [`otel_log`], through
//! [`http_client`] with [`retry`]), signed webhooks ([`webhook`], with
//! [`sign`]) and the Prometheus pull endpoint ([`prometheus`]). Nothing here
//! knows how a span was recorded or assembled.

#[cfg(feature = "audit")]
#[cfg_attr(docsrs, doc(cfg(feature = "audit")))]
pub mod audit;
#[cfg(not(feature = "audit"))]
#[path = "audit_off.rs"]
pub(crate) mod audit;
pub(crate) mod batch;
#[cfg(feature = "otlp")]
pub(crate) mod http_client;
pub(crate) mod jsonl;
#[cfg(feature = "otlp")]
pub(crate) mod otel_log;
#[cfg(feature = "otlp")]
pub(crate) mod otlp;
pub(crate) mod otlp_settings;
#[cfg(feature = "otlp")]
pub(crate) mod otlp_spans;
#[cfg(feature = "prometheus")]
pub(crate) mod prometheus;
#[cfg(any(feature = "otlp", feature = "webhook"))]
pub(crate) mod retry;
#[cfg(any(feature = "audit", feature = "webhook"))]
pub(crate) mod sign;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub mod webhook;
