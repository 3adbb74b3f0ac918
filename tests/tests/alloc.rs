//! Recording a declared metric with static labels allocates nothing once the
//! series exists: a counting global allocator watches the recording thread.
//! (Its own test binary, since it replaces the global allocator.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.try_with(|w| w.get()).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

observra::metrics! {
    /// Orders placed.
    counter ORDERS: "shop.orders", unit = "{order}", labels(channel, express);
    /// Basket value.
    histogram BASKET: "shop.basket.value", unit = "{USD}", buckets = [1, 10, 100], labels(channel);
}

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    WATCHING.with(|w| w.set(true));
    f();
    WATCHING.with(|w| w.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn recording_with_static_labels_allocates_nothing() {
    // Not installed: a no-op.
    assert_eq!(allocations_during(|| ORDERS.add(1, "web", true)), 0);
    let guard = observra::init()
        .env_from([("OBSERVRA_PROMETHEUS_ADDR", "127.0.0.1:0")])
        .jsonl_writer(std::io::sink())
        .install()
        .expect("install");
    // First use registers the instrument and creates the series.
    ORDERS.add(1, "web", true);
    BASKET.record(5.0, "web");
    let n = allocations_during(|| {
        for i in 0..10_000 {
            ORDERS.add(1, "web", true);
            BASKET.record(i as f64, "web");
        }
    });
    drop(guard);
    assert_eq!(n, 0, "allocations while recording 20,000 measurements on existing series");
}
