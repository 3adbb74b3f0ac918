//! Cost on the caller's thread of `#[traced]` with telemetry installed
//! (JSONL to a discarding writer, batch export on its own thread), against
//! the plain function and a hand-written `tracing` span, in the same run.
//!
//! `cargo bench -p observra-benches --bench enabled`
//!
//! The sample size is pinned: left to itself divan times single ~400 ns
//! calls, close to its 20 ns timer precision. The export thread encodes JSON
//! more slowly than the caller makes spans, so some spans are dropped (and
//! counted, printed at the end); the caller's cost is what is measured.

use divan::black_box;
use observra::traced;

fn main() {
    let guard = observra::init().service_name("bench").jsonl_writer(std::io::sink()).install().expect("install");
    divan::main();
    observra::flush().ok();
    let health = observra::health();
    drop(guard);
    eprintln!("pipeline after the run: {health:?}");
}

#[inline(never)]
fn plain(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7)
}

#[traced]
#[inline(never)]
fn traced_fn(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7)
}

#[traced(attrs(component = "rag", top_k = x), fields(x))]
#[inline(never)]
fn traced_with_attrs(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7)
}

#[inline(never)]
fn hand_written_tracing(x: u64) -> u64 {
    let span = tracing::info_span!("hand_written", component = "rag", top_k = x);
    let _e = span.enter();
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7)
}

/// Baseline: the function without instrumentation.
#[divan::bench(sample_count = 200, sample_size = 50)]
fn a_plain() -> u64 {
    plain(black_box(42))
}

/// `#[traced]`, telemetry installed.
#[divan::bench(sample_count = 200, sample_size = 50)]
fn b_traced_enabled() -> u64 {
    traced_fn(black_box(42))
}

/// `#[traced]` with attributes and a field, telemetry installed.
#[divan::bench(sample_count = 200, sample_size = 50)]
fn c_traced_attrs_enabled() -> u64 {
    traced_with_attrs(black_box(42))
}

/// A hand-written `tracing` span with the same attributes, same layer.
#[divan::bench(sample_count = 200, sample_size = 50)]
fn d_hand_written_tracing_span() -> u64 {
    hand_written_tracing(black_box(42))
}
