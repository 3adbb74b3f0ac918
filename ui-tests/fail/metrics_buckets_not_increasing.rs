observra::metrics! {
    /// Out of order.
    histogram LATENCY: "latency", unit = "s", buckets = [0.1, 0.5, 0.2];
    /// Buckets on a counter.
    counter HITS: "hits", buckets = [1, 2];
}
fn main() {}
