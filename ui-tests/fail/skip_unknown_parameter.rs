#[observra::traced(args, skip(secret))]
fn f(query: &str, api_key: &str) -> usize {
    query.len() + api_key.len()
}
fn main() {}
