//! The hand-over of closed spans from the callers' threads to the
//! collector: each thread buffers its frames and the collector sweeps the
//! buffers. The accounting must stay exact whatever breaks: these tests
//! kill the hand-over at each point and check that every closed span is
//! either exported or dropped with its reason, on the exporter's own count
//! and on `health()`:
//!
//! - the collector dies in the middle of a sweep (frames it took, frames
//!   still buffered, frames closed afterwards: all `stopped`);
//! - it dies in the middle of handling what it took;
//! - the buffers have no room (a burst past `span_buffer_bytes`:
//!   `collector_queue`), where whole traces are dropped, never a root whose
//!   children were kept;
//! - a thread ends with frames in its buffer, another sits idle holding
//!   some at shutdown (all exported);
//! - a long-lived root: its children leave before it closes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use observra::{Health, traced};
use observra_test_support::serial;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Keeps what it is given: each span's trace, id and parent.
#[derive(Debug, Clone, Default)]
struct Keep(Arc<Mutex<Vec<(TraceId, SpanId, SpanId)>>>);

impl SpanExporter for Keep {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut kept = self.0.lock().unwrap();
        kept.extend(batch.iter().map(|s| (s.span_context.trace_id(), s.span_context.span_id(), s.parent_span_id)));
        Ok(())
    }
}

impl Keep {
    fn count(&self) -> u64 {
        self.0.lock().unwrap().len() as u64
    }
}

fn install(keep: &Keep, extra: &[(&str, &str)]) -> observra::Guard {
    let mut env: Vec<(String, String)> =
        [("OTEL_BSP_MAX_QUEUE_SIZE", "262144"), ("OTEL_METRICS_EXPORTER", "none"), ("OBSERVRA_LOG", "off")]
            .iter()
            .chain(extra)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    env.push(("OTEL_SERVICE_NAME".into(), "handover".into()));
    observra::init().env_from(env).exporter("keep", keep.clone()).install().expect("install")
}

#[traced]
fn leaf(i: u64) -> u64 {
    std::hint::black_box(i)
}

#[traced]
fn parent(children: u64) -> u64 {
    (0..children).map(leaf).sum()
}

/// Closes `n` leaf spans here, `n` on a thread that then ends, and `n` on a
/// thread that stays idle until `release` is dropped: `3 n` spans.
fn three_threads(n: u64, release: std::sync::mpsc::Receiver<()>) -> std::thread::JoinHandle<()> {
    for i in 0..n {
        leaf(i);
    }
    std::thread::spawn(move || {
        for i in 0..n {
            leaf(i);
        }
    })
    .join()
    .unwrap();
    let (ready, wait) = std::sync::mpsc::channel();
    let idle = std::thread::spawn(move || {
        for i in 0..n {
            leaf(i);
        }
        ready.send(()).unwrap();
        let _ = release.recv();
    });
    wait.recv().unwrap();
    idle
}

/// What happened to the spans closed since `before`, checked to add up:
/// produced == closed == exported (on the exporter's own count) + dropped.
struct Outcome {
    exported: u64,
    stopped: u64,
    collector_queue: u64,
}

fn outcome(case: &str, before: &Health, closed: u64, keep: &Keep) -> Outcome {
    let h = observra::health();
    let d = |f: fn(&Health) -> u64| f(&h) - f(before);
    let out = Outcome {
        exported: d(|h| h.spans_exported),
        stopped: d(|h| h.spans_dropped_stopped),
        collector_queue: d(|h| h.spans_dropped_collector_queue),
    };
    eprintln!(
        "{case}: closed {closed}, exported {}, stopped {}, collector_queue {}",
        out.exported, out.stopped, out.collector_queue
    );
    assert_eq!(d(|h| h.spans_produced), closed, "{case}: every closed span is produced once: {h:#?}");
    assert_eq!(out.exported, keep.count(), "{case}: health counts what the exporter got");
    assert_eq!(d(|h| h.spans_dropped), out.stopped + out.collector_queue, "{case}: no other reason: {h:#?}");
    assert_eq!(out.exported + out.stopped + out.collector_queue, closed, "{case}: nothing unaccounted: {h:#?}");
    assert_eq!((h.spans_queued, h.spans_exporting), (0, 0), "{case}: nothing left after shutdown");
    out
}

