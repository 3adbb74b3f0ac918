//! The GenAI data model: what `#[llm_call]` reads from a response
//! ([`LlmResponse`], [`Usage`]), the handle for recording by hand
//! ([`current_llm_call`]), and the recording of those values as
//! `gen_ai.response.*` / `gen_ai.usage.*` span attributes.
//!
//! Usage is normalised before recording: `input_tokens` counts all input
//! tokens, cached ones included (see [`Usage::openai`] and
//! [`Usage::anthropic`] for the two provider rules). Values a provider did
//! not report are never invented.

use opentelemetry::{Array, Key, StringValue, Value};
use tracing::Span;

use crate::__private::{Target, with_sink};
use crate::content::{self, Message};
use crate::semconv as sc;

/// Token counts of one model call. Every field is optional: only what the
/// provider reported is recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All input (prompt) tokens, cached ones included.
    pub input_tokens: Option<u64>,
    /// All output (completion) tokens, reasoning ones included.
    pub output_tokens: Option<u64>,
    /// Input tokens read from the provider's cache (part of `input_tokens`).
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the provider's cache (part of `input_tokens`).
    pub cache_creation_input_tokens: Option<u64>,
    /// Output tokens spent on reasoning (part of `output_tokens`).
    pub reasoning_output_tokens: Option<u64>,
}

impl Usage {
    /// Input and output token counts.
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Usage { input_tokens: Some(input_tokens), output_tokens: Some(output_tokens), ..Usage::default() }
    }

    /// From OpenAI's `usage`: `prompt_tokens` already include
    /// `prompt_tokens_details.cached_tokens`, and `completion_tokens` include
    /// `completion_tokens_details.reasoning_tokens`.
    pub fn openai(
        prompt_tokens: u64,
        completion_tokens: u64,
        cached_tokens: Option<u64>,
        reasoning_tokens: Option<u64>,
    ) -> Self {
        Usage {
            input_tokens: Some(prompt_tokens),
            output_tokens: Some(completion_tokens),
            cache_read_input_tokens: cached_tokens,
            cache_creation_input_tokens: None,
            reasoning_output_tokens: reasoning_tokens,
        }
    }

    /// From Anthropic's `usage`: `input_tokens` exclude
    /// `cache_read_input_tokens` and `cache_creation_input_tokens`, so they are
    /// added to give the total input.
    pub fn anthropic(
        input_tokens: u64,
        output_tokens: u64,
        cache_read_input_tokens: Option<u64>,
        cache_creation_input_tokens: Option<u64>,
    ) -> Self {
        let total = input_tokens
            .saturating_add(cache_read_input_tokens.unwrap_or(0))
            .saturating_add(cache_creation_input_tokens.unwrap_or(0));
        Usage {
            input_tokens: Some(total),
            output_tokens: Some(output_tokens),
            cache_read_input_tokens,
            cache_creation_input_tokens,
            reasoning_output_tokens: None,
        }
    }

    /// Sets the cache-read input tokens (already counted in `input_tokens`).
    pub fn with_cache_read(mut self, tokens: u64) -> Self {
        self.cache_read_input_tokens = Some(tokens);
        self
    }
    /// Sets the cache-write input tokens (already counted in `input_tokens`).
    pub fn with_cache_creation(mut self, tokens: u64) -> Self {
        self.cache_creation_input_tokens = Some(tokens);
        self
    }
    /// Sets the reasoning output tokens (already counted in `output_tokens`).
    pub fn with_reasoning(mut self, tokens: u64) -> Self {
        self.reasoning_output_tokens = Some(tokens);
        self
    }

    /// The field that holds the `gen_ai.usage.*` attribute `key`.
    pub(crate) fn field_mut(&mut self, key: &str) -> Option<&mut Option<u64>> {
        match key {
            sc::GEN_AI_USAGE_INPUT_TOKENS => Some(&mut self.input_tokens),
            sc::GEN_AI_USAGE_OUTPUT_TOKENS => Some(&mut self.output_tokens),
            sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS => Some(&mut self.cache_read_input_tokens),
            sc::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS => Some(&mut self.cache_creation_input_tokens),
            sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS => Some(&mut self.reasoning_output_tokens),
            _ => None,
        }
    }

    /// The `gen_ai.usage.*` attributes of the reported values.
    pub(crate) fn attributes(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            (sc::GEN_AI_USAGE_INPUT_TOKENS, self.input_tokens),
            (sc::GEN_AI_USAGE_OUTPUT_TOKENS, self.output_tokens),
            (sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, self.cache_read_input_tokens),
            (sc::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, self.cache_creation_input_tokens),
            (sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, self.reasoning_output_tokens),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
    }
}

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
    /// The output messages, captured only when content capture is on.
    fn output_messages(&self) -> Option<Vec<Message>> {
        None
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
            fn output_messages(&self) -> Option<Vec<Message>> {
                (**self).output_messages()
            }
        }
    )*};
}
forward_llm_response!(&T, Box<T>, std::sync::Arc<T>);

