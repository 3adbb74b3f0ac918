#[observra::tool_call(tool_type = "plugin")]
fn f() {}
fn main() {}
