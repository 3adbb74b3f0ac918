#[observra::agent(name = "support", remote = true)]
fn f() {}
fn main() {}
