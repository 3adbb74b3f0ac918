//! The bounded queue that takes closed frames from the callers to the
//! collector thread ([`crate::collect`]), which owns its receiving end
//! ([`QueueEnd`]). A caller never blocks on it: a full queue drops the
//! frame and counts it. The thread sleeps on a timer and on the control
//! channel, never on the data: a caller wakes it only when a batch has
//! built up, so a call costs a slot write, not a futex wake.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::deadline::{send_within, until};
use super::frame::Frame;
use super::loss::Loss;

/// Agents (by name) whose closing frame the queue dropped, each with how
/// many: the collector takes their `agent.requests.active` back.
type Ended = Arc<Mutex<HashMap<Option<opentelemetry::StringValue>, u64>>>;

/// What the collector thread is asked to do besides draining on its tick.
pub(crate) enum Control {
    /// The queue holds a batch: drain it now.
    Wake,
    /// Reply once everything queued before is handled.
    Flush(SyncSender<()>),
    /// Handle what is queued, reply, and stop.
    Stop(SyncSender<()>),
}

/// What a caller tells the collector besides closed frames.
pub(crate) enum Note {
    /// An agent started (`agent.requests.active` +1), under this name.
    AgentStarted(Option<opentelemetry::StringValue>),
    /// An evaluation of a call ([`crate::evaluate`]).
    Evaluation(Box<super::graded::Graded>),
}

/// The callers' end of the collector's queue.
pub(crate) struct FrameQueue {
    frames: SyncSender<Frame>,
    notes: SyncSender<Note>,
    control: SyncSender<Control>,
    depth: Arc<AtomicUsize>,
    wake_sent: Arc<AtomicBool>,
    ended: Ended,
}

/// The collector thread's end of the queue.
pub(crate) struct QueueEnd {
    pub frames: Receiver<Frame>,
    /// Handled before the frames of the same drain.
    pub notes: Receiver<Note>,
    pub control: Receiver<Control>,
    /// Frames queued and not yet taken (the thread takes them off in steps).
    pub depth: Arc<AtomicUsize>,
    /// Cleared by the thread when it takes a wake-up.
    pub wake_sent: Arc<AtomicBool>,
    ended: Ended,
}

impl QueueEnd {
    /// Takes the agents whose closing frame was dropped since the last
    /// call, each with how many. Taken before the notes of the same drain:
    /// an agent's start was told before its frame closed, so it is among
    /// them (or was handled before).
    pub(crate) fn take_ended(&self) -> HashMap<Option<opentelemetry::StringValue>, u64> {
        std::mem::take(&mut *self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl FrameQueue {
    /// Bound of the queue.
    const CAPACITY: usize = 8192;
    /// Depth at which a caller wakes the thread.
    const WAKE_AT: usize = 512;
    /// How often the collector drains the queue when nobody wakes it.
    pub(crate) const TICK: Duration = Duration::from_millis(20);

    /// A new queue: the callers' end and the collector's.
    pub(crate) fn new() -> (FrameQueue, QueueEnd) {
        let (frames, frames_rx) = std::sync::mpsc::sync_channel::<Frame>(Self::CAPACITY);
        let (notes, notes_rx) = std::sync::mpsc::sync_channel::<Note>(Self::CAPACITY);
        let (control, control_rx) = std::sync::mpsc::sync_channel::<Control>(16);
        let depth = Arc::new(AtomicUsize::new(0));
        let wake_sent = Arc::new(AtomicBool::new(false));
        let ended = Ended::default();
        let end = QueueEnd {
            frames: frames_rx,
            notes: notes_rx,
            control: control_rx,
            depth: depth.clone(),
            wake_sent: wake_sent.clone(),
            ended: ended.clone(),
        };
        (FrameQueue { frames, notes, control, depth, wake_sent, ended }, end)
    }

    /// Queues a closed frame; never blocks. A full queue (or a stopped
    /// collector) drops it and counts it, with its reason: the span as
    /// dropped, its metrics as a dropped job; an agent it counted in
    /// `agent.requests.active` is taken back by the collector all the same.
    #[inline]
    pub(crate) fn send(&self, frame: Frame) -> bool {
        // Counted before it can be taken, so the depth never dips below zero.
        let depth = self.depth.fetch_add(1, Ordering::AcqRel) + 1;
        if let Err(e) = self.frames.try_send(frame) {
            self.depth.fetch_sub(1, Ordering::AcqRel);
            let (mut frame, reason) = match e {
                std::sync::mpsc::TrySendError::Full(f) => (f, Loss::CollectorQueue),
                std::sync::mpsc::TrySendError::Disconnected(f) => (f, Loss::Stopped),
            };
            if frame.ctx.sampled {
                reason.span();
            }
            reason.metric_job();
            // (A stopped collector takes nothing back: its metrics are final.)
            let agent = frame.more.as_mut().and_then(|m| m.active_agent.take());
            if let (Some(agent), Loss::CollectorQueue) = (agent, reason) {
                *self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(agent).or_default() += 1;
            }
            return true;
        }
        if depth >= Self::WAKE_AT
            && !self.wake_sent.load(Ordering::Relaxed)
            && !self.wake_sent.swap(true, Ordering::AcqRel)
            && self.control.try_send(Control::Wake).is_err()
        {
            self.wake_sent.store(false, Ordering::Release);
        }
        true
    }

    /// Tells the collector something; never blocks. False when the queue
    /// was full (nothing was told).
    #[inline]
    pub(crate) fn note(&self, note: Note) -> bool {
        self.notes.try_send(note).is_ok()
    }

    /// Frames queued and not yet taken by the collector.
    pub(crate) fn depth(&self) -> u64 {
        self.depth.load(Ordering::Acquire) as u64
    }

    fn request(&self, make: fn(SyncSender<()>) -> Control, deadline: Duration) -> bool {
        let (reply, done) = std::sync::mpsc::sync_channel(1);
        let until = until(deadline);
        send_within(&self.control, make(reply), until).is_ok()
            && done.recv_timeout(until.saturating_duration_since(std::time::Instant::now())).is_ok()
    }

    /// Waits (at most `deadline`) until everything queued so far is handled.
    pub(crate) fn flush(&self, deadline: Duration) -> bool {
        self.request(Control::Flush, deadline)
    }

    /// Handles what is queued and stops the collector, waiting at most `deadline`.
    pub(crate) fn stop(&self, deadline: Duration) -> bool {
        self.request(Control::Stop, deadline)
    }
}
