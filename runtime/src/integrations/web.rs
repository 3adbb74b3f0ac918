//! HTTP servers and clients traced per the stable HTTP semantic
//! conventions: a SERVER span per incoming request ([`TraceContextLayer`],
//! feature `tower`, with axum's matched route under feature `axum`) and a
//! CLIENT span per outgoing `reqwest` request ([`TracingMiddleware`],
//! feature `reqwest`), each continuing or carrying the W3C trace context,
//! and the `http.server.request.duration` / `http.client.request.duration`
//! histograms (the conventions' buckets and attributes, recorded for every
//! request, sampled or not).
//!
//! Server, one line on an axum router (or any `tower` service):
//!
//! ```ignore
//! let app = axum::Router::new()
//!     .route("/orders/{id}", get(order))
//!     .layer(observra::web::TraceContextLayer);   // GET /orders/{id}, SERVER
//! ```
//!
//! Client, one line where the client is built (`reqwest-middleware`):
//!
//! ```ignore
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(observra::web::TracingMiddleware)      // GET, CLIENT, traceparent sent
//!     .build();
//! ```

/// A query string as `url.query` (and `url.full`) show it: each value as
/// `REDACTED` (a signed URL's signature, a key passed as a parameter), or,
/// with `Builder::http_query_values(QueryValues::NonSensitive)`, only the
/// values of sensitive keys ([`sensitive_query_key`]).
#[cfg(any(feature = "tower", feature = "reqwest"))]
pub(crate) fn redacted_query(query: &str) -> String {
    let keep = crate::policy::content::KEEP_QUERY_VALUES.load(std::sync::atomic::Ordering::Acquire);
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if keep && !sensitive_query_key(k) => format!("{k}={v}"),
            Some((k, _)) => format!("{k}=REDACTED"),
            None => pair.to_string(),
        })
        .collect();
    pairs.join("&")
}

/// The conventions' keys whose values are redacted by default, and keys
/// named like a secret.
#[cfg(any(feature = "tower", feature = "reqwest"))]
fn sensitive_query_key(key: &str) -> bool {
    const LISTED: &[&str] = &["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];
    const WORDS: &[&str] = &["key", "token", "secret", "passw", "pwd", "auth", "credential", "signature", "session"];
    let lower = key.to_ascii_lowercase();
    LISTED.iter().any(|k| k.eq_ignore_ascii_case(key)) || WORDS.iter().any(|w| lower.contains(w))
}

/// The conventions' name for a request method: the method when it is one
/// of the known ones, else `_OTHER` (with the original kept apart).
#[cfg(any(feature = "tower", feature = "reqwest"))]
fn known_method(method: &http::Method) -> Option<&'static str> {
    const KNOWN: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"];
    KNOWN.iter().find(|k| **k == method.as_str()).copied()
}

/// `network.protocol.version` of an HTTP version.
#[cfg(any(feature = "tower", feature = "reqwest"))]
fn protocol_version(version: http::Version) -> Option<&'static str> {
    match version {
        http::Version::HTTP_09 => Some("0.9"),
        http::Version::HTTP_10 => Some("1.0"),
        http::Version::HTTP_11 => Some("1.1"),
        http::Version::HTTP_2 => Some("2"),
        http::Version::HTTP_3 => Some("3"),
        _ => None,
    }
}

#[cfg(feature = "tower")]
pub use server::{ResponseFuture, TraceContextLayer, TraceContextService};

#[cfg(feature = "tower")]
mod server {
    //! The `tower` layer for incoming requests.

    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tracing::Span;

    /// Wraps a `tower` service (an axum router, a hyper service, ...): each
    /// request gets a SERVER span per the HTTP conventions, continuing the
    /// caller's trace from its `traceparent`:
    ///
    /// - named `{method} {route}` (`GET /orders/{id}`) when the route is
    ///   known (axum's `MatchedPath`, feature `axum`; add the layer with
    ///   `Router::layer` so it runs after routing), else `{method}`;
    /// - `http.request.method`, `http.route`, `url.path`, `url.query` (its
    ///   values `REDACTED`, see [`crate::Builder::http_query_values`]), `url.scheme`,
    ///   `server.address`, `server.port` (from `Host`),
    ///   `network.protocol.version`, `user_agent.original`,
    ///   `http.response.status_code`;
    /// - status ERROR and `error.type` (the status code) on a 5xx, or the
    ///   service's error type when it fails;
    /// - `http.server.request.duration` with the conventions' buckets and
    ///   attributes, for every request.
    ///
    /// ```ignore
    /// let app = axum::Router::new().route("/tools/lookup", post(lookup))
    ///     .layer(observra::web::TraceContextLayer);
    /// ```
    #[derive(Debug, Clone, Copy, Default)]
    pub struct TraceContextLayer;

