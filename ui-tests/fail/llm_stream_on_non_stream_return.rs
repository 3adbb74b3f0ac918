#[observra::llm_call(provider = "openai", model = "gpt-4o", stream)]
fn f() -> Vec<String> {
    Vec::new()
}
fn main() {}
