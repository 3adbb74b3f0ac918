//! The async-openai integration: `#[llm_call]` on functions returning
//! async-openai's chat completion types records usage, model, id and finish
//! reasons with no user code, streamed or not. The client talks to a fake
//! OpenAI-compatible server on 127.0.0.1 (no network, no key).

use std::pin::Pin;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
};
use futures_core::Stream;
use observra::llm_call;
use observra_test_support::fake_openai::FakeOpenAi;
use observra_test_support::{Receiver, Val, install_http, serial, span};

#[llm_call(provider = "openai", model = req.model, temperature = req.temperature.unwrap_or(1.0))]
async fn complete(
    client: &Client<OpenAIConfig>,
    req: CreateChatCompletionRequest,
) -> Result<CreateChatCompletionResponse, OpenAIError> {
    client.chat().create(req).await
}

#[llm_call(provider = "openai", model = req.model, stream)]
async fn complete_streaming(
    client: &Client<OpenAIConfig>,
    req: CreateChatCompletionRequest,
) -> Result<impl Stream<Item = Result<CreateChatCompletionStreamResponse, OpenAIError>>, OpenAIError> {
    client.chat().create_stream(req).await
}

fn request(model: &str, stream: bool) -> CreateChatCompletionRequest {
    let mut b = CreateChatCompletionRequestArgs::default();
    b.model(model).temperature(0.2).messages([ChatCompletionRequestUserMessageArgs::default()
        .content("Where is my order A-1001?")
        .build()
        .unwrap()
        .into()]);
    if stream {
        b.stream_options(ChatCompletionStreamOptions { include_usage: Some(true), ..Default::default() });
    }
    b.build().unwrap()
}

fn int(s: &observra_test_support::ReceivedSpan, k: &str) -> i64 {
    match s.attr(k) {
        Some(Val::Int(i)) => *i,
        other => panic!("{k}: {other:?}"),
    }
}

/// The fake server, the receiver, an installed pipeline, a client and a runtime.
struct Harness {
    _fake: FakeOpenAi,
    rx: Receiver,
    guard: observra::Guard,
    client: Client<OpenAIConfig>,
    rt: tokio::runtime::Runtime,
}

impl Harness {
    fn start() -> Harness {
        let fake = FakeOpenAi::start().unwrap();
        let rx = Receiver::start();
        let guard = install_http(&rx, &[]);
        let client = Client::with_config(OpenAIConfig::new().with_api_base(fake.api_base()).with_api_key("test-key"));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Harness { _fake: fake, rx, guard, client, rt }
    }
}

#[test]
fn chat_completions_are_recorded_with_no_user_code() {
    let _s = serial();
    let Harness { _fake, rx, guard, client, rt } = Harness::start();
    let response = rt.block_on(complete(&client, request("gpt-4o-mini", false))).expect("fake completion");
    assert_eq!(response.choices[0].message.content.as_deref(), Some("Your order ships today."));
    let failure = rt.block_on(complete(&client, request("fail-model", false)));
    assert!(failure.is_err());
    drop(guard);

    let spans = rx.spans();
    let s = span(&spans, "chat gpt-4o-mini");
    assert_eq!(s.kind, 3);
    assert_eq!(s.str_attr("gen_ai.response.id"), Some("chatcmpl-fake-1"));
    assert_eq!(s.str_attr("gen_ai.response.model"), Some("gpt-4o-mini-2024-07-18"));
    let input = int(s, "gen_ai.usage.input_tokens");
    assert!(input > 900, "prompt_tokens, cached ones included: {input}");
    assert_eq!(int(s, "gen_ai.usage.cache_read.input_tokens"), 768);
    assert_eq!(int(s, "gen_ai.usage.output_tokens"), 48);
    assert_eq!(int(s, "gen_ai.usage.reasoning.output_tokens"), 16);
    assert_eq!(s.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("stop".into())])));
    let expected = ((input - 768) as f64 * 0.15 + 768.0 * 0.075 + 48.0 * 0.60) / 1e6;
    match s.attr("observra.cost.usd") {
        Some(Val::Double(c)) => assert!((c - expected).abs() < 1e-12, "{c} vs {expected}"),
        other => panic!("cost: {other:?}"),
    }
    let failed = span(&spans, "chat fail-model");
    assert_eq!(failed.status_code, 2);
    assert_eq!(failed.str_attr("error.type"), Some("async_openai::error::OpenAIError"));
    assert!(failed.attr("gen_ai.usage.input_tokens").is_none());
}

#[test]
fn streamed_chat_completions_record_time_to_first_chunk_and_final_usage() {
    let _s = serial();
    let Harness { _fake, rx, guard, client, rt } = Harness::start();
    let text = rt.block_on(async {
        let mut stream = Box::pin(complete_streaming(&client, request("gpt-4o-mini", true)).await.expect("stream"));
        let mut text = String::new();
        while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
            let chunk = item.expect("chunk");
            for c in &chunk.choices {
                text.push_str(c.delta.content.as_deref().unwrap_or(""));
            }
        }
        text
    });
    assert_eq!(text, "Your order ships today.");
    drop(guard);
    let spans = rx.spans();
    let s = span(&spans, "chat gpt-4o-mini");
    assert_eq!(s.attr("gen_ai.request.stream"), Some(&Val::Bool(true)));
    assert!(matches!(s.attr("gen_ai.response.time_to_first_chunk"), Some(Val::Double(t)) if *t > 0.0));
    assert_eq!(s.str_attr("gen_ai.response.id"), Some("chatcmpl-fake-1"));
    assert_eq!(int(s, "gen_ai.usage.output_tokens"), 48, "usage from the final chunk");
    assert_eq!(s.attr("gen_ai.response.finish_reasons"), Some(&Val::Array(vec![Val::Str("stop".into())])));
    assert_eq!(s.status_code, 0);
}
