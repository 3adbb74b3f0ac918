#[observra::traced(attrs(gen_ai.request.model = "a", gen_ai.request.model = "b"))]
fn f() {}
fn main() {}
