observra::metrics! {
    /// Orders.
    counter ORDERS: "shop.orders", labels(user);
}
fn main() {
    let user_id = String::from("u-123");
    ORDERS.add(1, user_id);
}
