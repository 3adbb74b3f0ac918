#[observra::traced]
struct Agent {
    name: String,
}
fn main() {}
