//! [async-openai](https://docs.rs/async-openai) chat completions and
//! embeddings, with no user code (cargo feature `async-openai`).
//!
//! **One line:** wrap the client, and every `chat().create(..)`,
//! `chat().create_stream(..)` and `embeddings().create(..)` is a GenAI span
//! with the conventions' metrics, exactly as the official OpenAI
//! instrumentations record it: the request model and every sampling
//! parameter, the output type, the server address and port (from the
//! client's API base), usage, ids, models, finish reasons, OpenAI's service
//! tier and system fingerprint, and, under the content policy, the input
//! messages, tool definitions and output messages (tool calls included,
//! streamed output assembled).
//!
//! ```ignore
//! use async_openai::{Client, config::OpenAIConfig};
//!
//! let client = observra::integrations::async_openai::instrument(Client::with_config(OpenAIConfig::new()));
//! let response = client.chat().create(request).await?; // traced
//! ```
//!
//! The types also work with the macros: async-openai's request types
//! implement [`LlmRequest`] (so `#[llm_call(provider = "openai", request =
//! req)]` needs no other argument), the responses implement
//! [`LlmResponse`] / [`LlmChunk`], and a `Vec` of request messages
//! implements [`crate::policy::content::CaptureMessages`] for `input = req.messages`.

use std::borrow::Cow;

use async_openai::Client;
use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestAssistantMessageContentPart, ChatCompletionRequestDeveloperMessageContent,
    ChatCompletionRequestDeveloperMessageContentPart, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestSystemMessageContentPart,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestToolMessageContentPart,
    ChatCompletionRequestUserMessageContent, ChatCompletionRequestUserMessageContentPart, ChatCompletionTools,
    CompletionUsage, CreateChatCompletionRequest, CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
    FinishReason, ResponseFormat, ServiceTier, StopConfiguration,
};
use async_openai::types::embeddings::{CreateEmbeddingRequest, CreateEmbeddingResponse, EncodingFormat};
use futures_core::Stream;
use opentelemetry::KeyValue;
use serde_json::{Value as Json, json};

use crate::genai::request::{LlmRequest, RequestParams};
use crate::genai::stream::{LlmChunk, StreamOutput};
use crate::genai::{LlmResponse, Usage};
use crate::policy::content::{Message, Part, arguments_json};
use observra_semconv as sc;

fn usage(u: &CompletionUsage) -> Usage {
    let details = u.prompt_tokens_details.as_ref();
    let mut usage = Usage::openai(
        u64::from(u.prompt_tokens),
        u64::from(u.completion_tokens),
        details.and_then(|d| d.cached_tokens).map(u64::from),
        u.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).map(u64::from),
    );
    if let Some(written) = details.and_then(|d| d.cache_write_tokens).and_then(|w| u64::try_from(w).ok()) {
        usage = usage.with_cache_creation(written);
    }
    usage
}

/// The semantic-convention spelling of a finish reason.
pub fn finish_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::FunctionCall => "function_call",
    }
}

/// OpenAI's spelling of a service tier.
fn service_tier(tier: &ServiceTier) -> &'static str {
    match tier {
        ServiceTier::Auto => "auto",
        ServiceTier::Default => "default",
        ServiceTier::Flex => "flex",
        ServiceTier::Scale => "scale",
        ServiceTier::Priority => "priority",
        ServiceTier::Fast => "fast",
    }
}

/// `openai.response.service_tier` and `openai.response.system_fingerprint`.
fn response_attributes(tier: Option<&ServiceTier>, fingerprint: Option<&String>) -> Vec<KeyValue> {
    let mut out = Vec::new();
    if let Some(t) = tier {
        out.push(KeyValue::new(sc::OPENAI_RESPONSE_SERVICE_TIER, service_tier(t)));
    }
    if let Some(f) = fingerprint {
        out.push(KeyValue::new(sc::OPENAI_RESPONSE_SYSTEM_FINGERPRINT, f.clone()));
    }
    out
}

