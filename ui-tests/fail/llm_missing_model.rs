#[observra::llm_call(provider = "openai")]
fn f() -> observra::Usage {
    observra::Usage::default()
}
fn main() {}
