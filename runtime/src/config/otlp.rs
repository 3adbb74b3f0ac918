//! OTLP export settings: the [`Otlp`] builder (the code's values) and
//! their resolution against the `OTEL_EXPORTER_OTLP_*` variables, signal by
//! signal.

use std::time::Duration;

use super::defaults::{DEFAULT_EXPORT_TIMEOUT, DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_ENDPOINT};
use super::env::{EnvSource, parse_kv_list, parse_millis, pick};
use crate::error::{Error, Result, Setting};
use crate::export::otlp_settings::{
    DEFAULT_RETRY_BUDGET, DEFAULT_RETRY_INITIAL, DEFAULT_RETRY_MAX, OtlpSettings, PemFile, Protocol, RetrySettings,
    SignalSettings, TlsFiles,
};

/// Where and how OTLP exports go: set in code with [`crate::Builder::otlp`];
/// what is not set here comes from the `OTEL_EXPORTER_OTLP_*` variables,
/// then the defaults.
///
/// ```no_run
/// use std::time::Duration;
/// let _telemetry = observra::init()
///     .otlp(
///         observra::Otlp::new()
///             .endpoint("https://collector.example.com:4318")
///             .header("authorization", "Bearer ...")
///             .timeout(Duration::from_secs(5)),
///     )
///     .install();
/// ```
#[derive(Debug, Clone, Default)]
pub struct Otlp {
    pub(crate) endpoint: Option<String>,
    pub(crate) traces_endpoint: Option<String>,
    pub(crate) metrics_endpoint: Option<String>,
    pub(crate) logs_endpoint: Option<String>,
    pub(crate) headers: Option<Vec<(String, String)>>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) backoff: Option<(Duration, Duration)>,
    pub(crate) retry_budget: Option<Duration>,
}

