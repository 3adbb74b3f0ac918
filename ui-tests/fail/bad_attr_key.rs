#[observra::traced(attrs(42 = "answer"))]
fn f() {}
fn main() {}
