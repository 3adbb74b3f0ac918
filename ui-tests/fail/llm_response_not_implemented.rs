pub struct ForeignResponse {
    pub text: String,
}
#[observra::llm_call(provider = "openai", model = "gpt-4o")]
fn f() -> Result<ForeignResponse, std::io::Error> {
    Ok(ForeignResponse { text: String::new() })
}
fn main() {}
