//! The installed-state slot: what the layers above need to know about the
//! installed pipeline (ids, sampler, accounting rules, the collector's
//! queue, the meter), the switches that turn recording on and off, and the
//! process-wide loss counters. `pipeline` fills it at install and empties
//! it at shutdown; nothing else reaches into `pipeline` to find it.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use opentelemetry::InstrumentationScope;
use opentelemetry::metrics::{Meter, ObservableGauge};
use opentelemetry_sdk::trace::{RandomIdGenerator, Sampler};

use super::queue::FrameQueue;
use crate::account::accounting::Accounting;

/// What is installed, as the caller's side and the collector see it.
pub(crate) struct Installed {
    pub ids: RandomIdGenerator,
    pub sampler: Sampler,
    pub accounting: Accounting,
    /// The collector thread's queue: closed frames go there.
    pub queue: FrameQueue,
    pub scope: InstrumentationScope,
    /// A meter on the installed provider, if metrics are exported.
    pub meter: Option<Meter>,
    /// Declared gauges registered on the meter, kept for the install's life.
    pub gauges: Mutex<Vec<ObservableGauge<f64>>>,
}

impl Installed {
    /// Keeps an observable gauge registered for this install's lifetime.
    pub(crate) fn keep_gauge(&self, gauge: ObservableGauge<f64>) {
        self.gauges.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(gauge);
    }
}

/// The slot. A lock that ignores poisoning: a panic elsewhere while it was
/// held must never turn telemetry off for the rest of the process.
static SLOT: RwLock<Option<Arc<Installed>>> = RwLock::new(None);

/// Bumped whenever a pipeline is installed or taken down, so each thread
/// notices when its cached install is stale, and a span that outlives its
/// install is counted as dropped.
pub(crate) static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Whether anything is installed (the `tracing` layer's fast check).
pub(crate) static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether the macros take the frame path (`Builder::fast_path`).
pub(crate) static FRAME_PATH: AtomicBool = AtomicBool::new(false);

/// The content capture mode, as `CaptureMode::to_u8` (0: no content).
pub(crate) static CAPTURE: AtomicU8 = AtomicU8::new(0);

/// Whether the newest GenAI conventions are emitted
/// (`GenAiConventions::LatestExperimental`) rather than v1.41.
pub(crate) static GENAI_LATEST: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The install as this thread last saw it, with its generation.
    static CACHE: RefCell<Option<(u64, Arc<Installed>)>> = const { RefCell::new(None) };
    static SUPPRESSED: Cell<bool> = const { Cell::new(false) };
}

/// Fills the slot: a new generation, with its frame-path switch and its
/// content capture mode (as `CaptureMode::to_u8`).
pub(crate) fn set(installed: Arc<Installed>, frame_path: bool, capture: u8) {
    CAPTURE.store(capture, Ordering::Release);
    *SLOT.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(installed);
    GENERATION.fetch_add(1, Ordering::AcqRel);
    FRAME_PATH.store(frame_path, Ordering::Release);
    ACTIVE.store(true, Ordering::Release);
}

/// Turns recording off and empties the slot. Threads that cached the
/// install keep it until [`retire`].
pub(crate) fn take() -> Option<Arc<Installed>> {
    ACTIVE.store(false, Ordering::Release);
    FRAME_PATH.store(false, Ordering::Release);
    super::frame::RECORD_ALL.store(false, Ordering::Release);
    CAPTURE.store(0, Ordering::Release);
    SLOT.write().unwrap_or_else(std::sync::PoisonError::into_inner).take()
}

/// Makes every cached install stale: spans closing from now on are dropped
/// and counted.
pub(crate) fn retire() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// The installed state, if any.
pub(crate) fn installed() -> Option<Arc<Installed>> {
    SLOT.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}

/// Runs `f` on the current install and its generation, without touching
/// the shared lock (or the `Arc`'s count) while the cached one is current.
pub(crate) fn with_installed<R>(f: impl FnOnce(u64, &Installed) -> R) -> Option<R> {
    let generation = GENERATION.load(Ordering::Acquire);
    CACHE
        .try_with(|cell| {
            let mut cached = cell.try_borrow_mut().ok()?;
            if cached.as_ref().is_none_or(|(g, _)| *g != generation) {
                *cached = installed().map(|p| (generation, p));
            }
            let (g, p) = cached.as_ref()?;
            Some(f(*g, p))
        })
        .ok()
        .flatten()
}

/// Marks the current thread as an exporter thread: spans and events created
/// on it (by HTTP clients, for example) are not exported, which would loop.
pub(crate) fn suppress_current_thread() {
    let _ = SUPPRESSED.try_with(|s| s.set(true));
}

/// Whether this thread records nothing (an exporter's, or one being torn down).
pub(crate) fn suppressed() -> bool {
    SUPPRESSED.try_with(|s| s.get()).unwrap_or(true)
}
