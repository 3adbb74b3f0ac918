//! Allocations on the caller's thread, counted by a global allocator that
//! watches only the measured thread: recording a declared metric with
//! static labels allocates nothing once the series exists, and a whole
//! `#[llm_call]` (span, usage, cost, both GenAI histograms, the agent metric
//! set) allocates once on its dedicated path and stays within three on the
//! `tracing` path. (Its own test binary, since it
//! replaces the global allocator.)

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
    let _s = observra_test_support::serial();
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

/// A span exporter that discards.
#[derive(Debug)]
struct Discard;

impl opentelemetry_sdk::trace::SpanExporter for Discard {
    async fn export(&self, _: Vec<opentelemetry_sdk::trace::SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

struct Reply;

impl observra::LlmResponse for Reply {
    fn usage(&self) -> Option<observra::Usage> {
        Some(observra::Usage::new(1200, 150))
    }
    fn response_model(&self) -> Option<&str> {
        Some("gpt-4o-mini-2024-07-18")
    }
}

#[observra::llm_call(provider = "openai", model = "gpt-4o-mini")]
fn ask(x: u64) -> Result<Reply, std::io::Error> {
    let _ = x;
    Ok(Reply)
}

/// Allocations per `ask` on the caller's thread, with the dedicated path on or off.
fn allocations_per_call(fast_path: bool) -> f64 {
    let guard = observra::init()
        .exporter("discard", Discard)
        .prometheus_addr("127.0.0.1:0".parse().unwrap())
        .fast_path(fast_path)
        .install()
        .expect("install");
    for i in 0..100 {
        let _ = ask(i);
    }
    let n = allocations_during(|| {
        for i in 0..1_000 {
            let _ = ask(i);
        }
    });
    drop(guard);
    n as f64 / 1000.0
}

#[test]
fn a_model_call_allocates_once_on_the_dedicated_path_and_three_times_on_the_tracing_path() {
    let _s = observra_test_support::serial();
    // The dedicated path: only the response model, as one shared string.
    let fast = allocations_per_call(true);
    assert!(fast <= 1.0, "{fast} allocations per call on the dedicated path");
    // The `tracing` path: the span's record, its attribute list, and the
    // response model. Before this was measured there were 32.
    let traced = allocations_per_call(false);
    assert!(traced <= 3.0, "{traced} allocations per call on the tracing path");
}
