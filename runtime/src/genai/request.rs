//! What a model call asked for: [`LlmRequest`] reads the request model,
//! every sampling parameter, the output type and, under the content
//! policy, the input messages, system instructions and tool definitions
//! from a client library's request type, so `#[llm_call(request = req)]`
//! (or an instrumented client) records them with no argument spelled out.

use std::borrow::Cow;

use opentelemetry::{Array, KeyValue, StringValue, Value};
use serde_json::Value as Json;

use crate::policy::content;
use crate::record::target::{Target, with_sink};
use observra_semconv as sc;

/// Request parameters of a model call, each recorded as its
/// `gen_ai.request.*` attribute when `Some` (values a request did not set
/// are never invented).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RequestParams {
    /// `gen_ai.request.temperature`.
    pub temperature: Option<f64>,
    /// `gen_ai.request.top_p`.
    pub top_p: Option<f64>,
    /// `gen_ai.request.top_k` (exported as a double under the v1.41
    /// conventions, as an integer under the newest).
    pub top_k: Option<f64>,
    /// `gen_ai.request.max_tokens`.
    pub max_tokens: Option<u64>,
    /// `gen_ai.request.frequency_penalty`.
    pub frequency_penalty: Option<f64>,
    /// `gen_ai.request.presence_penalty`.
    pub presence_penalty: Option<f64>,
    /// `gen_ai.request.stop_sequences`.
    pub stop_sequences: Vec<String>,
    /// `gen_ai.request.seed`.
    pub seed: Option<i64>,
    /// `gen_ai.request.choice.count` (recorded only when it is not 1).
    pub choice_count: Option<u64>,
    /// `gen_ai.output.type` (`text`, `json`, `image`, `speech`).
    pub output_type: Option<Cow<'static, str>>,
    /// `gen_ai.request.encoding_formats` (embeddings).
    pub encoding_formats: Vec<String>,
    /// `gen_ai.embeddings.dimension.count` (embeddings).
    pub dimension_count: Option<u64>,
    /// `gen_ai.request.stream`.
    pub stream: Option<bool>,
    /// Provider-specific attributes, e.g. `openai.request.service_tier`.
    pub attributes: Vec<KeyValue>,
}

impl RequestParams {
    /// The parameters as span attributes.
    fn to_attributes(&self) -> Vec<KeyValue> {
        let mut out = Vec::with_capacity(8 + self.attributes.len());
        let floats = [
            (sc::GEN_AI_REQUEST_TEMPERATURE, self.temperature),
            (sc::GEN_AI_REQUEST_TOP_P, self.top_p),
            (sc::GEN_AI_REQUEST_FREQUENCY_PENALTY, self.frequency_penalty),
            (sc::GEN_AI_REQUEST_PRESENCE_PENALTY, self.presence_penalty),
        ];
        for (k, v) in floats {
            if let Some(v) = v {
                out.push(KeyValue::new(k, v));
            }
        }
        if let Some(k) = self.top_k {
            out.push(KeyValue::new(sc::GEN_AI_REQUEST_TOP_K, super::conventions::request_top_k(k)));
        }
        let ints = [
            (sc::GEN_AI_REQUEST_MAX_TOKENS, self.max_tokens),
            (sc::GEN_AI_REQUEST_CHOICE_COUNT, self.choice_count.filter(|n| *n != 1)),
            (sc::GEN_AI_EMBEDDINGS_DIMENSION_COUNT, self.dimension_count),
        ];
        for (k, v) in ints {
            if let Some(v) = v {
                out.push(KeyValue::new(k, i64::try_from(v).unwrap_or(i64::MAX)));
            }
        }
        if let Some(seed) = self.seed {
            out.push(KeyValue::new(sc::GEN_AI_REQUEST_SEED, seed));
        }
        for (k, list) in [
            (sc::GEN_AI_REQUEST_STOP_SEQUENCES, &self.stop_sequences),
            (sc::GEN_AI_REQUEST_ENCODING_FORMATS, &self.encoding_formats),
        ] {
            if !list.is_empty() {
                let items = list.iter().map(|s| StringValue::from(s.clone())).collect();
                out.push(KeyValue::new(k, Value::Array(Array::String(items))));
            }
        }
        if let Some(t) = &self.output_type {
            out.push(KeyValue::new(sc::GEN_AI_OUTPUT_TYPE, Value::String(StringValue::from(t.clone()))));
        }
        if let Some(s) = self.stream {
            out.push(KeyValue::new(sc::GEN_AI_REQUEST_STREAM, s));
        }
        out.extend(self.attributes.iter().cloned());
        out
    }
}

