//! Flushing and stopping the pipeline within a deadline, backend by
//! backend, and the report of what each one flushed, dropped or left unsent.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{CURRENT, Guard, Pipeline, current};
use crate::base::state;
use crate::error::{Error, Result};

/// Removes the current pipeline and stops it within its deadline (or `deadline`).
pub(super) fn take_and_stop(deadline: Duration) -> Result<ShutdownReport> {
    let _ = state::take();
    let taken = CURRENT.write().unwrap_or_else(|p| p.into_inner()).take();
    let Some(pipeline) = taken else { return Err(Error::NotInstalled) };
    let deadline = deadline.min(pipeline.shutdown_timeout);
    let start = Instant::now();
    let until = crate::base::deadline::until(deadline);
    // No retry waits into the last fifth of the deadline: a backend's thread
    // gives up on its batch, counted as failed, while shutdown still waits.
    #[cfg(feature = "otlp")]
    pipeline.retries_end.set(until.checked_sub(deadline / 5).unwrap_or(until));
    let mut metrics_error = None;
    // First, so that the spans it still holds reach the backends and every
    // metric is recorded before the last collection.
    if !pipeline.installed.queue.stop(deadline.mul_f64(0.5).max(Duration::from_millis(10))) {
        metrics_error = Some("the collector thread did not finish in time".to_string());
    }
    state::retire();
    let backends = stop_backends(&pipeline, until.saturating_duration_since(Instant::now()));
    if let Some(mp) = &pipeline.meter_provider {
        let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
        if let Err(e) = within(left, "the final metric export", {
            let mp = mp.clone();
            move || mp.shutdown_with_timeout(left).map_err(|e| e.to_string())
        }) {
            metrics_error = Some(e);
        }
    }
    if let Some(d) = &pipeline.metrics_diag {
        let failed = d.failed_points.load(Ordering::Relaxed);
        let last = d.last_error.lock().ok().and_then(|e| e.clone());
        if let Some(line) = crate::diag::loss_line(&d.reporter.who(), "metric points", failed, 0, 0, last.as_deref()) {
            crate::diag::emit(crate::diag::DiagnosticLevel::Warn, &line);
        }
    }
    if let Ok(mut h) = crate::export::batch::EXPORT_DURATION.write() {
        *h = None;
    }
    // Stop answering scrapes now, even if open spans still hold the pipeline:
    // connections are cut, and the endpoint's thread is waited for until the
    // deadline at most (and at least 10 ms, for its listener to close).
    #[cfg(feature = "prometheus")]
    if let Some(endpoint) = pipeline.prometheus.lock().ok().and_then(|mut e| e.take()) {
        let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
        endpoint.stop(crate::base::deadline::until(left));
    }
    // Never block here: the guard may drop inside an async runtime.
    #[cfg(feature = "grpc")]
    if let Some(rt) = pipeline.runtime.lock().ok().and_then(|mut r| r.take()) {
        rt.shutdown_background();
    }
    Ok(ShutdownReport { backends, metrics_error, elapsed: start.elapsed() })
}

/// Runs `work` on a thread of its own and waits for it at most `deadline`:
/// the SDK's meter provider waits for its exporter (whose own timeout may
/// be far longer than observra's deadline), so it never gets the caller's
/// thread. Past the deadline the thread is left to finish on its own.
fn within(
    deadline: Duration,
    what: &str,
    work: impl FnOnce() -> std::result::Result<(), String> + Send + 'static,
) -> std::result::Result<(), String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("observra-shutdown".into()).spawn(move || {
        state::suppress_current_thread();
        let _ = tx.send(work());
    });
    if let Err(e) = spawned {
        return Err(format!("{what}: could not start a thread: {e}"));
    }
    match rx.recv_timeout(deadline) {
        Ok(r) => r,
        Err(_) => Err(format!("{what} did not finish within the deadline")),
    }
}

/// Shuts every backend down at once, so a slow one cannot eat the others' time.
pub(super) fn stop_backends(pipeline: &Pipeline, deadline: Duration) -> Vec<BackendReport> {
    let until = crate::base::deadline::until(deadline);
    let before: Vec<_> =
        pipeline.processors.iter().map(|p| crate::export::batch::BackendFigures::of(&p.stats)).collect();
    let pending: Vec<_> = pipeline.processors.iter().map(|p| p.begin_shutdown(deadline)).collect();
    let mut backends = Vec::with_capacity(pending.len());
    for ((p, pending), before) in pipeline.processors.iter().zip(pending).zip(before) {
        let result = p.wait(pending, until, "shutdown");
        let after = crate::export::batch::BackendFigures::of(&p.stats);
        let timed_out = matches!(&result, Err(crate::export::batch::BackendError::TimedOut(_)));
        let abandoned = if timed_out { after.queued + after.in_flight } else { 0 };
        // The whole run's losses, once, for a person reading stderr.
        if let Some(line) = crate::diag::loss_line(
            &p.stats.who(),
            "spans",
            after.failed,
            after.dropped(),
            abandoned,
            p.stats.last_error().as_deref(),
        ) {
            crate::diag::emit(crate::diag::DiagnosticLevel::Warn, &line);
        }
        backends.push(BackendReport {
            backend: p.stats.name,
            flushed: after.exported - before.exported,
            dropped: (after.dropped() + after.failed) - (before.dropped() + before.failed),
            abandoned,
            timed_out,
            error: result.err().map(|e| e.to_string()),
        });
    }
    backends
}

