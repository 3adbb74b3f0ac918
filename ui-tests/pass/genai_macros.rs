//! Every argument of the GenAI macros in its accepted forms.
use futures_core::Stream;
use observra::{LlmChunk, LlmResponse, Message, Usage, agent, llm_call, tool_call, workflow};

pub struct Req {
    pub model: String,
    pub temperature: f64,
    pub stop: Vec<String>,
    pub messages: Vec<Message>,
    pub conversation: String,
}

pub struct Resp;
impl LlmResponse for Resp {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(1, 2))
    }
}

pub struct Chunk;
impl LlmChunk for Chunk {}

pub struct Empty;
impl Stream for Empty {
    type Item = Chunk;
    fn poll_next(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<Chunk>> {
        std::task::Poll::Ready(None)
    }
}

#[llm_call(provider = "openai", model = req.model)]
fn minimal(req: &Req) -> Resp {
    let _ = req;
    Resp
}

#[llm_call(
    provider = "aws.bedrock",
    model = req.model,
    operation = "chat",
    temperature = req.temperature,
    max_tokens = 100,
    top_p = 0.9,
    top_k = 5,
    stop_sequences = req.stop,
    seed = 7,
    frequency_penalty = 0.0,
    presence_penalty = 0.0,
    choice_count = 1,
    server_address = "bedrock.example",
    server_port = 443,
    conversation_id = req.conversation,
    input = req.messages,
    system = "be brief",
    attrs(team = "search"),
    fields(req_id),
)]
async fn everything(req: &Req, req_id: u32) -> Result<Resp, std::io::Error> {
    let _ = (req, req_id);
    Ok(Resp)
}

#[llm_call(provider = "openai", model = "text-embedding-3-small", operation = embeddings)]
fn embed(_text: &str) -> Usage {
    Usage { input_tokens: Some(3), ..Usage::default() }
}

#[llm_call(provider = "gcp.gemini", model = "gemini-2.5-flash", operation = "generate_content", input = serde_json::json!([]))]
fn gemini() -> Usage {
    Usage::default()
}

#[llm_call(provider = "openai", model = "gpt-4o", operation = "text_completion", response = manual)]
fn foreign() -> (String, u32) {
    observra::current_llm_call().record_usage(Usage::new(1, 1));
    (String::new(), 0)
}

#[llm_call(provider = "openai", model = m, stream)]
fn streaming(m: &str) -> impl Stream<Item = Chunk> {
    let _ = m;
    Empty
}

#[llm_call(provider = "anthropic", model = "claude-haiku-4-5", stream)]
async fn streaming_result() -> Result<impl Stream<Item = Chunk>, std::io::Error> {
    Ok(Empty)
}

#[tool_call]
fn default_tool(q: &str) -> String {
    q.to_string()
}

#[tool_call(name = "search", description = "Searches", tool_type = datastore, call_id = id, arguments = query)]
async fn search(query: &str, id: String) -> Result<Vec<String>, std::io::Error> {
    let _ = id;
    Ok(vec![query.to_string()])
}

#[tool_call(tool_type = "extension", arguments = serde_json::json!({"q": q}))]
fn ext(q: &str) -> serde_json::Value {
    serde_json::json!({"echo": q})
}

#[agent]
fn unnamed_agent() {}

#[agent(name = "planner", id = id, description = "Plans", version = "2", provider = "openai", conversation_id = conv, remote)]
async fn planner(id: &str, conv: String) -> Result<u8, std::io::Error> {
    let _ = (id, conv);
    Ok(1)
}

#[workflow]
fn default_workflow() {}

#[workflow(name = "nightly")]
async fn nightly() -> u8 {
    1
}

fn main() {
    let req = Req { model: "m".into(), temperature: 0.1, stop: vec![], messages: vec![], conversation: "c".into() };
    let _ = minimal(&req);
    let _ = embed("x");
    let _ = gemini();
    let _ = foreign();
    let _ = streaming("m");
    let _ = default_tool("q");
    let _ = ext("q");
    unnamed_agent();
    default_workflow();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let _ = everything(&req, 1).await;
        let _ = streaming_result().await;
        let _ = search("q", "id".into()).await;
        let _ = planner("a", "c".into()).await;
        let _ = nightly().await;
    });
}
