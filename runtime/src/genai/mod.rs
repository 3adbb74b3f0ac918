//! The GenAI data model: what `#[llm_call]` reads from a response
//! ([`LlmResponse`], [`Usage`]), the handle for recording by hand
//! ([`current_llm_call`]), and the recording of those values as
//! `gen_ai.response.*` / `gen_ai.usage.*` span attributes.
//!
//! Usage is normalised before recording: `input_tokens` counts all input
//! tokens, cached ones included (see [`Usage::openai`] and
//! [`Usage::anthropic`] for the two provider rules). Values a provider did
//! not report are never invented.

use opentelemetry::{Array, Key, KeyValue, StringValue, Value};
use tracing::Span;

pub(crate) mod conventions;
pub mod request;
pub mod retrieval;
pub mod stream;

use crate::base::frame::FinishReasons;
use crate::policy::content::{self, Message};
use crate::record::span_ref::SpanRef;
use crate::record::target::{Target, set_attribute, with_sink};
use observra_semconv as sc;

pub use crate::account::usage::Usage;

/// What `#[llm_call]` reads from a model response (the function's return
/// type, or the `Ok` type of a `Result`). Every method has a default, so
/// implement only what your type knows.
///
/// ```
/// struct ChatResponse { id: String, model: String, prompt: u64, completion: u64, finish: String }
///
/// impl observra::LlmResponse for ChatResponse {
///     fn usage(&self) -> Option<observra::Usage> {
///         Some(observra::Usage::openai(self.prompt, self.completion, None, None))
///     }
///     fn response_id(&self) -> Option<&str> { Some(&self.id) }
///     fn response_model(&self) -> Option<&str> { Some(&self.model) }
///     fn finish_reasons(&self) -> Vec<&str> { vec![self.finish.as_str()] }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `observra::LlmResponse`",
    label = "#[llm_call] reads usage, response id, model and finish reasons from the value it returns",
    note = "implement `observra::LlmResponse` for `{Self}` (every method has a default) or return `observra::Usage`",
    note = "for a foreign response type, add `response = manual` to #[llm_call] and call `observra::current_llm_call().record_usage(...)` in the body"
)]
pub trait LlmResponse {
    /// Token usage, normalised (see [`Usage`]).
    fn usage(&self) -> Option<Usage> {
        None
    }
    /// The provider's response id (`gen_ai.response.id`).
    fn response_id(&self) -> Option<&str> {
        None
    }
    /// The model that actually answered (`gen_ai.response.model`).
    fn response_model(&self) -> Option<&str> {
        None
    }
    /// Why each choice stopped (`gen_ai.response.finish_reasons`).
    fn finish_reasons(&self) -> Vec<&str> {
        Vec::new()
    }
    /// The same reasons one at a time, which is what observra calls: by
    /// default from [`finish_reasons`](Self::finish_reasons). Implement it
    /// instead to record a reply without building a list (with it, a reply
    /// of known reasons and a model seen lately costs no allocation on the
    /// caller's thread).
    fn for_each_finish_reason(&self, f: &mut dyn FnMut(&str)) {
        for reason in self.finish_reasons() {
            f(reason);
        }
    }
    /// The output messages, captured only when content capture is on.
    fn output_messages(&self) -> Option<Vec<Message>> {
        None
    }
    /// Other attributes the response carries: provider-specific ones such
    /// as `openai.response.service_tier`, or `gen_ai.embeddings.dimension.count`.
    fn attributes(&self) -> Vec<KeyValue> {
        Vec::new()
    }
}

impl LlmResponse for Usage {
    fn usage(&self) -> Option<Usage> {
        Some(*self)
    }
}

/// Smart pointers and references answer for what they point to.
macro_rules! forward_llm_response {
    ($($ptr:ty),*) => {$(
        impl<T: LlmResponse + ?Sized> LlmResponse for $ptr {
            fn usage(&self) -> Option<Usage> {
                (**self).usage()
            }
            fn response_id(&self) -> Option<&str> {
                (**self).response_id()
            }
            fn response_model(&self) -> Option<&str> {
                (**self).response_model()
            }
            fn finish_reasons(&self) -> Vec<&str> {
                (**self).finish_reasons()
            }
            fn for_each_finish_reason(&self, f: &mut dyn FnMut(&str)) {
                (**self).for_each_finish_reason(f)
            }
            fn output_messages(&self) -> Option<Vec<Message>> {
                (**self).output_messages()
            }
            fn attributes(&self) -> Vec<KeyValue> {
                (**self).attributes()
            }
        }
    )*};
}
forward_llm_response!(&T, Box<T>, std::sync::Arc<T>);

/// The finish reasons of `response`: packed when each is a known one (no
/// allocation), else (`Err`) listed.
fn finish_reasons<R: LlmResponse + ?Sized>(response: &R) -> Result<FinishReasons, Vec<String>> {
    let mut packed = Some(FinishReasons::NONE);
    let mut listed = Vec::new();
    response.for_each_finish_reason(&mut |reason| match packed.and_then(|p| p.with(reason)) {
        Some(p) => packed = Some(p),
        None => {
            // From the first reason that does not pack on, a list.
            if let Some(p) = packed.take() {
                listed.extend(p.iter().map(str::to_string));
            }
            listed.push(reason.to_string());
        }
    });
    packed.ok_or(listed)
}

thread_local! {
    /// The response models this thread recorded lately: the same model
    /// comes back call after call, and a shared copy costs no allocation.
    static MODELS: std::cell::RefCell<[Option<std::sync::Arc<str>>; 4]> = const { std::cell::RefCell::new([None, None, None, None]) };
}

