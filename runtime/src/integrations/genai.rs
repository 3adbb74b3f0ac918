//! [genai](https://docs.rs/genai): one client for OpenAI, Anthropic,
//! Gemini, DeepSeek, Groq, xAI, Ollama and more, traced with no user code
//! (cargo feature `genai`).
//!
//! **One line:** wrap the client, and every `exec_chat`,
//! `exec_chat_stream` and `embed` through it is a GenAI span with the
//! conventions' metrics, cost and budgets, whatever the provider:
//!
//! ```ignore
//! let client = observra::integrations::genai::instrument(genai::Client::new()?);
//! let reply = client.exec_chat("claude-sonnet-4-5", request, None).await?; // chat claude-sonnet-4-5
//! ```
//!
//! The provider (`gen_ai.provider.name`: `anthropic`, `gcp.gemini`,
//! `openai`, ...) and `server.address`/`server.port` come from the target
//! genai resolves for the model; the request parameters from the
//! `ChatOptions`; usage from genai's normalised usage, in which Anthropic's
//! cache reads and writes are part of the input tokens, so they are
//! counted once and priced as cache reads and writes. A streamed call asks
//! genai to capture the usage, so its final event carries it. genai reports
//! the provider's response id (`gen_ai.response.id`) for OpenAI's Responses
//! API only; for other providers it is read from the raw body when
//! `ChatOptions::with_capture_raw_body(true)` keeps it.
//!
//! Why wrap responses rather than read genai's own `otel` spans through the
//! layer: the wrapper reads typed values (usage split by cache kind, stop
//! reasons, tool calls) where the spans carry what genai chose to name, it
//! works with genai's `otel` feature off (its default), and it is the same
//! record path as every other model call (one span, metrics, cost, budgets,
//! content policy). Leave genai's `otel` feature off when using it, or both
//! would be recorded.

use std::borrow::Cow;

use genai::adapter::AdapterKind;
use genai::chat::{
    ChatMessage, ChatOptions, ChatRequest, ChatResponse, ChatResponseFormat, ChatRole, ChatStreamEvent,
    ChatStreamResponse, ContentPart, MessageContent, StopReason,
};
use genai::embed::{EmbedOptions, EmbedResponse};
use genai::{Client, ModelIden};
use opentelemetry::KeyValue;
use serde_json::{Value as Json, json};

use crate::genai::request::{LlmRequest, RequestParams};
use crate::genai::stream::{LlmChunk, StreamOutput};
use crate::genai::{LlmResponse, Usage};
use crate::policy::content::{Message, Part};
use observra_semconv as sc;

/// The conventions' provider name for a genai adapter.
pub fn provider_name(kind: AdapterKind) -> &'static str {
    match kind {
        AdapterKind::OpenAI | AdapterKind::OpenAIResp => "openai",
        AdapterKind::Gemini | AdapterKind::GeminiIx => "gcp.gemini",
        AdapterKind::Anthropic => "anthropic",
        AdapterKind::Groq => "groq",
        AdapterKind::DeepSeek => "deepseek",
        AdapterKind::Xai => "x_ai",
        AdapterKind::Cohere => "cohere",
        AdapterKind::Mistral => "mistral_ai",
        AdapterKind::Moonshot => "moonshot_ai",
        AdapterKind::BedrockApi => "aws.bedrock",
        AdapterKind::Vertex => "gcp.vertex_ai",
        other => other.as_lower_str(),
    }
}

fn usage(u: &genai::chat::Usage) -> Option<Usage> {
    let n = |v: Option<i32>| v.and_then(|v| u64::try_from(v).ok());
    let (input, output) = (n(u.prompt_tokens), n(u.completion_tokens));
    if input.is_none() && output.is_none() {
        return None;
    }
    let details = u.prompt_tokens_details.as_ref();
    // genai normalises every provider to OpenAI's rule: prompt tokens
    // include the cache reads (`cached_tokens`) and writes.
    Some(Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_input_tokens: details.and_then(|d| n(d.cached_tokens)),
        cache_creation_input_tokens: details.and_then(|d| n(d.cache_creation_tokens)),
        reasoning_output_tokens: u.completion_tokens_details.as_ref().and_then(|d| n(d.reasoning_tokens)),
    })
}

/// The conventions' spelling of a stop reason (a reason genai does not
/// know is kept as the provider gave it).
fn finish_str(reason: &StopReason) -> &str {
    match reason {
        StopReason::Completed(_) | StopReason::StopSequence(_) => "stop",
        StopReason::MaxTokens(_) => "length",
        StopReason::ToolCall(_) => "tool_calls",
        StopReason::ContentFilter(_) => "content_filter",
        StopReason::Other(raw) => raw,
    }
}

