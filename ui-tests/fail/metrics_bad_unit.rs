observra::metrics! {
    /// Non-ASCII unit.
    histogram LATENCY: "latency", unit = "µs";
}
fn main() {}
