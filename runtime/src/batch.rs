//! A bounded, non-blocking span batch processor that counts what it drops.
//!
//! The caller's thread only does a `try_send` into a bounded channel; a
//! dedicated thread batches spans and runs the exporter (any
//! [`SpanExporter`]). A full queue drops the span and counts it, it never
//! blocks. Flush and shutdown wait for the worker with a deadline.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::config::BatchSettings;

/// The pipeline's counters, read through [`crate::health`]. Totals are
/// cumulative for the process (they survive shutdown and re-installation);
/// `queued` and `in_flight` are the current pipeline's gauges.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub queued: AtomicU64,
    pub in_flight: AtomicU64,
    pub dropped: AtomicU64,
    pub exported: AtomicU64,
    pub failed: AtomicU64,
    pub export_errors: AtomicU64,
}

/// The one set of counters every processor reports to.
pub(crate) static COUNTERS: Counters = Counters {
    queued: AtomicU64::new(0),
    in_flight: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
    exported: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    export_errors: AtomicU64::new(0),
};

enum Control {
    /// The queue reached a batch: export now.
    Wake,
    Flush(SyncSender<Result<(), String>>),
    Shutdown(SyncSender<Result<(), String>>),
}

/// Runs an export future to completion on the worker thread.
pub(crate) type BlockOn = Arc<dyn for<'a> Fn(ExportFuture<'a>) -> OTelSdkResult + Send + Sync>;
/// One boxed export call.
pub(crate) type ExportFuture<'a> = std::pin::Pin<Box<dyn Future<Output = OTelSdkResult> + Send + 'a>>;

pub(crate) struct BatchProcessor {
    spans: SyncSender<SpanData>,
    control: SyncSender<Control>,
    wake_sent: Arc<AtomicBool>,
    pub(crate) counters: &'static Counters,
    batch_size: u64,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl BatchProcessor {
    /// Starts the worker thread for `exporter`.
    pub(crate) fn start<E>(
        mut exporter: E,
        resource: &Resource,
        settings: BatchSettings,
        block_on: BlockOn,
        redactor: Option<Arc<crate::redact::Redactor>>,
    ) -> std::io::Result<Self>
    where
        E: SpanExporter + 'static,
    {
        exporter.set_resource(resource);
        let (spans, span_rx) = sync_channel::<SpanData>(settings.max_queue_size);
        let (control, control_rx) = sync_channel::<Control>(16);
        let counters = &COUNTERS;
        counters.queued.store(0, Ordering::Release);
        counters.in_flight.store(0, Ordering::Release);
        let wake_sent = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            exporter,
            spans: span_rx,
            control: control_rx,
            counters,
            wake_sent: wake_sent.clone(),
            settings,
            block_on,
            redactor,
        };
        let handle = std::thread::Builder::new().name("observra-export".into()).spawn(move || {
            crate::layer::suppress_current_thread();
            worker.run()
        })?;
        Ok(BatchProcessor {
            spans,
            control,
            wake_sent,
            counters,
            batch_size: settings.max_export_batch_size.max(1) as u64,
            worker: Mutex::new(Some(handle)),
        })
    }

