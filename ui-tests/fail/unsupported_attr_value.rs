struct Model {
    name: String,
}
#[observra::traced(attrs(model = m))]
fn f(m: &Model) -> usize {
    m.name.len()
}
fn main() {}
