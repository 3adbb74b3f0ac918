//! Opt-in capture of message content (prompts, completions, tool arguments
//! and results) in the semantic-convention JSON message format.
//!
//! Off by default. Switched by [`crate::Builder::capture_content`] or
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (`NO_CONTENT`,
//! `SPAN_ONLY`, `EVENT_ONLY`, `SPAN_AND_EVENT`; `true` means `SPAN_ONLY`,
//! `false` `NO_CONTENT`). Captured content is redacted in the export path
//! with every other string (see [`crate::redact`]). observra always emits
//! the newest GenAI names (it has no older ones to keep), whatever
//! `OTEL_SEMCONV_STABILITY_OPT_IN` says.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use opentelemetry::{Key, KeyValue, Value};
use serde_json::{Value as Json, json};

use crate::base::frame::Frame;
use crate::base::state::CAPTURE;

/// Whether `url.query` and `url.full` keep the values of query keys that
/// are not sensitive (`Builder::http_query_values`); by default every
/// value is `REDACTED`.
pub(crate) static KEEP_QUERY_VALUES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
use observra_semconv as sc;

/// Where captured content goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CaptureMode {
    /// Nothing is captured (the default).
    #[default]
    NoContent,
    /// As span attributes.
    SpanOnly,
    /// As one `gen_ai.client.inference.operation.details` event.
    EventOnly,
    /// Both.
    SpanAndEvent,
}

impl CaptureMode {
    /// Parses the environment variable's value.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "NO_CONTENT" | "FALSE" => Some(CaptureMode::NoContent),
            "SPAN_ONLY" | "TRUE" => Some(CaptureMode::SpanOnly),
            "EVENT_ONLY" => Some(CaptureMode::EventOnly),
            "SPAN_AND_EVENT" => Some(CaptureMode::SpanAndEvent),
            _ => None,
        }
    }
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            CaptureMode::NoContent => 0,
            CaptureMode::SpanOnly => 1,
            CaptureMode::EventOnly => 2,
            CaptureMode::SpanAndEvent => 3,
        }
    }
}

/// The conventions' content attributes (opt-in, since they carry what
/// users and models said), by exact name.
const CONTENT_ATTRIBUTES: &[&str] = &[
    sc::GEN_AI_INPUT_MESSAGES,
    sc::GEN_AI_OUTPUT_MESSAGES,
    sc::GEN_AI_SYSTEM_INSTRUCTIONS,
    sc::GEN_AI_TOOL_CALL_ARGUMENTS,
    sc::GEN_AI_TOOL_CALL_RESULT,
    sc::GEN_AI_TOOL_DEFINITIONS,
    sc::GEN_AI_RETRIEVAL_DOCUMENTS,
    sc::GEN_AI_RETRIEVAL_QUERY_TEXT,
    DEPRECATED_PROMPT,
    DEPRECATED_COMPLETION,
];

/// Deprecated names, still emitted by libraries (rig's agent span,
/// OpenLLMetry's indexed forms): read as content here, never written, so
/// not in `observra_semconv`, which holds only names current in the
/// conventions' registry (`tests/tests/registry.rs`).
const DEPRECATED_PROMPT: &str = "gen_ai.prompt";
const DEPRECATED_COMPLETION: &str = "gen_ai.completion";

/// Whether `key` names message content under the GenAI conventions: the
/// conventions' content attributes, and the deprecated indexed forms
/// (`gen_ai.prompt.0.content`, `gen_ai.completion.1.role`). Not
/// `gen_ai.prompt.name`, which names a prompt template and is no content.
pub(crate) fn is_content_attribute(key: &str) -> bool {
    // `gen_ai.prompt.0.content`: the deprecated name, a dot, an index.
    let indexed = |name: &str| {
        let rest = key.strip_prefix(name).and_then(|r| r.strip_prefix('.'));
        rest.is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    };
    CONTENT_ATTRIBUTES.contains(&key) || indexed(DEPRECATED_PROMPT) || indexed(DEPRECATED_COMPLETION)
}

/// Removes every content attribute from `span` and its events, whoever
/// made the span (observra's macros, or a library's own `tracing` spans):
/// privacy by default does not depend on which library recorded it.
pub(crate) fn strip_content(span: &mut opentelemetry_sdk::trace::SpanData) {
    span.attributes.retain(|kv| !is_content_attribute(kv.key.as_str()));
    for e in span.events.events.iter_mut() {
        e.attributes.retain(|kv| !is_content_attribute(kv.key.as_str()));
    }
}

