//! The installed pipeline: exporters, batch processors, meter provider and
//! the guard that shuts them down.
//!
//! One pipeline is active at a time. [`install`] builds it from resolved
//! [`Settings`] and registers the `tracing` subscriber; dropping the
//! [`Guard`] (or calling [`shutdown`]) flushes and stops it within the
//! configured deadline, after which a new one may be installed.

mod health;
mod install;
mod shutdown;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use opentelemetry_sdk::metrics::SdkMeterProvider;

pub use self::health::{BackendHealth, Health, health};
pub use self::shutdown::{BackendReport, ShutdownReport, flush, shutdown};
use crate::base::state::Installed;
use crate::error::Result;
use crate::export::batch::FanOut;

/// Keeps the pipeline running; dropping it flushes and shuts down within the
/// configured deadline ([`crate::Builder::shutdown_timeout`], 5 s by default).
#[must_use = "dropping the guard shuts telemetry down at once; bind it: `let _telemetry = ...`"]
#[derive(Debug)]
pub struct Guard {
    pub(crate) active: bool,
}

impl Guard {
    /// Whether this guard owns a running pipeline (false when telemetry is
    /// disabled by `OTEL_SDK_DISABLED` or [`crate::Builder::disabled`]).
    pub fn is_active(&self) -> bool {
        self.active
    }
}

/// The running pipeline: what [`crate::base::state`] tells the other layers
/// about (the installed state), plus what only the composition root uses.
pub(crate) struct Pipeline {
    installed: Arc<Installed>,
    /// One per backend; a span goes to each.
    processors: Arc<FanOut>,
    meter_provider: Option<SdkMeterProvider>,
    /// The OTLP metric exporter's losses, told at shutdown.
    metrics_diag: Option<Arc<crate::diag::MetricsDiag>>,
    prometheus: std::sync::Mutex<Option<PromEndpoint>>,
    /// The pipeline's own figures as metrics; kept alive with the pipeline.
    _self_metrics: Option<health::SelfMetrics>,
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    runtime: std::sync::Mutex<Option<GrpcRuntime>>,
    shutdown_timeout: Duration,
    /// When the OTLP clients' retries must end: set when shutdown starts.
    #[cfg(feature = "otlp")]
    retries_end: crate::export::retry::RetryEnd,
}

/// The runtime gRPC exports run on (feature `grpc`).
#[cfg(feature = "grpc")]
type GrpcRuntime = tokio::runtime::Runtime;
/// No gRPC in this build: never constructed.
#[cfg(not(feature = "grpc"))]
enum GrpcRuntime {}

/// The Prometheus endpoint (feature `prometheus`).
#[cfg(feature = "prometheus")]
type PromEndpoint = crate::export::prometheus::Endpoint;
/// No Prometheus endpoint in this build: never constructed.
#[cfg(not(feature = "prometheus"))]
enum PromEndpoint {}

#[cfg(not(feature = "prometheus"))]
impl PromEndpoint {
    fn addr(&self) -> std::net::SocketAddr {
        match *self {}
    }
}

impl crate::config::Builder {
    /// Validates the configuration and starts the pipeline.
    ///
    /// Returns a guard that flushes and shuts down on drop, within the
    /// shutdown deadline.
    pub fn install(self) -> Result<Guard> {
        let settings = self.resolve()?;
        install::install(settings)
    }
}

static CURRENT: RwLock<Option<Arc<Pipeline>>> = RwLock::new(None);

/// The active pipeline, if any.
fn current() -> Option<Arc<Pipeline>> {
    // A lock that ignores poisoning: a panic elsewhere while it was held
    // must never turn telemetry off for the rest of the process.
    CURRENT.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// The address the Prometheus endpoint listens on, if one is running.
pub fn prometheus_addr() -> Option<std::net::SocketAddr> {
    current().and_then(|p| p.prometheus.lock().ok().and_then(|e| e.as_ref().map(|e| e.addr())))
}

/// A meter from the installed meter provider (a no-op meter before
/// `install()` or with a backend that has no metrics).
pub fn meter(name: &'static str) -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter(name)
}

#[cfg(test)]
mod tests {
    /// Catches: a poisoned lock turning telemetry off for the rest of the
    /// process (`current()` used to read it with `.ok()`).
    #[test]
    fn a_panic_while_the_pipeline_lock_is_held_does_not_turn_telemetry_off() {
        let _ = std::thread::spawn(|| {
            let _held = super::CURRENT.write();
            panic!("a panic elsewhere, while the lock is held");
        })
        .join();
        assert!(super::CURRENT.is_poisoned());
        assert!(super::current().is_none());
        let guard = crate::config::Builder::default()
            .env_from(Vec::<(String, String)>::new())
            .jsonl_writer(std::io::sink())
            .install()
            .expect("install over a poisoned lock");
        assert!(super::current().is_some(), "the installed pipeline is seen");
        drop(guard);
        assert!(super::current().is_none());
    }
}
