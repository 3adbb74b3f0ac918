//! A rig agent under observra, with no observra code in the agent: rig 0.44
//! (`rig-core` for the OpenAI-compatible provider, `rig-agent` for the agent
//! loop) emits its own `tracing` spans, and `observra::init().install()`
//! turns them into OpenTelemetry GenAI spans (`invoke_agent support`,
//! `chat gpt-4o-mini`, `execute_tool lookup_order`), GenAI and agent
//! metrics, cost and budgets. The user's `#[workflow]` is the root of the
//! same trace.
//!
//! rig is told to record message content (`record_content_telemetry(true)`)
//! so that observra's content policy is what decides: the messages are
//! dropped unless `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` turns
//! capture on, and redacted when it does (the prompt below pastes an API key).
//!
//! With `OPENAI_BASE_URL` (and `OPENAI_API_KEY`) set, it talks to that API;
//! otherwise it starts a fake OpenAI-compatible server on 127.0.0.1, so
//! `cargo run -p observra-examples --bin rig-agent` needs no network and no
//! key. Telemetry comes from the environment as in every example.

use rig_core::providers::openai::OpenAIConfig;

#[path = "fake_openai.rs"]
mod fake_openai;
#[path = "rig_desk.rs"]
mod rig_desk;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let _telemetry = observra::init().service_name("rig-agent").install()?;
    let (_fake, base, key) = fake_openai::api_base_from_env()?;
    let config = match key {
        Some(key) => OpenAIConfig::new(key).with_base_url(base),
        None => OpenAIConfig::from_env()?,
    };
    let model = std::env::var("RIG_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
    let agent = rig_desk::support_agent(config, &model);
    let reply = rig_desk::handle(&agent, rig_desk::QUESTION).await?;
    eprintln!("agent: {reply}");
    Ok(())
}
