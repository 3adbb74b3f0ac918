#[observra::llm_call(provider = "openai", model = "gpt-4o", response = maybe)]
fn f() -> observra::Usage {
    observra::Usage::default()
}
fn main() {}