fn parts(content: &MessageContent) -> Vec<Part> {
    content
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text(t) => Some(Part::Text(t.clone())),
            ContentPart::ToolCall(c) => Some(Part::ToolCall {
                id: Some(c.call_id.clone()),
                name: c.fn_name.clone(),
                arguments: c.fn_arguments.clone(),
            }),
            ContentPart::ToolResponse(r) => {
                Some(Part::ToolCallResponse { id: Some(r.call_id.clone()), response: Json::String(r.content.clone()) })
            }
            // Binary parts (images, files) and provider signatures are not captured as content.
            _ => None,
        })
        .collect()
}

fn role(r: &ChatRole) -> &'static str {
    match r {
        ChatRole::System => "system",
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
        ChatRole::Tool => "tool",
    }
}

fn message(m: &ChatMessage) -> Message {
    Message { role: Cow::Borrowed(role(&m.role)), parts: parts(&m.content), finish_reason: None }
}

impl LlmResponse for ChatResponse {
    fn usage(&self) -> Option<Usage> {
        usage(&self.usage)
    }
    fn response_id(&self) -> Option<&str> {
        // genai gives OpenAI's Responses API id; other providers' ids are
        // only in the raw body, kept when `capture_raw_body` is on.
        self.response_id.as_deref().or_else(|| {
            let raw = self.captured_raw_body.as_ref()?;
            raw.get("id").or_else(|| raw.get("responseId")).and_then(Json::as_str)
        })
    }
    fn response_model(&self) -> Option<&str> {
        Some(&self.provider_model_iden.model_name)
    }
    fn finish_reasons(&self) -> Vec<&str> {
        self.stop_reason.iter().map(finish_str).collect()
    }
    fn for_each_finish_reason(&self, f: &mut dyn FnMut(&str)) {
        self.stop_reason.iter().map(finish_str).for_each(f)
    }
    fn output_messages(&self) -> Option<Vec<Message>> {
        let mut message = Message {
            role: Cow::Borrowed("assistant"),
            parts: parts(&self.content),
            finish_reason: Some(self.stop_reason.as_ref().map_or("error", finish_str).to_string()),
        };
        if message.parts.is_empty() {
            message.parts.push(Part::Text(String::new()));
        }
        Some(vec![message])
    }
}

impl LlmResponse for EmbedResponse {
    fn usage(&self) -> Option<Usage> {
        let input = self.usage.prompt_tokens.and_then(|v| u64::try_from(v).ok())?;
        Some(Usage { input_tokens: Some(input), ..Usage::default() })
    }
    fn response_model(&self) -> Option<&str> {
        Some(&self.provider_model_iden.model_name)
    }
    fn attributes(&self) -> Vec<KeyValue> {
        match self.embeddings.first() {
            Some(e) => vec![KeyValue::new(sc::GEN_AI_EMBEDDINGS_DIMENSION_COUNT, e.vector().len() as i64)],
            None => Vec::new(),
        }
    }
}

impl LlmChunk for ChatStreamEvent {
    fn usage(&self) -> Option<Usage> {
        match self {
            ChatStreamEvent::End(end) => end.captured_usage.as_ref().and_then(usage),
            _ => None,
        }
    }
    fn response_id(&self) -> Option<&str> {
        match self {
            ChatStreamEvent::End(end) => end.captured_response_id.as_deref(),
            _ => None,
        }
    }
    fn finish_reason(&self) -> Option<&str> {
        match self {
            ChatStreamEvent::End(end) => end.captured_stop_reason.as_ref().map(finish_str),
            _ => None,
        }
    }
    fn is_output(&self) -> bool {
        matches!(
            self,
            ChatStreamEvent::Chunk(_) | ChatStreamEvent::ReasoningChunk(_) | ChatStreamEvent::ToolCallChunk(_)
        )
    }
    fn output_delta(&self, output: &mut StreamOutput) {
        match self {
            ChatStreamEvent::Start => output.role(0, "assistant"),
            ChatStreamEvent::Chunk(c) => output.text(0, &c.content),
            ChatStreamEvent::ToolCallChunk(t) => {
                // genai delivers each tool call whole, its arguments as JSON.
                let c = &t.tool_call;
                output.push_tool_call(0, Some(&c.call_id), &c.fn_name, &c.fn_arguments.to_string());
            }
            ChatStreamEvent::End(end) => {
                if let Some(r) = &end.captured_stop_reason {
                    output.finish(0, finish_str(r));
                }
            }
            _ => {}
        }
    }
}