    impl<S> tower_layer::Layer<S> for TraceContextLayer {
        type Service = TraceContextService<S>;
        fn layer(&self, inner: S) -> Self::Service {
            TraceContextService { inner }
        }
    }

    /// The service [`TraceContextLayer`] produces.
    #[derive(Debug, Clone)]
    pub struct TraceContextService<S> {
        inner: S,
    }

    /// The route template the router matched, when it says.
    #[cfg(feature = "axum")]
    fn route<B>(request: &http::Request<B>) -> Option<&str> {
        request.extensions().get::<axum::extract::MatchedPath>().map(|m| m.as_str())
    }

    #[cfg(not(feature = "axum"))]
    fn route<B>(_request: &http::Request<B>) -> Option<&str> {
        None
    }

    /// `server.address` and `server.port` from the `Host` header (or the
    /// request's own authority).
    fn host<B>(request: &http::Request<B>) -> (Option<String>, Option<i64>) {
        let authority = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
            .or_else(|| request.uri().authority().cloned());
        match authority {
            Some(a) => (Some(a.host().to_string()), a.port_u16().map(i64::from)),
            None => (None, None),
        }
    }

    impl<S, B, R> tower_service::Service<http::Request<B>> for TraceContextService<S>
    where
        S: tower_service::Service<http::Request<B>, Response = http::Response<R>>,
    {
        type Response = S::Response;
        type Error = S::Error;
        type Future = ResponseFuture<S::Future>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: http::Request<B>) -> Self::Future {
            let known = super::known_method(request.method());
            let method = known.unwrap_or("_OTHER");
            let original = known.is_none().then(|| request.method().as_str().to_string());
            let route = route(&request);
            let name = match route {
                Some(r) => format!("{} {r}", known.unwrap_or("HTTP")),
                None => known.unwrap_or("HTTP").to_string(),
            };
            let (address, port) = host(&request);
            let user_agent = request.headers().get(http::header::USER_AGENT).and_then(|v| v.to_str().ok());
            let span = tracing::info_span!(
                "http.server",
                otel.name = name.as_str(),
                otel.kind = "server",
                http.request.method = method,
                http.request.method_original = original.as_deref(),
                http.route = route,
                url.path = request.uri().path(),
                url.query = request.uri().query().map(super::redacted_query).as_deref(),
                url.scheme = request.uri().scheme_str().unwrap_or("http"),
                server.address = address.as_deref(),
                server.port = port,
                network.protocol.version = super::protocol_version(request.version()),
                user_agent.original = user_agent,
                http.response.status_code = tracing::field::Empty,
                error.type = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            crate::integrations::propagation::set_remote_parent(&span, request.headers());
            let inner = {
                let _enter = span.enter();
                self.inner.call(request)
            };
            ResponseFuture { inner, span }
        }
    }

    pin_project_lite::pin_project! {
        /// The response future of [`TraceContextService`].
        pub struct ResponseFuture<F> {
            #[pin]
            inner: F,
            span: Span,
        }
    }

    impl<F, R, E> Future for ResponseFuture<F>
    where
        F: Future<Output = Result<http::Response<R>, E>>,
    {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.project();
            let _enter = this.span.enter();
            let poll = this.inner.poll(cx);
            match &poll {
                Poll::Ready(Ok(response)) => {
                    let status = response.status().as_u16();
                    this.span.record("http.response.status_code", i64::from(status));
                    if status >= 500 {
                        this.span.record("error.type", status.to_string().as_str());
                        this.span.record("otel.status_code", "ERROR");
                    }
                }
                Poll::Ready(Err(_)) => {
                    this.span.record("error.type", std::any::type_name::<E>());
                    this.span.record("otel.status_code", "ERROR");
                }
                Poll::Pending => {}
            }
            poll
        }
    }
}

#[cfg(feature = "reqwest")]
pub use client::{TracingMiddleware, redacted_url};

#[cfg(feature = "reqwest")]
mod client {
    //! The `reqwest-middleware` middleware for outgoing requests.

    use reqwest_middleware::{Middleware, Next};
    use tracing::Instrument;