/// Adds a text part.
fn text(parts: &mut Vec<Part>, t: &str) {
    parts.push(Part::Text(t.to_string()));
}

fn tool_call_parts(parts: &mut Vec<Part>, calls: &[ChatCompletionMessageToolCalls]) {
    for call in calls {
        match call {
            ChatCompletionMessageToolCalls::Function(f) => parts.push(Part::ToolCall {
                id: Some(f.id.clone()),
                name: f.function.name.clone(),
                arguments: arguments_json(&f.function.arguments),
            }),
            ChatCompletionMessageToolCalls::Custom(c) => parts.push(Part::ToolCall {
                id: Some(c.id.clone()),
                name: c.custom_tool.name.clone(),
                arguments: Json::String(c.custom_tool.input.clone()),
            }),
        }
    }
}

/// One request message in the conventions' shape (as the official
/// instrumentation does: system and developer messages stay in the input).
fn request_message(m: &ChatCompletionRequestMessage) -> Message {
    let mut parts = Vec::new();
    let role = match m {
        ChatCompletionRequestMessage::Developer(d) => {
            match &d.content {
                ChatCompletionRequestDeveloperMessageContent::Text(t) => text(&mut parts, t),
                ChatCompletionRequestDeveloperMessageContent::Array(a) => {
                    for ChatCompletionRequestDeveloperMessageContentPart::Text(t) in a {
                        text(&mut parts, &t.text);
                    }
                }
            }
            "developer"
        }
        ChatCompletionRequestMessage::System(s) => {
            match &s.content {
                ChatCompletionRequestSystemMessageContent::Text(t) => text(&mut parts, t),
                ChatCompletionRequestSystemMessageContent::Array(a) => {
                    for ChatCompletionRequestSystemMessageContentPart::Text(t) in a {
                        text(&mut parts, &t.text);
                    }
                }
            }
            "system"
        }
        ChatCompletionRequestMessage::User(u) => {
            user_parts(&mut parts, &u.content);
            "user"
        }
        ChatCompletionRequestMessage::Assistant(a) => {
            if let Some(calls) = &a.tool_calls {
                tool_call_parts(&mut parts, calls);
            }
            if let Some(content) = &a.content {
                assistant_parts(&mut parts, content);
            }
            "assistant"
        }
        ChatCompletionRequestMessage::Tool(t) => {
            let response = match &t.content {
                ChatCompletionRequestToolMessageContent::Text(s) => Json::String(s.clone()),
                ChatCompletionRequestToolMessageContent::Array(a) => Json::String(
                    a.iter()
                        .map(|ChatCompletionRequestToolMessageContentPart::Text(t)| t.text.as_str())
                        .collect::<Vec<_>>()
                        .join(""),
                ),
            };
            parts.push(Part::ToolCallResponse { id: Some(t.tool_call_id.clone()), response });
            "tool"
        }
        ChatCompletionRequestMessage::Function(f) => {
            let response = f.content.clone().map_or(Json::Null, Json::String);
            parts.push(Part::ToolCallResponse { id: None, response });
            "function"
        }
    };
    Message { role: Cow::Borrowed(role), parts, finish_reason: None }
}

/// A user message's text and images (audio and files are not captured as content).
fn user_parts(parts: &mut Vec<Part>, content: &ChatCompletionRequestUserMessageContent) {
    match content {
        ChatCompletionRequestUserMessageContent::Text(t) => text(parts, t),
        ChatCompletionRequestUserMessageContent::Array(a) => {
            for p in a {
                match p {
                    ChatCompletionRequestUserMessageContentPart::Text(t) => text(parts, &t.text),
                    // An image by reference (a URL, or a data: URI).
                    ChatCompletionRequestUserMessageContentPart::ImageUrl(i) => {
                        parts.push(Part::Uri { modality: Cow::Borrowed("image"), uri: i.image_url.url.clone() })
                    }
                    _ => {}
                }
            }
        }
    }
}

