#[observra::traced(level = "debug")]
fn f() {}
fn main() {}