impl Otlp {
    /// Nothing set: every value from the environment or the defaults.
    pub fn new() -> Self {
        Otlp::default()
    }
    /// Base endpoint for every signal (`OTEL_EXPORTER_OTLP_ENDPOINT`); the
    /// signal path (`/v1/traces`, ...) is appended for HTTP.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }
    /// Full traces endpoint (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), used as given.
    pub fn traces_endpoint(mut self, url: impl Into<String>) -> Self {
        self.traces_endpoint = Some(url.into());
        self
    }
    /// Full metrics endpoint (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`), used as given.
    pub fn metrics_endpoint(mut self, url: impl Into<String>) -> Self {
        self.metrics_endpoint = Some(url.into());
        self
    }
    /// Full logs endpoint (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`), used as given.
    pub fn logs_endpoint(mut self, url: impl Into<String>) -> Self {
        self.logs_endpoint = Some(url.into());
        self
    }
    /// Adds a header sent with every export (`OTEL_EXPORTER_OTLP_HEADERS`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.get_or_insert_with(Vec::new).push((name.into(), value.into()));
        self
    }
    /// `http/protobuf` or `grpc` (`OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }
    /// How long one HTTP request may take (`OTEL_EXPORTER_OTLP_TIMEOUT`,
    /// 10 s); over gRPC, how long one batch may take, retries included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// The first back-off of a retry and its cap (defaults 500 ms and 5 s);
    /// each retry doubles the wait, and a random jitter spreads it over
    /// [½, 1]×. A `Retry-After` answer sets the wait instead.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Some((initial, max.max(initial)));
        self
    }
    /// How long one export is retried (`OBSERVRA_OTLP_RETRY_BUDGET`, in
    /// milliseconds; default 60 s; zero turns retrying off). Retried are
    /// what the OTLP specification calls retryable: HTTP 429, 502, 503,
    /// 504 and transport failures (refused connection, timeout); over
    /// gRPC, `UNAVAILABLE`, `RESOURCE_EXHAUSTED` and the like, bounded by
    /// [`Otlp::timeout`] as well. Retries happen on the backend's own
    /// thread and stop at shutdown.
    pub fn retry_budget(mut self, budget: Duration) -> Self {
        self.retry_budget = Some(budget);
        self
    }

    /// Whether an endpoint was set in code (then the OTLP backend is the default).
    pub(crate) fn has_endpoint(&self) -> bool {
        self.endpoint.is_some() || self.traces_endpoint.is_some()
    }

    /// The three signals' settings: code, then the signal's variable, then
    /// the generic `OTEL_EXPORTER_OTLP_*` one, then the default.
    pub(crate) fn resolve(&self, env: &EnvSource) -> Result<OtlpSettings> {
        Ok(OtlpSettings {
            traces: self.signal(self.traces_endpoint.as_deref(), &TRACES, env)?,
            metrics: self.signal(self.metrics_endpoint.as_deref(), &METRICS, env)?,
            logs: self.signal(self.logs_endpoint.as_deref(), &LOGS, env)?,
        })
    }

    /// One signal's settings; `full_endpoint` is the signal's own endpoint
    /// set in code.
    fn signal(&self, full_endpoint: Option<&str>, sig: &Signal, env: &EnvSource) -> Result<SignalSettings> {
        let protocol = self.protocol_of(sig, env)?;
        let endpoint = self.endpoint_of(full_endpoint, sig, protocol, env)?;
        let headers = self.headers_of(sig, env)?;
        let timeout = match self.timeout {
            Some(t) => t,
            None => match env.get(sig.timeout_var) {
                Some(_) => pick(None, env, sig.timeout_var, parse_millis)?.unwrap_or(DEFAULT_EXPORT_TIMEOUT),
                None => pick(None, env, "OTEL_EXPORTER_OTLP_TIMEOUT", parse_millis)?.unwrap_or(DEFAULT_EXPORT_TIMEOUT),
            },
        };
        let tls = TlsFiles::resolve(env, sig.tls_vars)?;
        let (initial, max) = self.backoff.unwrap_or((DEFAULT_RETRY_INITIAL, DEFAULT_RETRY_MAX));
        let budget =
            pick(self.retry_budget, env, "OBSERVRA_OTLP_RETRY_BUDGET", parse_millis)?.unwrap_or(DEFAULT_RETRY_BUDGET);
        let retry = RetrySettings { initial, max, budget };
        Ok(SignalSettings { endpoint, protocol, headers, timeout, tls, retry })
    }

    /// The transport: code, then the signal's variable, then
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, then HTTP/protobuf; gRPC only in a
    /// build that has it.
    fn protocol_of(&self, sig: &Signal, env: &EnvSource) -> Result<Protocol> {
        let protocol = match self.protocol {
            Some(p) => p,
            None => match env.get(sig.protocol_var) {
                Some(v) => parse_protocol(Setting::Env(sig.protocol_var), &v)?,
                None => match env.get("OTEL_EXPORTER_OTLP_PROTOCOL") {
                    Some(v) => parse_protocol(Setting::Env("OTEL_EXPORTER_OTLP_PROTOCOL"), &v)?,
                    None => Protocol::HttpProtobuf,
                },
            },
        };
        if protocol == Protocol::Grpc && !cfg!(feature = "grpc") {
            return Err(Error::invalid(
                Setting::Builder("protocol"),
                "grpc",
                "grpc needs observra's `grpc` cargo feature; use http/protobuf or enable it",
            ));
        }
        Ok(protocol)
    }

    /// The signal's URL: a full endpoint is used as given; over HTTP, the
    /// signal's path is appended to a base endpoint.
    fn endpoint_of(
        &self,
        full_endpoint: Option<&str>,
        sig: &Signal,
        protocol: Protocol,
        env: &EnvSource,
    ) -> Result<String> {
        let join = |base: &str| match protocol {
            Protocol::HttpProtobuf => format!("{}/{}", base.trim_end_matches('/'), sig.path),
            Protocol::Grpc => base.to_string(),
        };
        Ok(if let Some(full) = full_endpoint {
            validate_endpoint(Setting::Builder(sig.endpoint_setting), full)?
        } else if let Some(base) = &self.endpoint {
            join(&validate_endpoint(Setting::Builder("endpoint"), base)?)
        } else if let Some(full) = env.get(sig.endpoint_var) {
            validate_endpoint(Setting::Env(sig.endpoint_var), &full)?
        } else if let Some(base) = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            join(&validate_endpoint(Setting::Env("OTEL_EXPORTER_OTLP_ENDPOINT"), &base)?)
        } else {
            match protocol {
                Protocol::HttpProtobuf => join(DEFAULT_HTTP_ENDPOINT),
                Protocol::Grpc => DEFAULT_GRPC_ENDPOINT.to_string(),
            }
        })
    }

    /// The headers: code, then the signal's variable, then
    /// `OTEL_EXPORTER_OTLP_HEADERS`; each name a valid HTTP header name.
    fn headers_of(&self, sig: &Signal, env: &EnvSource) -> Result<Vec<(String, String)>> {
        let (headers, source) = match &self.headers {
            Some(h) => (h.clone(), Setting::Builder("header")),
            None => match env.get(sig.headers_var) {
                Some(raw) => (parse_kv_list(sig.headers_var, &raw)?, Setting::Env(sig.headers_var)),
                None => match env.get("OTEL_EXPORTER_OTLP_HEADERS") {
                    Some(raw) => {
                        (parse_kv_list("OTEL_EXPORTER_OTLP_HEADERS", &raw)?, Setting::Env("OTEL_EXPORTER_OTLP_HEADERS"))
                    }
                    None => (Vec::new(), Setting::Builder("header")),
                },
            },
        };
        for (k, _) in &headers {
            if k.is_empty() || !k.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)) {
                return Err(Error::invalid(
                    source,
                    k.clone(),
                    "not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only)",
                ));
            }
        }
        Ok(headers)
    }
}