/// A chat request to genai with what it is sent with: the model, the
/// options, and the target genai resolved for it.
pub struct GenaiRequest<'a> {
    /// The model asked for.
    pub model: &'a str,
    /// The request.
    pub chat: &'a ChatRequest,
    /// The options it is sent with.
    pub options: Option<&'a ChatOptions>,
    /// The provider genai resolved the model to.
    pub provider: Option<AdapterKind>,
    /// The endpoint it is sent to.
    pub endpoint: Option<&'a str>,
}

/// The attributes of the target genai resolved: `server.*` from its
/// endpoint, and the adapter's provider (the call site's is `genai`).
fn target_attributes(provider: Option<AdapterKind>, endpoint: Option<&str>) -> Vec<KeyValue> {
    let mut out = Vec::new();
    let (address, port) = endpoint.map(crate::genai::request::server_of).unwrap_or_default();
    if let Some(host) = address {
        out.push(KeyValue::new(sc::SERVER_ADDRESS, host));
    }
    if let Some(port) = port {
        out.push(KeyValue::new(sc::SERVER_PORT, i64::from(port)));
    }
    if let Some(kind) = provider {
        out.push(KeyValue::new(sc::GEN_AI_PROVIDER_NAME, provider_name(kind)));
    }
    out
}

impl LlmRequest for GenaiRequest<'_> {
    fn model(&self) -> &str {
        self.model
    }
    fn parameters(&self) -> RequestParams {
        let o = self.options;
        RequestParams {
            temperature: o.and_then(|o| o.temperature),
            top_p: o.and_then(|o| o.top_p),
            max_tokens: o.and_then(|o| o.max_tokens).map(u64::from),
            stop_sequences: o.map(|o| o.stop_sequences.clone()).unwrap_or_default(),
            seed: o.and_then(|o| o.seed).and_then(|s| i64::try_from(s).ok()),
            output_type: o.and_then(|o| o.response_format.as_ref()).map(|f| match f {
                ChatResponseFormat::JsonMode | ChatResponseFormat::JsonSpec(_) => Cow::Borrowed("json"),
            }),
            attributes: target_attributes(self.provider, self.endpoint),
            ..RequestParams::default()
        }
    }
    fn input_messages(&self) -> Option<Vec<Message>> {
        Some(self.chat.messages.iter().map(message).collect())
    }
    fn system_instructions(&self) -> Option<Vec<Part>> {
        self.chat.system.as_ref().map(|s| vec![Part::Text(s.clone())])
    }
    fn tool_definitions(&self) -> Option<Json> {
        let tools = self.chat.tools.as_ref()?;
        Some(Json::Array(
            tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "name": t.name.as_str(), "description": t.description, "parameters": t.schema})
                })
                .collect(),
        ))
    }
}

/// An embedding request to genai.
struct GenaiEmbed<'a> {
    model: &'a str,
    options: Option<&'a EmbedOptions>,
    provider: Option<AdapterKind>,
    endpoint: Option<&'a str>,
}

impl LlmRequest for GenaiEmbed<'_> {
    fn model(&self) -> &str {
        self.model
    }
    fn parameters(&self) -> RequestParams {
        RequestParams {
            dimension_count: self.options.and_then(|o| o.dimensions).map(|d| d as u64),
            encoding_formats: self.options.and_then(|o| o.encoding_format.clone()).into_iter().collect(),
            attributes: target_attributes(self.provider, self.endpoint),
            ..RequestParams::default()
        }
    }
}

/// Wraps a genai client so every chat (streamed or not) and embedding
/// request through it is traced: see the module docs.
pub fn instrument(client: Client) -> TracedClient {
    TracedClient { client }
}

/// The old name of [`TracedClient`] (renamed in 0.1 to match MCP's `TracedClient`).
#[deprecated(since = "0.1.0", note = "renamed to TracedClient")]
pub type Instrumented = TracedClient;

/// A genai [`Client`] whose chats and embeddings are traced. It
/// dereferences to the client for everything else.
#[derive(Debug, Clone)]
pub struct TracedClient {
    client: Client,
}

/// The events of a traced streamed chat.
pub type ChatEvents = std::pin::Pin<Box<dyn futures_core::Stream<Item = genai::Result<ChatStreamEvent>> + Send>>;