/// Kills the collector at `point` (see `observra::__private::kill_collector_at`)
/// while three threads' buffers hold frames, closes more after it died,
/// shuts down, and checks the accounts.
fn killed_at(point: u8, case: &str) -> Outcome {
    let _s = serial();
    let keep = Keep::default();
    let before = observra::health();
    observra::__private::kill_collector_at(point);
    let guard = install(&keep, &[]);
    let (release, hold) = std::sync::mpsc::channel();
    let idle = three_threads(500, hold);
    // The collector's next sweep dies; closing more until it has shows
    // frames closed into buffers nobody sweeps any more.
    let mut closed = 1500;
    let deadline = Instant::now() + Duration::from_secs(20);
    while observra::health().spans_dropped_stopped == before.spans_dropped_stopped {
        assert!(Instant::now() < deadline, "{case}: the collector never died");
        leaf(closed);
        closed += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 0..100 {
        leaf(i);
    }
    closed += 100;
    drop(guard);
    drop(release);
    idle.join().unwrap();
    observra::__private::kill_collector_at(0);
    outcome(case, &before, closed, &keep)
}

/// Catches: frames the collector had taken from the buffers when it died
/// (or still in buffers it never swept, or closed after) leaving the
/// accounts: before the hand-over kept them in a drop guard and closed the
/// buffers on the collector's death, each of those was neither exported
/// nor dropped.
#[test]
fn a_collector_dying_in_the_middle_of_a_sweep_loses_nothing_uncounted() {
    let out = killed_at(1, "killed mid-sweep");
    assert_eq!(out.exported, 0, "it died at its first sweep with frames");
    assert!(out.stopped >= 1600, "what it held, what stayed buffered and what closed after: stopped");
}

/// Catches: the frames of a sweep not yet handled when the collector died
/// leaving the accounts.
#[test]
fn a_collector_dying_while_handling_a_sweep_loses_nothing_uncounted() {
    let out = killed_at(2, "killed mid-handling");
    assert!(out.stopped >= 100, "the rest of the sweep and what closed after: stopped");
}

/// Catches: frames left in the buffer of a thread that ended, or of one
/// sitting idle at shutdown, never reaching the collector (or reaching it
/// uncounted).
#[test]
fn buffers_of_ended_and_idle_threads_are_all_delivered() {
    let _s = serial();
    let keep = Keep::default();
    let before = observra::health();
    let guard = install(&keep, &[]);
    let (release, hold) = std::sync::mpsc::channel();
    let idle = three_threads(2000, hold);
    drop(guard);
    drop(release);
    idle.join().unwrap();
    let out = outcome("ended and idle threads", &before, 6000, &keep);
    assert_eq!(out.exported, 6000);
}

/// Catches: a long-lived root keeping its children's frames on its thread
/// until it closes (a hand-over only at the root's end, or when a buffer
/// fills). The children must reach the exporter while the root is open.
#[test]
fn the_children_of_a_long_lived_root_leave_before_it_ends() {
    let _s = serial();
    let keep = Keep::default();
    let guard = install(&keep, &[("OTEL_BSP_SCHEDULE_DELAY", "10")]);
    #[traced]
    fn long_lived(keep: &Keep) -> u64 {
        let sum = (0..10).map(leaf).sum();
        let deadline = Instant::now() + Duration::from_secs(20);
        while keep.count() < 10 {
            assert!(Instant::now() < deadline, "the children never left while their root was open");
            std::thread::sleep(Duration::from_millis(5));
        }
        sum
    }
    long_lived(&keep);
    drop(guard);
    assert_eq!(keep.count(), 11);
}

/// Catches: a burst past the buffers' bound dropping roots while their
/// children are kept (the children filled the buffers, so the root that
/// closes last found no room), which leaves orphans, and the drops not
/// counted as `collector_queue`. One thread closes 4,000 traces of a root
/// and four children in a tight loop into a 64 KiB bound; the last
/// sixteenth of it is kept for roots.
#[test]
fn a_burst_past_the_bound_drops_whole_traces_never_a_root_with_kept_children() {
    let _s = serial();
    let keep = Keep::default();
    let before = observra::health();
    let guard = install(&keep, &[("OBSERVRA_SPAN_BUFFER_BYTES", "65536")]);
    let traces = 4000;
    for _ in 0..traces {
        parent(4);
    }
    drop(guard);
    let out = outcome("burst", &before, traces * 5, &keep);
    assert!(out.collector_queue > 0, "the burst was larger than the bound");
    let kept = keep.0.lock().unwrap();
    let roots: HashSet<TraceId> = kept.iter().filter(|s| s.2 == SpanId::INVALID).map(|s| s.0).collect();
    let orphans = kept.iter().filter(|s| s.2 != SpanId::INVALID && !roots.contains(&s.0)).count();
    let orphan_traces: HashSet<TraceId> =
        kept.iter().filter(|s| s.2 != SpanId::INVALID && !roots.contains(&s.0)).map(|s| s.0).collect();
    assert_eq!(orphans, 0, "children exported without their root ({} traces)", orphan_traces.len());
    let whole = kept.iter().filter(|s| s.2 != SpanId::INVALID).count() as u64;
    eprintln!("{} roots, {whole} children kept", roots.len());
}

/// The burst below in a process of its own, for
/// [`a_burst_past_the_bound_is_said_on_stderr_once`] to read its stderr.
#[test]
fn burst_past_the_bound_child() {
    if std::env::var_os("OBSERVRA_TEST_BURST_CHILD").is_none() {
        return;
    }
    let keep = Keep::default();
    let guard = install(&keep, &[("OBSERVRA_SPAN_BUFFER_BYTES", "65536"), ("OBSERVRA_LOG", "warn")]);
    for _ in 0..4000 {
        parent(4);
    }
    drop(guard);
}

/// Catches: drops on the callers' threads that nobody is told about, or
/// told about once per span. The collector says it once (then at most
/// once a minute), naming the setting that absorbs more.
#[test]
fn a_burst_past_the_bound_is_said_on_stderr_once() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "burst_past_the_bound_child", "--nocapture", "--test-threads=1"])
        .env("OBSERVRA_TEST_BURST_CHILD", "1")
        .output()
        .expect("the child test runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("dropped on the callers' threads")).collect();
    assert_eq!(lines.len(), 1, "said once: {stderr}");
    assert!(lines[0].starts_with("observra: ") && lines[0].contains("OBSERVRA_SPAN_BUFFER_BYTES"), "{}", lines[0]);
    assert!(lines[0].contains("64 KiB"), "names the bound: {}", lines[0]);
}

