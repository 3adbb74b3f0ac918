//! How closed frames get from the callers to the collector thread
//! ([`crate::collect`]): each thread keeps its own buffer ([`Slot`]) and the
//! collector takes every buffer's frames in one sweep, on its tick (20 ms),
//! when a buffer has built up a batch, and on flush and shutdown. A call
//! touches only its own thread's buffer: an uncontended lock that no other
//! core holds between sweeps, and a push. No channel operation and no
//! counter shared with another core per call.
//!
//! Memory is bounded in bytes whatever the input: a frame is charged what
//! it holds (itself, and what its attributes, events and captured content
//! keep on the heap) against one pool (`span_buffer_bytes`, 16 MiB by
//! default), which a buffer draws from in chunks and the collector refills
//! as it handles frames. A frame the pool has no room for is dropped on the
//! caller and counted (`collector_queue`). The last sixteenth of the pool
//! is kept for the roots of traces, so a burst drops whole traces (their
//! children first, never a root whose children were kept while the pool
//! held a sixteenth), and a dropped span that failed or crossed a budget
//! is told to the tail sampler, which keeps its trace.
//!
//! Loss accounting is exact through the hand-over: a frame is counted once
//! as it is handled by the collector, or as dropped with its reason: in a
//! buffer closed at shutdown or by a collector that died (`stopped`), in
//! the collector's hands when it died (`stopped`), or for want of room
//! (`collector_queue`).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use opentelemetry::trace::TraceId;

use super::deadline::{send_within, until};
use super::frame::Frame;
use super::loss::Loss;

/// Agents (by name) whose closing frame was dropped, each with how many:
/// the collector takes their `agent.requests.active` back.
type Ended = HashMap<Option<opentelemetry::StringValue>, u64>;

/// What the collector thread is asked to do besides draining on its tick.
pub(crate) enum Control {
    /// A buffer holds a batch: drain now.
    Wake,
    /// Reply once everything closed before is handled.
    Flush(SyncSender<()>),
    /// Handle what is buffered, reply, and stop.
    Stop(SyncSender<()>),
}

/// What a caller tells the collector besides closed frames.
pub(crate) enum Note {
    /// An agent started (`agent.requests.active` +1), under this name.
    AgentStarted(Option<opentelemetry::StringValue>),
    /// An evaluation of a call ([`crate::evaluate`]).
    Evaluation(Box<super::graded::Graded>),
}

/// What a span dropped on the caller tells the tail sampler of its trace.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LostSpan {
    pub trace_id: TraceId,
    pub failed: bool,
    pub over_budget: bool,
    pub root: bool,
    /// Start and end, as [`super::clock::stamp`]s.
    pub start: u64,
    pub end: u64,
}

/// One thread's buffer of closed frames.
#[derive(Default)]
struct Slot(Mutex<Buffered>);

#[derive(Default)]
struct Buffered {
    /// Boxed: a frame moves in and out as a pointer (see `frame::recycled`).
    #[allow(clippy::vec_box, reason = "a frame moves as a pointer, its box recycled")]
    frames: Vec<Box<Frame>>,
    /// Bytes drawn from the pool and not yet charged to a frame.
    credit: usize,
    /// Cleared when the collector stops (or dies): frames pushed after are
    /// counted as `stopped`.
    closed: bool,
    /// A wake-up was sent since the last sweep.
    woke: bool,
    /// Spans dropped here that the tail sampler must hear of.
    lost: Vec<LostSpan>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Buffered> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every buffer a queue has handed out, and whether the collector still takes them.
#[derive(Default)]
struct Registry {
    slots: Vec<Arc<Slot>>,
    closed: bool,
}

/// What the callers' end and the collector's end share.
struct Shared {
    /// Tells the two ends' buffers apart on a thread that outlives an install.
    id: u64,
    /// The bound of every buffer together, in bytes.
    bound: usize,
    registry: Mutex<Registry>,
    /// For a thread whose own buffer is out of reach (being torn down, or
    /// closing a frame while it closes another).
    spare: Arc<Slot>,
    /// Bytes not drawn by any buffer.
    pool: AtomicUsize,
    /// What only a root may draw: children leave this much in the pool.
    root_reserve: usize,
    /// Frames the collector has taken and not yet handled.
    in_hand: AtomicUsize,
    /// Set by the thread when it takes a wake-up.
    wake_sent: AtomicBool,
    ended: Mutex<Ended>,
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Draws into `credit` until it holds `need` bytes (a chunk when the
    /// pool has one); false when the pool has no room for that. A child
    /// leaves the roots' reserve in the pool.
    fn draw(&self, credit: &mut usize, need: usize, root: bool) -> bool {
        let floor = if root { 0 } else { self.root_reserve };
        let short = need - *credit;
        let mut free = self.pool.load(Ordering::Acquire);
        loop {
            let Some(room) = free.checked_sub(floor).filter(|room| *room >= short) else { return false };
            let take = short.max(FrameQueue::CHUNK).min(room);
            match self.pool.compare_exchange_weak(free, free - take, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    *credit += take;
                    return true;
                }
                Err(now) => free = now,
            }
        }
    }

