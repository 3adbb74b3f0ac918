#[observra::llm_call(model = "gpt-4o")]
fn f() -> observra::Usage {
    observra::Usage::default()
}
fn main() {}
