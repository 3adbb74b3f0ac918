//! A loop of one instrumented call, for a profiler: `perf record` of this
//! process shows the caller's path alone (divan's harness and the other
//! benches' set-ups are not in it).
//!
//! ```sh
//! # its own target directory: a changed profile would rebuild target/release
//! CARGO_TARGET_DIR=target/prof CARGO_PROFILE_BENCH_DEBUG=line-tables-only \
//!     cargo bench -p observra-benches --bench caller_loop --no-run
//! perf record --call-graph dwarf -- target/prof/release/deps/caller_loop-<hash> traced_child 1000000
//! ```
//!
//! The argument names the call: `traced_child` (`#[traced]` under a
//! `#[traced]` parent), `agent_child`, `llm_call`, `fastrace_child`. Between
//! batches of 100 calls (outside the timed part) the loop waits while
//! observra holds more than 1,536 closed spans, as `compare` does, so
//! nothing is dropped; it prints nanoseconds per call.

#[path = "common/calls.rs"]
mod calls;
mod common;

use std::time::{Duration, Instant};

use calls::{Discard, DiscardReporter, agent_fn, fastrace_child, llm_call, traced_fn};
use divan::black_box;

#[observra::traced]
#[inline(never)]
fn parent(f: impl FnOnce() -> Duration) -> Duration {
    f()
}

/// Waits while observra holds more than 1,536 closed spans.
fn room() {
    loop {
        let h = observra::health();
        if h.metric_queue_depth + h.spans_queued <= 1_536 {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Runs `calls` calls of `f` in batches of 100, timing only the calls.
fn timed(calls: u64, f: impl Fn(u64) -> u64) -> Duration {
    let mut spent = Duration::ZERO;
    let mut i = 0;
    while i < calls {
        room();
        let start = Instant::now();
        for j in i..i + 100 {
            black_box(f(black_box(j)));
        }
        spent += start.elapsed();
        i += 100;
    }
    spent
}

fn main() {
    // `cargo bench` adds `--bench`: flags are not ours.
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let what = args.next().unwrap_or_else(|| "traced_child".into());
    let calls: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(2_000_000);
    let calls = calls.div_ceil(100) * 100;
    let guard = observra::init()
        .service_name("bench")
        .exporter("discard", Discard)
        .prometheus_addr("127.0.0.1:0".parse().expect("address"))
        .install()
        .expect("install observra");
    fastrace::set_reporter(DiscardReporter, fastrace::collector::Config::default());
    let spent = match what.as_str() {
        "traced_child" => parent(|| timed(calls, traced_fn)),
        "agent_child" => parent(|| timed(calls, agent_fn)),
        "llm_call" => timed(calls, |x| llm_call(x).map_or(0, |r| r.0)),
        "fastrace_child" => {
            let mut spent = Duration::ZERO;
            for _ in 0..calls / 5_000 {
                let root = fastrace::Span::root("parent", fastrace::prelude::SpanContext::random());
                let _guard = root.set_local_parent();
                spent += timed(5_000, fastrace_child);
            }
            spent
        }
        other => panic!("unknown call {other:?}: traced_child, agent_child, llm_call or fastrace_child"),
    };
    eprintln!("{what}: {:.1} ns per call over {calls} calls", spent.as_nanos() as f64 / calls as f64);
    fastrace::flush();
    drop(guard.shutdown());
    let h = observra::health();
    eprintln!(
        "observra pipeline: produced {}, exported {}, dropped {}",
        h.spans_produced, h.spans_exported, h.spans_dropped
    );
}