    /// Queues a finished span; never blocks. A full queue drops and counts it.
    pub(crate) fn on_end(&self, span: SpanData) {
        match self.spans.try_send(span) {
            Ok(()) => {
                let depth = self.counters.queued.fetch_add(1, Ordering::AcqRel) + 1;
                if depth >= self.batch_size
                    && !self.wake_sent.load(Ordering::Relaxed)
                    && !self.wake_sent.swap(true, Ordering::AcqRel)
                    && self.control.try_send(Control::Wake).is_err()
                {
                    self.wake_sent.store(false, Ordering::Release);
                }
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Exports everything queued so far, waiting at most `deadline`.
    pub(crate) fn flush(&self, deadline: Duration) -> Result<(), String> {
        self.request(Control::Flush, deadline, "flush")
    }

    /// Exports what is queued, shuts the exporter down and stops the worker,
    /// waiting at most `deadline`.
    pub(crate) fn shutdown(&self, deadline: Duration) -> Result<(), String> {
        let result = self.request(Control::Shutdown, deadline, "shutdown");
        if result.is_ok() {
            if let Ok(mut worker) = self.worker.lock() {
                if let Some(handle) = worker.take() {
                    let _ = handle.join();
                }
            }
        }
        result
    }

    fn request(
        &self,
        make: fn(SyncSender<Result<(), String>>) -> Control,
        deadline: Duration,
        what: &str,
    ) -> Result<(), String> {
        let (tx, rx) = sync_channel(1);
        let start = Instant::now();
        // The control channel is small; retry briefly if it is momentarily full.
        let mut msg = make(tx);
        loop {
            match self.control.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return Err(format!("{what}: the export thread has stopped")),
                Err(TrySendError::Full(m)) => {
                    if start.elapsed() >= deadline {
                        return Err(format!("{what}: timed out after {deadline:?}"));
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        match rx.recv_timeout(deadline.saturating_sub(start.elapsed())) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => Err(format!("{what}: timed out after {deadline:?}")),
            Err(RecvTimeoutError::Disconnected) => Err(format!("{what}: the export thread has stopped")),
        }
    }
}

struct Worker<E> {
    exporter: E,
    spans: Receiver<SpanData>,
    control: Receiver<Control>,
    counters: &'static Counters,
    wake_sent: Arc<AtomicBool>,
    settings: BatchSettings,
    block_on: BlockOn,
    /// Applied to every span before any exporter sees it.
    redactor: Option<Arc<crate::redact::Redactor>>,
}

impl<E: SpanExporter> Worker<E> {
    fn run(self) {
        let mut next_export = Instant::now() + self.settings.scheduled_delay;
        loop {
            let wait = next_export.saturating_duration_since(Instant::now());
            match self.control.recv_timeout(wait) {
                Ok(Control::Wake) => {
                    self.wake_sent.store(false, Ordering::Release);
                    let _ = self.export_available(true);
                }
                Ok(Control::Flush(reply)) => {
                    let r = self.export_available(false);
                    let _ = reply.send(r);
                }
                Ok(Control::Shutdown(reply)) => {
                    let r = self.export_available(false);
                    let r2 = self.exporter.shutdown().map_err(|e| e.to_string());
                    let _ = reply.send(r.and(r2));
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.export_available(false);
                    next_export = Instant::now() + self.settings.scheduled_delay;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.export_available(false);
                    let _ = self.exporter.shutdown();
                    return;
                }
            }
        }
    }

    /// Drains the queue in batches; with `full_batches_only`, stops when less
    /// than one batch is left (the timer exports the rest).
    fn export_available(&self, full_batches_only: bool) -> Result<(), String> {
        let max = self.settings.max_export_batch_size.max(1);
        let mut result = Ok(());
        loop {
            let queued = self.counters.queued.load(Ordering::Acquire) as usize;
            if queued == 0 || (full_batches_only && queued < max) {
                return result;
            }
            let mut batch = Vec::with_capacity(queued.min(max));
            while batch.len() < max {
                match self.spans.try_recv() {
                    Ok(s) => batch.push(s),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                return result;
            }
            let n = batch.len() as u64;
            if let Some(r) = &self.redactor {
                for span in batch.iter_mut() {
                    r.span(span);
                }
            }
            self.counters.in_flight.fetch_add(n, Ordering::AcqRel);
            self.counters.queued.fetch_sub(n, Ordering::AcqRel);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (self.block_on)(Box::pin(self.exporter.export(batch)))
            }));
            self.counters.in_flight.fetch_sub(n, Ordering::AcqRel);
            match outcome {
                Ok(Ok(())) => {
                    self.counters.exported.fetch_add(n, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    self.counters.failed.fetch_add(n, Ordering::Relaxed);
                    self.counters.export_errors.fetch_add(1, Ordering::Relaxed);
                    result = Err(e.to_string());
                }
                Err(_) => {
                    self.counters.failed.fetch_add(n, Ordering::Relaxed);
                    self.counters.export_errors.fetch_add(1, Ordering::Relaxed);
                    result = Err("the exporter panicked".to_string());
                }
            }
        }
    }
}
