//! Metric settings: the [`Metrics`] builder (export interval, temporality,
//! the Prometheus endpoint) and its resolution against
//! `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_METRICS_EXPORTER`,
//! `OTEL_EXPORTER_PROMETHEUS_*` and `OBSERVRA_PROMETHEUS_ADDR`.

use std::net::SocketAddr;
use std::time::Duration;

use super::defaults::DEFAULT_METRIC_INTERVAL;
use super::env::{EnvSource, parse_millis, pick};
use crate::error::{Error, Result, Setting};
use crate::export::otlp_settings::Temporality;

/// How metrics leave the process: set in code with
/// [`crate::Builder::metrics`]; what is not set here comes from the
/// environment, then the defaults.
///
/// ```no_run
/// let _telemetry = observra::init()
///     .metrics(observra::Metrics::new().prometheus_addr("127.0.0.1:9464".parse().unwrap()))
///     .install();
/// ```
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    interval: Option<Duration>,
    temporality: Option<Temporality>,
    prometheus_addr: Option<SocketAddr>,
}

/// The resolved metric settings.
pub(crate) struct MetricsSettings {
    pub interval: Duration,
    pub temporality: Temporality,
    /// The Prometheus endpoint's address and the setting it came from (for bind errors).
    pub prometheus_addr: Option<(SocketAddr, Setting)>,
    /// Whether metrics also go out over OTLP (`OTEL_METRICS_EXPORTER`).
    pub otlp: bool,
}

fn parse_temporality(v: &str) -> std::result::Result<Temporality, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "cumulative" => Ok(Temporality::Cumulative),
        "delta" => Ok(Temporality::Delta),
        _ => Err("expected cumulative or delta"),
    }
}

fn parse_addr(v: &str) -> std::result::Result<SocketAddr, &'static str> {
    v.parse().map_err(|_| "expected an IP address and port, e.g. 127.0.0.1:9464")
}

impl Metrics {
    /// Nothing set: every value from the environment or the defaults.
    pub fn new() -> Self {
        Metrics::default()
    }
    /// How often metrics are exported over OTLP (`OTEL_METRIC_EXPORT_INTERVAL`).
    pub fn export_interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }
    /// Cumulative or delta (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`).
    pub fn temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = Some(temporality);
        self
    }
    /// Serves `/metrics` for Prometheus on `addr` (port 0 picks a free one).
    pub fn prometheus_addr(mut self, addr: SocketAddr) -> Self {
        self.prometheus_addr = Some(addr);
        self
    }

    /// Code, then the environment, then the defaults.
    pub(crate) fn resolve(self, env: &EnvSource) -> Result<MetricsSettings> {
        let interval =
            pick(self.interval, env, "OTEL_METRIC_EXPORT_INTERVAL", parse_millis)?.unwrap_or(DEFAULT_METRIC_INTERVAL);
        let temporality =
            pick(self.temporality, env, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", parse_temporality)?
                .unwrap_or(Temporality::Cumulative);
        // OTEL_METRICS_EXPORTER: `otlp` (the default with the otlp backend),
        // `prometheus` (pull endpoint on OTEL_EXPORTER_PROMETHEUS_HOST/PORT,
        // default localhost:9464), `none`; a comma-separated list is allowed.
        let mut otlp_metrics = true;
        let mut prometheus_from_exporter = None;
        if let Some(v) = env.get("OTEL_METRICS_EXPORTER") {
            otlp_metrics = false;
            for item in v.split(',').map(|i| i.trim().to_ascii_lowercase()) {
                match item.as_str() {
                    "otlp" => otlp_metrics = true,
                    "none" => {}
                    "prometheus" => {
                        let host = env.get("OTEL_EXPORTER_PROMETHEUS_HOST").unwrap_or_else(|| "localhost".into());
                        let host = if host == "localhost" { "127.0.0.1".to_string() } else { host };
                        let port = env.get("OTEL_EXPORTER_PROMETHEUS_PORT").unwrap_or_else(|| "9464".into());
                        let text =
                            if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
                        let addr = text.parse::<SocketAddr>().map_err(|_| {
                            Error::invalid(
                                Setting::Env("OTEL_EXPORTER_PROMETHEUS_HOST"),
                                text.clone(),
                                "expected an IP address (or localhost) and a port in OTEL_EXPORTER_PROMETHEUS_PORT",
                            )
                        })?;
                        prometheus_from_exporter = Some((addr, Setting::Env("OTEL_METRICS_EXPORTER")));
                    }
                    _ => {
                        return Err(Error::invalid(
                            Setting::Env("OTEL_METRICS_EXPORTER"),
                            v.clone(),
                            "expected otlp, prometheus or none (comma-separated)",
                        ));
                    }
                }
            }
        }
        let prometheus_addr = match self.prometheus_addr {
            Some(a) => Some((a, Setting::Builder("prometheus_addr"))),
            None if prometheus_from_exporter.is_some() => prometheus_from_exporter,
            None => pick(None, env, "OBSERVRA_PROMETHEUS_ADDR", parse_addr)?
                .map(|a| (a, Setting::Env("OBSERVRA_PROMETHEUS_ADDR"))),
        };
        if let (Some((addr, setting)), false) = (&prometheus_addr, cfg!(feature = "prometheus")) {
            return Err(Error::invalid(
                setting.clone(),
                addr.to_string(),
                "the Prometheus endpoint needs observra's `prometheus` cargo feature",
            ));
        }
        Ok(MetricsSettings { interval, temporality, prometheus_addr, otlp: otlp_metrics })
    }
}
