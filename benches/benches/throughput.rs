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
//! Prints one line per run, `throughput: ...`, that `benches/ratios.sh`
//! collects.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use observra_test_support::Receiver;

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

fn flat_out(threads: usize, queue: usize, batch: usize) {
    let rx = Receiver::start();
    rx.set_count_only(true);
    let before = observra::health();
    let guard = install(&rx, queue, batch);
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, made) = (stop.clone(), made.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        unit(n);
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
    let _ = observra::flush();
    drop(guard);
    let elapsed = start.elapsed();
    let after = observra::health();
    let received = rx.span_count();
    let produced = made.load(Ordering::Relaxed);
    let exported = after.spans_exported - before.spans_exported;
    let dropped = after.spans_dropped - before.spans_dropped;
    assert_eq!(received, exported, "what health() counts as exported is what arrived");
    assert_eq!(produced, exported + dropped + (after.spans_failed - before.spans_failed), "every span accounted");
    println!(
        "throughput: flat out, {threads} thread(s), queue {queue}, batch {batch}: produced {produced} in {:.2} s, \
         received {received} ({:.0} spans/s), dropped {dropped}",
        elapsed.as_secs_f64(),
        received as f64 / elapsed.as_secs_f64()
    );
}

fn paced(rate: u64, seconds: u64) {
    let rx = Receiver::start();
    rx.set_count_only(true);
    let before = observra::health();
    let guard = install(&rx, 2048, 512);
    let start = Instant::now();
    let total = rate * seconds;
    let mut n = 0;
    while n < total {
        // Catch up to the schedule in small bursts, then wait for it.
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while n < due.min(total) {
            unit(n);
            n += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let made_in = start.elapsed();
    let _ = observra::flush();
    drop(guard);
    let after = observra::health();
    let received = rx.span_count();
    let dropped = after.spans_dropped - before.spans_dropped;
    assert_eq!(received + dropped + (after.spans_failed - before.spans_failed), total, "every span accounted");
    println!(
        "throughput: paced at {rate} spans/s for {seconds} s ({:.2} s): produced {total}, received {received}, \
         dropped {dropped}",
        made_in.as_secs_f64()
    );
}

fn main() {
    // Warm-up (connections, allocator).
    paced(10_000, 1);
    flat_out(1, 2048, 512);
    flat_out(2, 2048, 512);
    flat_out(2, 65_536, 4096);
    paced(50_000, 3);
    // The highest paced rate the pipeline carries without a drop.
    for rate in [100_000, 150_000, 200_000, 250_000, 300_000] {
        paced(rate, 2);
    }
}
