//! The HTTP client behind the OTLP/HTTP exporters (traces, metrics and
//! logs): the same blocking `reqwest` client the SDK builds for itself,
//! which also keeps the transport error the SDK reduces to "network error"
//! (connection refused, DNS, TLS, a timeout), so diagnostics and
//! [`crate::health`] can name it, and which retries as the OTLP
//! specification asks: HTTP 429, 502, 503 and 504 and transport failures,
//! with exponential back-off and jitter, honouring `Retry-After`, for at
//! most the retry budget, and never past the start of shutdown. The same
//! request bytes are sent again: nothing is encoded twice.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

use crate::export::otlp_settings::RetrySettings;
use crate::export::retry::{RetryEnd, backoff, next_random, parse_retry_after, pause, seed};

pub(crate) use crate::diag::{LastCause, explain};

/// A blocking `reqwest` client that retries and remembers why its last
/// request failed.
#[derive(Debug, Clone)]
pub(crate) struct CauseKeepingClient {
    inner: reqwest::blocking::Client,
    last: LastCause,
    retry: RetrySettings,
    /// Set when shutdown starts: no back-off waits past it.
    end: RetryEnd,
    jitter: Arc<AtomicU64>,
}

/// Whether the OTLP specification calls an HTTP status retryable.
fn retryable_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

impl CauseKeepingClient {
    /// A client with `timeout` per request. Built on a thread of its own, as
    /// the SDK does: a blocking client must not be built inside an async
    /// runtime, and `install()` may run in one.
    pub(crate) fn new(
        timeout: Duration,
        tls: &crate::export::otlp_settings::TlsFiles,
        retry: RetrySettings,
        end: RetryEnd,
    ) -> Result<Self, String> {
        #[cfg(feature = "tls")]
        let tls_config = tls_config(tls)?;
        #[cfg(not(feature = "tls"))]
        let _ = tls;
        let inner = std::thread::Builder::new()
            .name("observra-http-setup".into())
            .spawn(move || {
                // Redirects are not followed: a 3xx fails the export
                // rather than sending the batch and its headers elsewhere.
                let builder =
                    reqwest::blocking::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none());
                #[cfg(feature = "tls")]
                let builder = builder.tls_backend_preconfigured(tls_config);
                builder.build()
            })
            .map_err(|e| format!("spawning the thread that builds the HTTP client: {e}"))?
            .join()
            .map_err(|_| "building the HTTP client panicked".to_string())?
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(CauseKeepingClient {
            inner,
            last: LastCause::default(),
            retry,
            end,
            jitter: Arc::new(AtomicU64::new(seed())),
        })
    }

    /// Where this client keeps its last transport error.
    pub(crate) fn last_cause(&self) -> LastCause {
        self.last.clone()
    }
}

#[async_trait::async_trait]
impl HttpClient for CauseKeepingClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let outcome = self.inner.send_bytes(copy_of(&request)).await;
            let hint = match &outcome {
                Ok(r) if retryable_status(r.status().as_u16()) => {
                    r.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after)
                }
                Ok(_) => return outcome,
                Err(e) => {
                    let cause = chain(e.as_ref());
                    let permanent = permanent_transport_error(&cause);
                    if let Ok(mut last) = self.last.lock() {
                        *last = Some(cause);
                    }
                    if permanent {
                        return outcome;
                    }
                    None
                }
            };
            let wait =
                hint.unwrap_or_else(|| backoff(self.retry.initial, self.retry.max, attempt, next_random(&self.jitter)));
            // A wait past the budget (a long Retry-After included) ends the retries now.
            if started.elapsed().saturating_add(wait) > self.retry.budget || !pause(wait, |at| self.end.crossed_by(at))
            {
                return outcome;
            }
            attempt += 1;
        }
    }
}

/// A transport failure that trying again cannot mend: the collector's
/// certificate (not trusted, expired, for another name), a TLS set-up
/// the two sides cannot agree on, a request that cannot be built.
fn permanent_transport_error(cause: &str) -> bool {
    let c = cause.to_ascii_lowercase();
    ["certificate", "unknownissuer", "unknown issuer", "notvalidforname", "handshake", "builder error", "invalid url"]
        .iter()
        .any(|w| c.contains(w))
}

/// The same request again: method, URI, version, headers and the body's
/// bytes (shared, not copied).
fn copy_of(request: &Request<Bytes>) -> Request<Bytes> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// The TLS settings of an OTLP/HTTP client: rustls with the aws-lc-rs provider,
/// Mozilla's roots plus the configured CA, and a client certificate for
/// mutual TLS when one is configured.
#[cfg(feature = "tls")]
pub(crate) fn tls_config(tls: &crate::export::otlp_settings::TlsFiles) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &tls.ca {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&ca.pem) {
            let cert = cert.map_err(|e| format!("{} ({}): not a PEM certificate: {e}", ca.setting, ca.path))?;
            roots.add(cert).map_err(|e| format!("{} ({}): {e}", ca.setting, ca.path))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{} ({}): no certificate in the file", ca.setting, ca.path));
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    match (&tls.client_certificate, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert.pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{} ({}): not a PEM certificate: {e}", cert.setting, cert.path))?;
            let key = PrivateKeyDer::from_pem_slice(&key.pem)
                .map_err(|e| format!("{} ({}): not a PEM private key: {e}", key.setting, key.path))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("TLS client certificate: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// An error and its sources, `outer: inner: innermost`, without repeats.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_and_failures_that_may_pass_are_retried() {
        for s in [429, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 413, 500, 501] {
            assert!(!retryable_status(s), "{s}");
        }
        assert!(!permanent_transport_error("client error (Connect): tcp connect error: Connection refused"));
        assert!(!permanent_transport_error("operation timed out"));
        assert!(permanent_transport_error("invalid peer certificate: UnknownIssuer"));
        assert!(permanent_transport_error("received fatal alert: HandshakeFailure"));
    }
}
