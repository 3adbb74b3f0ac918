//! A bounded, non-blocking span batch processor that counts what it drops,
//! one per backend.
//!
//! The collector hands the spans it made fit to leave ([`SpanPolicy`], once)
//! to each backend in batches ([`FanOut::hand_over`]: at the end of each of
//! its drains, and every 512 spans), one `try_send` per batch into the
//! backend's queue, bounded in spans; a thread per backend cuts its exports
//! (by count and by size) and runs the exporter (any [`SpanExporter`]).
//! Every backend has its own queue and thread, so a slow or failing backend
//! never loses data on another.
//!
//! **Bursts.** When a backend's queue is full while its worker is keeping
//! up (its last export succeeded and it has not been declared stalled), the
//! collector waits for room, at most [`PATIENCE`], instead of dropping: a
//! burst then waits in the collector's queue (off every caller, who never
//! blocks) and is carried whole. A backend that does not take a batch
//! within [`PATIENCE`] is declared stalled, and until its worker takes its
//! next batch a full queue drops at once, counted (`backend_queue`); one
//! whose last export failed (a collector down, retrying) never makes the
//! collector wait. So a stalled backend delays the others at most
//! [`PATIENCE`] each time it stalls, and never makes them lose a span.
//! Flush and shutdown wait for the workers with a deadline.
//!
//! Each backend's figures live in a [`BackendStats`] as counters that only grow
//! (produced, dropped, taken for export, exported, failed, abandoned);
//! what is queued and what is being exported are what lies between them
//! ([`BackendFigures::of`]). So `produced == queued + exporting + exported +
//! failed + dropped` holds on every read, for each backend and for their sums
//! (which [`crate::health`] reports), however the counters move while they
//! are read: no lock, and one atomic add per batch on either side.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::base::deadline::{SendFailure, send_within, until};
use crate::base::loss::{self, Loss};

/// How long the collector waits, at most, for room in a keeping-up
/// backend's full queue before it declares the backend stalled.
pub(crate) const PATIENCE: Duration = Duration::from_millis(250);

/// How many recent export calls the latency percentiles are computed over.
const LATENCY_WINDOW: usize = 256;

/// One backend's counters; every one only grows. A span handed to the backend is
/// `produced`, then either dropped at once (`queue_full`) or queued; a
/// queued span is `taken` for export, then `exported` or `failed`; what
/// the backend still held when it stopped is `abandoned` (taken and lost).
#[derive(Debug, Default)]
pub(crate) struct BackendStats {
    /// The backend's name (`otlp`, `jsonl`, `stdout`, `webhook`, `otel_log`).
    pub name: &'static str,
    /// Where it exports to, fit to show (no password, no query string).
    pub target: String,
    produced: AtomicU64,
    queue_full: AtomicU64,
    taken: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    abandoned: AtomicU64,
    /// Export calls that succeeded / failed.
    pub export_ok: AtomicU64,
    pub export_err: AtomicU64,
    /// Whether the last export call failed: a full queue then drops at once.
    last_failed: AtomicBool,
    /// Whether the backend turns spans into log records (the `otel_log` backend).
    pub delivers_logs: bool,
    /// Log records delivered (the `otel_log` backend; zero for the others).
    pub log_records: AtomicU64,
    last_error: Mutex<Option<String>>,
    latencies: Mutex<VecDeque<Duration>>,
}

impl BackendStats {
    fn new(name: &'static str, target: &str, delivers_logs: bool) -> Self {
        BackendStats { name, target: crate::diag::display_endpoint(target), delivers_logs, ..Default::default() }
    }

    /// The backend and its target, as diagnostics name them.
    pub(crate) fn who(&self) -> String {
        crate::diag::who(self.name, &self.target)
    }

    /// The most recent export error, if any.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Spans in the queue now, as the worker and the wake-up see it (the
    /// worker's own `taken` first, then the collector's counters).
    fn queued(&self) -> u64 {
        let taken = self.taken.load(Ordering::Acquire);
        let dropped = self.queue_full.load(Ordering::Acquire);
        self.produced.load(Ordering::Acquire).saturating_sub(dropped + taken)
    }