fn string_array<'a>(items: impl Iterator<Item = &'a str>) -> Value {
    Value::Array(Array::String(items.map(|s| StringValue::from(s.to_string())).collect()))
}

/// Records a response's usage, ids and finish reasons on `span`.
pub(crate) fn record_response<T: Target + ?Sized, R: LlmResponse + ?Sized>(span: &T, response: &R) {
    if span.disabled() {
        return;
    }
    let usage = response.usage();
    let id = response.response_id();
    let model = response.response_model();
    let reasons = response.finish_reasons();
    let output = if content::capturing() { response.output_messages() } else { None };
    with_sink(span, |r| {
        if let Some(u) = usage {
            for (k, v) in u.attributes() {
                r.set_attribute(Key::from_static_str(k), Value::I64(i64::try_from(v).unwrap_or(i64::MAX)));
            }
        }
        if let Some(id) = id {
            r.set_attribute(Key::from_static_str(sc::GEN_AI_RESPONSE_ID), Value::String(id.to_string().into()));
        }
        if let Some(m) = model {
            // Shared: metric attributes clone it without allocating.
            let m: std::sync::Arc<str> = m.into();
            r.set_attribute(Key::from_static_str(sc::GEN_AI_RESPONSE_MODEL), Value::String(m.into()));
        }
        if !reasons.is_empty() {
            r.set_attribute(
                Key::from_static_str(sc::GEN_AI_RESPONSE_FINISH_REASONS),
                string_array(reasons.into_iter()),
            );
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
    span: Span,
    /// Set when the call runs on the dedicated path (see `Builder::fast_path`).
    fast: Option<opentelemetry::trace::SpanId>,
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
    match crate::record::innermost_frame() {
        Some(call) => LlmCall { span: Span::none(), fast: Some(call.span_id) },
        None => LlmCall { span: Span::current(), fast: None },
    }
}

impl LlmCall {
    /// The call recorded on a `tracing` span.
    pub(crate) fn of_span(span: Span) -> Self {
        LlmCall { span, fast: None }
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
        crate::__private::set_attribute(self, sc::GEN_AI_RESPONSE_ID, id);
        self
    }
    /// Records `gen_ai.response.model`.
    pub fn record_response_model(&self, model: &str) -> &Self {
        crate::__private::set_attribute(self, sc::GEN_AI_RESPONSE_MODEL, model);
        self
    }
    /// Records `gen_ai.response.finish_reasons`.
    pub fn record_finish_reasons(&self, reasons: &[&str]) -> &Self {
        crate::__private::set_attribute(self, sc::GEN_AI_RESPONSE_FINISH_REASONS, reasons);
        self
    }
    /// Wraps a stream obtained inside the body: time to first chunk, time per
    /// output chunk and the final chunk's usage are recorded on this call.
    pub fn instrument_stream<S>(&self, stream: S) -> crate::stream::LlmStream<S>
    where
        S: futures_core::Stream,
        S::Item: crate::stream::LlmChunk,
    {
        crate::stream::LlmStream::observe(self.clone(), stream)
    }
    /// The span of this call (a disabled span when the call runs on the
    /// dedicated path, which has no `tracing` span).
    pub fn span(&self) -> &Span {
        &self.span
    }
}

impl Target for LlmCall {
    fn disabled(&self) -> bool {
        self.fast.is_none() && self.span.is_disabled()
    }
    fn with_frame_dyn(&self, f: &mut dyn FnMut(&mut crate::record::Frame)) {
        match self.fast {
            Some(id) => crate::record::with_entered(id, |frame| f(frame)),
            None => self.span.with_frame_dyn(f),
        }
    }
}
