observra::metrics! {
    /// Starts with a digit.
    counter FIRST: "1st.orders";
    /// Has a space.
    counter SPACED: "shop orders";
}
fn main() {}
