//! The OpenAI conformance scenarios of the official OpenTelemetry
//! conformance harness (open-telemetry/semantic-conventions-conformance,
//! `scenarios/gen-ai/python/openai/scenarios/*.py`), made with async-openai
//! through observra's instrumented client: the same requests, one scenario
//! per run.
//!
//! ```sh
//! OPENAI_BASE_URL=http://127.0.0.1:8080/v1 OPENAI_API_KEY=test \
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
//! OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_AND_EVENT \
//! cargo run -p observra-examples --bin openai-conformance -- inference
//! ```
//!
//! Scenarios: `inference`, `streaming`, `tool_calling`, `structured_output`,
//! `multimodal`, `embeddings` (`all` runs each in turn). Telemetry comes
//! from the environment, as the harness sets it; `scripts/conformance.sh`
//! runs them under Weaver live-check. Without `OPENAI_BASE_URL` the fake
//! OpenAI server of the examples answers.

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestMessageContentPartImageArgs, ChatCompletionRequestMessageContentPartTextArgs,
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestToolMessageArgs, ChatCompletionRequestUserMessageArgs,
    ChatCompletionRequestUserMessageContentPart, ChatCompletionStreamOptions, ChatCompletionTool,
    ChatCompletionToolChoiceOption, ChatCompletionTools, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
    FunctionObjectArgs, ImageUrlArgs, ResponseFormat, ResponseFormatJsonSchema, ServiceTier, StopConfiguration,
    ToolChoiceOptions,
};
use async_openai::types::embeddings::{CreateEmbeddingRequestArgs, EncodingFormat};
use observra::integrations::async_openai::TracedClient;
use serde_json::json;

#[path = "fake_openai.rs"]
mod fake_openai;
#[path = "openai_client.rs"]
mod openai_client;

const SCENARIOS: &[&str] = &["inference", "streaming", "tool_calling", "structured_output", "multimodal", "embeddings"];

fn system_and_user(user: &str) -> Result<Vec<ChatCompletionRequestMessage>, OpenAIError> {
    Ok(vec![
        ChatCompletionRequestSystemMessageArgs::default().content("You are a helpful assistant.").build()?.into(),
        ChatCompletionRequestUserMessageArgs::default().content(user).build()?.into(),
    ])
}

/// The request of `inference.py`: every sampling option the conventions name.
#[allow(deprecated)]
fn sampled(stream: bool) -> Result<CreateChatCompletionRequest, OpenAIError> {
    let mut b = CreateChatCompletionRequestArgs::default();
    b.model("gpt-4o-mini")
        .messages(system_and_user("Say this is a test")?)
        .max_tokens(100u32)
        .temperature(0.5)
        .top_p(0.9)
        .frequency_penalty(0.1)
        .presence_penalty(0.2)
        .stop(StopConfiguration::StringArray(vec!["\n\n".into()]))
        .seed(42)
        .service_tier(ServiceTier::Default);
    if stream {
        b.stream_options(ChatCompletionStreamOptions { include_usage: Some(true), ..Default::default() });
    }
    b.build()
}

fn weather_tool() -> Result<ChatCompletionTools, OpenAIError> {
    Ok(ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObjectArgs::default()
            .name("get_current_weather")
            .description("Get the current weather in a given location")
            .parameters(json!({
                "type": "object",
                "properties": {"location": {"type": "string", "description": "The city and state, e.g. Boston, MA"}},
                "required": ["location"],
                "additionalProperties": false
            }))
            .build()?,
    }))
}

