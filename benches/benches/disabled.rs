//! Cost of `#[traced]` when telemetry is not installed, against the same
//! function without the attribute, in the same run.
//!
//! `cargo bench -p observra-benches --bench disabled`

use divan::black_box;
use observra::traced;

fn main() {
    divan::main();
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

#[traced]
#[inline(never)]
fn traced_result(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7))
}

#[traced(attrs(component = "rag", top_k = x), fields(x))]
#[inline(never)]
fn traced_with_attrs(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(7)
}

/// Baseline: the function without instrumentation.
#[divan::bench]
fn a_plain() -> u64 {
    plain(black_box(42))
}

/// `#[traced]`, nothing installed.
#[divan::bench]
fn b_traced_not_installed() -> u64 {
    traced_fn(black_box(42))
}

/// `#[traced]` on a `Result` function, nothing installed.
#[divan::bench]
fn c_traced_result_not_installed() -> u64 {
    traced_result(black_box(42)).unwrap_or(0)
}

/// `#[traced]` with attributes and a recorded field, nothing installed.
#[divan::bench]
fn d_traced_attrs_not_installed() -> u64 {
    traced_with_attrs(black_box(42))
}
