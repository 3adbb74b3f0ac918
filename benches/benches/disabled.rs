//! Cost of `#[traced]` and `#[llm_call]` when telemetry is not installed,
//! against the same function without the attribute, in the same run.
//!
//! `cargo bench -p observra-benches --bench disabled`

mod common;

use common::work;
use divan::black_box;
use observra::{LlmResponse, Usage, llm_call, traced};

fn main() {
    divan::main();
}

struct Reply(u64);

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(1200, 150))
    }
}

#[inline(never)]
fn plain(x: u64) -> u64 {
    work(x)
}

#[traced]
#[inline(never)]
fn traced_fn(x: u64) -> u64 {
    work(x)
}

#[traced(attrs(component = "rag", top_k = x), fields(x))]
#[inline(never)]
fn traced_with_attrs(x: u64) -> u64 {
    work(x)
}

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
#[inline(never)]
fn llm(x: u64) -> Result<Reply, std::io::Error> {
    Ok(Reply(work(x)))
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

/// `#[traced]` with attributes and a recorded field, nothing installed.
#[divan::bench]
fn c_traced_attrs_not_installed() -> u64 {
    traced_with_attrs(black_box(42))
}

/// `#[llm_call]`, nothing installed.
#[divan::bench]
fn d_llm_call_not_installed() -> u64 {
    llm(black_box(42)).map(|r| r.0).unwrap_or(0)
}