    /// Gives `bytes` back to the pool.
    fn refill(&self, bytes: usize) {
        if bytes > 0 {
            self.pool.fetch_add(bytes, Ordering::AcqRel);
        }
    }

    /// Counts a frame dropped for `reason`, with everything its loss takes
    /// back: the span (if sampled), its metrics, the agent it counted in
    /// `agent.requests.active` (taken back by the collector, unless it is
    /// gone: its metrics are final then).
    fn lose(&self, mut frame: Box<Frame>, reason: Loss) {
        if frame.ctx.sampled {
            reason.span();
        }
        reason.metric_job();
        let agent = frame.take_active_agent();
        if let (Some(agent), Loss::CollectorQueue) = (agent, reason) {
            *self.ended.lock().unwrap_or_else(PoisonError::into_inner).entry(agent).or_default() += 1;
        }
    }

    /// Closes every buffer (the collector stopped or died): what they hold
    /// is counted as `stopped`, and so is every frame pushed from now on.
    fn close_all(&self) {
        let slots = {
            let mut registry = self.registry();
            registry.closed = true;
            std::mem::take(&mut registry.slots)
        };
        for slot in slots.iter().chain([&self.spare]) {
            let mut b = slot.lock();
            b.closed = true;
            let credit = std::mem::take(&mut b.credit);
            let frames = std::mem::take(&mut b.frames);
            b.lost.clear();
            drop(b);
            self.refill(credit);
            for frame in frames {
                self.refill(frame.charge());
                self.lose(frame, Loss::Stopped);
            }
        }
    }
}

thread_local! {
    /// This thread's buffer, with the id of the queue that handed it out.
    static MINE: RefCell<Option<(u64, Arc<Slot>)>> = const { RefCell::new(None) };
}

/// A point of the hand-over where a test can make the collector die
/// (`__private::kill_collector_at`): 0 none, 1 in the middle of a sweep, 2
/// in the middle of handling what it took.
pub(crate) static KILL_AT: AtomicU8 = AtomicU8::new(0);

/// The callers' end of the hand-over.
pub(crate) struct FrameQueue {
    shared: Arc<Shared>,
    notes: SyncSender<Note>,
    control: SyncSender<Control>,
}

/// The collector thread's end. Dropping it (the collector stopped, or its
/// thread died) closes every buffer and counts what they hold.
pub(crate) struct QueueEnd {
    shared: Arc<Shared>,
    /// Handled before the frames of the same drain.
    pub notes: Receiver<Note>,
    pub control: Receiver<Control>,
}

impl FrameQueue {
    /// Frames in one buffer at which the caller wakes the collector.
    const WAKE_AT: usize = 256;
    /// Most room (in frames) a buffer is given back after a sweep.
    const KEEP: usize = 256;
    /// What a buffer draws from the pool at a time, in bytes.
    const CHUNK: usize = 64 * 1024;
    /// Default bound of everything buffered, in bytes.
    pub(crate) const DEFAULT_BYTES: usize = 16 << 20;
    /// How often the collector sweeps the buffers when nobody wakes it.
    pub(crate) const TICK: Duration = Duration::from_millis(20);

    /// A new hand-over holding at most `bytes` of closed frames: the
    /// callers' end and the collector's.
    pub(crate) fn new(bytes: usize) -> (FrameQueue, QueueEnd) {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let (notes, notes_rx) = std::sync::mpsc::sync_channel::<Note>(8192);
        let (control, control_rx) = std::sync::mpsc::sync_channel::<Control>(16);
        let shared = Arc::new(Shared {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            bound: bytes,
            registry: Mutex::default(),
            spare: Arc::default(),
            pool: AtomicUsize::new(bytes),
            root_reserve: bytes / 16,
            in_hand: AtomicUsize::new(0),
            wake_sent: AtomicBool::new(false),
            ended: Mutex::default(),
        });
        let end = QueueEnd { shared: shared.clone(), notes: notes_rx, control: control_rx };
        (FrameQueue { shared, notes, control }, end)
    }

