//! Support code for the expansions of observra's attribute macros.
//!
//! Hidden from the docs and not part of the public API: only the code the
//! macros generate calls it, always through `::observra::__private`. Every
//! function here is cheap when the span is disabled (no subscriber, or
//! telemetry not installed), and none of them can panic.

use std::borrow::Cow;
use std::fmt::{Debug, Display};

use opentelemetry::{Key, StringValue, Value};
pub use tracing;
use tracing::Span;

pub use crate::base::frame::{Frame, Site, SiteMeta, StaticAttr};
use crate::error::ErrorType;
use crate::genai::LlmResponse;
use crate::genai::request::LlmRequest;
use crate::genai::retrieval::RetrievalResponse;
use crate::policy::content::{CaptureContent, CaptureMessages};
pub use crate::record::call::{FrameSpan, FrameStart, begin as frame_begin};
pub use crate::record::guard::{AsyncCall, Call, CallSpan, Called, choose};
use crate::record::layer::with_record;
use crate::record::target::with_sink;
pub use crate::record::target::{Target, record_error, set_attribute};
pub use opentelemetry::trace::SpanKind;

use observra_semconv as sc;

/// `#[llm_call(top_k = ..)]`: `gen_ai.request.top_k`, typed as the GenAI
/// conventions in use say (a double in v1.41, an integer in the newest).
pub fn set_top_k<S: Target + ?Sized, T: crate::base::attr_value::AttributeValue + ?Sized>(span: &S, value: &T) {
    use crate::genai::conventions;
    if span.disabled() {
        return;
    }
    if let Some(k) = value.to_attribute_value().as_ref().and_then(conventions::as_f64) {
        let v = conventions::request_top_k(k);
        with_sink(span, |r| r.set_attribute(Key::from_static_str(sc::GEN_AI_REQUEST_TOP_K), v));
    }
}

/// `#[retrieval(top_k = ..)]`: `gen_ai.request.top_k` (a double) under the
/// v1.41 conventions, `gen_ai.retrieval.top_k` (an integer) under the newest.
pub fn set_retrieval_top_k<S: Target + ?Sized>(span: &S, k: f64) {
    if span.disabled() {
        return;
    }
    let (key, v) = crate::genai::conventions::retrieval_top_k(k);
    with_sink(span, |r| r.set_attribute(Key::from_static_str(key), v));
}

/// Sets the exported name of `span`.
pub fn set_name(span: &Span, name: impl Into<Cow<'static, str>>) {
    if !span.is_disabled() {
        let name = name.into();
        with_record(span, |r| r.set_name(name));
    }
}

/// A borrowed error, for choosing how to describe it at the call site.
pub struct ErrRef<'a, E: ?Sized>(pub &'a E);

impl<E: ?Sized> ErrRef<'_, E> {
    /// The error's Rust type name, for `exception.type`.
    pub fn type_name(&self) -> &'static str {
        std::any::type_name::<E>()
    }
}

/// `error.type` from [`crate::error::ErrorType`] when the error implements it.
pub trait ViaErrorType {
    /// The low-cardinality error class.
    fn __observra_error_type(&self) -> Cow<'static, str>;
}
impl<E: ErrorType + ?Sized> ViaErrorType for &ErrRef<'_, E> {
    fn __observra_error_type(&self) -> Cow<'static, str> {
        self.0.error_type()
    }
}
/// `error.type` from the type name otherwise.
pub trait ViaTypeName {
    /// The low-cardinality error class.
    fn __observra_error_type(&self) -> Cow<'static, str>;
}
impl<E: ?Sized> ViaTypeName for ErrRef<'_, E> {
    fn __observra_error_type(&self) -> Cow<'static, str> {
        Cow::Borrowed(std::any::type_name::<E>())
    }
}

/// Error message from `Display`.
pub trait ViaDisplay {
    /// The error's message.
    fn __observra_error_message(&self) -> String;
}
impl<E: Display + ?Sized> ViaDisplay for &&ErrRef<'_, E> {
    fn __observra_error_message(&self) -> String {
        self.0.to_string()
    }
}
/// Error message from `Debug` when there is no `Display`.
pub trait ViaDebug {
    /// The error's message.
    fn __observra_error_message(&self) -> String;
}
impl<E: Debug + ?Sized> ViaDebug for &ErrRef<'_, E> {
    fn __observra_error_message(&self) -> String {
        format!("{:?}", self.0)
    }
}
/// The type name when the error is neither `Display` nor `Debug`.
pub trait ViaNoMessage {
    /// The error's message.
    fn __observra_error_message(&self) -> String;
}
impl<E: ?Sized> ViaNoMessage for ErrRef<'_, E> {
    fn __observra_error_message(&self) -> String {
        std::any::type_name::<E>().to_string()
    }
}

/// Converts to an OpenTelemetry string value without copying static strings.
pub fn static_str(s: &'static str) -> Value {
    Value::String(StringValue::from(s))
}

/// Types a sync function's body as a `FnOnce`, so it may move and reborrow
/// its parameters exactly as the unwrapped body could.
#[inline(always)]
pub fn once<R, F: FnOnce() -> R>(f: F) -> F {
    f
}

/// Whether `tracing` could record an INFO span at all. With no subscriber
/// this is one relaxed atomic load, and the instrumented function skips
/// every span operation.
#[inline(always)]
pub fn enabled() -> bool {
    tracing::level_enabled!(tracing::Level::INFO)
}

