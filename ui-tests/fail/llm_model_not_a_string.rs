#[observra::llm_call(provider = "openai", model = 42)]
fn f() -> observra::Usage {
    observra::Usage::default()
}
fn main() {}