    /// The export-call durations in the recent window.
    pub(crate) fn latencies(&self) -> Vec<Duration> {
        self.latencies.lock().map(|l| l.iter().copied().collect()).unwrap_or_default()
    }

    fn record_export(&self, took: Duration, error: Option<String>) {
        if let Ok(mut l) = self.latencies.lock() {
            if l.len() == LATENCY_WINDOW {
                l.pop_front();
            }
            l.push_back(took);
        }
        let ok = error.is_none();
        self.last_failed.store(!ok, Ordering::Release);
        if let Some(e) = error {
            if let Ok(mut last) = self.last_error.lock() {
                // Never keep a header value or a secret where health() shows it.
                *last = Some(crate::diag::scrub(&e));
            }
            self.export_err.fetch_add(1, Ordering::Relaxed);
        } else {
            self.export_ok.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(h) = EXPORT_DURATION.read() {
            if let Some(h) = h.as_ref() {
                h.record(
                    took.as_secs_f64(),
                    &[
                        KeyValue::new(observra_semconv::metrics::PIPELINE_BACKEND, self.name),
                        KeyValue::new(
                            observra_semconv::metrics::PIPELINE_RESULT,
                            if ok { "success" } else { "failure" },
                        ),
                    ],
                );
            }
        }
    }
}

/// A backend's figures as one read saw them, or several backends' summed (the
/// backends whose pipeline has stopped are folded into one, so the registry
/// stays small however often the pipeline is re-installed). Always
/// `produced == queued + in_flight + exported + failed + dropped()`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BackendFigures {
    pub produced: u64,
    pub queued: u64,
    pub in_flight: u64,
    pub exported: u64,
    pub failed: u64,
    /// Spans lost, by [`Loss`] (a backend's own: `BackendQueue` and `Stopped`).
    pub lost: [u64; Loss::COUNT],
    pub export_ok: u64,
    pub export_err: u64,
    pub log_records: u64,
}

impl BackendFigures {
    const ZERO: BackendFigures = BackendFigures {
        produced: 0,
        queued: 0,
        in_flight: 0,
        exported: 0,
        failed: 0,
        lost: [0; Loss::COUNT],
        export_ok: 0,
        export_err: 0,
        log_records: 0,
    };

    /// One backend's figures now. The counters are read downstream first (what
    /// left the backend, then what was taken, then what came in): each counter
    /// only grows, and a span moves on only after it is counted where it
    /// was, so what a read sees taken was seen produced, and what it sees
    /// done was seen taken. The queued and in-flight figures, the
    /// differences, are never negative, and the identity holds on every read.
    pub(crate) fn of(s: &BackendStats) -> BackendFigures {
        let abandoned = s.abandoned.load(Ordering::Acquire);
        let exported = s.exported.load(Ordering::Acquire);
        let failed = s.failed.load(Ordering::Acquire);
        let taken = s.taken.load(Ordering::Acquire);
        let queue_full = s.queue_full.load(Ordering::Acquire);
        let produced = s.produced.load(Ordering::Acquire);
        let mut lost = [0; Loss::COUNT];
        lost[Loss::BackendQueue as usize] = queue_full;
        lost[Loss::Stopped as usize] = abandoned;
        BackendFigures {
            produced,
            queued: produced.saturating_sub(queue_full + taken),
            in_flight: taken.saturating_sub(exported + failed + abandoned),
            exported,
            failed,
            lost,
            export_ok: s.export_ok.load(Ordering::Acquire),
            export_err: s.export_err.load(Ordering::Acquire),
            log_records: s.log_records.load(Ordering::Acquire),
        }
    }

    /// Every span lost, whatever the reason.
    pub(crate) fn dropped(&self) -> u64 {
        self.lost.iter().sum()
    }

    fn merge(&mut self, o: BackendFigures) {
        self.produced += o.produced;
        self.queued += o.queued;
        self.in_flight += o.in_flight;
        self.exported += o.exported;
        self.failed += o.failed;
        for (mine, theirs) in self.lost.iter_mut().zip(o.lost) {
            *mine += theirs;
        }
        self.export_ok += o.export_ok;
        self.export_err += o.export_err;
        self.log_records += o.log_records;
    }
}

