//! Streaming model responses: [`LlmStream`] wraps a stream of chunks, records
//! the time to the first chunk and between output chunks, picks up usage,
//! ids and finish reasons from the chunks ([`LlmChunk`]), and ends the call's
//! span when the stream ends, yields an error, or is dropped early
//! (`error.type = cancelled`).

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use opentelemetry::{Key, Value};
use tracing::Span;

use crate::genai::{self, LlmCall, Usage};
use crate::record::target::{Target, fail, record_error, set_attribute, with_sink};
use crate::semconv as sc;

/// What the stream wrapper reads from each chunk. Every method has a default.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `observra::LlmChunk`",
    label = "#[llm_call(stream)] reads usage and timing from each item of the stream",
    note = "implement `observra::LlmChunk` for the chunk type (every method has a default)"
)]
pub trait LlmChunk {
    /// Usage, usually only on the final chunk.
    fn usage(&self) -> Option<Usage> {
        None
    }
    /// The response id.
    fn response_id(&self) -> Option<&str> {
        None
    }
    /// The model that answered.
    fn response_model(&self) -> Option<&str> {
        None
    }
    /// A finish reason, on the chunk that ends a choice.
    fn finish_reason(&self) -> Option<&str> {
        None
    }
    /// Whether the chunk carries output (counts for time per output chunk).
    fn is_output(&self) -> bool {
        true
    }
    /// An error carried by the item: (`error.type`, message).
    fn error(&self) -> Option<(Cow<'static, str>, String)> {
        None
    }
}

impl<T: LlmChunk, E: std::fmt::Display> LlmChunk for Result<T, E> {
    fn usage(&self) -> Option<Usage> {
        self.as_ref().ok().and_then(LlmChunk::usage)
    }
    fn response_id(&self) -> Option<&str> {
        self.as_ref().ok().and_then(LlmChunk::response_id)
    }
    fn response_model(&self) -> Option<&str> {
        self.as_ref().ok().and_then(LlmChunk::response_model)
    }
    fn finish_reason(&self) -> Option<&str> {
        self.as_ref().ok().and_then(LlmChunk::finish_reason)
    }
    fn is_output(&self) -> bool {
        self.as_ref().map(LlmChunk::is_output).unwrap_or(false)
    }
    fn error(&self) -> Option<(Cow<'static, str>, String)> {
        match self {
            Ok(_) => None,
            Err(e) => Some((Cow::Borrowed(std::any::type_name::<E>()), e.to_string())),
        }
    }
}

impl LlmChunk for String {}
impl LlmChunk for &str {}

struct Observed {
    /// The call: a `tracing` span, or a frame entered while the stream is polled.
    call: LlmCall,
    start: Instant,
    last_output: Option<Instant>,
    chunks: u64,
    finish_reasons: Vec<String>,
    /// Whether the wrapper owns the span's end (macro) or only observes it.
    ends_span: bool,
}

pin_project_lite::pin_project! {
    /// A model response stream that records its timing and usage on the
    /// call's span. Created by `#[llm_call(stream)]` or
    /// [`crate::LlmCall::instrument_stream`].
    pub struct LlmStream<S> {
        #[pin]
        inner: S,
        state: Option<Observed>,
    }

    impl<S> PinnedDrop for LlmStream<S> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(state) = this.state.take() {
                if state.ends_span {
                    finish(&state);
                    // Dropped while a panic unwinds through it: a panic, not a cancellation.
                    if std::thread::panicking() {
                        fail(&state.call, sc::ERROR_PANIC, "the stream panicked");
                    } else {
                        fail(&state.call, sc::ERROR_CANCELLED, "the stream was dropped before it ended");
                    }
                }
            }
        }
    }
}

impl<S> LlmStream<S> {
    /// Wraps `inner`; the span ends when the stream ends or is dropped.
    #[doc(hidden)]
    pub fn new(span: Span, inner: S) -> Self {
        Self::with(LlmCall::of_span(span), inner, true)
    }
    /// Wraps `inner` without recording anything (telemetry off).
    #[doc(hidden)]
    pub fn passthrough(inner: S) -> Self {
        LlmStream { inner, state: None }
    }
    /// Observes `inner` on a call someone else ends.
    pub(crate) fn observe(call: LlmCall, inner: S) -> Self {
        Self::with(call, inner, false)
    }
    fn with(call: LlmCall, inner: S, ends_span: bool) -> Self {
        if call.disabled() {
            return Self::passthrough(inner);
        }
        set_attribute(&call, sc::GEN_AI_REQUEST_STREAM, &true);
        let state = Observed {
            call,
            start: Instant::now(),
            last_output: None,
            chunks: 0,
            finish_reasons: Vec::new(),
            ends_span,
        };
        LlmStream { inner, state: Some(state) }
    }
}

fn finish(state: &Observed) {
    let chunks = state.chunks;
    let reasons = state.finish_reasons.clone();
    with_sink(&state.call, |r| {
        r.set_attribute(Key::from_static_str(sc::OBSERVRA_STREAM_CHUNKS), Value::I64(chunks as i64));
        if !reasons.is_empty() {
            r.set_attribute(
                Key::from_static_str(sc::GEN_AI_RESPONSE_FINISH_REASONS),
                Value::Array(opentelemetry::Array::String(reasons.into_iter().map(Into::into).collect())),
            );
        }
    });
}

fn on_chunk<T: LlmChunk>(state: &mut Observed, item: &T) {
    let now = Instant::now();
    state.chunks += 1;
    if let Some((kind, message)) = item.error() {
        record_error(&state.call, kind, message, "stream_error");
        return;
    }
    if item.is_output() {
        let since_start = state.last_output.is_none().then(|| now.duration_since(state.start).as_secs_f64());
        let gap = state.last_output.map(|last| now.duration_since(last).as_secs_f64());
        state.last_output = Some(now);
        with_sink(&state.call, |r| {
            if let Some(ttfc) = since_start {
                r.set_attribute(Key::from_static_str(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK), Value::F64(ttfc));
            }
            if let Some(gap) = gap {
                r.add_chunk_gap(gap);
            }
        });
    }
    if let Some(reason) = item.finish_reason() {
        if state.finish_reasons.len() < 64 {
            state.finish_reasons.push(reason.to_string());
        }
    }
    if item.usage().is_some() || item.response_id().is_some() || item.response_model().is_some() {
        genai::record_response(&state.call, &ChunkAsResponse(item));
    }
}

/// Reads a chunk through the [`genai::LlmResponse`] recording path.
struct ChunkAsResponse<'a, T>(&'a T);

impl<T: LlmChunk> genai::LlmResponse for ChunkAsResponse<'_, T> {
    fn usage(&self) -> Option<Usage> {
        self.0.usage()
    }
    fn response_id(&self) -> Option<&str> {
        self.0.response_id()
    }
    fn response_model(&self) -> Option<&str> {
        self.0.response_model()
    }
}

impl<S> Stream for LlmStream<S>
where
    S: Stream,
    S::Item: LlmChunk,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let Some(state) = this.state.as_mut() else {
            return this.inner.poll_next(cx);
        };
        let _enter = state.call.span().enter();
        let poll = this.inner.poll_next(cx);
        drop(_enter);
        match &poll {
            Poll::Ready(Some(item)) => on_chunk(state, item),
            Poll::Ready(None) => {
                if let Some(state) = this.state.take() {
                    finish(&state);
                    // Dropping the state drops our span handle: the span ends now.
                }
            }
            Poll::Pending => {}
        }
        poll
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
