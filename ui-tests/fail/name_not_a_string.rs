#[observra::traced(name = retrieve)]
fn f() {}
fn main() {}
