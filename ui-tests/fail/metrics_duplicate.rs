observra::metrics! {
    /// One.
    counter ORDERS: "shop.orders";
    /// The same name again.
    counter ORDERS_AGAIN: "shop.orders";
    /// The same static again.
    counter ORDERS: "shop.orders.v2";
}
fn main() {}