/// `model` as a shared string, from this thread's recent ones when it is there.
fn interned_model(model: &str) -> StringValue {
    let shared = MODELS
        .try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            if let Some(hit) = cache.iter().flatten().find(|m| &***m == model) {
                return Some(hit.clone());
            }
            let fresh: std::sync::Arc<str> = model.into();
            cache.rotate_right(1);
            cache[0] = Some(fresh.clone());
            Some(fresh)
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| model.into());
    StringValue::from(shared)
}

/// Records a response's usage, ids and finish reasons on `span`.
pub(crate) fn record_response<T: Target + ?Sized, R: LlmResponse + ?Sized>(span: &T, response: &R) {
    if span.disabled() {
        return;
    }
    let usage = response.usage();
    let id = response.response_id();
    let model = response.response_model();
    let reasons = finish_reasons(response);
    let output = if content::capturing() { response.output_messages() } else { None };
    let extra = response.attributes();
    with_sink(span, |r| {
        for kv in extra {
            r.set_attribute(kv.key, kv.value);
        }
        if let Some(u) = usage {
            r.usage.merge(&u);
        }
        if let Some(id) = id {
            r.set_response_id(id);
        }
        if let Some(m) = model {
            // Shared: metric attributes clone it without allocating.
            r.set_attribute(Key::from_static_str(sc::GEN_AI_RESPONSE_MODEL), Value::String(interned_model(m)));
        }
        match reasons {
            Ok(p) if p.is_empty() => {}
            Ok(p) => r.set_finish_reasons(p),
            Err(listed) => r.set_attribute(
                Key::from_static_str(sc::GEN_AI_RESPONSE_FINISH_REASONS),
                Value::Array(Array::String(listed.into_iter().map(StringValue::from).collect())),
            ),
        }
        if let Some(messages) = output {
            content::record_messages(r, sc::GEN_AI_OUTPUT_MESSAGES, &messages);
        }
    });
}

/// A handle on the model call being recorded by the enclosing `#[llm_call]`
/// (the current span), for values the macro cannot read from the return type.
#[derive(Debug, Clone)]
pub struct LlmCall {
    /// The call's span, whichever path records it.
    at: SpanRef,
}

/// The model call the current code runs in: inside an `#[llm_call]`
/// function, its span. Recording on it outside any span does nothing.
///
/// ```no_run
/// #[observra::llm_call(provider = "openai", model = "gpt-4o-mini", response = manual)]
/// fn call_foreign_client(prompt: &str) -> String {
///     let (text, prompt_tokens, completion_tokens) = (prompt.to_string(), 12, 3); // a foreign client
///     observra::current_llm_call()
///         .record_usage(observra::Usage::new(prompt_tokens, completion_tokens))
///         .record_response_id("chatcmpl-123")
///         .record_finish_reasons(&["stop"]);
///     text
/// }
/// ```
pub fn current_llm_call() -> LlmCall {
    LlmCall { at: SpanRef::current() }
}

impl LlmCall {
    /// The call recorded on a `tracing` span.
    pub(crate) fn of_span(span: Span) -> Self {
        LlmCall { at: span.into() }
    }

    /// The call's trace id (see [`SpanRef::trace_id`]); `None` outside a
    /// recorded model call.
    pub fn trace_id(&self) -> Option<opentelemetry::trace::TraceId> {
        self.at.trace_id()
    }

    /// The call's span id (see [`SpanRef::span_id`]).
    pub fn span_id(&self) -> Option<opentelemetry::trace::SpanId> {
        self.at.span_id()
    }

    /// Records token usage (only the counts that are `Some`).
    pub fn record_usage(&self, usage: Usage) -> &Self {
        record_response(self, &usage);
        self
    }
    /// Records everything an [`LlmResponse`] exposes.
    pub fn record_response(&self, response: &(impl LlmResponse + ?Sized)) -> &Self {
        record_response(self, response);
        self
    }
    /// Records `gen_ai.response.id`.
    pub fn record_response_id(&self, id: &str) -> &Self {
        set_attribute(self, sc::GEN_AI_RESPONSE_ID, id);
        self
    }
    /// Records `gen_ai.response.model`.
    pub fn record_response_model(&self, model: &str) -> &Self {
        set_attribute(self, sc::GEN_AI_RESPONSE_MODEL, model);
        self
    }
    /// Records `gen_ai.response.finish_reasons`.
    pub fn record_finish_reasons(&self, reasons: &[&str]) -> &Self {
        set_attribute(self, sc::GEN_AI_RESPONSE_FINISH_REASONS, reasons);
        self
    }
    /// Wraps a stream obtained inside the body: time to first chunk, time per
    /// output chunk and the final chunk's usage are recorded on this call.
    pub fn instrument_stream<S>(&self, stream: S) -> stream::LlmStream<S>
    where
        S: futures_core::Stream,
        S::Item: stream::LlmChunk,
    {
        stream::LlmStream::observe(self.clone(), stream)
    }
    /// The span of this call (a disabled span when the call runs on the
    /// frame path, which has no `tracing` span).
    pub fn span(&self) -> &Span {
        self.at.tracing_span()
    }
}

impl Target for LlmCall {
    fn disabled(&self) -> bool {
        self.at.disabled()
    }
    fn with_frame_dyn(&self, f: &mut dyn FnMut(&mut crate::base::frame::Frame)) {
        self.at.with_frame_dyn(f)
    }
}
