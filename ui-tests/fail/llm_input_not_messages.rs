struct Prompt;
#[observra::llm_call(provider = "openai", model = "gpt-4o", input = p)]
fn f(p: &Prompt) -> observra::Usage {
    let _ = p;
    observra::Usage::default()
}
fn main() {}
