//! Every `#[traced]` argument in its accepted forms.
use observra::traced;

#[derive(Debug)]
pub struct Query {
    pub text: String,
    pub model: String,
    pub stops: Vec<String>,
}

#[traced(name = "custom name")]
fn named() {}

#[traced(kind = client)]
fn kind_client() {}
#[traced(kind = server)]
fn kind_server() {}
#[traced(kind = internal)]
fn kind_internal() {}
#[traced(kind = producer)]
fn kind_producer() {}
#[traced(kind = "consumer")]
fn kind_consumer() {}

#[traced(attrs(
    component = "rag",
    gen_ai.request.model = q.model,
    gen_ai.request.stop_sequences = q.stops,
    gen_ai.request.max_tokens = 256,
    gen_ai.request.temperature = 0.2,
    stream = false,
    error.type = "none",
    "quoted key" = "v",
    r#type = "raw",
    len = q.text.len(),
    maybe = q.stops.first(),
    computed = format!("{}-{}", q.model, 1),
))]
fn attrs(q: &Query) -> usize {
    q.text.len()
}

#[traced(args)]
fn all_args(q: &Query, n: u32) -> u32 {
    n + q.text.len() as u32
}

#[traced(args, skip(secret, self_like))]
fn args_with_skip(secret: &str, self_like: u8, shown: u8) -> usize {
    secret.len() + self_like as usize + shown as usize
}

#[traced(fields(q), kind = client, name = "with fields")]
fn only_fields(q: &Query, secret: &str) -> usize {
    q.text.len() + secret.len()
}

pub struct S;
impl S {
    #[traced(fields(self, n))]
    fn method(&self, n: u8) -> u8 {
        n
    }
}
impl std::fmt::Debug for S {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("S")
    }
}

fn main() {
    let q = Query { text: "hi".into(), model: "gpt-4o".into(), stops: vec!["\n".into()] };
    named();
    kind_client();
    kind_server();
    kind_internal();
    kind_producer();
    kind_consumer();
    let _ = attrs(&q) + all_args(&q, 1) as usize + args_with_skip("k", 1, 2) + only_fields(&q, "k");
    let _ = S.method(1);
}
