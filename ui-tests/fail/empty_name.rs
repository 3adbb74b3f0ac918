#[observra::traced(name = "")]
fn f() {}
fn main() {}
