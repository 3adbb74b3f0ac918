//! What the OTLP exporters and their HTTP client take, resolved: one
//! [`SignalSettings`] per signal (endpoint, protocol, headers, timeout, TLS
//! files, retries). `config` fills these in from the builder and the
//! `OTEL_EXPORTER_OTLP_*` variables; the exporters only read them.

use std::time::Duration;

use crate::error::Setting;
#[cfg(any(feature = "webhook", feature = "grpc"))]
use crate::error::{Error, Result};

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over HTTP with protobuf bodies (`http/protobuf`, port 4318).
    HttpProtobuf,
    /// OTLP over gRPC (`grpc`, port 4317).
    Grpc,
}

/// Metric aggregation temporality (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Temporality {
    /// Running totals since start (the default).
    Cumulative,
    /// Changes since the last export.
    Delta,
}

/// Headers as an `http::HeaderMap`; a bad name or value is an error naming
/// `setting` and the header.
#[cfg(any(feature = "webhook", feature = "grpc"))]
pub(crate) fn header_map(setting: Setting, headers: &[(String, String)]) -> Result<http::HeaderMap> {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| Error::invalid(setting.clone(), k.clone(), "not a valid HTTP header name"))?;
        let value = http::HeaderValue::from_str(v).map_err(|_| {
            Error::invalid(setting.clone(), k.clone(), "the header value has characters HTTP does not allow")
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// How long the OTLP/HTTP client keeps retrying one request by default
/// (`OBSERVRA_OTLP_RETRY_BUDGET`): enough to ride out a collector restart
/// or a 15 s outage without losing a batch.
pub(crate) const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(60);

/// The first back-off of an OTLP retry by default; each retry doubles it.
pub(crate) const DEFAULT_RETRY_INITIAL: Duration = Duration::from_millis(500);

/// The longest back-off between two OTLP retries by default.
pub(crate) const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(5);

/// How an OTLP exporter retries, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetrySettings {
    pub initial: Duration,
    pub max: Duration,
    /// The longest one request is retried for; zero: no retry.
    pub budget: Duration,
}

/// Resolved OTLP exporter settings, per signal.
#[derive(Debug, Clone)]
pub(crate) struct OtlpSettings {
    pub traces: SignalSettings,
    pub metrics: SignalSettings,
    pub logs: SignalSettings,
}

/// One signal's OTLP endpoint, transport, headers and timeout.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub(crate) struct SignalSettings {
    pub endpoint: String,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub tls: TlsFiles,
    pub retry: RetrySettings,
}

/// The PEM files of `OTEL_EXPORTER_OTLP_[SIGNAL_]CERTIFICATE` (the CA that
/// signs the collector's certificate, trusted beside Mozilla's roots) and
/// `..._CLIENT_CERTIFICATE` / `..._CLIENT_KEY` (mutual TLS), read at install.
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(all(feature = "tls", feature = "otlp")), allow(dead_code))]
pub(crate) struct TlsFiles {
    pub ca: Option<PemFile>,
    pub client_certificate: Option<PemFile>,
    pub client_key: Option<PemFile>,
}

/// A PEM file and the setting that named it (for errors).
#[derive(Clone)]
#[cfg_attr(not(all(feature = "tls", feature = "otlp")), allow(dead_code))]
pub(crate) struct PemFile {
    pub setting: Setting,
    pub path: String,
    pub pem: Vec<u8>,
}

impl std::fmt::Debug for PemFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the contents: a client key is a secret.
        f.debug_struct("PemFile").field("setting", &self.setting).field("path", &self.path).finish_non_exhaustive()
    }
}
