//! Spans per second through the whole pipeline into a loopback OTLP/HTTP
//! receiver (the test suite's, in this process, decoding every request's
//! protobuf and counting the spans, as a forwarding collector would), with
//! the count received checked against the count produced.
//!
//! `cargo bench -p observra-benches --bench throughput`
//!
//! 1. Flat out: `THREADS` threads make spans as fast as they can for 3 s;
//!    the rate is what the receiver decoded per second, from the first span
//!    to the end of the final flush. Spans that did not fit the queue are
//!    dropped and counted.
//! 2. Paced: one thread at 50,000 spans/s for 3 s; the drop count must be 0.
//!    Then 100k to 300k spans/s for 2 s each: the highest rate carried with
//!    no drop is the pipeline's sustained capacity. (Flat out, the producer
//!    threads take the CPU the exporter and the in-process receiver need, so
//!    on 2 cores that figure measures CPU sharing more than the pipeline.)
//!
//! 3. The same two runs through the raw OpenTelemetry SDK (its
//!    `BatchSpanProcessor`, same queue and batch sizes and schedule, and
//!    its OTLP/HTTP exporter) into the same receiver, with the same span
//!    shape: the baseline observra's figures are divided by. The SDK drops
//!    silently, so its drops are what was made and did not arrive.
//!
//! Prints one line per run, `throughput: ...`, that `benches/ratios.sh`
//! collects.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use observra_test_support::Receiver;

#[path = "common/raw_sdk.rs"]
mod raw_sdk;

#[observra::traced(attrs(gen_ai.operation.name = "chat", gen_ai.request.model = "gpt-4o-mini"))]
fn unit(i: u64) -> u64 {
    std::hint::black_box(i.wrapping_mul(31))
}

fn install(rx: &Receiver, queue: usize, batch: usize) -> observra::Guard {
    observra::init()
        .env_from([
            ("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), rx.http_endpoint()),
            ("OTEL_METRICS_EXPORTER".to_string(), "none".to_string()),
            ("OTEL_BSP_SCHEDULE_DELAY".to_string(), "50".to_string()),
            ("OTEL_BSP_MAX_QUEUE_SIZE".to_string(), queue.to_string()),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE".to_string(), batch.to_string()),
            ("OTEL_SERVICE_NAME".to_string(), "throughput".to_string()),
        ])
        .install()
        .expect("install")
}

/// Which pipeline carries the spans.
#[derive(Clone, Copy)]
enum System {
    Observra,
    RawSdk,
}

/// A running pipeline: how to make one span, and how to end the run.
struct Run {
    make: Arc<dyn Fn(u64) + Send + Sync>,
    end: Box<dyn FnOnce()>,
    /// Spans observra counted as dropped or failed before the run.
    before: observra::Health,
}

fn start(system: System, rx: &Receiver, queue: usize, batch: usize) -> Run {
    let before = observra::health();
    match system {
        System::Observra => {
            let guard = install(rx, queue, batch);
            Run {
                make: Arc::new(|i| {
                    unit(i);
                }),
                end: Box::new(move || {
                    let _ = observra::flush();
                    drop(guard);
                }),
                before,
            }
        }
        System::RawSdk => {
            use opentelemetry::trace::TracerProvider as _;
            let exporter = raw_sdk::exporter(rx);
            let config = opentelemetry_sdk::trace::BatchConfigBuilder::default()
                .with_max_queue_size(queue)
                .with_max_export_batch_size(batch)
                .with_scheduled_delay(Duration::from_millis(50))
                .build();
            let processor =
                opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter).with_batch_config(config).build();
            let provider =
                opentelemetry_sdk::trace::SdkTracerProvider::builder().with_span_processor(processor).build();
            let tracer = provider.tracer("throughput");
            Run {
                // The same span as `unit`'s: its name and its two attributes.
                make: Arc::new(move |i| raw_sdk::unit(&tracer, i)),
                end: Box::new(move || {
                    let _ = provider.force_flush();
                    let _ = provider.shutdown();
                }),
                before,
            }
        }
    }
}

