#[observra::workflow(name = nightly)]
fn f() {}
fn main() {}