/// Records a parameter with `Debug` on a call of the frame path (the
/// `tracing` path records it as a field).
#[inline]
pub fn record_debug<S: Target + ?Sized, T: Debug + ?Sized>(span: &S, key: &'static str, value: &T) {
    if !span.disabled() {
        let text = format!("{value:?}");
        with_sink(span, |r| r.set_attribute(Key::from_static_str(key), Value::String(text.into())));
    }
}

/// Records a parameter with `Debug`. The bound is checked here, so a
/// parameter that is not `Debug` is one error pointing at that parameter.
#[inline]
pub fn debug_arg<T: Debug>(value: &T) -> tracing::field::DebugValue<&dyn Debug> {
    tracing::field::debug(value as &dyn Debug)
}

/// Starts a model call's span: name `{operation} {model}` and `gen_ai.request.model`.
pub fn llm_start(span: &Span, operation: &'static str, model: &str) {
    // Shared, so the metric attributes and totals clone it without allocating;
    // the name is made off the caller's thread.
    let model: std::sync::Arc<str> = model.into();
    with_record(span, |r| r.set_model_name(operation, model.into()));
}

/// [`llm_start`] for a literal model: the name was built at compile time.
pub fn llm_start_static(span: &Span, name: &'static str, model: &'static str) {
    with_record(span, |r| {
        r.set_name(Cow::Borrowed(name));
        r.set_attribute(Key::from_static_str(sc::GEN_AI_REQUEST_MODEL), Value::String(model.into()));
    });
}

/// Records what an [`crate::genai::LlmResponse`] exposes.
#[inline]
pub fn record_llm_response<T: Target + ?Sized, R: LlmResponse + ?Sized>(span: &T, response: &R) {
    crate::genai::record_response(span, response);
}

/// Records what an [`crate::genai::request::LlmRequest`] tells (`#[llm_call(request = ...)]`).
#[inline]
pub fn record_llm_request<T: Target + ?Sized, R: LlmRequest + ?Sized>(span: &T, request: &R) {
    crate::genai::request::record_request(span, request);
}

/// Whether content capture is on.
#[inline]
pub fn capturing() -> bool {
    crate::policy::content::capturing()
}

/// Captures messages under `key`.
pub fn capture_messages<S: Target + ?Sized, T: CaptureMessages + ?Sized>(span: &S, key: &'static str, value: &T) {
    let json = value.to_messages_json();
    with_sink(span, |r| crate::policy::content::record_json(r, key, &json));
}

/// Captures system instructions: a string becomes one text part; `None`
/// captures nothing.
pub fn capture_system<S: Target + ?Sized, T: CaptureContent + ?Sized>(span: &S, key: &'static str, value: &T) {
    let json = match value.to_content_json() {
        serde_json::Value::String(s) => serde_json::json!([{"type": "text", "content": s}]),
        other => other,
    };
    with_sink(span, |r| crate::policy::content::record_json(r, key, &json));
}

/// Captures tool arguments or results under `key`.
pub fn capture_content<S: Target + ?Sized, T: CaptureContent + ?Sized>(span: &S, key: &'static str, value: &T) {
    let json = value.to_content_json();
    with_sink(span, |r| crate::policy::content::record_json(r, key, &json));
}

/// `#[retrieval]`: captures the documents the retriever returned (content:
/// only when capture is on).
pub fn retrieved<S: Target + ?Sized, T: RetrievalResponse + ?Sized>(span: &S, value: &T) {
    if !crate::policy::content::capturing() {
        return;
    }
    let docs = value.documents();
    with_sink(span, |r| crate::genai::retrieval::record_documents(r, &docs));
}

/// A tool's return value, for capturing it when its type allows.
pub struct ResultRef<'a, T: ?Sized>(pub &'a T);

/// Captures a tool result whose type implements [`crate::policy::content::CaptureContent`].
pub trait ViaCapture {
    /// Captures the value.
    fn __observra_capture<S: Target + ?Sized>(&self, span: &S, key: &'static str);
}
impl<T: CaptureContent + ?Sized> ViaCapture for &ResultRef<'_, T> {
    fn __observra_capture<S: Target + ?Sized>(&self, span: &S, key: &'static str) {
        capture_content(span, key, self.0);
    }
}
/// Other tool results are not captured.
pub trait ViaNoCapture {
    /// Does nothing.
    fn __observra_capture<S: Target + ?Sized>(&self, span: &S, key: &'static str);
}
impl<T: ?Sized> ViaNoCapture for ResultRef<'_, T> {
    fn __observra_capture<S: Target + ?Sized>(&self, _span: &S, _key: &'static str) {}
}

/// Declared-metric support for `observra::metrics!`.
pub mod metrics {
    pub use crate::record::declare::{Build, Lazy, LazyGauge, Spec};
    pub use opentelemetry::KeyValue;
    pub use opentelemetry::metrics::{Counter, Histogram, UpDownCounter};
}

/// Makes the collector thread die at a point of the hand-over of closed
/// spans, for the tests of the loss accounting: 1 in the middle of a
/// sweep of the callers' buffers, 2 in the middle of handling what it
/// took, 0 never (the default). Not an API.
pub fn kill_collector_at(point: u8) {
    crate::base::queue::KILL_AT.store(point, std::sync::atomic::Ordering::Relaxed);
}
