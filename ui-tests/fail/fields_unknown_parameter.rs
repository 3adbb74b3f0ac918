#[observra::traced(fields(qeury))]
fn f(query: &str) -> usize {
    query.len()
}
fn main() {}
