#[observra::llm_call(provider = "openai", model = "gpt-4o", operation = "summarize")]
fn f() -> observra::Usage {
    observra::Usage::default()
}
fn main() {}
