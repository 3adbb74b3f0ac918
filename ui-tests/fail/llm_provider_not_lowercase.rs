#[observra::llm_call(provider = "OpenAI", model = "gpt-4o")]
fn f() -> observra::Usage {
    observra::Usage::default()
}
fn main() {}