#[allow(deprecated)]
async fn run(client: &TracedClient<OpenAIConfig>, scenario: &str) -> Result<(), OpenAIError> {
    match scenario {
        "inference" => {
            client.chat().create(sampled(false)?).await?;
        }
        "streaming" => {
            use std::pin::Pin;
            let mut stream = Box::pin(client.chat().create_stream(sampled(true)?).await?);
            while let Some(chunk) =
                std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut stream), cx)).await
            {
                chunk?;
            }
        }
        "tool_calling" => {
            let mut messages = system_and_user("What's the weather in Seattle today?")?;
            let first = CreateChatCompletionRequestArgs::default()
                .model("gpt-4o-mini")
                .messages(messages.clone())
                .tools(vec![weather_tool()?])
                .tool_choice(ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::Auto))
                .max_tokens(100u32)
                .temperature(0.5)
                .build()?;
            let answer = client.chat().create(first).await?;
            let Some(choice) = answer.choices.first() else { return Ok(()) };
            let calls = choice.message.tool_calls.clone().unwrap_or_default();
            messages
                .push(ChatCompletionRequestAssistantMessageArgs::default().tool_calls(calls.clone()).build()?.into());
            for call in calls {
                if let ChatCompletionMessageToolCalls::Function(f) = call {
                    let args: serde_json::Value = serde_json::from_str(&f.function.arguments).unwrap_or_default();
                    let location = args["location"].as_str().unwrap_or("Seattle").to_string();
                    messages.push(
                        ChatCompletionRequestToolMessageArgs::default()
                            .content(format!("70 degrees and sunny in {location}"))
                            .tool_call_id(f.id)
                            .build()?
                            .into(),
                    );
                }
            }
            let second = CreateChatCompletionRequestArgs::default()
                .model("gpt-4o-mini")
                .messages(messages)
                .tools(vec![weather_tool()?])
                .max_tokens(100u32)
                .temperature(0.5)
                .build()?;
            client.chat().create(second).await?;
        }
        "structured_output" => {
            let schema = json!({
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "temperature": {"type": "integer"},
                    "conditions": {"enum": ["sunny", "cloudy", "rainy"]}
                },
                "required": ["location", "temperature", "conditions"],
                "additionalProperties": false
            });
            let req = CreateChatCompletionRequestArgs::default()
                .model("gpt-4o-mini")
                .messages(system_and_user("What is the weather in Seattle?")?)
                .response_format(ResponseFormat::JsonSchema {
                    json_schema: ResponseFormatJsonSchema {
                        name: "forecast".into(),
                        strict: Some(true),
                        schema,
                        description: None,
                    },
                })
                .build()?;
            client.chat().create(req).await?;
        }
        "multimodal" => {
            let parts: Vec<ChatCompletionRequestUserMessageContentPart> = vec![
                ChatCompletionRequestMessageContentPartTextArgs::default()
                    .text("What is in this image?")
                    .build()?
                    .into(),
                ChatCompletionRequestMessageContentPartImageArgs::default()
                    .image_url(ImageUrlArgs::default().url("https://example.com/cat.png").build()?)
                    .build()?
                    .into(),
            ];
            let req = CreateChatCompletionRequestArgs::default()
                .model("gpt-4o-mini")
                .messages([ChatCompletionRequestUserMessageArgs::default().content(parts).build()?.into()])
                .max_tokens(100u32)
                .build()?;
            client.chat().create(req).await?;
        }
        "embeddings" => {
            let req = CreateEmbeddingRequestArgs::default()
                .model("text-embedding-3-small")
                .input(["Say this is a test", "And this is another one"])
                .encoding_format(EncodingFormat::Float)
                .dimensions(256u32)
                .build()?;
            client.embeddings().create(req).await?;
        }
        other => {
            return Err(OpenAIError::InvalidArgument(format!("no scenario {other:?}; one of {SCENARIOS:?} or all")));
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let scenario = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let telemetry = observra::init().service_name("openai-conformance").install()?;
    let (client, _fake) = openai_client::instrumented()?;
    let names: Vec<&str> = if scenario == "all" { SCENARIOS.to_vec() } else { vec![scenario.as_str()] };
    for name in names {
        run(&client, name).await?;
    }
    drop(telemetry); // flushes spans, metrics and logs before exit
    Ok(())
}
