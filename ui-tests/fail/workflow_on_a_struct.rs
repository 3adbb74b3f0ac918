#[observra::workflow(name = "nightly")]
struct Nightly;
fn main() {}
