//! The tail sampler's cost (`Sampler::keep_interesting`), against the
//! samplers it replaces, in one process and one run:
//!
//! 1. The caller's cost of one agent run (an `#[agent]` with an
//!    `#[llm_call]` and a `#[tool_call]` beneath it: 3 spans) under
//!    `parentbased_always_on` (every span recorded and exported: the
//!    baseline), `parentbased_traceidratio` at 5 % (head sampling: most
//!    runs are not recorded) and `keep_interesting` at 5 %. Rounds
//!    alternate between the three; the medians and their ratios are
//!    printed.
//! 2. The whole process's CPU time per trace at 10,000 spans/s (3,333 runs
//!    a second, paced, 4 s) under each sampler, everything on the JSONL
//!    backend writing to a sink: what the collector's decisions cost on
//!    top of recording.
//! 3. The heap: the peak of live bytes above the idle level during the
//!    paced run, and the bytes per held span when 1,000 traces whose roots
//!    stay open hold 10 spans each (a counting global allocator).
//!
//! `cargo bench -p observra-benches --bench tail`; prints `tail: ...` lines.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use observra::{Sampler, Usage, agent, llm_call, tool_call};

/// Live and peak heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
fn think() -> Usage {
    Usage::new(300, 40)
}

#[tool_call(name = "lookup")]
fn lookup(fail: bool) -> Result<u8, std::io::Error> {
    if fail { Err(std::io::Error::other("no")) } else { Ok(1) }
}

#[agent(name = "support")]
fn run(n: u64) -> Result<u64, std::io::Error> {
    let _ = think();
    // One run in a hundred fails: the tail sampler keeps those.
    let _ = lookup(n % 100 == 0);
    Ok(n)
}

#[derive(Clone, Copy)]
enum Which {
    AlwaysOn,
    HeadRatio,
    Tail,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::AlwaysOn => "parentbased_always_on",
            Which::HeadRatio => "parentbased_traceidratio(0.05)",
            Which::Tail => "keep_interesting(0.05)",
        }
    }
    fn install(self) -> observra::Guard {
        let b = observra::init().jsonl_writer(std::io::sink()).service_name("tail-bench");
        let b = match self {
            Which::AlwaysOn => b.sampler(Sampler::ParentBasedAlwaysOn),
            Which::HeadRatio => b.sampler(Sampler::ParentBasedTraceIdRatio(0.05)),
            Which::Tail => b.sampler(Sampler::keep_interesting().ratio(0.05)),
        };
        b.install().expect("install")
    }
}

/// The process's CPU time (user + system), from /proc/self/stat (ticks of 10 ms).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, r)| r.split(' ').collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Fields 14 and 15 of the whole line are the 12th and 13th after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn caller_ns_per_run(which: Which, runs: u64) -> f64 {
    let guard = which.install();
    let start = Instant::now();
    for n in 0..runs {
        std::hint::black_box(run(n).ok());
    }
    let ns = start.elapsed().as_nanos() as f64 / runs as f64;
    let _ = guard.shutdown();
    ns
}

/// Runs at 10,000 spans/s for `secs`: CPU per trace, and the heap peak above idle.
fn paced(which: Which, secs: u64) -> (f64, usize) {
    let guard = which.install();
    let per_second = 10_000 / 3;
    let idle = LIVE.load(Ordering::Relaxed);
    PEAK.store(idle, Ordering::Relaxed);
    let cpu0 = cpu();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let due = (start.elapsed().as_secs_f64() * per_second as f64) as u64;
        while n < due {
            std::hint::black_box(run(n).ok());
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = observra::flush();
    let cpu_used = cpu().saturating_sub(cpu0);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(idle);
    let _ = guard.shutdown();
    (cpu_used.as_secs_f64() * 1e6 / n as f64, peak)
}

#[agent(name = "long")]
fn long_running(
    children: usize,
    held: &std::sync::Barrier,
    release: &std::sync::Barrier,
) -> Result<(), std::io::Error> {
    for _ in 0..children {
        let _ = lookup(false);
    }
    held.wait();
    release.wait();
    Ok(())
}

/// Live heap bytes and held spans while 1,000 traces whose roots stay open
/// (each an agent on its own thread) have closed `children` spans each.
fn open_traces(children: usize) -> (usize, u64) {
    let guard = Which::Tail.install();
    let _ = observra::flush();
    let before = LIVE.load(Ordering::Relaxed);
    let traces = 1000;
    let held = std::sync::Arc::new(std::sync::Barrier::new(traces + 1));
    let release = std::sync::Arc::new(std::sync::Barrier::new(traces + 1));
    let threads: Vec<_> = (0..traces)
        .map(|_| {
            let (h, r) = (held.clone(), release.clone());
            std::thread::Builder::new().stack_size(64 * 1024).spawn(move || long_running(children, &h, &r)).unwrap()
        })
        .collect();
    held.wait();
    let _ = observra::flush();
    let spans = observra::health().spans_held;
    // Thread stacks are mapped, not allocated; the threads' own heap is the
    // same with or without children, and cancels out below.
    let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    release.wait();
    for t in threads {
        let _ = t.join();
    }
    let _ = guard.shutdown();
    (bytes, spans)
}

/// Bytes of heap per span the tail sampler holds: the difference between
/// 1,000 open traces with 9 closed children each and with none.
fn bytes_per_held_span() -> (f64, u64) {
    let (empty, held0) = open_traces(0);
    let (full, held9) = open_traces(9);
    let spans = held9.saturating_sub(held0);
    (full.saturating_sub(empty) as f64 / spans.max(1) as f64, spans)
}

fn main() {
    let all = [Which::AlwaysOn, Which::HeadRatio, Which::Tail];
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for _round in 0..5 {
        for (i, w) in all.iter().enumerate() {
            per[i].push(caller_ns_per_run(*w, 50_000));
        }
    }
    let medians: Vec<f64> = per.into_iter().map(median).collect();
    for (w, m) in all.iter().zip(&medians) {
        println!(
            "tail: caller {:<32} {:>8.0} ns per agent run (3 spans)  ratio to always_on {:.2}",
            w.name(),
            m,
            m / medians[0]
        );
    }
    for w in all {
        let (cpu_us, peak) = paced(w, 4);
        println!(
            "tail: paced 10k spans/s {:<32} {:>7.1} us CPU per trace (whole process), heap peak above idle {:>8} bytes",
            w.name(),
            cpu_us,
            peak
        );
    }
    let (per_span, spans) = bytes_per_held_span();
    println!("tail: held {spans} spans of 1,000 open traces: {per_span:.0} bytes of heap per held span");
}
