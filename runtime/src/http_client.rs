//! The HTTP client behind the OTLP/HTTP exporters: the same blocking
//! `reqwest` client the SDK builds for itself, which also keeps the
//! transport error the SDK reduces to "network error" (connection refused,
//! DNS, TLS, a timeout), so diagnostics and [`crate::health`] can name it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// The last transport error of one exporter, taken when its failure is reported.
pub(crate) type LastCause = Arc<Mutex<Option<String>>>;

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
    pub(crate) fn new(timeout: Duration) -> Result<Self, String> {
        let inner = std::thread::Builder::new()
            .name("observra-http-setup".into())
            .spawn(move || reqwest::blocking::Client::builder().timeout(timeout).build())
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

/// `error` with the transport cause appended when the exporter hid it.
pub(crate) fn explain(error: String, cause: Option<&LastCause>) -> String {
    let taken = cause.and_then(|c| c.lock().ok().and_then(|mut c| c.take()));
    match taken {
        Some(c) if error.contains("network error") => format!("{error}: {c}"),
        _ => error,
    }
}
