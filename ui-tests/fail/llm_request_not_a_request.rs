struct Ask;
#[observra::llm_call(provider = "openai", request = req)]
fn f(req: &Ask) -> observra::Usage {
    let _ = req;
    observra::Usage::default()
}
fn main() {}
