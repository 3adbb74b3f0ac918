observra::metrics! {
    /// Orders.
    counter ORDERS: "shop.orders", labels(channel);
}
fn main() {
    ORDERS.add(1, "web", "eu");
}
