//! The largest burst each pipeline carries with no drop, at its default
//! settings: `N` calls in a tight loop (on one thread, then split over two),
//! then a flush, into the loopback OTLP/HTTP receiver of the test suite.
//!
//! `cargo bench -p observra-benches --bench burst`
//!
//! - observra: `#[traced]`, installed with nothing but the endpoint set
//!   (its default queues, batch size and schedule).
//! - the raw OpenTelemetry SDK: its `BatchSpanProcessor` with its default
//!   configuration (a 2,048-span queue) and its OTLP/HTTP exporter, making
//!   the same span.
//!
//! A burst size counts as carried when every span made arrived (and, for
//! observra, `health()` counts none dropped). Sizes grow from 500 calls; the
//! figure is the largest size carried in each of `ROUNDS` tries. Prints one
//! `burst:` line per size and a ratio line that `benches/ratios.sh` collects.

use std::sync::Arc;
use std::time::Instant;

use observra_test_support::Receiver;

#[path = "common/raw_sdk.rs"]
mod raw_sdk;

/// The burst sizes tried, smallest first.
const SIZES: &[u64] =
    &[500, 1_000, 2_000, 3_000, 4_000, 6_000, 8_000, 12_000, 16_000, 24_000, 32_000, 48_000, 64_000, 96_000, 128_000];

/// How many times each size is tried; carried means carried every time.
const ROUNDS: usize = 3;

#[observra::traced(attrs(gen_ai.operation.name = "chat", gen_ai.request.model = "gpt-4o-mini"))]
fn unit(i: u64) -> u64 {
    std::hint::black_box(i.wrapping_mul(31))
}

/// Which pipeline carries the spans.
#[derive(Clone, Copy, PartialEq)]
enum System {
    Observra,
    RawSdk,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Observra => "observra",
            System::RawSdk => "raw SDK",
        }
    }
}

/// Makes `size` spans in a tight loop over `threads` threads, flushes, and
/// returns (spans received, spans observra counted as dropped) and how
/// long the loop took.
fn burst(system: System, size: u64, threads: u64) -> (u64, u64, f64) {
    let rx = Receiver::start();
    rx.set_count_only(true);
    let per_thread = size / threads;
    let made = per_thread * threads;
    match system {
        System::Observra => {
            let before = observra::health();
            let guard = observra::init()
                .env_from([
                    ("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), rx.http_endpoint()),
                    ("OTEL_METRICS_EXPORTER".to_string(), "none".to_string()),
                    ("OTEL_SERVICE_NAME".to_string(), "burst".to_string()),
                ])
                .install()
                .expect("install");
            let took = run_threads(
                threads,
                per_thread,
                Arc::new(|i| {
                    unit(i);
                }),
            );
            let _ = observra::flush();
            drop(guard);
            let after = observra::health();
            let dropped = (after.spans_dropped - before.spans_dropped) + (after.spans_failed - before.spans_failed);
            let received = rx.span_count();
            assert_eq!(made, received + dropped, "every span accounted");
            (received, dropped, took)
        }
        System::RawSdk => {
            use opentelemetry::trace::TracerProvider as _;
            let exporter = raw_sdk::exporter(&rx);
            let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter).build();
            let provider =
                opentelemetry_sdk::trace::SdkTracerProvider::builder().with_span_processor(processor).build();
            let tracer = Arc::new(provider.tracer("burst"));
            let took = run_threads(threads, per_thread, {
                let tracer = tracer.clone();
                Arc::new(move |i| raw_sdk::unit(&tracer, i))
            });
            let _ = provider.force_flush();
            let _ = provider.shutdown();
            let received = rx.span_count();
            (received, made - received.min(made), took)
        }
    }
}

/// Runs `make` `per_thread` times on each of `threads` threads at once;
/// the longest time one thread took for its calls, in seconds.
fn run_threads(threads: u64, per_thread: u64, make: Arc<dyn Fn(u64) + Send + Sync>) -> f64 {
    let start = Arc::new(std::sync::Barrier::new(threads as usize));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (start, make) = (start.clone(), make.clone());
            std::thread::spawn(move || {
                start.wait();
                let begun = Instant::now();
                for i in 0..per_thread {
                    make(i);
                }
                begun.elapsed().as_secs_f64()
            })
        })
        .collect();
    workers.into_iter().map(|w| w.join().unwrap_or(0.0)).fold(0.0, f64::max)
}

/// The largest size carried with no drop in every round (0 if none).
fn largest_carried(system: System, threads: u64) -> u64 {
    let mut largest = 0;
    for &size in SIZES {
        let mut carried = true;
        for _ in 0..ROUNDS {
            let (received, dropped, took) = burst(system, size, threads);
            println!(
                "burst: {}: {size} calls on {threads} thread(s) in {:.1} ms: received {received}, dropped {dropped}",
                system.name(),
                took * 1e3,
            );
            carried &= dropped == 0;
        }
        if !carried {
            break;
        }
        largest = size;
    }
    largest
}

fn main() {
    // Warm-up (connections, allocator, the clock's calibration).
    burst(System::Observra, 1_000, 1);
    burst(System::RawSdk, 1_000, 1);
    for threads in [1, 2] {
        let raw = largest_carried(System::RawSdk, threads);
        let ours = largest_carried(System::Observra, threads);
        println!(
            "burst: ratio observra / raw SDK, largest burst with no drop on {threads} thread(s): {ours} / {raw} = {:.2}x",
            ours as f64 / raw.max(1) as f64
        );
    }
}