/// An assistant message's text and refusals.
fn assistant_parts(parts: &mut Vec<Part>, content: &ChatCompletionRequestAssistantMessageContent) {
    match content {
        ChatCompletionRequestAssistantMessageContent::Text(t) => text(parts, t),
        ChatCompletionRequestAssistantMessageContent::Array(items) => {
            for p in items {
                match p {
                    ChatCompletionRequestAssistantMessageContentPart::Text(t) => text(parts, &t.text),
                    ChatCompletionRequestAssistantMessageContentPart::Refusal(r) => text(parts, &r.refusal),
                }
            }
        }
    }
}

/// `input = req.messages` captures async-openai's request messages.
impl crate::policy::content::CaptureMessages for [ChatCompletionRequestMessage] {
    fn to_messages_json(&self) -> Json {
        self.iter().map(request_message).collect::<Vec<_>>().to_messages_json()
    }
}
impl crate::policy::content::CaptureMessages for Vec<ChatCompletionRequestMessage> {
    fn to_messages_json(&self) -> Json {
        self.as_slice().to_messages_json()
    }
}
impl LlmRequest for CreateChatCompletionRequest {
    fn model(&self) -> &str {
        &self.model
    }
    // `seed` and `max_tokens` are deprecated by OpenAI, still sent by users.
    #[allow(deprecated)]
    fn parameters(&self) -> RequestParams {
        let f = |v: Option<f32>| v.map(crate::base::attr_value::widen_f32);
        let mut p = RequestParams {
            temperature: f(self.temperature),
            top_p: f(self.top_p),
            frequency_penalty: f(self.frequency_penalty),
            presence_penalty: f(self.presence_penalty),
            max_tokens: self.max_completion_tokens.or(self.max_tokens).map(u64::from),
            seed: self.seed,
            choice_count: self.n.map(u64::from),
            stop_sequences: match &self.stop {
                Some(StopConfiguration::String(s)) => vec![s.clone()],
                Some(StopConfiguration::StringArray(a)) => a.clone(),
                None => Vec::new(),
            },
            output_type: self.response_format.as_ref().map(|f| {
                Cow::Borrowed(match f {
                    ResponseFormat::Text => "text",
                    ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. } => "json",
                })
            }),
            ..RequestParams::default()
        };
        if let Some(t) = &self.service_tier {
            p.attributes.push(KeyValue::new(sc::OPENAI_REQUEST_SERVICE_TIER, service_tier(t)));
        }
        p
    }
    fn input_messages(&self) -> Option<Vec<Message>> {
        Some(self.messages.iter().map(request_message).collect())
    }
    fn tool_definitions(&self) -> Option<Json> {
        let tools = self.tools.as_ref()?;
        Some(Json::Array(
            tools
                .iter()
                .map(|t| match t {
                    ChatCompletionTools::Function(f) => json!({
                        "type": "function",
                        "name": f.function.name,
                        "description": f.function.description,
                        "parameters": f.function.parameters,
                    }),
                    ChatCompletionTools::Custom(c) => json!({
                        "type": "custom",
                        "name": c.custom.name,
                        "description": c.custom.description,
                    }),
                })
                .collect(),
        ))
    }
}

impl LlmResponse for CreateChatCompletionResponse {
    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(usage)
    }
    fn response_id(&self) -> Option<&str> {
        Some(&self.id)
    }
    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        self.choices.iter().filter_map(|c| c.finish_reason.as_ref().map(finish_reason)).collect()
    }
    fn for_each_finish_reason(&self, f: &mut dyn FnMut(&str)) {
        self.choices.iter().filter_map(|c| c.finish_reason.as_ref().map(finish_reason)).for_each(f)
    }
    fn output_messages(&self) -> Option<Vec<Message>> {
        Some(
            self.choices
                .iter()
                .map(|c| {
                    let mut parts = Vec::new();
                    if let Some(calls) = &c.message.tool_calls {
                        tool_call_parts(&mut parts, calls);
                    }
                    if let Some(t) = &c.message.content {
                        text(&mut parts, t);
                    }
                    Message {
                        role: Cow::Borrowed("assistant"),
                        parts,
                        finish_reason: Some(c.finish_reason.as_ref().map_or("error", finish_reason).to_string()),
                    }
                })
                .collect(),
        )
    }
    fn attributes(&self) -> Vec<KeyValue> {
        #[allow(deprecated)]
        response_attributes(self.service_tier.as_ref(), self.system_fingerprint.as_ref())
    }
}

