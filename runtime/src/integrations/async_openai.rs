//! [async-openai](https://docs.rs/async-openai) chat completions, with no
//! user code (cargo feature `async-openai`).
//!
//! `CreateChatCompletionResponse` implements [`LlmResponse`] and
//! `CreateChatCompletionStreamResponse` implements [`LlmChunk`], so
//! `#[llm_call]` on a function returning them records usage (OpenAI's rule:
//! `prompt_tokens` already include the cached ones), the response id and
//! model, and finish reasons; a streamed call records time to first chunk and
//! the final chunk's usage (ask for it with `stream_options.include_usage`).
//!
//! ```ignore
//! use async_openai::{Client, config::OpenAIConfig, error::OpenAIError};
//! use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};
//!
//! #[observra::llm_call(provider = "openai", model = req.model, temperature = req.temperature)]
//! async fn complete(client: &Client<OpenAIConfig>, req: CreateChatCompletionRequest)
//!     -> Result<CreateChatCompletionResponse, OpenAIError>
//! {
//!     client.chat().create(req).await
//! }
//! ```

use async_openai::types::chat::{
    CompletionUsage, CreateChatCompletionResponse, CreateChatCompletionStreamResponse, FinishReason,
};

use crate::content::Message;
use crate::genai::stream::LlmChunk;
use crate::genai::{LlmResponse, Usage};

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
    fn output_messages(&self) -> Option<Vec<Message>> {
        Some(
            self.choices
                .iter()
                .map(|c| {
                    let m = Message::text("assistant", c.message.content.clone().unwrap_or_default());
                    match &c.finish_reason {
                        Some(r) => m.with_finish_reason(finish_reason(r)),
                        None => m,
                    }
                })
                .collect(),
        )
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
}
