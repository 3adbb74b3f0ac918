#[observra::agent(name = support, id, description = 1, version = v2, provider = openai, conversation_id)]
fn f() {}
fn main() {}
