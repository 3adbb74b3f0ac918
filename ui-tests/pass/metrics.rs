//! `observra::metrics!` declarations and `#[traced(metrics)]`.
mod shop {
    observra::metrics! {
        /// Orders placed.
        pub counter ORDERS: "shop.orders", unit = "{order}", labels(channel, express);
        /// Basket value.
        pub(crate) histogram BASKET: "shop.basket.value", unit = "{USD}", buckets = [1, 2.5, 10], labels(channel);
        /// Sessions open.
        updown SESSIONS: "shop.sessions.active";
        /// Queue depth.
        pub gauge QUEUE: "shop/queue-depth", unit = "{item}";
        /// No unit, no labels.
        pub counter PINGS: "pings";
    }

    pub fn use_private() {
        SESSIONS.add(1);
    }
}

#[observra::traced(metrics)]
fn measured() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {
    shop::ORDERS.add(1, "web", true);
    shop::ORDERS.add(1, observra::Unbounded(String::from("x")), false);
    shop::BASKET.record(3.0, "web");
    shop::QUEUE.observe(|| 1.0);
    shop::PINGS.add(1);
    shop::use_private();
    let _ = measured();
}