    /// A `reqwest-middleware` middleware: each request gets a CLIENT span
    /// per the HTTP conventions, and carries its W3C trace context, so the
    /// server's span is the child of this one:
    ///
    /// - named `{method}`; `http.request.method`, `url.full` (credentials
    ///   and query values redacted), `server.address`, `server.port`,
    ///   `network.protocol.version`, `http.response.status_code`;
    /// - status ERROR and `error.type` on a status of 400 or more (the
    ///   code), or on a failure (`timeout`, `connect`, `request`, ...);
    /// - `http.client.request.duration` with the conventions' buckets and
    ///   attributes, for every request.
    ///
    /// ```ignore
    /// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
    ///     .with(observra::web::TracingMiddleware)
    ///     .build();
    /// let answer = client.post(url).json(&body).send().await?;
    /// ```
    #[derive(Debug, Clone, Copy, Default)]
    pub struct TracingMiddleware;

    /// `url` as `url.full` may show it: `user:password@` as
    /// `REDACTED:REDACTED@`, every query value as `REDACTED` (a signed
    /// URL's signature, a key passed as a parameter), the fragment dropped.
    pub fn redacted_url(url: &reqwest::Url) -> String {
        let mut url = url.clone();
        url.set_fragment(None);
        if !url.username().is_empty() {
            let _ = url.set_username("REDACTED");
        }
        if url.password().is_some() {
            let _ = url.set_password(Some("REDACTED"));
        }
        if let Some(query) = url.query() {
            let redacted = super::redacted_query(query);
            url.set_query(Some(&redacted));
        }
        url.to_string()
    }

    /// `error.type` of a failed request.
    fn error_type(e: &reqwest_middleware::Error) -> &'static str {
        match e {
            reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => "timeout",
            reqwest_middleware::Error::Reqwest(e) if e.is_connect() => "connect",
            reqwest_middleware::Error::Reqwest(e) if e.is_redirect() => "redirect",
            reqwest_middleware::Error::Reqwest(e) if e.is_body() || e.is_decode() => "body",
            reqwest_middleware::Error::Reqwest(_) => "request",
            reqwest_middleware::Error::Middleware(_) => "middleware",
        }
    }

    #[async_trait::async_trait]
    impl Middleware for TracingMiddleware {
        async fn handle(
            &self,
            mut req: reqwest::Request,
            extensions: &mut http::Extensions,
            next: Next<'_>,
        ) -> reqwest_middleware::Result<reqwest::Response> {
            let known = super::known_method(req.method());
            let original = known.is_none().then(|| req.method().as_str().to_string());
            let url = req.url();
            let span = tracing::info_span!(
                "http.client",
                otel.name = known.unwrap_or("HTTP"),
                otel.kind = "client",
                http.request.method = known.unwrap_or("_OTHER"),
                http.request.method_original = original.as_deref(),
                url.full = redacted_url(url).as_str(),
                server.address = url.host_str(),
                server.port = url.port_or_known_default().map(i64::from),
                network.protocol.version = tracing::field::Empty,
                http.response.status_code = tracing::field::Empty,
                error.type = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
            );
            crate::integrations::propagation::inject_span(&span, req.headers_mut());
            let result = next.run(req, extensions).instrument(span.clone()).await;
            match &result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    span.record("http.response.status_code", i64::from(status));
                    if let Some(v) = super::protocol_version(response.version()) {
                        span.record("network.protocol.version", v);
                    }
                    if status >= 400 {
                        span.record("error.type", status.to_string().as_str());
                        span.record("otel.status_code", "ERROR");
                    }
                }
                Err(e) => {
                    span.record("error.type", error_type(e));
                    span.record("otel.status_code", "ERROR");
                }
            }
            result
        }
    }

    #[cfg(test)]
    mod tests {
        use super::redacted_url;

        #[test]
        fn credentials_and_query_values_are_redacted() {
            let url =
                reqwest::Url::parse("https://me:pw@api.example.com:8443/v1/x?key=sk-123&flag&sig=abc#frag").unwrap();
            assert_eq!(
                redacted_url(&url),
                "https://REDACTED:REDACTED@api.example.com:8443/v1/x?key=REDACTED&flag&sig=REDACTED"
            );
            let plain = reqwest::Url::parse("http://127.0.0.1:9000/orders/7").unwrap();
            assert_eq!(redacted_url(&plain), "http://127.0.0.1:9000/orders/7");
        }
    }
}
