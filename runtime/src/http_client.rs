//! The HTTP client behind the OTLP/HTTP exporters: the same blocking
//! `reqwest` client the SDK builds for itself, which also keeps the
//! transport error the SDK reduces to "network error" (connection refused,
//! DNS, TLS, a timeout), so diagnostics and [`crate::health`] can name it.

use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

pub(crate) use crate::diag::{LastCause, explain};

/// A blocking `reqwest` client that remembers why its last request failed.
#[derive(Debug, Clone)]
pub(crate) struct CauseKeepingClient {
    inner: reqwest::blocking::Client,
    last: LastCause,
}

impl CauseKeepingClient {
    /// A client with `timeout` per request. Built on a thread of its own, as
    /// the SDK does: a blocking client must not be built inside an async
    /// runtime, and `install()` may run in one.
    pub(crate) fn new(timeout: Duration, tls: &crate::config::TlsFiles) -> Result<Self, String> {
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
        Ok(CauseKeepingClient { inner, last: LastCause::default() })
    }

    /// Where this client keeps its last transport error.
    pub(crate) fn last_cause(&self) -> LastCause {
        self.last.clone()
    }
}

#[async_trait::async_trait]
impl HttpClient for CauseKeepingClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        match self.inner.send_bytes(request).await {
            Ok(r) => Ok(r),
            Err(e) => {
                if let Ok(mut last) = self.last.lock() {
                    *last = Some(chain(e.as_ref()));
                }
                Err(e)
            }
        }
    }
}

/// The TLS settings of an OTLP/HTTP client: rustls with the aws-lc-rs provider,
/// Mozilla's roots plus the configured CA, and a client certificate for
/// mutual TLS when one is configured.
#[cfg(feature = "tls")]
pub(crate) fn tls_config(tls: &crate::config::TlsFiles) -> Result<rustls::ClientConfig, String> {
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
