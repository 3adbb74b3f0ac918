//! W3C Trace Context (`traceparent`, `tracestate`) and W3C Baggage across
//! process boundaries, for `http::HeaderMap`s.
//!
//! Outgoing: [`inject`] writes the current observra span's context into a
//! request's headers. Incoming: [`set_remote_parent`] makes a span that has
//! just opened (your request handler's) a child of the caller's span, so
//! everything beneath it joins the caller's trace:
//!
//! ```no_run
//! # fn send(_: http::HeaderMap) {}
//! // client side, inside a #[traced] / #[agent] function
//! let mut headers = http::HeaderMap::new();
//! observra::propagation::inject(&mut headers);
//! send(headers);
//!
//! // server side
//! #[observra::traced(kind = server)]
//! fn handle(headers: &http::HeaderMap) {
//!     observra::propagation::set_remote_parent(observra::current_span(), headers);
//!     // spans opened from here on belong to the caller's trace
//! }
//! ```
//!
//! The caller's sampled flag is given to the configured sampler as the
//! parent's, exactly as the OpenTelemetry SDK does: the parent-based
//! samplers (`parentbased_*`, the default `parentbased_always_on`) follow
//! it, while `always_on`, `always_off` and `traceidratio` decide on their
//! own whatever it says (`traceidratio` by the trace id). What this process
//! decided is what it propagates onward.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanKind, TraceContextExt, TraceFlags};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};

use crate::base::frame::Frame;
use crate::base::state::with_installed;
use crate::record::span_ref::SpanRef;
use crate::record::target::with_sink;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// The caller's context found in incoming headers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RemoteContext {
    /// The caller's trace id (32 hex digits).
    pub trace_id: String,
    /// The caller's span id (16 hex digits).
    pub span_id: String,
    /// Whether the caller sampled its span (its flag: whether this process
    /// samples is the configured sampler's decision, given that flag).
    pub sampled: bool,
    /// Baggage entries (`baggage` header), for you to use as you see fit.
    pub baggage: Vec<(String, String)>,
    span_context: SpanContext,
}

/// Writes the current span's `traceparent` (and `tracestate`, and the
/// current OpenTelemetry context's baggage) into `headers`. Does nothing
/// outside a recorded span.
pub fn inject(headers: &mut HeaderMap) {
    inject_span(crate::record::span_ref::SpanRef::current(), headers)
}

/// Like [`inject`], for a given span.
pub fn inject_span(span: impl Into<SpanRef>, headers: &mut HeaderMap) {
    if let Some(sc) = span.into().span_context() {
        inject_context(sc, headers);
    }
}

fn inject_context(sc: SpanContext, headers: &mut HeaderMap) {
    let cx = Context::current().with_remote_span_context(sc);
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
    if !cx.baggage().is_empty() {
        BaggagePropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
    }
}

/// Reads a caller's context from `headers`; `None` when there is no valid
/// `traceparent`.
pub fn extract(headers: &HeaderMap) -> Option<RemoteContext> {
    let extractor = HeaderExtractor(headers);
    let cx = TraceContextPropagator::new().extract(&extractor);
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return None;
    }
    let baggage_cx = BaggagePropagator::new().extract(&extractor);
    let baggage = baggage_cx.baggage().iter().map(|(k, (v, _))| (k.to_string(), v.to_string())).collect();
    Some(RemoteContext {
        trace_id: sc.trace_id().to_string(),
        span_id: sc.span_id().to_string(),
        sampled: sc.trace_flags() & TraceFlags::SAMPLED == TraceFlags::SAMPLED,
        baggage,
        span_context: sc,
    })
}

/// Makes `span` a child of the caller whose context is in `headers`.
/// Call it first thing in the handler, before opening other spans: spans
/// opened afterwards join the caller's trace. Returns the caller's context,
/// or `None` (and changes nothing) when the headers carry none.
///
/// Whether `span` and what it opens are sampled is the configured
/// sampler's decision with the caller as the parent: the caller's sampled
/// flag decides only under a parent-based sampler (the default).
pub fn set_remote_parent(span: impl Into<SpanRef>, headers: &HeaderMap) -> Option<RemoteContext> {
    let remote = extract(headers)?;
    let span = span.into();
    let sc = &remote.span_context;
    let mut sampled = None;
    with_sink(&span, |frame| sampled = sample_under(frame, sc));
    // The parent as this process decided it: the flag it propagates.
    let flags = sc.trace_flags().with_sampled(sampled.unwrap_or(remote.sampled));
    let parent = SpanContext::new(sc.trace_id(), sc.span_id(), flags, true, sc.trace_state().clone());
    span.set_remote_parent(&parent);
    Some(remote)
}

/// The installed sampler's decision for `frame` under the remote parent
/// `remote` (the SDK's `should_sample`, as for a span the SDK starts);
/// `None` when nothing is installed.
fn sample_under(frame: &Frame, remote: &SpanContext) -> Option<bool> {
    with_installed(|_, p| {
        let parent = Context::new().with_remote_span_context(remote.clone());
        let more = frame.more.as_deref();
        let name = more.and_then(|m| m.name.as_deref()).or(frame.site.map(|s| s.name)).unwrap_or_default();
        let kind = more
            .and_then(|m| m.kind.clone())
            .or_else(|| frame.site.map(|s| s.kind.clone()))
            .unwrap_or(SpanKind::Internal);
        let attrs = more.map_or(&[][..], |m| m.attrs.as_slice());
        let result = p.sampler.should_sample(Some(&parent), remote.trace_id(), name, &kind, attrs, &[]);
        result.decision == SamplingDecision::RecordAndSample
    })
}

/// Outgoing `reqwest` requests carry the current span's context (feature `reqwest`).
///
/// ```ignore
/// use observra::propagation::WithTraceContext;
/// let response = client.post(url).with_trace_context().send().await?;
/// ```
#[cfg(feature = "reqwest")]
pub trait WithTraceContext {
    /// Adds `traceparent` (and `tracestate`, baggage) from the current span.
    fn with_trace_context(self) -> Self;
}

#[cfg(feature = "reqwest")]
impl WithTraceContext for reqwest::RequestBuilder {
    fn with_trace_context(self) -> Self {
        let mut headers = HeaderMap::new();
        inject(&mut headers);
        self.headers(headers)
    }
}
