//! Why a span was lost on its way out, and the process-wide counters of
//! the losses that happen before any backend takes a span: a leaf, so the
//! queue, the installed state and every backend count with the same reasons.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a span (or a closed span's metrics) was lost on its way out: the
/// `observra.reason` of the pipeline's loss metrics, a bounded set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loss {
    /// The collector's queue was full when the span closed.
    CollectorQueue = 0,
    /// A backend's queue was full (counted by the backend, per backend).
    BackendQueue = 1,
    /// Its pipeline had stopped: the span ended after shutdown, the
    /// collector or the backend was gone, or a backend still held it when
    /// it stopped.
    Stopped = 2,
    /// Assembling it on the collector thread panicked.
    AssemblyFailed = 3,
    /// Redacting it panicked: dropped rather than exported unredacted.
    RedactionFailed = 4,
}

impl Loss {
    /// How many reasons there are.
    pub(crate) const COUNT: usize = 5;
    /// The reasons a span is lost for before any backend takes it
    /// ([`SPANS_LOST`]); a backend counts its own.
    pub(crate) const BEFORE_BACKENDS: [Loss; 4] =
        [Loss::CollectorQueue, Loss::Stopped, Loss::AssemblyFailed, Loss::RedactionFailed];
    /// The reasons a closed span's metrics are lost for ([`METRIC_JOBS_LOST`]).
    pub(crate) const METRIC_JOBS: [Loss; 3] = [Loss::CollectorQueue, Loss::Stopped, Loss::AssemblyFailed];

    /// The `observra.reason` value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Loss::CollectorQueue => "collector_queue",
            Loss::BackendQueue => "backend_queue",
            Loss::Stopped => "stopped",
            Loss::AssemblyFailed => "assembly_failed",
            Loss::RedactionFailed => "redaction_failed",
        }
    }

    /// Counts one span lost before any backend took it.
    pub(crate) fn span(self) {
        self.spans(1);
    }

    /// Counts `n` spans lost before any backend took them.
    pub(crate) fn spans(self, n: u64) {
        SPANS_LOST[self as usize].fetch_add(n, Ordering::AcqRel);
    }

    /// Counts one closed span whose metrics were lost.
    pub(crate) fn metric_job(self) {
        METRIC_JOBS_LOST[self as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// Spans lost before any backend's queue took them, by [`Loss`], since the
/// process started: each is counted as produced and dropped. Never
/// `BackendQueue`: each backend counts its own ([`crate::export::batch::BackendStats`]).
pub(crate) static SPANS_LOST: [AtomicU64; Loss::COUNT] = [const { AtomicU64::new(0) }; Loss::COUNT];

/// Closed spans whose metrics were lost (a full collector queue, a stopped
/// collector, a panic while assembling), by [`Loss`], since the process started.
pub(crate) static METRIC_JOBS_LOST: [AtomicU64; Loss::COUNT] = [const { AtomicU64::new(0) }; Loss::COUNT];

/// One read of each of `counters`.
pub(crate) fn read(counters: &[AtomicU64; Loss::COUNT]) -> [u64; Loss::COUNT] {
    std::array::from_fn(|i| counters[i].load(Ordering::Acquire))
}