struct Registry {
    live: Vec<Arc<BackendStats>>,
    retired: BackendFigures,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { live: Vec::new(), retired: BackendFigures::ZERO });

/// Export durations as an OTel histogram, set while a meter is installed.
pub(crate) static EXPORT_DURATION: std::sync::RwLock<Option<opentelemetry::metrics::Histogram<f64>>> =
    std::sync::RwLock::new(None);

fn register(name: &'static str, target: &str, delivers_logs: bool) -> Arc<BackendStats> {
    let stats = Arc::new(BackendStats::new(name, target, delivers_logs));
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner()).live.push(stats.clone());
    stats
}

/// Folds a backend whose worker has finished into the retired totals. What it
/// still held (a span that raced into the queue after the last drain, a
/// batch its panicking worker had taken) is lost: counted abandoned, on the
/// backend itself too, so its exported figures say so.
fn retire(stats: &Arc<BackendStats>) {
    let mut reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    reg.live.retain(|s| !Arc::ptr_eq(s, stats));
    let mut t = BackendFigures::of(stats);
    // Taken first, then abandoned: a reader never sees more abandoned than taken.
    stats.taken.fetch_add(t.queued, Ordering::AcqRel);
    stats.abandoned.fetch_add(t.queued + t.in_flight, Ordering::AcqRel);
    t.lost[Loss::Stopped as usize] += t.queued + t.in_flight;
    t.queued = 0;
    t.in_flight = 0;
    reg.retired.merge(t);
}

/// Process-wide totals over every backend ever started, with the spans lost
/// before any backend took them as produced and dropped (by reason), and
/// the figures of each live backend as this same read saw them.
pub(crate) fn totals() -> (BackendFigures, Vec<(Arc<BackendStats>, BackendFigures)>) {
    let reg = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    let mut t = reg.retired;
    let mut backends = Vec::with_capacity(reg.live.len());
    for s in &reg.live {
        let f = BackendFigures::of(s);
        t.merge(f);
        backends.push((s.clone(), f));
    }
    drop(reg);
    // One read of each: the same figure counts as produced and as dropped.
    let lost = loss::read(&loss::SPANS_LOST);
    t.produced += lost.iter().sum::<u64>();
    for (mine, l) in t.lost.iter_mut().zip(lost) {
        *mine += l;
    }
    (t, backends)
}

enum Request {
    /// The queue reached a batch: export now.
    Wake,
    Flush(SyncSender<Result<(), String>>),
    Shutdown(SyncSender<Result<(), String>>),
}

/// Runs an export future to completion on the worker thread.
pub(crate) type BlockOn = Arc<dyn for<'a> Fn(ExportFuture<'a>) -> OTelSdkResult + Send + Sync>;
/// One boxed export call.
pub(crate) type ExportFuture<'a> = std::pin::Pin<Box<dyn Future<Output = OTelSdkResult> + Send + 'a>>;

/// What a backend's worker needs from its exporter beyond [`SpanExporter`].
pub(crate) trait BackendExporter {
    /// Log records delivered by the last successful export (the `otel_log`
    /// backend turns one span into zero or more records).
    fn log_records(&self) -> u64 {
        0
    }
    /// Whether this backend turns spans into log records (the `otel_log` backend).
    fn delivers_logs(&self) -> bool {
        false
    }
    /// Receives the flag shutdown raises, so a retry back-off can stop early.
    fn set_stopping(&mut self, _flag: Arc<AtomicBool>) {}
    /// A failed export's error with whatever the exporter knows beyond its
    /// text (the OTLP/HTTP exporter's hidden transport cause).
    fn explain(&self, error: String) -> String {
        error
    }
}

/// An SDK span exporter as a backend (a user's, or the OTLP one with its HTTP
/// client's transport cause).
#[derive(Debug)]
pub(crate) struct SdkExporter<E>(pub E, pub Option<crate::diag::LastCause>);

impl<E: SpanExporter> SpanExporter for SdkExporter<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.0.export(batch)
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource)
    }
}

impl<E> BackendExporter for SdkExporter<E> {
    fn explain(&self, error: String) -> String {
        crate::diag::explain(error, self.1.as_ref())
    }
}

