#[observra::traced(metrics = true)]
fn f() {}
fn main() {}
