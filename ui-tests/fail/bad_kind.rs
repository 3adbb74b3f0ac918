#[observra::traced(kind = sideways)]
fn f() {}
fn main() {}