/// Whether content is being captured at all (cheap: one atomic load).
pub(crate) fn capturing() -> bool {
    CAPTURE.load(Ordering::Relaxed) != 0
}

fn on_span() -> bool {
    matches!(CAPTURE.load(Ordering::Relaxed), 1 | 3)
}

/// Whether content goes to the details event (`EVENT_ONLY`, `SPAN_AND_EVENT`).
pub(crate) fn on_event() -> bool {
    matches!(CAPTURE.load(Ordering::Relaxed), 2 | 3)
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Part {
    /// Text.
    Text(String),
    /// A tool call the model asked for.
    ToolCall {
        /// The call's id.
        id: Option<String>,
        /// The tool's name.
        name: String,
        /// The arguments, as JSON.
        arguments: Json,
    },
    /// Media given by reference (an image URL, a file URI).
    Uri {
        /// `image`, `video` or `audio`.
        modality: Cow<'static, str>,
        /// Where the media is.
        uri: String,
    },
    /// A tool's answer to a call.
    ToolCallResponse {
        /// The call's id.
        id: Option<String>,
        /// The result, as JSON.
        response: Json,
    },
}

/// A chat message in the semantic-convention shape:
/// `{"role": "...", "parts": [...], "finish_reason": "..."}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, ...
    pub role: Cow<'static, str>,
    /// The message's parts.
    pub parts: Vec<Part>,
    /// For output messages: why generation stopped.
    pub finish_reason: Option<String>,
}

impl Message {
    /// A message with one text part.
    pub fn text(role: impl Into<Cow<'static, str>>, text: impl Into<String>) -> Self {
        Message { role: role.into(), parts: vec![Part::Text(text.into())], finish_reason: None }
    }
    /// Sets the finish reason (output messages).
    pub fn with_finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }
    /// Adds a part.
    pub fn with_part(mut self, part: Part) -> Self {
        self.parts.push(part);
        self
    }

    fn to_json(&self) -> Json {
        let parts = parts_json(&self.parts);
        let mut m = json!({"role": self.role, "parts": parts});
        if let (Some(r), Some(obj)) = (&self.finish_reason, m.as_object_mut()) {
            obj.insert("finish_reason".into(), Json::String(r.clone()));
        }
        m
    }
}

impl Part {
    fn to_json(&self) -> Json {
        match self {
            Part::Text(t) => json!({"type": "text", "content": t}),
            Part::ToolCall { id, name, arguments } => {
                json!({"type": "tool_call", "id": id, "name": name, "arguments": arguments})
            }
            Part::ToolCallResponse { id, response } => {
                json!({"type": "tool_call_response", "id": id, "response": response})
            }
            Part::Uri { modality, uri } => json!({"type": "uri", "modality": modality, "uri": uri}),
        }
    }
}

/// Tool-call arguments as JSON: parsed when they are a JSON text (as
/// providers send them), kept as a string otherwise.
pub(crate) fn arguments_json(arguments: &str) -> Json {
    serde_json::from_str(arguments).unwrap_or_else(|_| Json::String(arguments.to_string()))
}

/// Parts in the conventions' JSON shape (system instructions are a list of parts).
pub(crate) fn parts_json(parts: &[Part]) -> Json {
    Json::Array(parts.iter().map(Part::to_json).collect())
}

/// Values `#[llm_call(input = ..., system = ...)]` can capture as messages:
/// a string is one `user` message, a `serde_json::Value` array is taken as
/// already in the message format, and [`Message`]s are converted.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be captured as GenAI messages",
    note = "implement `observra::CaptureMessages` for it, or pass a `&str`, `String`, `serde_json::Value` or `Vec<observra::Message>`"
)]
pub trait CaptureMessages {
    /// The messages, in the semantic-convention JSON format.
    fn to_messages_json(&self) -> Json;
}

