#[observra::traced(args, fields(query))]
fn f(query: &str) -> usize {
    query.len()
}
fn main() {}
