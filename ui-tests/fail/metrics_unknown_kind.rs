observra::metrics! {
    /// Not a kind.
    summary LATENCY: "latency";
}
fn main() {}
