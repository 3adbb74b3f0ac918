#[observra::llm_call(provider = "openai", model = "gpt-4o", temperature, max_tokens, stop_sequences, server_port, conversation_id, input, system)]
fn f() -> observra::Usage {
    observra::Usage::default()
}
fn main() {}
