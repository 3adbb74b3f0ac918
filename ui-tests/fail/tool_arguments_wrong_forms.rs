#[observra::tool_call(description = 5, call_id, arguments)]
fn f() {}
fn main() {}