/// Starts a backend for an exporter whose type is only known where it was given.
pub(crate) type StartBackend =
    Box<dyn FnOnce(&str, &Resource, BatchSettings, BlockOn) -> std::io::Result<BatchProcessor> + Send>;

/// Captures `exporter` for a later start.
pub(crate) fn start_backend<E: SpanExporter + 'static>(name: &'static str, exporter: E) -> StartBackend {
    Box::new(move |target, resource, settings, block_on| {
        BatchProcessor::start(name, target, SdkExporter(exporter, None), resource, settings, block_on)
    })
}

/// A request sent to a worker, to be waited for later.
pub(crate) struct Pending {
    rx: Option<std::sync::mpsc::Receiver<Result<(), String>>>,
    error: Option<BackendError>,
}

/// Why a flush or shutdown request to a backend's worker did not complete.
#[derive(Debug)]
pub(crate) enum BackendError {
    /// The deadline passed first (`flush` or `shutdown`).
    TimedOut(&'static str),
    /// The export thread had stopped.
    Stopped(&'static str),
    /// The export thread panicked.
    Panicked(&'static str),
    /// The exporter reported an error.
    Failed(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::TimedOut(what) => write!(f, "{what}: timed out"),
            BackendError::Stopped(what) => write!(f, "{what}: the export thread has stopped"),
            BackendError::Panicked(what) => write!(f, "{what}: the export thread panicked"),
            BackendError::Failed(e) => f.write_str(e),
        }
    }
}

pub(crate) struct BatchProcessor {
    /// Spans in the batches the collector hands over (one queue operation
    /// per batch); the queue is bounded in spans by the counters
    /// (`max_queue`), which only the collector raises.
    spans: SyncSender<Vec<SpanData>>,
    /// At most this many spans wait in the queue.
    max_queue: u64,
    control: SyncSender<Request>,
    wake_sent: Arc<AtomicBool>,
    /// Set by shutdown so a worker in a retry back-off gives up early, and
    /// so spans ending afterwards are counted as orphaned.
    stopping: Arc<AtomicBool>,
    pub(crate) stats: Arc<BackendStats>,
    batch_size: u64,
    /// `taken` when the backend was declared stalled ([`PATIENCE`]), or
    /// `u64::MAX`: stalled until its worker takes another span.
    stalled_at: AtomicU64,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl BatchProcessor {
    /// Starts the worker thread for `exporter`, the backend named `name`
    /// exporting to `target` (an endpoint or a path, for diagnostics).
    pub(crate) fn start<E>(
        name: &'static str,
        target: &str,
        mut exporter: E,
        resource: &Resource,
        settings: BatchSettings,
        block_on: BlockOn,
    ) -> std::io::Result<Self>
    where
        E: SpanExporter + BackendExporter + 'static,
    {
        exporter.set_resource(resource);
        let stopping = Arc::new(AtomicBool::new(false));
        exporter.set_stopping(stopping.clone());
        // Each batch holds a span at least: as many batches as spans fit.
        let (spans, span_rx) = sync_channel::<Vec<SpanData>>(settings.max_queue_size.max(1));
        let (control, control_rx) = sync_channel::<Request>(16);
        let stats = register(name, target, exporter.delivers_logs());
        let wake_sent = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            reporter: crate::diag::Reporter::new(name, &stats.target, "spans"),
            exporter,
            spans: span_rx,
            carry: std::cell::RefCell::new(Vec::new().into_iter()),
            control: control_rx,
            stats: stats.clone(),
            wake_sent: wake_sent.clone(),
            settings,
            block_on,
        };
        let spawned = std::thread::Builder::new().name(format!("observra-{name}")).spawn(move || {
            crate::base::state::suppress_current_thread();
            worker.run()
        });
        let handle = match spawned {
            Ok(h) => h,
            Err(e) => {
                retire(&stats);
                return Err(e);
            }
        };
        Ok(BatchProcessor {
            spans,
            max_queue: settings.max_queue_size as u64,
            control,
            wake_sent,
            stopping,
            stats,
            batch_size: settings.max_export_batch_size.max(1) as u64,
            stalled_at: AtomicU64::new(u64::MAX),
            worker: Mutex::new(Some(handle)),
        })
    }

    /// Queues finished spans, handed over together by the collector (never
    /// on a caller's thread). What finds no room waits while the worker
    /// keeps up, at most [`PATIENCE`]; past it, it is dropped and counted.
    pub(crate) fn on_end_batch(&self, mut spans: Vec<SpanData>) {
        let mut left = spans.len() as u64;
        if left == 0 {
            return;
        }
        if self.stopping.load(Ordering::Acquire) {
            Loss::Stopped.spans(left);
            return;
        }
        let s = &self.stats;
        let mut patience = None;
        while left > 0 {
            // Only the collector adds to the queue: the room it sees is
            // there (the worker only makes more).
            let room = self.max_queue.saturating_sub(s.queued()).min(left);
            if room == 0 {
                if self.keeps_up(&mut patience) {
                    continue;
                }
                // Produced, then dropped: a read never sees more dropped than produced.
                s.produced.fetch_add(left, Ordering::AcqRel);
                s.queue_full.fetch_add(left, Ordering::AcqRel);
                return;
            }
            let rest = if room < left { spans.split_off(room as usize) } else { Vec::new() };
            // Counted before they can be taken, so what is taken was counted first.
            s.produced.fetch_add(room, Ordering::AcqRel);
            match self.spans.try_send(spans) {
                Ok(()) => {
                    left -= room;
                    spans = rest;
                    if s.queued() >= self.batch_size {
                        self.wake();
                    }
                }
                // Cannot happen (as many batches fit as spans); never lose them uncounted.
                Err(TrySendError::Full(_)) => {
                    s.produced.fetch_add(left - room, Ordering::AcqRel);
                    s.queue_full.fetch_add(left, Ordering::AcqRel);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    // The worker has stopped: lost as spans it held when it did.
                    s.produced.fetch_add(left - room, Ordering::AcqRel);
                    s.taken.fetch_add(left, Ordering::AcqRel);
                    s.abandoned.fetch_add(left, Ordering::AcqRel);
                    return;
                }
            }
        }
    }

    /// Wakes the worker for a batch, unless a wake-up is already on its way.
    fn wake(&self) {
        if !self.wake_sent.load(Ordering::Relaxed)
            && !self.wake_sent.swap(true, Ordering::AcqRel)
            && self.control.try_send(Request::Wake).is_err()
        {
            self.wake_sent.store(false, Ordering::Release);
        }
    }

    /// With the queue full: whether to wait a moment and try again. True
    /// while the worker keeps up and `patience` (started at the first call)
    /// lasts; past it, the backend is declared stalled until its worker
    /// takes another span.
    fn keeps_up(&self, patience: &mut Option<Instant>) -> bool {
        let s = &self.stats;
        let taken = s.taken.load(Ordering::Acquire);
        let stalled_at = self.stalled_at.load(Ordering::Acquire);
        if stalled_at == taken || self.stopping.load(Ordering::Acquire) || s.last_failed.load(Ordering::Acquire) {
            return false;
        }
        let until = *patience.get_or_insert_with(|| Instant::now() + PATIENCE);
        if Instant::now() >= until {
            self.stalled_at.store(taken, Ordering::Release);
            return false;
        }
        self.wake();
        std::thread::sleep(Duration::from_micros(100));
        true
    }

    /// Asks the worker to export everything queued so far.
    pub(crate) fn begin_flush(&self, deadline: Duration) -> Pending {
        self.send(Request::Flush, deadline, "flush")
    }

    /// Asks the worker to export what is queued, shut the exporter down and stop.
    pub(crate) fn begin_shutdown(&self, deadline: Duration) -> Pending {
        self.stopping.store(true, Ordering::Release);
        self.send(Request::Shutdown, deadline, "shutdown")
    }

    /// Waits for a request until `until`. On a completed shutdown the worker
    /// is joined and the backend's figures are retired.
    pub(crate) fn wait(&self, pending: Pending, until: Instant, what: &'static str) -> Result<(), BackendError> {
        if let Some(e) = pending.error {
            return Err(e);
        }
        let Some(rx) = pending.rx else { return Err(BackendError::Stopped(what)) };
        let result = match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(r) => r.map_err(BackendError::Failed),
            Err(RecvTimeoutError::Timeout) => Err(BackendError::TimedOut(what)),
            Err(RecvTimeoutError::Disconnected) => Err(BackendError::Stopped(what)),
        };
        let mut result = result;
        if what == "shutdown" && !matches!(&result, Err(BackendError::TimedOut(_))) {
            let handle = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(handle) = handle {
                if handle.join().is_err() {
                    // What it still held is counted dropped when the backend retires.
                    result = Err(BackendError::Panicked(what));
                }
            }
            retire(&self.stats);
        }
        result
    }

    fn send(
        &self,
        make: fn(SyncSender<Result<(), String>>) -> Request,
        deadline: Duration,
        what: &'static str,
    ) -> Pending {
        let (tx, rx) = sync_channel(1);
        match send_within(&self.control, make(tx), until(deadline)) {
            Ok(()) => Pending { rx: Some(rx), error: None },
            Err(SendFailure::Stopped) => Pending { rx: None, error: Some(BackendError::Stopped(what)) },
            Err(SendFailure::TimedOut) => Pending { rx: None, error: Some(BackendError::TimedOut(what)) },
        }
    }
}

/// Bounds of the span batch processor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    /// Whether message content may leave at all (capture is on).
    pub content_allowed: bool,
    /// The span limits and the request size bound.
    pub limits: crate::policy::limits::SpanLimits,
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    pub scheduled_delay: Duration,
}

