//! The `webhook` backend: batches of spans POSTed as JSON to a URL.
//!
//! The body is a JSON array of span records in the JSONL schema
//! (`docs/jsonl-schema.md`), redacted like every other backend. Each request
//! carries:
//!
//! - `Content-Type: application/json` and `User-Agent: observra/<version>`;
//! - `Idempotency-Key`: the same random value on every retry of one batch, so
//!   a receiver can drop duplicates;
//! - `X-Observra-Signature: sha256=<hex>` when a secret is configured: the
//!   HMAC-SHA256 of the exact body bytes under the secret; verify it before
//!   trusting the body (compare in constant time);
//! - your own headers ([`Webhook::header`], `OBSERVRA_WEBHOOK_HEADERS`).
//!
//! A request that fails to connect, times out, or gets 408, 425, 429, 500,
//! 502, 503 or 504 is retried up to [`Webhook::max_retries`] times with
//! exponential back-off and jitter; on 429 and 503 a `Retry-After` header
//! (seconds or an HTTP date) sets the wait instead. Any other status fails
//! the batch at once, and so does a redirect (3xx): it is never followed,
//! so the body, its signature and your headers only ever go to the URL
//! you configured. All of this happens on the backend's own export
//! thread: the application never waits for it, and a batch that is given up
//! on is counted in [`crate::health`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::export::retry::{backoff, next_random, parse_retry_after, pause, seed};

/// Header carrying the body's HMAC-SHA256 signature.
pub const SIGNATURE_HEADER: &str = "x-observra-signature";
/// Longest `Retry-After` observra honours; a longer one fails the batch.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Settings of the webhook backend; pass to [`crate::Builder::webhook`].
///
/// ```
/// use std::time::Duration;
/// let hook = observra::Webhook::new("https://siem.example.com/ingest")
///     .secret("shared-secret")
///     .header("X-Tenant", "acme")
///     .timeout(Duration::from_secs(5))
///     .max_retries(4);
/// let builder = observra::init().webhook(hook);
/// ```
#[derive(Clone)]
pub struct Webhook {
    pub(crate) url: String,
    pub(crate) secret: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &crate::diag::display_endpoint(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Default request timeout (`OBSERVRA_WEBHOOK_TIMEOUT`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default number of retries after the first attempt (`OBSERVRA_WEBHOOK_MAX_RETRIES`).
    pub const DEFAULT_MAX_RETRIES: u32 = 5;

    /// POSTs to `url` (`http://` or `https://`, the latter with the `tls` feature).
    pub fn new(url: impl Into<String>) -> Self {
        Webhook {
            url: url.into(),
            secret: None,
            headers: Vec::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            max_retries: Self::DEFAULT_MAX_RETRIES,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
        }
    }
    /// Signs every body with HMAC-SHA256 under `secret` (`OBSERVRA_WEBHOOK_SECRET`).
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(secret.as_ref().to_vec());
        self
    }
    /// Adds a header to every request (`OBSERVRA_WEBHOOK_HEADERS`, `k=v,k2=v2`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Timeout of one request (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Retries after the first attempt (default 5; 0 disables retrying).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }
    /// First back-off and its cap (defaults 200 ms and 30 s); each retry
    /// doubles the wait, and a random jitter spreads it over [½, 1]×.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }
}

/// The exporter behind the `webhook` backend.
pub(crate) struct WebhookExporter {
    config: Webhook,
    resource: serde_json::Value,
    /// Built on the export thread at first use: a blocking client must not be
    /// created or dropped inside an async runtime, where `install()` may run.
    client: std::sync::OnceLock<Result<reqwest::blocking::Client, String>>,
    stopping: Arc<AtomicBool>,
    ids: AtomicU64,
}

impl std::fmt::Debug for WebhookExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookExporter").field("config", &self.config).finish_non_exhaustive()
    }
}

impl WebhookExporter {
    pub(crate) fn new(config: Webhook) -> Self {
        WebhookExporter {
            config,
            resource: serde_json::Value::Object(Default::default()),
            client: std::sync::OnceLock::new(),
            stopping: Arc::new(AtomicBool::new(false)),
            ids: AtomicU64::new(seed()),
        }
    }

    fn client(&self) -> Result<&reqwest::blocking::Client, OTelSdkError> {
        self.client
            .get_or_init(|| {
                reqwest::blocking::Client::builder()
                    .timeout(self.config.timeout)
                    // A redirect would turn the POST into a body-less GET
                    // (301, 302) or send the body, headers and signature to
                    // another host (307, 308): a 3xx fails the batch instead.
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(concat!("observra/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("building the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(|e| OTelSdkError::InternalFailure(e.clone()))
    }

    fn post(&self, body: Vec<u8>) -> OTelSdkResult {
        let client = self.client()?;
        let signature = self.config.secret.as_ref().map(|s| format!("sha256={}", hmac_hex(s, &body)));
        let key = format!("{:016x}{:016x}", next_random(&self.ids), next_random(&self.ids));
        let mut attempt = 0u32;
        loop {
            let mut req = client
                .post(&self.config.url)
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .body(body.clone());
            if let Some(sig) = &signature {
                req = req.header(SIGNATURE_HEADER, sig);
            }
            for (k, v) in &self.config.headers {
                req = req.header(k, v);
            }
            let (retry, wait_hint, why) = match req.send() {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let hint = if status == 429 || status == 503 {
                        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after)
                    } else {
                        None
                    };
                    let why = if resp.status().is_redirection() {
                        format!("HTTP {status}: the webhook answered with a redirect, which observra never follows")
                    } else {
                        format!("HTTP {status}")
                    };
                    (matches!(status, 408 | 425 | 429 | 500 | 502 | 503 | 504), hint, why)
                }
                // The URL stays out of the message: its query string may hold a token.
                Err(e) => (true, None, format!("request failed: {}", error_chain(&e.without_url()))),
            };
            if !retry || attempt >= self.config.max_retries {
                let tries = attempt + 1;
                return Err(OTelSdkError::InternalFailure(format!("webhook: {why} (after {tries} attempt(s))")));
            }
            let wait = match wait_hint {
                Some(w) if w > MAX_RETRY_AFTER => {
                    return Err(OTelSdkError::InternalFailure(format!(
                        "webhook: {why}, Retry-After {w:?} is longer than {MAX_RETRY_AFTER:?}"
                    )));
                }
                Some(w) => w,
                None => backoff(self.config.initial_backoff, self.config.max_backoff, attempt, next_random(&self.ids)),
            };
            if !pause(wait, |_| self.stopping.load(std::sync::atomic::Ordering::Acquire)) {
                return Err(OTelSdkError::InternalFailure(format!("webhook: {why}; gave up retrying at shutdown")));
            }
            attempt += 1;
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// HMAC-SHA256 of `body` under `key`, lower-case hex.
pub fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    crate::export::sign::hmac_hex(key, body)
}

impl SpanExporter for WebhookExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let records: Vec<serde_json::Value> =
            batch.iter().map(|s| crate::export::jsonl::span_to_json(s, &self.resource)).collect();
        let body = serde_json::to_vec(&records).map_err(|e| OTelSdkError::InternalFailure(e.to_string()))?;
        self.post(body)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = crate::export::jsonl::resource_to_json(resource);
    }
}

impl crate::export::batch::BackendExporter for WebhookExporter {
    fn set_stopping(&mut self, flag: Arc<AtomicBool>) {
        self.stopping = flag;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
