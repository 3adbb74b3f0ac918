#[observra::traced(attrs(component))]
fn f() {}
fn main() {}
