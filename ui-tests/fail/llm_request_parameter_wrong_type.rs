struct Temperature(f64);
#[observra::llm_call(provider = "openai", model = "gpt-4o", temperature = t)]
fn f(t: Temperature) -> observra::Usage {
    let _ = t.0;
    observra::Usage::default()
}
fn main() {}