    /// Runs `f` on this thread's buffer, registering one first if the
    /// thread has none for this queue yet.
    fn with_slot<R>(&self, f: impl FnOnce(&Slot) -> R) -> R {
        let mut f = Some(f);
        let mine = MINE.try_with(|mine| {
            let mut mine = mine.try_borrow_mut().ok()?;
            if mine.as_ref().is_none_or(|(id, _)| *id != self.shared.id) {
                let slot = Arc::new(Slot::default());
                let mut registry = self.shared.registry();
                slot.lock().closed = registry.closed;
                registry.slots.push(slot.clone());
                *mine = Some((self.shared.id, slot));
            }
            let (_, slot) = mine.as_ref()?;
            Some((f.take()?)(slot))
        });
        match (mine, f) {
            (Ok(Some(r)), _) => r,
            (_, Some(f)) => f(&self.shared.spare),
            (_, None) => unreachable!("f ran, so it returned"),
        }
    }

    /// Hands a closed frame to the collector; never blocks. A frame the
    /// pool has no room for (or that closed after the collector stopped)
    /// is dropped and counted, with its reason: the span as dropped, its
    /// metrics as a dropped job; an agent it counted in
    /// `agent.requests.active` is taken back by the collector all the same.
    #[inline]
    pub(crate) fn send(&self, frame: Box<Frame>) {
        let charge = frame.charge();
        let root = frame.is_local_root();
        let shared = &*self.shared;
        let (wake, lost) = self.with_slot(|slot| {
            let mut b = slot.lock();
            if b.closed {
                return (false, Some((frame, Loss::Stopped)));
            }
            // A child keeps room in this buffer for the root that closes
            // after it: a root is never dropped while its children are kept.
            let need = if root { charge } else { charge + std::mem::size_of::<Frame>() };
            if b.credit < need && !shared.draw(&mut b.credit, need, root) {
                if frame.ctx.sampled && (frame.failed() || root || frame.more.as_ref().is_some_and(|m| m.over_budget)) {
                    b.remember_lost(&frame, root);
                }
                let wake = !std::mem::replace(&mut b.woke, true);
                return (wake, Some((frame, Loss::CollectorQueue)));
            }
            b.credit -= charge;
            b.frames.push(frame);
            let wake = b.frames.len() >= Self::WAKE_AT && !std::mem::replace(&mut b.woke, true);
            (wake, None)
        });
        if let Some((frame, reason)) = lost {
            shared.lose(frame, reason);
        }
        if wake {
            self.wake();
        }
    }

    /// Wakes the collector, unless a wake-up is on its way already.
    fn wake(&self) {
        let shared = &*self.shared;
        if !shared.wake_sent.load(Ordering::Relaxed)
            && !shared.wake_sent.swap(true, Ordering::AcqRel)
            && self.control.try_send(Control::Wake).is_err()
        {
            shared.wake_sent.store(false, Ordering::Release);
        }
    }

    /// Tells the collector something; never blocks. False when its queue
    /// was full (nothing was told).
    #[inline]
    pub(crate) fn note(&self, note: Note) -> bool {
        self.notes.try_send(note).is_ok()
    }

    /// Closed frames not yet handled by the collector (buffered, or taken
    /// and being handled).
    pub(crate) fn depth(&self) -> u64 {
        let registry = self.shared.registry();
        let buffered: usize =
            registry.slots.iter().chain([&self.shared.spare]).map(|slot| slot.lock().frames.len()).sum();
        (buffered + self.shared.in_hand.load(Ordering::Acquire)) as u64
    }

    fn request(&self, make: fn(SyncSender<()>) -> Control, deadline: Duration) -> bool {
        let (reply, done) = std::sync::mpsc::sync_channel(1);
        let until = until(deadline);
        send_within(&self.control, make(reply), until).is_ok()
            && done.recv_timeout(until.saturating_duration_since(std::time::Instant::now())).is_ok()
    }

    /// Waits (at most `deadline`) until everything closed so far is handled.
    pub(crate) fn flush(&self, deadline: Duration) -> bool {
        self.request(Control::Flush, deadline)
    }

