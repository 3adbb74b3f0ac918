//! Streaming model responses: [`LlmStream`] wraps a stream of chunks, records
//! the time to the first chunk (from the start of the operation, so the
//! wait for the response counts) and between output chunks, picks up usage,
//! ids and finish reasons from the chunks ([`LlmChunk`]), assembles the
//! streamed output for content capture ([`StreamOutput`]), and ends the
//! call's span when the stream ends, yields an error, or is dropped early
//! (`error.type = cancelled`).

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use opentelemetry::{Key, KeyValue, Value};
use tracing::Span;

use crate::genai::{self, LlmCall, Usage};
use crate::policy::content::{self, Message, Part};
use crate::record::target::{Target, fail, record_error, set_attribute, with_sink};
use observra_semconv as sc;

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
    /// Adds the output this chunk carries (text and tool-call deltas) to
    /// `output`; called only while content capture is on. The assembled
    /// output becomes `gen_ai.output.messages` when the stream ends.
    fn output_delta(&self, output: &mut StreamOutput) {
        let _ = output;
    }
    /// Other attributes the chunk carries (e.g. `openai.response.service_tier`).
    fn attributes(&self) -> Vec<KeyValue> {
        Vec::new()
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
    fn output_delta(&self, output: &mut StreamOutput) {
        if let Ok(chunk) = self {
            chunk.output_delta(output);
        }
    }
    fn attributes(&self) -> Vec<KeyValue> {
        self.as_ref().map(LlmChunk::attributes).unwrap_or_default()
    }
}

/// The output of a streamed call, assembled from the chunks' deltas for
/// content capture. Bounded: past [`StreamOutput::MAX_BYTES`] further
/// text is not kept (the span's limits cut the attribute anyway).
#[derive(Debug, Default)]
pub struct StreamOutput {
    choices: Vec<ChoiceOutput>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct ChoiceOutput {
    role: Option<String>,
    text: String,
    tool_calls: Vec<ToolCallOutput>,
    finish_reason: Option<String>,
}

#[derive(Debug, Default)]
struct ToolCallOutput {
    index: u32,
    id: Option<String>,
    name: String,
    arguments: String,
}

impl StreamOutput {
    /// The most output bytes kept for one stream (1 MiB).
    pub const MAX_BYTES: usize = 1 << 20;
    /// At most this many choices are kept.
    const MAX_CHOICES: usize = 16;
    /// At most this many tool calls per choice are kept.
    const MAX_TOOL_CALLS: usize = 128;

    fn choice(&mut self, index: u32) -> Option<&mut ChoiceOutput> {
        let i = index as usize;
        if i >= Self::MAX_CHOICES {
            return None;
        }
        if self.choices.len() <= i {
            self.choices.resize_with(i + 1, ChoiceOutput::default);
        }
        self.choices.get_mut(i)
    }
    fn take(&mut self, n: usize) -> bool {
        if self.bytes + n > Self::MAX_BYTES {
            return false;
        }
        self.bytes += n;
        true
    }
    /// The role of choice `choice` (usually on its first delta).
    pub fn role(&mut self, choice: u32, role: &str) {
        if let Some(c) = self.choice(choice) {
            c.role = Some(role.to_string());
        }
    }
    /// Text added to choice `choice`.
    pub fn text(&mut self, choice: u32, delta: &str) {
        if !self.take(delta.len()) {
            return;
        }
        if let Some(c) = self.choice(choice) {
            c.text.push_str(delta);
        }
    }
    /// A delta of tool call `index` of choice `choice`: the id and name
    /// usually come first, the arguments in pieces after.
    pub fn tool_call(
        &mut self,
        choice: u32,
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        arguments: Option<&str>,
    ) {
        let n = id.map_or(0, str::len) + name.map_or(0, str::len) + arguments.map_or(0, str::len);
        if !self.take(n) {
            return;
        }
        let Some(c) = self.choice(choice) else { return };
        let call = match c.tool_calls.iter().position(|t| t.index == index) {
            Some(i) => &mut c.tool_calls[i],
            None if c.tool_calls.len() < Self::MAX_TOOL_CALLS => {
                c.tool_calls.push(ToolCallOutput { index, ..Default::default() });
                c.tool_calls.last_mut().expect("just pushed")
            }
            None => return,
        };
        if let Some(id) = id {
            call.id = Some(id.to_string());
        }
        if let Some(name) = name {
            call.name.push_str(name);
        }
        if let Some(a) = arguments {
            call.arguments.push_str(a);
        }
    }
    /// A whole tool call of choice `choice` (for clients that deliver each
    /// call complete rather than in pieces).
    pub fn push_tool_call(&mut self, choice: u32, id: Option<&str>, name: &str, arguments: &str) {
        let index = self.choice(choice).map_or(0, |c| c.tool_calls.len() as u32);
        self.tool_call(choice, index, id, Some(name), Some(arguments));
    }
    /// Why choice `choice` stopped.
    pub fn finish(&mut self, choice: u32, reason: &str) {
        if let Some(c) = self.choice(choice) {
            c.finish_reason = Some(reason.to_string());
        }
    }
    /// The assembled output messages: per choice, its tool calls (arguments
    /// as JSON when they parse) then its text.
    fn messages(&self) -> Vec<Message> {
        self.choices
            .iter()
            .map(|c| {
                let mut parts: Vec<Part> = c
                    .tool_calls
                    .iter()
                    .map(|t| Part::ToolCall {
                        id: t.id.clone(),
                        name: t.name.clone(),
                        arguments: content::arguments_json(&t.arguments),
                    })
                    .collect();
                if !c.text.is_empty() {
                    parts.push(Part::Text(c.text.clone()));
                }
                Message {
                    role: c.role.clone().unwrap_or_else(|| "assistant".to_string()).into(),
                    parts,
                    finish_reason: Some(c.finish_reason.clone().unwrap_or_else(|| "error".to_string())),
                }
            })
            .collect()
    }
}

impl LlmChunk for String {}
impl LlmChunk for &str {}

struct Observed {
    /// The call: a `tracing` span, or a frame entered while the stream is polled.
    call: LlmCall,
    last_output: Option<Instant>,
    /// The streamed output, while content capture is on.
    output: Option<Box<StreamOutput>>,
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
            last_output: None,
            output: content::capturing().then(Box::default),
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
    let output = state.output.as_ref().map(|o| o.messages()).filter(|m| !m.is_empty());
    with_sink(&state.call, |r| {
        if let Some(messages) = &output {
            content::record_messages(r, sc::GEN_AI_OUTPUT_MESSAGES, messages);
        }
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
        let first = state.last_output.is_none();
        let gap = state.last_output.map(|last| now.duration_since(last).as_secs_f64());
        state.last_output = Some(now);
        with_sink(&state.call, |r| {
            if first {
                // Measured from the frame's start stamp on the collector:
                // the wait for the response counts, as the conventions say.
                r.mark_first_chunk();
            }
            if let Some(gap) = gap {
                r.add_chunk_gap(gap);
            }
        });
    }
    if let Some(output) = state.output.as_deref_mut() {
        item.output_delta(output);
    }
    let extra = item.attributes();
    if !extra.is_empty() {
        with_sink(&state.call, |r| {
            for kv in extra {
                r.set_attribute(kv.key, kv.value);
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
