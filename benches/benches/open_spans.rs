//! Memory per open span: 50,000 calls of an instrumented async function,
//! each polled once and left waiting (so each holds an open root span),
//! against the same 50,000 futures of the plain function; the difference
//! in live heap bytes, divided by 50,000, is what observra keeps per open
//! span. The raw OpenTelemetry SDK's figure (50,000 started, unended
//! spans held in a `Vec`, counted with the `Vec`: an SDK span keeps its
//! data inline) is printed beside it for reference.
//!
//! `cargo bench -p observra-benches --bench open_spans`
//!
//! Live heap bytes are counted by a global allocator (allocated minus
//! freed, every thread), so the figure is exact and does not depend on the
//! allocator's page reuse the way a resident-set reading does.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use observra_test_support::LiveBytes;

#[global_allocator]
static GLOBAL: LiveBytes = LiveBytes;

/// How many spans are held open at once.
const OPEN: usize = 50_000;

async fn plain(i: u64) -> u64 {
    std::future::pending::<()>().await;
    i
}

#[observra::traced]
async fn traced(i: u64) -> u64 {
    std::future::pending::<()>().await;
    i
}

type Held = Vec<Pin<Box<dyn Future<Output = u64>>>>;

/// Live heap bytes while `OPEN` futures made by `make` are each polled
/// once and held, minus the bytes before.
fn held_bytes(make: fn(u64) -> Pin<Box<dyn Future<Output = u64>>>) -> (i64, Held) {
    let mut cx = Context::from_waker(Waker::noop());
    let before = LiveBytes::now();
    let mut held: Held = Vec::with_capacity(OPEN);
    for i in 0..OPEN as u64 {
        let mut f = make(i);
        assert!(matches!(f.as_mut().poll(&mut cx), Poll::Pending));
        held.push(f);
    }
    (LiveBytes::now() - before, held)
}

fn main() {
    let guard = observra::init()
        .env_from([("OTEL_METRICS_EXPORTER".to_string(), "none".to_string())])
        .jsonl_writer(std::io::sink())
        .install()
        .expect("install");
    // Warm-up: the thread's context stack and the call site's statics.
    drop(held_bytes(|i| Box::pin(traced(i))));
    drop(held_bytes(|i| Box::pin(plain(i))));

    let (plain_bytes, plain_held) = held_bytes(|i| Box::pin(plain(i)));
    drop(plain_held);
    let (traced_bytes, traced_held) = held_bytes(|i| Box::pin(traced(i)));
    let per_span = (traced_bytes - plain_bytes) as f64 / OPEN as f64;
    println!(
        "open spans: observra: {OPEN} open #[traced] roots hold {traced_bytes} bytes, the plain futures {plain_bytes}: \
         {per_span:.0} bytes per open span"
    );
    println!(
        "open spans: observra: the #[traced] future is {} bytes (the plain one {}), of which the call's span {} bytes",
        std::mem::size_of_val(&traced(0)),
        std::mem::size_of_val(&plain(0)),
        std::mem::size_of::<observra::__private::FrameSpan>(),
    );
    drop(traced_held);
    drop(guard);

    // The raw SDK, for reference: started spans, held unended.
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = provider.tracer("open-spans");
    let before = LiveBytes::now();
    let spans: Vec<_> = (0..OPEN).map(|_| tracer.start("traced")).collect();
    // The spans live in the Vec (an SDK span keeps its data inline).
    let sdk_bytes = LiveBytes::now() - before;
    println!(
        "open spans: raw SDK: {OPEN} started spans hold {sdk_bytes} bytes (in the Vec that holds them): {:.0} bytes per open span",
        sdk_bytes as f64 / OPEN as f64
    );
    println!(
        "open spans: bytes per open span, observra / raw SDK: {per_span:.0} / {:.0} = {:.2}x",
        sdk_bytes as f64 / OPEN as f64,
        per_span / (sdk_bytes as f64 / OPEN as f64)
    );
    drop(spans);
}