/// Every backend's processor: a span is handed to each.
pub(crate) struct FanOut(pub(crate) Vec<BatchProcessor>);

impl FanOut {
    /// Hands `spans` to every backend, a batch at once (each but the last
    /// backend takes a copy).
    pub(crate) fn hand_over(&self, spans: Vec<SpanData>) {
        let Some((last, others)) = self.0.split_last() else {
            // No backend: nothing takes them (a pipeline with no backend
            // counts nothing as produced).
            return;
        };
        for p in others {
            p.on_end_batch(spans.clone());
        }
        last.on_end_batch(spans);
    }
}

impl std::ops::Deref for FanOut {
    type Target = [BatchProcessor];
    fn deref(&self) -> &[BatchProcessor] {
        &self.0
    }
}

struct Worker<E> {
    exporter: E,
    spans: Receiver<Vec<SpanData>>,
    /// What is left of the last batch received (counted queued until taken).
    carry: std::cell::RefCell<std::vec::IntoIter<SpanData>>,
    control: Receiver<Request>,
    stats: Arc<BackendStats>,
    wake_sent: Arc<AtomicBool>,
    settings: BatchSettings,
    block_on: BlockOn,
    /// Tells a person about failures and drops.
    reporter: crate::diag::Reporter,
}

impl<E: SpanExporter + BackendExporter> Worker<E> {
    fn run(self) {
        let mut next_export = Instant::now() + self.settings.scheduled_delay;
        loop {
            // The summary of repeated failures is due at most once a minute,
            // whatever the batch delay.
            let wait = next_export.saturating_duration_since(Instant::now()).min(Duration::from_secs(60));
            let received = self.control.recv_timeout(wait);
            self.reporter.dropped_so_far(self.stats.queue_full.load(Ordering::Acquire), self.settings.max_queue_size);
            self.reporter.tick();
            match received {
                Ok(Request::Wake) => {
                    self.wake_sent.store(false, Ordering::Release);
                    let _ = self.export_available(true);
                }
                Ok(Request::Flush(reply)) => {
                    let r = self.export_available(false);
                    let _ = reply.send(r);
                }
                Ok(Request::Shutdown(reply)) => {
                    let r = self.export_available(false);
                    let r2 = self.exporter.shutdown().map_err(|e| e.to_string());
                    let _ = reply.send(r.and(r2));
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if Instant::now() >= next_export {
                        let _ = self.export_available(false);
                        next_export = Instant::now() + self.settings.scheduled_delay;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.export_available(false);
                    if let Err(e) = self.exporter.shutdown() {
                        crate::diag::emit(
                            crate::diag::DiagnosticLevel::Warn,
                            &format!("{}: the exporter's shutdown failed: {e}", self.stats.who()),
                        );
                    }
                    return;
                }
            }
        }
    }

    /// Drains the queue in batches; with `full_batches_only`, stops when less
    /// than one batch is left (the timer exports the rest).
    fn export_available(&self, full_batches_only: bool) -> Result<(), String> {
        let max = self.settings.max_export_batch_size.max(1);
        let s = &self.stats;
        let mut result = Ok(());
        loop {
            let queued = s.queued() as usize;
            if queued == 0 || (full_batches_only && queued < max) {
                return result;
            }
            // Spans arrive ready to leave (the collector applied the content
            // policy, redaction and the span limits once, for every backend);
            // the request is cut by size as well as by count.
            let mut batch = Vec::with_capacity(queued.min(max));
            let mut bytes = 0usize;
            let mut carry = self.carry.borrow_mut();
            while batch.len() < max && bytes < self.settings.limits.max_request_bytes {
                let span = match carry.next() {
                    Some(span) => span,
                    None => match self.spans.try_recv() {
                        Ok(received) => {
                            *carry = received.into_iter();
                            continue;
                        }
                        Err(_) => break,
                    },
                };
                bytes += crate::policy::limits::approx_size(&span);
                batch.push(span);
            }
            drop(carry);
            let n = batch.len() as u64;
            if batch.is_empty() {
                return result;
            }
            // Off the queue: being exported from now on.
            s.taken.fetch_add(n, Ordering::AcqRel);
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (self.block_on)(Box::pin(self.exporter.export(batch)))
            }));
            let error = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(self.exporter.explain(e.to_string())),
                Err(_) => Some("the exporter panicked".to_string()),
            };
            s.record_export(started.elapsed(), error.clone());
            match error {
                None => {
                    s.log_records.fetch_add(self.exporter.log_records(), Ordering::AcqRel);
                    s.exported.fetch_add(n, Ordering::AcqRel);
                    self.reporter.export_ok();
                }
                Some(e) => {
                    s.failed.fetch_add(n, Ordering::AcqRel);
                    self.reporter.export_failed(n, &e, "not delivered; later batches are still sent");
                    result = Err(crate::diag::scrub(&e));
                }
            }
        }
    }
}