    /// Handles what is buffered and stops the collector, waiting at most `deadline`.
    pub(crate) fn stop(&self, deadline: Duration) -> bool {
        self.request(Control::Stop, deadline)
    }
}

impl Buffered {
    /// At most this many dropped spans per buffer are told to the tail
    /// sampler between two sweeps (more are counted).
    const MAX_LOST: usize = 4096;

    fn remember_lost(&mut self, frame: &Frame, root: bool) {
        if self.lost.len() < Self::MAX_LOST {
            self.lost.push(LostSpan {
                trace_id: frame.ctx.trace_id,
                failed: frame.failed(),
                over_budget: frame.more.as_ref().is_some_and(|m| m.over_budget),
                root,
                start: frame.start,
                end: frame.end,
            });
        } else {
            LOST_UNTOLD.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Dropped spans that could not be told to the tail sampler (too many
/// between two sweeps), since the process started.
pub(crate) static LOST_UNTOLD: AtomicU64 = AtomicU64::new(0);

/// Frames the collector took in one sweep: each buffer's own list, taken
/// whole (no frame is copied). Whatever is still in it when it is dropped
/// (the collector died while handling them) is counted as `stopped`, so no
/// frame leaves the accounts.
pub(crate) struct Taken<'a> {
    shared: &'a Shared,
    lists: VecDeque<std::vec::IntoIter<Box<Frame>>>,
    /// Frames taken and not yet handed out.
    left: usize,
    /// Bytes of the frames handled since the pool was last refilled.
    handled: usize,
    /// Frames handled since `in_hand` was last lowered.
    count: usize,
}

impl Taken<'_> {
    /// The next frame, each buffer's in the order its thread closed them;
    /// the pool gets the bytes of the frames before it back in steps.
    pub(crate) fn next(&mut self) -> Option<Box<Frame>> {
        if self.count == 64 {
            self.settle();
        }
        if self.count > 0 && self.count >= self.left && KILL_AT.load(Ordering::Relaxed) == 2 {
            panic!("killed in the middle of handling a sweep (a test's fault injection)");
        }
        let frame = loop {
            let list = self.lists.front_mut()?;
            match list.next() {
                Some(frame) => break frame,
                None => drop(self.lists.pop_front()),
            }
        };
        self.left -= 1;
        self.handled += frame.charge();
        self.count += 1;
        Some(frame)
    }

    fn settle(&mut self) {
        self.shared.refill(std::mem::take(&mut self.handled));
        self.shared.in_hand.fetch_sub(std::mem::take(&mut self.count), Ordering::AcqRel);
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.settle();
        for frame in self.lists.drain(..).flatten() {
            self.shared.refill(frame.charge());
            self.shared.lose(frame, Loss::Stopped);
        }
        self.shared.in_hand.fetch_sub(std::mem::take(&mut self.left), Ordering::AcqRel);
    }
}

impl QueueEnd {
    /// Takes the agents whose closing frame was dropped since the last
    /// call, each with how many. Taken before the notes of the same drain:
    /// an agent's start was told before its frame closed, so it is among
    /// them (or was handled before).
    pub(crate) fn take_ended(&self) -> Ended {
        std::mem::take(&mut *self.shared.ended.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The bound of the buffers, in bytes (`span_buffer_bytes`).
    pub(crate) fn bound(&self) -> usize {
        self.shared.bound
    }

    /// Clears the wake-up flag (the thread took one).
    pub(crate) fn woken(&self) {
        self.shared.wake_sent.store(false, Ordering::Release);
    }

    /// Takes every buffer's frames (and the dropped spans the tail sampler
    /// must hear of, into `lost`), and gives each buffer's unused credit
    /// back to the pool. Buffers of threads that ended are forgotten once
    /// empty.
    pub(crate) fn sweep(&self, lost: &mut Vec<LostSpan>) -> Taken<'_> {
        let shared = &*self.shared;
        let mut taken = Taken { shared, lists: VecDeque::new(), left: 0, handled: 0, count: 0 };
        let mut registry = shared.registry();
        let slots = std::mem::take(&mut registry.slots);
        // Whether each buffer's thread had ended when the buffer was
        // emptied: nobody can fill it again, so it is forgotten. (Checked
        // under its lock after taking its frames: a thread that pushes
        // after this sweep took its buffer and ends before the sweep is
        // over still has its frames taken by the next one.)
        let mut ended = Vec::with_capacity(slots.len());
        for (i, slot) in slots.iter().chain([&shared.spare]).enumerate() {
            if i == 1 && KILL_AT.load(Ordering::Relaxed) == 1 {
                registry.slots = slots.clone();
                drop(registry);
                panic!("killed in the middle of a sweep (a test's fault injection)");
            }
            let mut b = slot.lock();
            let n = b.frames.len();
            if n > 0 {
                shared.in_hand.fetch_add(n, Ordering::AcqRel);
                // The buffer gets fresh room for as many frames as it held
                // (at most 256), made here: a thread's steady rhythm never
                // allocates on the thread.
                let room = Vec::with_capacity(n.clamp(16, FrameQueue::KEEP));
                taken.lists.push_back(std::mem::replace(&mut b.frames, room).into_iter());
                taken.left += n;
            }
            lost.append(&mut b.lost);
            shared.refill(std::mem::take(&mut b.credit));
            b.woke = false;
            ended.push(Arc::strong_count(slot) == 1);
        }
        registry.slots = slots.into_iter().zip(ended).filter(|(_, ended)| !ended).map(|(slot, _)| slot).collect();
        taken
    }
}

impl Drop for QueueEnd {
    fn drop(&mut self) {
        self.shared.close_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::frame::Frame;

    fn frame(root: bool) -> Box<Frame> {
        let ids = opentelemetry_sdk::trace::RandomIdGenerator::default();
        let parent = Frame::open(&ids, 0, None, |_| true);
        Box::new(if root { parent } else { Frame::open(&ids, 0, Some(parent.ctx.clone()), |_| true) })
    }

    #[test]
    fn frames_wait_in_their_threads_buffer_until_a_sweep() {
        let (queue, end) = FrameQueue::new(1 << 20);
        let queue = Arc::new(queue);
        for _ in 0..10 {
            queue.send(frame(false));
        }
        let other = queue.clone();
        std::thread::spawn(move || {
            for _ in 0..5 {
                other.send(frame(true));
            }
        })
        .join()
        .unwrap();
        assert_eq!(queue.depth(), 15);
        assert_eq!(end.shared.registry().slots.len(), 2, "one buffer per thread");
        let mut lost = Vec::new();
        let mut taken = end.sweep(&mut lost);
        let mut n = 0;
        while taken.next().is_some() {
            n += 1;
        }
        drop(taken);
        assert_eq!(n, 15);
        assert_eq!(queue.depth(), 0);
        assert_eq!(end.shared.registry().slots.len(), 1, "the ended thread's buffer is forgotten");
        assert_eq!(end.shared.pool.load(Ordering::Acquire), 1 << 20, "every byte is back");
    }

    #[test]
    fn drops_past_what_the_sampler_can_hear_of_are_counted_as_untold() {
        let charge = frame(true).charge();
        let (queue, end) = FrameQueue::new(charge * 2);
        let before = LOST_UNTOLD.load(Ordering::Relaxed);
        let sent = Buffered::MAX_LOST + 10;
        // Roots: what the tail sampler must hear of when they are dropped.
        for _ in 0..sent {
            queue.send(frame(true));
        }
        let untold = LOST_UNTOLD.load(Ordering::Relaxed) - before;
        assert!(untold > 0, "the drops past {} are counted: {untold}", Buffered::MAX_LOST);
        let kept = queue.depth();
        let mut lost = Vec::new();
        drop(end.sweep(&mut lost));
        assert_eq!(lost.len(), Buffered::MAX_LOST, "the sampler hears of the first ones");
        assert_eq!(lost.len() as u64 + untold + kept, sent as u64, "{untold} untold, {kept} kept");
    }

    #[test]
    fn children_leave_the_roots_reserve() {
        let charge = frame(true).charge();
        // Room for 32 frames: children may use 30 of it (a sixteenth kept).
        let (queue, end) = FrameQueue::new(charge * 32);
        let mut kept_children = 0;
        for _ in 0..40 {
            queue.send(frame(false));
        }
        kept_children += queue.depth();
        assert!(kept_children < 32, "children stop short of the reserve: {kept_children}");
        queue.send(frame(true));
        assert_eq!(queue.depth(), kept_children + 1, "a root still fits");
        let mut lost = Vec::new();
        assert_eq!(lost.len(), 0);
        let taken = end.sweep(&mut lost);
        drop(taken);
        assert_eq!(end.shared.pool.load(Ordering::Acquire), charge * 32, "dropped unhandled, counted, refilled");
    }
}
