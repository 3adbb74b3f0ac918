//! Cost on the caller's thread of `#[traced]` with telemetry installed
//! (JSONL to a discarding writer, batch export on its own thread), against
//! the plain function and a hand-written `tracing` span, in the same run.
//!
//! `cargo bench -p observra-benches --bench enabled`

use divan::black_box;
use observra::traced;

fn main() {
    let guard = observra::init().service_name("bench").jsonl_writer(std::io::sink()).install().expect("install");
    divan::main();
    let health = observra::health();
    drop(guard);
    eprintln!(
        "pipeline: {} exported, {} dropped (queue full: the caller never waits)",
        health.spans_exported, health.spans_dropped
    );
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
#[divan::bench]
fn a_plain() -> u64 {
    plain(black_box(42))
}

/// `#[traced]`, telemetry installed.
#[divan::bench]
fn b_traced_enabled() -> u64 {
    traced_fn(black_box(42))
}

/// `#[traced]` with attributes and a field, telemetry installed.
#[divan::bench]
fn c_traced_attrs_enabled() -> u64 {
    traced_with_attrs(black_box(42))
}

/// A hand-written `tracing` span with the same attributes, same layer.
#[divan::bench]
fn d_hand_written_tracing_span() -> u64 {
    hand_written_tracing(black_box(42))
}