/// The nearest-rank percentile `p` (0 to 1) of `values` (sorted in place):
/// the smallest value at least `p` of the values are at or below. `None`
/// when there are none. One definition for `health()`'s export latencies
/// and the CLI's summaries (`observra::analytics::percentile`).
pub fn percentile<T: PartialOrd + Copy>(values: &mut [T], p: f64) -> Option<T> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adds_up(f: &BackendFigures) -> bool {
        f.produced == f.queued + f.in_flight + f.exported + f.failed + f.dropped()
    }

    /// A stopped backend's leftovers (queued, or in a batch its worker took)
    /// are lost: counted dropped for the reason `stopped`, on the backend and
    /// in the retired totals, and the identity still holds.
    #[test]
    fn a_retired_backend_counts_what_it_still_held_as_stopped() {
        let stats = register("test", "nowhere", false);
        for (counter, n) in
            [(&stats.produced, 10), (&stats.queue_full, 1), (&stats.taken, 6), (&stats.exported, 3), (&stats.failed, 1)]
        {
            counter.store(n, Ordering::Release);
        }
        let f = BackendFigures::of(&stats);
        assert_eq!((f.queued, f.in_flight, f.dropped()), (3, 2, 1));
        assert!(adds_up(&f), "{f:?}");
        let before = totals().0;
        retire(&stats);
        let f = BackendFigures::of(&stats);
        assert_eq!((f.queued, f.in_flight), (0, 0));
        assert_eq!((f.lost[Loss::BackendQueue as usize], f.lost[Loss::Stopped as usize]), (1, 5));
        assert!(adds_up(&f), "{f:?}");
        let after = totals().0;
        assert!(adds_up(&before) && adds_up(&after), "{before:?} {after:?}");
        assert!(after.lost[Loss::Stopped as usize] >= before.lost[Loss::Stopped as usize] + 5);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut v, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&mut v, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile::<Duration>(&mut [], 0.5), None);
        assert_eq!(percentile(&mut [Duration::from_millis(7)], 0.99), Some(Duration::from_millis(7)));
    }
}