/// A streamed chat: genai's events, observed until the stream ends (or is
/// dropped, which ends the call as cancelled).
pub struct TracedChatStream {
    /// The events.
    pub stream: ChatEvents,
    /// The model genai used.
    pub model_iden: ModelIden,
}

impl std::fmt::Debug for TracedChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedChatStream").field("model_iden", &self.model_iden).finish_non_exhaustive()
    }
}

impl TracedClient {
    /// The wrapped client.
    pub fn into_inner(self) -> Client {
        self.client
    }

    async fn target(&self, model: &str) -> (Option<AdapterKind>, Option<String>) {
        match self.client.resolve_service_target(model).await {
            Ok(t) => (Some(t.model.adapter_kind), Some(t.endpoint.base_url().to_string())),
            Err(_) => (None, None),
        }
    }

    /// `client.exec_chat(model, request, options)`, traced as `chat {model}`.
    pub async fn exec_chat(
        &self,
        model: &str,
        request: ChatRequest,
        options: Option<&ChatOptions>,
    ) -> genai::Result<ChatResponse> {
        let (provider, endpoint) = self.target(model).await;
        let req = GenaiRequest { model, chat: &request, options, provider, endpoint: endpoint.as_deref() };
        chat(&self.client, req, request.clone()).await
    }

    /// `client.exec_chat_stream(model, request, options)`, traced as
    /// `chat {model}` until the stream ends. Usage capture is turned on
    /// (unless the options turn it off) so the final event carries it.
    pub async fn exec_chat_stream(
        &self,
        model: &str,
        request: ChatRequest,
        options: Option<&ChatOptions>,
    ) -> genai::Result<TracedChatStream> {
        let mut with_usage = options.cloned().unwrap_or_default();
        if with_usage.capture_usage.is_none() {
            with_usage.capture_usage = Some(true);
        }
        if with_usage.capture_tool_calls.is_none() {
            with_usage.capture_tool_calls = Some(true);
        }
        let (provider, endpoint) = self.target(model).await;
        let req =
            GenaiRequest { model, chat: &request, options: Some(&with_usage), provider, endpoint: endpoint.as_deref() };
        let (stream, model_iden) = chat_stream(&self.client, req, request.clone(), &with_usage).await?;
        Ok(TracedChatStream { stream, model_iden })
    }

    /// `client.embed(model, input, options)`, traced as `embeddings {model}`.
    pub async fn embed(
        &self,
        model: &str,
        input: impl Into<String>,
        options: Option<&EmbedOptions>,
    ) -> genai::Result<EmbedResponse> {
        let (provider, endpoint) = self.target(model).await;
        let req = GenaiEmbed { model, options, provider, endpoint: endpoint.as_deref() };
        embed(&self.client, req, input.into(), options).await
    }
}

impl std::ops::Deref for TracedClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

#[observra_macros::llm_call(provider = "genai", request = req)]
async fn chat(client: &Client, req: GenaiRequest<'_>, request: ChatRequest) -> genai::Result<ChatResponse> {
    client.exec_chat(req.model, request, req.options).await
}

#[observra_macros::llm_call(provider = "genai", request = req, stream)]
async fn stream_inner(
    client: &Client,
    req: GenaiRequest<'_>,
    request: ChatRequest,
    options: &ChatOptions,
    model_iden: &mut Option<ModelIden>,
) -> genai::Result<impl futures_core::Stream<Item = genai::Result<ChatStreamEvent>> + use<>> {
    let ChatStreamResponse { stream, model_iden: iden } =
        client.exec_chat_stream(req.model, request, Some(options)).await?;
    *model_iden = Some(iden);
    Ok(stream)
}

async fn chat_stream(
    client: &Client,
    req: GenaiRequest<'_>,
    request: ChatRequest,
    options: &ChatOptions,
) -> genai::Result<(ChatEvents, ModelIden)> {
    let model = req.model.to_string();
    let mut iden = None;
    let stream = stream_inner(client, req, request, options, &mut iden).await?;
    let iden = iden.unwrap_or_else(|| ModelIden::new(AdapterKind::OpenAI, model));
    Ok((Box::pin(stream), iden))
}

#[observra_macros::llm_call(provider = "genai", operation = "embeddings", request = req)]
async fn embed(
    client: &Client,
    req: GenaiEmbed<'_>,
    input: String,
    options: Option<&EmbedOptions>,
) -> genai::Result<EmbedResponse> {
    client.embed(req.model, input, options).await
}
