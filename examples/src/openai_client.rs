//! The async-openai examples' client: `OPENAI_BASE_URL` (and the key from
//! `OPENAI_API_KEY`, as async-openai reads it) when it is set, else the fake
//! OpenAI server, instrumented with the one line observra asks for. Keep
//! the returned server alive as long as the client.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use observra::integrations::async_openai::{TracedClient, instrument};

use crate::fake_openai::{self, FakeOpenAi};

/// The instrumented client, and the fake server it talks to when no real one is set.
pub fn instrumented() -> std::io::Result<(TracedClient<OpenAIConfig>, Option<FakeOpenAi>)> {
    let (fake, base, key) = fake_openai::api_base_from_env()?;
    let config = OpenAIConfig::new().with_api_base(base);
    let config = match key {
        Some(key) => config.with_api_key(key),
        None => config,
    };
    // The one line: every call through this client is traced.
    Ok((instrument(Client::with_config(config)), fake))
}