/// What [`shutdown`] (or [`Guard::shutdown`]) did, backend by backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// One entry per backend, in configuration order.
    pub backends: Vec<BackendReport>,
    /// The meter provider's shutdown error (the last metric export), if any.
    pub metrics_error: Option<String>,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

impl ShutdownReport {
    /// Spans delivered during the shutdown, over all backends.
    pub fn flushed(&self) -> u64 {
        self.backends.iter().map(|b| b.flushed).sum()
    }
    /// Spans lost during the shutdown (dropped, failed or abandoned), over all backends.
    pub fn lost(&self) -> u64 {
        self.backends.iter().map(|b| b.dropped + b.abandoned).sum()
    }
    /// True when every backend finished in time without an error and nothing was lost.
    pub fn is_clean(&self) -> bool {
        self.metrics_error.is_none() && self.backends.iter().all(|b| b.error.is_none() && b.dropped == 0)
    }
}

impl std::fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "observra shutdown in {:?}:", self.elapsed)?;
        for b in &self.backends {
            write!(f, " {} flushed {}", b.backend, b.flushed)?;
            if b.dropped > 0 {
                write!(f, ", dropped {}", b.dropped)?;
            }
            if b.timed_out {
                write!(f, ", timed out with {} unsent", b.abandoned)?;
            } else if let Some(e) = &b.error {
                write!(f, ", error: {e}")?;
            }
            write!(f, ";")?;
        }
        if let Some(e) = &self.metrics_error {
            write!(f, " metrics error: {e}")?;
        }
        Ok(())
    }
}

/// One backend's part of a [`ShutdownReport`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendReport {
    /// The backend's name (`otlp`, `otel_log`, `jsonl`, `stdout`, `webhook`, and
    /// `otlp_events`: the details events as log records, beside `otlp`).
    pub backend: &'static str,
    /// Spans delivered during the shutdown.
    pub flushed: u64,
    /// Spans dropped or failed during the shutdown.
    pub dropped: u64,
    /// Spans still queued or in flight when the deadline passed.
    pub abandoned: u64,
    /// Whether the deadline passed before the backend finished.
    pub timed_out: bool,
    /// The error of the last export or of the exporter's shutdown, if any.
    pub error: Option<String>,
}

/// Exports everything buffered so far (spans, on every backend, and
/// metrics), waiting at most the configured shutdown deadline.
pub fn flush() -> Result<()> {
    let Some(pipeline) = current() else { return Err(Error::NotInstalled) };
    let deadline = pipeline.shutdown_timeout;
    let until = crate::base::deadline::until(deadline);
    let mut problems = Vec::new();
    {
        // First: it hands the closed spans to the backends.
        if !pipeline.installed.queue.flush(deadline.mul_f64(0.5)) {
            problems.push("metrics: the collector thread did not catch up in time".to_string());
        }
    }
    let left = until.saturating_duration_since(Instant::now());
    let pending: Vec<_> = pipeline.processors.iter().map(|p| p.begin_flush(left)).collect();
    for (p, pending) in pipeline.processors.iter().zip(pending) {
        if let Err(e) = p.wait(pending, until, "flush") {
            problems.push(format!("{}: {e}", p.stats.name));
        }
    }
    if let Some(mp) = &pipeline.meter_provider {
        let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(10));
        if let Err(e) = within(left, "the metric export", {
            let mp = mp.clone();
            move || mp.force_flush().map_err(|e| e.to_string())
        }) {
            problems.push(format!("metrics: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Export { operation: "flush", reason: crate::diag::scrub(&problems.join("; ")) })
    }
}

/// Flushes every backend and stops the installed pipeline, waiting at most
/// `deadline` (and never longer than the configured shutdown timeout), and
/// reports what each backend flushed, dropped, or left unsent when it timed
/// out. Spans that end afterwards are counted as dropped. After this,
/// `install()` may be called again.
///
/// ```no_run
/// # fn main() -> observra::Result<()> {
/// let telemetry = observra::init().install()?;
/// // ... on SIGTERM:
/// let report = observra::shutdown(std::time::Duration::from_secs(3))?;
/// if !report.is_clean() {
///     eprintln!("{report}");
/// }
/// # drop(telemetry);
/// # Ok(()) }
/// ```
pub fn shutdown(deadline: Duration) -> Result<ShutdownReport> {
    take_and_stop(deadline)
}

impl Guard {
    /// Flushes every backend and stops the pipeline within the configured
    /// shutdown deadline, and reports what happened (dropping the guard does
    /// the same silently). `None` when the guard was inactive or the
    /// pipeline was already shut down.
    pub fn shutdown(mut self) -> Option<ShutdownReport> {
        let active = std::mem::replace(&mut self.active, false);
        if active { take_and_stop(Duration::MAX).ok() } else { None }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.active {
            let _ = take_and_stop(Duration::MAX);
        }
    }
}