/// The bound is a setting: out of range, it is a typed error naming it.
#[test]
fn the_buffer_bound_is_checked_at_install() {
    let _s = serial();
    let keep = Keep::default();
    let err = observra::init()
        .env_from([("OBSERVRA_SPAN_BUFFER_BYTES", "1000")])
        .exporter("keep", keep)
        .install()
        .expect_err("a bound below 64 KiB is refused");
    assert!(err.to_string().contains("OBSERVRA_SPAN_BUFFER_BYTES"), "{err}");
}

/// Catches: a buffer forgotten with frames in it. A sweep used to forget
/// the buffer of any thread that had ended by the end of the sweep, even if
/// that thread pushed more frames after the sweep had emptied its buffer;
/// those frames were neither exported nor counted (the burst bench found
/// 695 of 6,000 missing). Sixteen short-lived threads at a time closing
/// spans flat out while the collector sweeps, forty times over: every span
/// must arrive (on the code before the fix this failed two runs in three,
/// 1 to 5 spans of 192,000 unaccounted).
#[test]
fn threads_that_end_while_the_collector_sweeps_lose_nothing() {
    let _s = serial();
    let keep = Keep::default();
    let before = observra::health();
    let guard = install(&keep, &[]);
    let (rounds, threads, spans) = (40u64, 16u64, 300u64);
    for _ in 0..rounds {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::spawn(move || {
                    for i in 0..spans {
                        leaf(i);
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        // Room for the next round (4,800 spans, about 1.6 MB): nothing is
        // dropped for want of it, so any loss is the hand-over's.
        observra::flush().expect("flush");
    }
    drop(guard);
    let out = outcome("short-lived threads", &before, rounds * threads * spans, &keep);
    assert_eq!(out.exported, rounds * threads * spans, "nothing dropped: the buffers had room");
}