impl<T: CaptureMessages + ?Sized> CaptureMessages for &T {
    fn to_messages_json(&self) -> Json {
        (**self).to_messages_json()
    }
}
impl CaptureMessages for str {
    fn to_messages_json(&self) -> Json {
        json!([Message::text("user", self).to_json()])
    }
}
impl CaptureMessages for String {
    fn to_messages_json(&self) -> Json {
        self.as_str().to_messages_json()
    }
}
impl CaptureMessages for Json {
    fn to_messages_json(&self) -> Json {
        match self {
            Json::String(s) => s.as_str().to_messages_json(),
            other => other.clone(),
        }
    }
}
impl CaptureMessages for Message {
    fn to_messages_json(&self) -> Json {
        json!([self.to_json()])
    }
}
impl CaptureMessages for [Message] {
    fn to_messages_json(&self) -> Json {
        Json::Array(self.iter().map(Message::to_json).collect())
    }
}
impl CaptureMessages for Vec<Message> {
    fn to_messages_json(&self) -> Json {
        self.as_slice().to_messages_json()
    }
}
/// `None` captures nothing.
impl<T: CaptureMessages> CaptureMessages for Option<T> {
    fn to_messages_json(&self) -> Json {
        self.as_ref().map_or(Json::Null, CaptureMessages::to_messages_json)
    }
}

/// Values a `#[tool_call]` can capture as its arguments or result: strings,
/// `serde_json::Value`, numbers and booleans. Other types are not captured.
pub trait CaptureContent {
    /// The content as JSON.
    fn to_content_json(&self) -> Json;
}
impl<T: CaptureContent + ?Sized> CaptureContent for &T {
    fn to_content_json(&self) -> Json {
        (**self).to_content_json()
    }
}
impl CaptureContent for str {
    fn to_content_json(&self) -> Json {
        Json::String(self.to_string())
    }
}
impl CaptureContent for String {
    fn to_content_json(&self) -> Json {
        Json::String(self.clone())
    }
}
impl CaptureContent for Json {
    fn to_content_json(&self) -> Json {
        self.clone()
    }
}
macro_rules! content_number {
    ($($t:ty),*) => {$(
        impl CaptureContent for $t {
            fn to_content_json(&self) -> Json {
                json!(self)
            }
        }
    )*};
}
content_number!(bool, i32, i64, u32, u64, f64, usize);
impl CaptureContent for f32 {
    fn to_content_json(&self) -> Json {
        json!(crate::base::attr_value::widen_f32(*self))
    }
}
/// `None` captures nothing (`#[llm_call(system = req.system.as_deref())]`).
impl<T: CaptureContent> CaptureContent for Option<T> {
    fn to_content_json(&self) -> Json {
        self.as_ref().map_or(Json::Null, CaptureContent::to_content_json)
    }
}
impl<T: CaptureContent> CaptureContent for Vec<T> {
    fn to_content_json(&self) -> Json {
        Json::Array(self.iter().map(CaptureContent::to_content_json).collect())
    }
}

/// Captured content as the attribute's string; redaction happens in the
/// export path, like for every other string attribute.
fn render(json: &Json) -> String {
    match json {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Records captured JSON under `key`: as a span attribute and/or kept for
/// the details event, per the capture mode.
pub(crate) fn record_json(record: &mut Frame, key: &'static str, json: &Json) {
    if json.is_null() {
        return;
    }
    record_value(record, Key::from_static_str(key), Value::String(render(json).into()));
}

/// Records content already rendered (captured by a macro, or recorded by
/// a library on its own `tracing` span) per the capture mode: as a span
/// attribute and/or kept for the details event, nothing at all when
/// capture is off.
pub(crate) fn record_value(record: &mut Frame, key: Key, value: Value) {
    if on_event() {
        record.add_captured(KeyValue::new(key.clone(), value.clone()));
    }
    if on_span() {
        record.set_attribute(key, value);
    }
}

pub(crate) fn record_messages(record: &mut Frame, key: &'static str, messages: &[Message]) {
    record_json(record, key, &messages.to_messages_json());
}

#[cfg(test)]
mod tests {
    use super::is_content_attribute;

    #[test]
    fn content_attributes_are_the_conventions_and_the_indexed_forms() {
        for key in [
            "gen_ai.input.messages",
            "gen_ai.tool.call.arguments",
            "gen_ai.prompt",
            "gen_ai.prompt.0.content",
            "gen_ai.completion.12.role",
        ] {
            assert!(is_content_attribute(key), "{key}");
        }
        for key in ["gen_ai.prompt.name", "gen_ai.request.model", "gen_ai.tool.name", "prompt.0.content"] {
            assert!(!is_content_attribute(key), "{key}");
        }
    }
}