/// One OTLP signal: the builder setting of its full endpoint, the path a
/// base endpoint gets over HTTP, and its own `OTEL_EXPORTER_OTLP_<SIGNAL>_*`
/// variables.
struct Signal {
    endpoint_setting: &'static str,
    path: &'static str,
    endpoint_var: &'static str,
    protocol_var: &'static str,
    headers_var: &'static str,
    timeout_var: &'static str,
    /// Certificate, client certificate, client key.
    tls_vars: [&'static str; 3],
}

const TRACES: Signal = Signal {
    endpoint_setting: "traces_endpoint",
    path: "v1/traces",
    endpoint_var: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    protocol_var: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    headers_var: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    timeout_var: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    tls_vars: [
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
    ],
};

const METRICS: Signal = Signal {
    endpoint_setting: "metrics_endpoint",
    path: "v1/metrics",
    endpoint_var: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    protocol_var: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    headers_var: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    timeout_var: "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    tls_vars: [
        "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY",
    ],
};

const LOGS: Signal = Signal {
    endpoint_setting: "logs_endpoint",
    path: "v1/logs",
    endpoint_var: "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    protocol_var: "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    headers_var: "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    timeout_var: "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT",
    tls_vars: [
        "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
    ],
};

impl TlsFiles {
    /// Reads the signal's variables (`[certificate, client certificate,
    /// client key]`), each falling back to its `OTEL_EXPORTER_OTLP_*` form.
    fn resolve(env: &EnvSource, signal_vars: [&'static str; 3]) -> Result<TlsFiles> {
        let file = |signal_var: &'static str, generic_var: &'static str| -> Result<Option<PemFile>> {
            let Some((var, path)) =
                env.get(signal_var).map(|p| (signal_var, p)).or_else(|| env.get(generic_var).map(|p| (generic_var, p)))
            else {
                return Ok(None);
            };
            let pem = std::fs::read(&path)
                .map_err(|e| Error::invalid(Setting::Env(var), path.clone(), format!("cannot read the file: {e}")))?;
            if !pem.windows(10).any(|w| w == b"-----BEGIN") {
                return Err(Error::invalid(Setting::Env(var), path, "not a PEM file (no -----BEGIN line)"));
            }
            Ok(Some(PemFile { setting: Setting::Env(var), path, pem }))
        };
        let [ca, cert, key] = signal_vars;
        let tls = TlsFiles {
            ca: file(ca, "OTEL_EXPORTER_OTLP_CERTIFICATE")?,
            client_certificate: file(cert, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")?,
            client_key: file(key, "OTEL_EXPORTER_OTLP_CLIENT_KEY")?,
        };
        if let (Some(c), None) | (None, Some(c)) = (&tls.client_certificate, &tls.client_key) {
            return Err(Error::invalid(
                c.setting.clone(),
                c.path.clone(),
                "a client certificate and a client key go together: set both (..._CLIENT_CERTIFICATE and ..._CLIENT_KEY)",
            ));
        }
        Ok(tls)
    }
}

pub(crate) fn parse_protocol(setting: Setting, v: &str) -> Result<Protocol> {
    match v.trim() {
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "grpc" if cfg!(feature = "grpc") => Ok(Protocol::Grpc),
        "grpc" => Err(Error::invalid(
            setting,
            v,
            "grpc needs observra's `grpc` cargo feature; use http/protobuf or enable it",
        )),
        "http/json" => {
            Err(Error::invalid(setting, v, "http/json is not supported by this build; use http/protobuf or grpc"))
        }
        _ => Err(Error::invalid(setting, v, "unknown protocol; expected http/protobuf or grpc")),
    }
}

/// Checks an endpoint URL: `http` or `https` scheme, a host, a numeric port if any.
pub(crate) fn validate_endpoint(setting: Setting, url: &str) -> Result<String> {
    let bad = |reason: &str| Error::invalid(setting.clone(), url, reason.to_string());
    let url = url.trim();
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if let Some(r) = url.strip_prefix("https://") {
        if !cfg!(feature = "tls") {
            return Err(bad("https endpoints need observra's `tls` cargo feature; use http:// or enable it"));
        }
        r
    } else {
        return Err(bad("expected an absolute http:// or https:// URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || url.chars().any(char::is_whitespace) {
        return Err(bad("expected an absolute http:// or https:// URL with a host"));
    }
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(stripped) = host_port.strip_prefix('[') {
        // [ipv6]:port
        match stripped.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(bad("unterminated IPv6 address")),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(bad("the URL has no host"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err(bad("the port is not a number from 0 to 65535"));
        }
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_validation_accepts_hosts_ports_and_ipv6() {
        for ok in ["http://localhost:4318", "http://127.0.0.1", "http://[::1]:4317/x", "http://u:p@h:1"] {
            assert!(validate_endpoint(Setting::Builder("endpoint"), ok).is_ok(), "{ok}");
        }
        for bad in ["localhost:4318", "http://", "http://h:99999", "ftp://h", "http://h :1"] {
            assert!(validate_endpoint(Setting::Builder("endpoint"), bad).is_err(), "{bad}");
        }
    }
}