impl LlmChunk for CreateChatCompletionStreamResponse {
    fn usage(&self) -> Option<Usage> {
        self.usage.as_ref().map(usage)
    }
    fn response_id(&self) -> Option<&str> {
        (!self.id.is_empty()).then_some(self.id.as_str())
    }
    fn response_model(&self) -> Option<&str> {
        (!self.model.is_empty()).then_some(self.model.as_str())
    }
    fn finish_reason(&self) -> Option<&str> {
        self.choices.iter().find_map(|c| c.finish_reason.as_ref().map(finish_reason))
    }
    fn is_output(&self) -> bool {
        self.choices
            .iter()
            .any(|c| c.delta.content.as_deref().is_some_and(|t| !t.is_empty()) || c.delta.tool_calls.is_some())
    }
    fn output_delta(&self, output: &mut StreamOutput) {
        for c in &self.choices {
            if let Some(t) = &c.delta.content {
                output.text(c.index, t);
            }
            for call in c.delta.tool_calls.iter().flatten() {
                let f = call.function.as_ref();
                output.tool_call(
                    c.index,
                    call.index,
                    call.id.as_deref(),
                    f.and_then(|f| f.name.as_deref()),
                    f.and_then(|f| f.arguments.as_deref()),
                );
            }
            if let Some(r) = &c.finish_reason {
                output.finish(c.index, finish_reason(r));
            }
        }
    }
    fn attributes(&self) -> Vec<KeyValue> {
        #[allow(deprecated)]
        response_attributes(self.service_tier.as_ref(), self.system_fingerprint.as_ref())
    }
}

impl LlmRequest for CreateEmbeddingRequest {
    fn model(&self) -> &str {
        &self.model
    }
    fn parameters(&self) -> RequestParams {
        let formats = self.encoding_format.iter().map(|f| match f {
            EncodingFormat::Float => "float".to_string(),
            EncodingFormat::Base64 => "base64".to_string(),
        });
        RequestParams {
            encoding_formats: formats.collect(),
            dimension_count: self.dimensions.map(u64::from),
            ..RequestParams::default()
        }
    }
}

impl LlmResponse for CreateEmbeddingResponse {
    fn usage(&self) -> Option<Usage> {
        Some(Usage { input_tokens: Some(u64::from(self.usage.prompt_tokens)), ..Usage::default() })
    }
    fn response_model(&self) -> Option<&str> {
        Some(&self.model)
    }
    fn attributes(&self) -> Vec<KeyValue> {
        // The dimensions the embeddings actually have.
        match self.data.first() {
            Some(e) => vec![KeyValue::new(sc::GEN_AI_EMBEDDINGS_DIMENSION_COUNT, e.embedding.len() as i64)],
            None => Vec::new(),
        }
    }
}

/// `server.address` and `server.port` of a client's API base (the port
/// only when it is not the scheme's default, as the official instrumentation
/// does).
#[derive(Debug, Clone, Default)]
struct Server {
    address: Option<String>,
    port: Option<u16>,
}

impl Server {
    fn of(api_base: &str) -> Server {
        let (address, port) = crate::genai::request::server_of(api_base);
        Server { address, port }
    }
}

/// Wraps an async-openai client so every chat completion (streamed or not)
/// and embedding request through it is traced: see the module docs.
pub fn instrument<C: Config>(client: Client<C>) -> TracedClient<C> {
    TracedClient::new(client)
}