/// How a system is named in the output.
fn name(system: System) -> &'static str {
    match system {
        System::Observra => "observra",
        System::RawSdk => "raw SDK",
    }
}

/// Made, received and dropped after a run; checks observra's accounting.
fn finish(system: System, run: Run, rx: &Receiver, made: u64) -> (u64, u64) {
    let before = run.before;
    (run.end)();
    let after = observra::health();
    let received = rx.span_count();
    let dropped = match system {
        System::Observra => {
            let exported = after.spans_exported - before.spans_exported;
            let dropped = after.spans_dropped - before.spans_dropped;
            let failed = after.spans_failed - before.spans_failed;
            assert_eq!(received, exported, "what health() counts as exported is what arrived");
            assert_eq!(made, exported + dropped + failed, "every span accounted");
            dropped + failed
        }
        System::RawSdk => made.saturating_sub(received),
    };
    (received, dropped)
}

fn flat_out(system: System, threads: usize, queue: usize, batch: usize) -> f64 {
    let rx = Receiver::start();
    rx.set_count_only(true);
    let run = start(system, &rx, queue, batch);
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let begun = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, made, make) = (stop.clone(), made.clone(), run.make.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        make(n);
                        n += 1;
                    }
                }
                made.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let produced = made.load(Ordering::Relaxed);
    let (received, dropped) = finish(system, run, &rx, produced);
    let elapsed = begun.elapsed();
    let rate = received as f64 / elapsed.as_secs_f64();
    println!(
        "throughput: {}: flat out, {threads} thread(s), queue {queue}, batch {batch}: produced {produced} in {:.2} s, \
         received {received} ({rate:.0} spans/s), dropped {dropped}",
        name(system),
        elapsed.as_secs_f64(),
    );
    rate
}

/// Whether `rate` spans/s for `seconds` arrived without a drop.
fn paced(system: System, rate: u64, seconds: u64) -> bool {
    let rx = Receiver::start();
    rx.set_count_only(true);
    let run = start(system, &rx, 2048, 512);
    let begun = Instant::now();
    let total = rate * seconds;
    let mut n = 0;
    while n < total {
        // Catch up to the schedule in small bursts, then wait for it.
        let due = (begun.elapsed().as_secs_f64() * rate as f64) as u64;
        while n < due.min(total) {
            (run.make)(n);
            n += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let made_in = begun.elapsed();
    let (received, dropped) = finish(system, run, &rx, total);
    println!(
        "throughput: {}: paced at {rate} spans/s for {seconds} s ({:.2} s): produced {total}, received {received}, \
         dropped {dropped}",
        name(system),
        made_in.as_secs_f64()
    );
    dropped == 0
}

fn main() {
    let mut best = Vec::new();
    for system in [System::RawSdk, System::Observra] {
        // Warm-up (connections, allocator).
        paced(system, 10_000, 1);
        let flat = flat_out(system, 1, 2048, 512).max(flat_out(system, 2, 2048, 512));
        if let System::Observra = system {
            flat_out(system, 2, 65_536, 4096);
            paced(system, 50_000, 3);
        }
        // The highest paced rate the pipeline carries without a drop.
        let mut highest = 0;
        for rate in [100_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000, 600_000] {
            if paced(system, rate, 2) {
                highest = rate;
            }
        }
        best.push((system, flat, highest));
    }
    let (raw_flat, raw_paced) = (best[0].1, best[0].2);
    let (obs_flat, obs_paced) = (best[1].1, best[1].2);
    println!(
        "throughput: ratio observra / raw SDK: flat out {:.0} / {:.0} spans/s = {:.2}x; highest paced rate with no drop {} / {} = {:.2}x",
        obs_flat,
        raw_flat,
        obs_flat / raw_flat.max(1.0),
        obs_paced,
        raw_paced,
        obs_paced as f64 / (raw_paced.max(1)) as f64
    );
}
