#[observra::agent(name = "support", goal = "help")]
fn f() {}
fn main() {}
