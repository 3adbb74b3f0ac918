//! Allocations on the caller's thread, counted by a global allocator that
//! watches only the measured thread: recording a declared metric with
//! static labels allocates nothing once the series exists, and a whole
//! `#[llm_call]` (span, usage, cost, both GenAI histograms, the agent metric
//! set) with a full reply allocates nothing on the frame path once warm
//! (its id goes into a recycled string, its model and finish reasons are
//! shared or packed), each call counted on its own. (Its own test binary, since it replaces the global allocator.)

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

/// A reply as real clients return it: usage, a response id, the dated
/// response model and a finish reason.
struct Reply;

impl observra::LlmResponse for Reply {
    fn usage(&self) -> Option<observra::Usage> {
        Some(observra::Usage::new(1200, 150))
    }
    fn response_id(&self) -> Option<&str> {
        Some("chatcmpl-9f8e7d6c5b4a")
    }
    fn response_model(&self) -> Option<&str> {
        Some("gpt-4o-mini-2024-07-18")
    }
    fn for_each_finish_reason(&self, f: &mut dyn FnMut(&str)) {
        f("stop")
    }
}

/// The reply with nothing but usage, to tell what the reply's own fields cost.
struct Bare;

impl observra::LlmResponse for Bare {
    fn usage(&self) -> Option<observra::Usage> {
        Some(observra::Usage::new(1200, 150))
    }
}

#[observra::llm_call(provider = "openai", model = "gpt-4o-mini")]
fn ask(x: u64) -> Result<Reply, std::io::Error> {
    let _ = x;
    Ok(Reply)
}

#[observra::llm_call(provider = "openai", model = "gpt-4o-mini")]
fn ask_bare(x: u64) -> Result<Bare, std::io::Error> {
    let _ = x;
    Ok(Bare)
}

/// The most allocations any single call made on the caller's thread (each
/// call counted on its own, not averaged), with the frame path on or off.
fn max_allocations_per_call(fast_path: bool, call: fn(u64)) -> u64 {
    let guard = observra::init()
        .exporter("discard", Discard)
        .prometheus_addr("127.0.0.1:0".parse().unwrap())
        .fast_path(fast_path)
        .install()
        .expect("install");
    // The first calls register this thread's span buffer.
    for i in 0..100 {
        call(i);
    }
    // In rounds of 100 calls with a flush between (unmeasured): a steady
    // rhythm, where the thread's buffer never has to grow; a burst of
    // thousands of calls in a millisecond grows it once (its room is kept).
    let mut each: Vec<u64> = Vec::with_capacity(1_000);
    for round in 0..10 {
        observra::flush().expect("flush");
        each.extend((0..100).map(|i| allocations_during(|| call(round * 100 + i))));
    }
    drop(guard);
    each.sort_unstable();
    eprintln!("  fast_path={fast_path}: min {} median {} max {}", each[0], each[500], each[999]);
    each[999]
}

#[test]
fn a_model_call_allocates_only_for_what_the_reply_carries() {
    let _s = observra_test_support::serial();
    let full = |i| {
        let _ = ask(i);
    };
    let bare = |i| {
        let _ = ask_bare(i);
    };
    // The frame path: the reply's strings (response id and model, as
    // shared strings), and the finish-reason list the reply itself builds.
    let (fast_full, fast_bare) = (max_allocations_per_call(true, full), max_allocations_per_call(true, bare));
    // The `tracing` path: also the span's record and its attribute list.
    let (traced_full, traced_bare) = (max_allocations_per_call(false, full), max_allocations_per_call(false, bare));
    eprintln!(
        "allocations per call, worst of 1,000: dedicated {fast_bare} bare / {fast_full} full reply; tracing {traced_bare} / {traced_full}"
    );
    assert_eq!(fast_bare, 0, "a call whose reply carries only usage allocates nothing on the frame path");
    // A full reply costs nothing more than a bare one, on either path (7
    // and 8 allocations before): the response id goes into a string from
    // the thread's stock that the collector gives back, the dated response
    // model comes from the thread's recent models, known finish reasons are
    // packed in two bytes, and the reply lists them with
    // `for_each_finish_reason`, so no list is built. The `tracing` path's 3
    // are its span's own (the registry's box for the frame, the frame's side
    // store, its attribute list). A regression shows here.
    assert_eq!(fast_full, 0, "allocations for a full reply on the frame path");
    assert!(traced_bare <= 3, "{traced_bare} allocations per bare call on the tracing path");
    assert!(
        traced_full <= traced_bare,
        "{traced_full} allocations per full call on the tracing path, {traced_bare} bare"
    );
}

#[test]
fn redacting_text_without_secrets_allocates_nothing() {
    let _s = observra_test_support::serial();
    let plain = "chat gpt-4o-mini: the user asked for the weather in Paris on 2026-12-07";
    let with_key = "key sk-proj-Abc123Def456Ghi789Jkl012Mno345Pqr678";
    // Builds the built-in rules, and warms the matcher's caches.
    assert_eq!(observra::redact::redact(plain), plain);
    assert_ne!(observra::redact::redact(with_key), with_key);
    let n = allocations_during(|| {
        for _ in 0..1_000 {
            assert!(matches!(observra::redact::redact(plain), std::borrow::Cow::Borrowed(_)));
        }
    });
    assert_eq!(n, 0, "allocations while redacting 1,000 strings with nothing to redact");
}
