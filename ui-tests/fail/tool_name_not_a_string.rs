#[observra::tool_call(name = search)]
fn f() {}
fn main() {}