/// The old name of [`TracedClient`] (renamed in 0.1 to match MCP's `TracedClient`).
#[deprecated(since = "0.1.0", note = "renamed to TracedClient")]
pub type Instrumented<C> = TracedClient<C>;

/// An async-openai [`Client`] whose chat completions and embeddings are
/// traced. It dereferences to the client for everything else.
#[derive(Debug, Clone)]
pub struct TracedClient<C: Config> {
    client: Client<C>,
    server: Server,
}

impl<C: Config> TracedClient<C> {
    /// Wraps `client`; its API base gives `server.address` and `server.port`.
    pub fn new(client: Client<C>) -> Self {
        let server = Server::of(client.config().api_base());
        TracedClient { client, server }
    }
    /// Traced chat completions.
    pub fn chat(&self) -> Chat<'_, C> {
        Chat { of: self }
    }
    /// Traced embeddings.
    pub fn embeddings(&self) -> Embeddings<'_, C> {
        Embeddings { of: self }
    }
    /// The wrapped client.
    pub fn into_inner(self) -> Client<C> {
        self.client
    }
}

impl<C: Config> std::ops::Deref for TracedClient<C> {
    type Target = Client<C>;
    fn deref(&self) -> &Client<C> {
        &self.client
    }
}

/// Traced chat completions of an [`TracedClient`] client.
#[derive(Debug)]
pub struct Chat<'c, C: Config> {
    of: &'c TracedClient<C>,
}

impl<C: Config> Chat<'_, C> {
    /// `client.chat().create(request)`, traced as a `chat {model}` span.
    pub async fn create(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, OpenAIError> {
        chat_create(&self.of.client, &self.of.server, request).await
    }
    /// `client.chat().create_stream(request)`, traced as a `chat {model}`
    /// span that ends with the stream. Ask for the final usage chunk with
    /// `stream_options.include_usage`.
    pub async fn create_stream(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<impl Stream<Item = Result<CreateChatCompletionStreamResponse, OpenAIError>> + use<C>, OpenAIError> {
        chat_create_stream(&self.of.client, &self.of.server, request).await
    }
}

/// Traced embeddings of an [`TracedClient`] client.
#[derive(Debug)]
pub struct Embeddings<'c, C: Config> {
    of: &'c TracedClient<C>,
}

impl<C: Config> Embeddings<'_, C> {
    /// `client.embeddings().create(request)`, traced as an `embeddings {model}` span.
    pub async fn create(&self, request: CreateEmbeddingRequest) -> Result<CreateEmbeddingResponse, OpenAIError> {
        embeddings_create(&self.of.client, &self.of.server, request).await
    }
}

#[observra_macros::llm_call(provider = "openai", request = req, server_address = server.address.as_deref(), server_port = server.port)]
async fn chat_create<C: Config>(
    client: &Client<C>,
    server: &Server,
    req: CreateChatCompletionRequest,
) -> Result<CreateChatCompletionResponse, OpenAIError> {
    client.chat().create(req).await
}

#[observra_macros::llm_call(provider = "openai", request = req, server_address = server.address.as_deref(), server_port = server.port, stream)]
async fn chat_create_stream<C: Config>(
    client: &Client<C>,
    server: &Server,
    req: CreateChatCompletionRequest,
) -> Result<impl Stream<Item = Result<CreateChatCompletionStreamResponse, OpenAIError>> + use<C>, OpenAIError> {
    client.chat().create_stream(req).await
}

#[observra_macros::llm_call(provider = "openai", operation = "embeddings", request = req, server_address = server.address.as_deref(), server_port = server.port)]
async fn embeddings_create<C: Config>(
    client: &Client<C>,
    server: &Server,
    req: CreateEmbeddingRequest,
) -> Result<CreateEmbeddingResponse, OpenAIError> {
    client.embeddings().create(req).await
}