/// What `#[llm_call(request = req)]` and observra's instrumented clients
/// read from a model request. Only [`LlmRequest::model`] is required.
///
/// The content methods are called only while content capture is on.
///
/// ```
/// struct Ask { model: String, prompt: String, temperature: f32 }
///
/// impl observra::LlmRequest for Ask {
///     fn model(&self) -> &str { &self.model }
///     fn parameters(&self) -> observra::RequestParams {
///         let mut p = observra::RequestParams::default();
///         p.temperature = Some(observra::widen_f32(self.temperature));
///         p
///     }
///     fn input_messages(&self) -> Option<Vec<observra::Message>> {
///         Some(vec![observra::Message::text("user", self.prompt.clone())])
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `observra::LlmRequest`",
    label = "#[llm_call(request = ...)] reads the model, parameters and messages from this value",
    note = "implement `observra::LlmRequest` for `{Self}` (only `model` is required), or pass `model = ...` and the parameters one by one"
)]
pub trait LlmRequest {
    /// The model asked for (`gen_ai.request.model`).
    fn model(&self) -> &str;
    /// Sampling parameters, output type and provider-specific attributes.
    fn parameters(&self) -> RequestParams {
        RequestParams::default()
    }
    /// The input messages (`gen_ai.input.messages`), captured only when
    /// content capture is on.
    fn input_messages(&self) -> Option<Vec<content::Message>> {
        None
    }
    /// System instructions given apart from the messages
    /// (`gen_ai.system_instructions`), as parts.
    fn system_instructions(&self) -> Option<Vec<content::Part>> {
        None
    }
    /// The tools offered to the model (`gen_ai.tool.definitions`), in the
    /// conventions' shape: `[{"type": "function", "name": ..., "description": ..., "parameters": ...}]`.
    fn tool_definitions(&self) -> Option<Json> {
        None
    }
}

impl<T: LlmRequest + ?Sized> LlmRequest for &T {
    fn model(&self) -> &str {
        (**self).model()
    }
    fn parameters(&self) -> RequestParams {
        (**self).parameters()
    }
    fn input_messages(&self) -> Option<Vec<content::Message>> {
        (**self).input_messages()
    }
    fn system_instructions(&self) -> Option<Vec<content::Part>> {
        (**self).system_instructions()
    }
    fn tool_definitions(&self) -> Option<Json> {
        (**self).tool_definitions()
    }
}

/// `server.address` and `server.port` of an API base URL, as the official
/// instrumentations record them: the port only when it is not the
/// scheme's default. Nothing for a URL that does not parse.
#[cfg(any(feature = "async-openai", feature = "genai"))]
pub(crate) fn server_of(url: &str) -> (Option<String>, Option<u16>) {
    match endpoint_of(url) {
        Some((host, port, default)) => (Some(host), (port != default).then_some(port)),
        None => (None, None),
    }
}

/// The host of a URL, its port (the scheme's default when it names none),
/// and that default. `None` for a URL that does not parse or has no host.
#[cfg(any(feature = "async-openai", feature = "genai", feature = "mcp"))]
pub(crate) fn endpoint_of(url: &str) -> Option<(String, u16, u16)> {
    let uri = url.parse::<http::Uri>().ok()?;
    let default = if uri.scheme_str() == Some("http") { 80 } else { 443 };
    Some((uri.host()?.to_string(), uri.port_u16().unwrap_or(default), default))
}

/// Records what a request tells on `span` (the request model is recorded
/// when the span starts, from [`LlmRequest::model`]).
pub(crate) fn record_request<T: Target + ?Sized, R: LlmRequest + ?Sized>(span: &T, request: &R) {
    if span.disabled() {
        return;
    }
    let attrs = request.parameters().to_attributes();
    let captured = content::capturing().then(|| {
        (
            request.input_messages(),
            request.system_instructions().map(|parts| content::parts_json(&parts)),
            request.tool_definitions(),
        )
    });
    with_sink(span, |r| {
        for kv in attrs {
            r.set_attribute(kv.key, kv.value);
        }
        if let Some((input, system, tools)) = captured {
            if let Some(messages) = input {
                content::record_messages(r, sc::GEN_AI_INPUT_MESSAGES, &messages);
            }
            if let Some(system) = system {
                content::record_json(r, sc::GEN_AI_SYSTEM_INSTRUCTIONS, &system);
            }
            if let Some(tools) = tools {
                content::record_json(r, sc::GEN_AI_TOOL_DEFINITIONS, &tools);
            }
        }
    });
}
