//! Tail sampling in process ([`crate::Sampler::keep_interesting`]): the
//! collector holds a trace's finished spans until its local root ends, then
//! keeps the whole trace when any span failed, any budget was crossed, the
//! root took longer than a threshold, or a ratio draw on the trace id says
//! so; otherwise it drops them, counted.
//!
//! Everything here runs on the collector thread, never the caller's: a
//! call costs what a recorded call costs (the head sampler records
//! everything in this mode), and the decision is made from facts the
//! collector already has (status, budget crossings, duration).
//!
//! A span reaches the sampler once it is fit to leave: content removed
//! unless capture is on, redacted, and cut to the span limits (64 KiB of
//! captured content by default), so what is held is what would be exported,
//! never a megabyte of prompt.
//!
//! Memory is bounded four ways: traces held at once, spans held in all,
//! bytes held in all (each span counted by [`crate::policy::limits::approx_size`]),
//! and spans held per trace. A span that would overflow the first three
//! makes room by deciding the oldest held trace early; a span past the
//! fourth is dropped (counted as `trace_too_large`). A trace whose root has
//! not ended within the timeout (a long-running agent, a root in another
//! process that never reaches here) is decided on what is held, by the
//! same rules without the duration one: "the timeout rule". Spans of a
//! trace that arrive after its decision follow it (kept, or dropped as
//! `late` unless they failed or crossed a budget themselves).
//!
//! A decision is remembered as long as its trace can still send spans
//! here: while its local root is still open (a trace decided at the
//! timeout, or early to make room, waits for its root however long that
//! takes), then for one more timeout after the root ended (work the root
//! spawned and did not wait for). The memory is capped too
//! ([`Tail::decision_cap`]): past the cap the decision of the trace whose
//! root ended longest ago is forgotten first, then, only if every
//! remembered trace is still open, the oldest open one; each is counted in
//! [`FORGOTTEN`] (and said once on stderr). A span of a forgotten trace is
//! decided afresh, as the first span of a new trace.
//!
//! The GenAI, agent and HTTP metrics are recorded before any of this: they
//! count every call whatever the sampler decides.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::SpanData;

/// Why the tail sampler dropped a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// Its trace was not interesting and the ratio draw said no.
    NotSelected = 0,
    /// Its trace already held `max_spans_per_trace` spans.
    TraceTooLarge = 1,
    /// It arrived after its trace was decided (dropped).
    Late = 2,
}

impl Dropped {
    /// Every reason, with its name in `observra.reason`.
    pub(crate) const ALL: [(Dropped, &'static str); 3] =
        [(Dropped::NotSelected, "not_selected"), (Dropped::TraceTooLarge, "trace_too_large"), (Dropped::Late, "late")];
}

/// Spans the tail sampler dropped, by [`Dropped`] reason.
pub(crate) static DROPPED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
/// Spans the tail sampler holds now.
pub(crate) static HELD: AtomicU64 = AtomicU64::new(0);
/// What the spans the tail sampler holds now take, in bytes
/// ([`crate::policy::limits::approx_size`]).
pub(crate) static HELD_BYTES: AtomicU64 = AtomicU64::new(0);
/// Decisions forgotten before their trace was done, to stay within
/// [`Tail::decision_cap`].
pub(crate) static FORGOTTEN: AtomicU64 = AtomicU64::new(0);

fn count(reason: Dropped, n: usize) {
    DROPPED[reason as usize].fetch_add(n as u64, Ordering::Relaxed);
}

/// What the sampler needs to know of a finished span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts {
    /// Status ERROR.
    pub failed: bool,
    /// A budget was crossed by this call.
    pub over_budget: bool,
    /// The trace's local root: no parent, or a parent in another process.
    pub root: bool,
    /// How long the span took.
    pub duration: Duration,
}

impl Facts {
    fn interesting(&self) -> bool {
        self.failed || self.over_budget
    }
}

/// One held trace.
struct Held {
    spans: Vec<SpanData>,
    /// What `spans` take ([`crate::policy::limits::approx_size`]).
    bytes: usize,
    interesting: bool,
    since: Instant,
    /// Its key in [`Tail::order`].
    seq: u64,
}

/// A decision remembered for the spans of its trace still to come.
struct Decision {
    keep: bool,
    /// When the trace's local root ended; `None` while it is still open.
    root_ended: Option<Instant>,
    /// Its key in [`Tail::forget_order`].
    key: ForgetKey,
}

/// The order decisions are forgotten in: `(root still open, sequence)`.
/// Traces whose root ended come first (they are done, or nearly), oldest
/// end first; open ones after them, oldest decision first.
type ForgetKey = (bool, u64);

/// The tail sampler's state, owned by the collector thread. Every map
/// here is bounded: `traces` and `order` by `max_traces` (one entry a held
/// trace), `decided` and `forget_order` by [`Tail::decision_cap`] (one
/// entry a remembered decision).
pub(crate) struct Tail {
    cfg: KeepInteresting,
    traces: HashMap<TraceId, Held>,
    /// Held traces by arrival, oldest first.
    order: BTreeMap<u64, TraceId>,
    /// Decisions (keep?) for spans that arrive after them.
    decided: HashMap<TraceId, Decision>,
    forget_order: BTreeMap<ForgetKey, TraceId>,
    max_decisions: usize,
    /// Hands out the keys of `order` and `forget_order`.
    seq: u64,
    held_spans: usize,
    held_bytes: usize,
}

/// Whether the ratio draw keeps `trace_id`: the SDK's `TraceIdRatioBased`
/// draw itself (the head sampler's), so a trace is drawn alike here, by a
/// head sampler at the same ratio, and in every process.
fn drawn(trace_id: TraceId, ratio: f64) -> bool {
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};
    let draw = Sampler::TraceIdRatioBased(ratio).should_sample(
        None,
        trace_id,
        "",
        &opentelemetry::trace::SpanKind::Internal,
        &[],
        &[],
    );
    draw.decision == SamplingDecision::RecordAndSample
}

impl Tail {
    pub(crate) fn new(cfg: KeepInteresting) -> Tail {
        Tail {
            cfg,
            traces: HashMap::new(),
            order: BTreeMap::new(),
            decided: HashMap::new(),
            forget_order: BTreeMap::new(),
            max_decisions: Tail::decision_cap(&cfg),
            seq: 0,
            held_spans: 0,
            held_bytes: 0,
        }
    }

    /// How many decisions are remembered at most: 16 per trace that may be
    /// held, at least 65,536 (up to about 200 bytes each: 13 MB by default).
    fn decision_cap(cfg: &KeepInteresting) -> usize {
        cfg.max_traces.saturating_mul(16).max(65_536)
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Whether holding one more span of `size` bytes would pass a bound
    /// on all held spans (count or bytes).
    fn full(&self, size: usize) -> bool {
        self.held_spans >= self.cfg.max_spans || self.held_bytes.saturating_add(size) > self.cfg.max_bytes
    }

    /// Takes a finished span, fit to leave already (limits and redaction
    /// applied): holds it, or decides its trace (its root ended), handing
    /// what is kept to `out`.
    pub(crate) fn offer(&mut self, span: SpanData, facts: Facts, out: &mut dyn FnMut(SpanData)) {
        let trace_id = span.span_context.trace_id();
        if let Some(keep) = self.decided.get(&trace_id).map(|d| d.keep) {
            if keep || facts.interesting() {
                out(span);
            } else {
                count(Dropped::Late, 1);
            }
            if facts.root {
                self.root_ended(trace_id, Instant::now());
            }
            return;
        }
        let size = crate::policy::limits::approx_size(&span);
        if !self.traces.contains_key(&trace_id) {
            self.hold_new(trace_id, size, out);
        } else {
            // The oldest may be this trace: then the span follows its decision (below).
            while self.full(size) {
                if !self.decide_oldest(out) {
                    break;
                }
            }
        }
        let Some(held) = self.traces.get_mut(&trace_id) else {
            // Decided while making room (it was the oldest): it follows that decision.
            return self.offer(span, facts, out);
        };
        held.interesting |= facts.interesting();
        // The root is held even past the cap: without it the trace has no top.
        if held.spans.len() < self.cfg.max_spans_per_trace || facts.root {
            held.spans.push(span);
            held.bytes += size;
            self.held_spans += 1;
            self.held_bytes += size;
            self.publish();
        } else {
            count(Dropped::TraceTooLarge, 1);
        }
        if facts.root {
            let slow = facts.duration >= self.cfg.slower_than;
            self.decide(trace_id, slow, Some(Instant::now()), out);
        } else if self.held_bytes > self.cfg.max_bytes {
            // One span larger than the whole budget, with nothing else left
            // to decide: its trace is decided now, on what it holds.
            self.decide(trace_id, false, None, out);
        }
    }

    /// Starts holding `trace_id`, making room for one more trace and one
    /// more span of `size` bytes by deciding the oldest early.
    fn hold_new(&mut self, trace_id: TraceId, size: usize, out: &mut dyn FnMut(SpanData)) {
        while self.traces.len() >= self.cfg.max_traces || self.full(size) {
            if !self.decide_oldest(out) {
                break;
            }
        }
        let seq = self.next_seq();
        let held = Held { spans: Vec::new(), bytes: 0, interesting: false, since: Instant::now(), seq };
        self.traces.insert(trace_id, held);
        self.order.insert(seq, trace_id);
    }

    /// A span of `trace_id` that is not held (it was dropped before: its
    /// redaction failed, or the callers' buffers had no room for it) still tells its trace what it knows: a
    /// failure or a budget crossed marks the trace interesting, and the
    /// end of its root decides it.
    pub(crate) fn lost(&mut self, trace_id: TraceId, facts: Facts, out: &mut dyn FnMut(SpanData)) {
        if self.decided.contains_key(&trace_id) {
            if facts.root {
                self.root_ended(trace_id, Instant::now());
            }
            return;
        }
        if !self.traces.contains_key(&trace_id) && facts.interesting() {
            // Its trace's other spans are still to come: they are kept.
            self.hold_new(trace_id, 0, out);
        }
        let Some(held) = self.traces.get_mut(&trace_id) else { return };
        held.interesting |= facts.interesting();
        if facts.root {
            let slow = facts.duration >= self.cfg.slower_than;
            self.decide(trace_id, slow, Some(Instant::now()), out);
        }
    }

    /// Publishes what is held, for `health()` and the held gauge.
    fn publish(&self) {
        HELD.store(self.held_spans as u64, Ordering::Relaxed);
        HELD_BYTES.store(self.held_bytes as u64, Ordering::Relaxed);
    }

    /// Decides the traces held longer than the timeout, by the timeout
    /// rule, and forgets the decisions of traces whose root ended more than
    /// a timeout ago.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut dyn FnMut(SpanData)) {
        while let Some((_, &trace_id)) = self.order.first_key_value() {
            let since = self.traces.get(&trace_id).map(|h| h.since);
            if since.is_some_and(|since| now.saturating_duration_since(since) < self.cfg.timeout) {
                break;
            }
            self.order.pop_first();
            self.decide(trace_id, false, None, out);
        }
        while let Some((&(false, _), &trace_id)) = self.forget_order.first_key_value() {
            let ended = self.decided.get(&trace_id).and_then(|d| d.root_ended);
            if ended.is_some_and(|ended| now.saturating_duration_since(ended) < self.cfg.timeout) {
                break;
            }
            self.forget_order.pop_first();
            self.decided.remove(&trace_id);
        }
    }

    /// Decides every held trace by the timeout rule (at shutdown).
    pub(crate) fn decide_all(&mut self, out: &mut dyn FnMut(SpanData)) {
        while self.decide_oldest(out) {}
    }

    /// Decides the oldest held trace by the timeout rule; false when none is held.
    fn decide_oldest(&mut self, out: &mut dyn FnMut(SpanData)) -> bool {
        let Some((_, trace_id)) = self.order.pop_first() else { return false };
        self.decide(trace_id, false, None, out);
        true
    }

    /// Keeps or drops every held span of `trace_id`, and remembers which
    /// for its spans still to come; `root_ended` when its local root ended
    /// (`None`: still open).
    fn decide(&mut self, trace_id: TraceId, slow: bool, root_ended: Option<Instant>, out: &mut dyn FnMut(SpanData)) {
        let Some(held) = self.traces.remove(&trace_id) else { return };
        self.order.remove(&held.seq);
        self.held_spans -= held.spans.len();
        self.held_bytes -= held.bytes;
        self.publish();
        let keep = held.interesting || slow || drawn(trace_id, self.cfg.ratio);
        if keep {
            held.spans.into_iter().for_each(&mut *out);
        } else {
            count(Dropped::NotSelected, held.spans.len());
        }
        self.remember(trace_id, keep, root_ended);
    }

    /// Remembers a decision, forgetting one first when at the cap.
    fn remember(&mut self, trace_id: TraceId, keep: bool, root_ended: Option<Instant>) {
        if self.decided.len() >= self.max_decisions && !self.decided.contains_key(&trace_id) {
            if let Some((_, oldest)) = self.forget_order.pop_first() {
                self.decided.remove(&oldest);
                forgot_early();
            }
        }
        let key = (root_ended.is_none(), self.next_seq());
        self.forget_order.insert(key, trace_id);
        if let Some(old) = self.decided.insert(trace_id, Decision { keep, root_ended, key }) {
            self.forget_order.remove(&old.key);
        }
    }

    /// A local root of the decided trace `trace_id` ended `now`: its
    /// decision is kept one more timeout from now, then forgotten.
    fn root_ended(&mut self, trace_id: TraceId, now: Instant) {
        let key = (false, self.next_seq());
        let Some(d) = self.decided.get_mut(&trace_id) else { return };
        self.forget_order.remove(&d.key);
        d.key = key;
        d.root_ended = Some(now);
        self.forget_order.insert(key, trace_id);
    }
}

/// Counts a decision forgotten to stay within the cap, and says so once.
fn forgot_early() {
    FORGOTTEN.fetch_add(1, Ordering::Relaxed);
    static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !TOLD.swap(true, Ordering::Relaxed) {
        crate::diag::emit(
            crate::diag::DiagnosticLevel::Warn,
            "the tail sampler remembers too many decided traces still able to send spans and forgot the \
             oldest: spans of a forgotten trace that end later are decided afresh, as a new trace (said once)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    fn span(trace: u128, id: u64) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: vec![],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    fn facts(failed: bool, root: bool) -> Facts {
        Facts { failed, over_budget: false, root, duration: Duration::from_millis(1) }
    }

    fn cfg() -> KeepInteresting {
        KeepInteresting::default().ratio(0.0)
    }

    #[test]
    fn a_trace_with_a_failure_is_kept_whole_and_a_dull_one_dropped_counted() {
        let mut tail = Tail::new(cfg());
        let mut kept = Vec::new();
        let before = DROPPED[0].load(Ordering::Relaxed);
        tail.offer(span(1, 1), facts(true, false), &mut |s| kept.push(s));
        tail.offer(span(1, 2), facts(false, false), &mut |s| kept.push(s));
        tail.offer(span(2, 3), facts(false, false), &mut |s| kept.push(s));
        assert!(kept.is_empty(), "held until the root ends");
        tail.offer(span(1, 4), facts(false, true), &mut |s| kept.push(s));
        tail.offer(span(2, 5), facts(false, true), &mut |s| kept.push(s));
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|s| s.span_context.trace_id() == TraceId::from(1u128)));
        assert!(DROPPED[0].load(Ordering::Relaxed) >= before + 2);
        assert_eq!(tail.held_spans, 0);
    }

    #[test]
    fn a_slow_root_keeps_its_trace_and_the_ratio_draws_by_trace_id() {
        let mut tail = Tail::new(cfg().slower_than(Duration::from_millis(5)));
        let mut kept = Vec::new();
        let slow = Facts { failed: false, over_budget: false, root: true, duration: Duration::from_millis(6) };
        tail.offer(span(7, 1), slow, &mut |s| kept.push(s));
        assert_eq!(kept.len(), 1);
        assert!(drawn(TraceId::from(0u128), 0.5) && !drawn(TraceId::from(u64::MAX as u128), 0.5));
        assert!(drawn(TraceId::from(u64::MAX as u128), 1.0) && !drawn(TraceId::from(0u128), 0.0));
    }

    #[test]
    fn memory_stays_bounded_and_open_traces_time_out_under_the_rules() {
        let mut tail = Tail::new(cfg().max_traces(2).max_spans(3).max_spans_per_trace(2));
        let mut kept = Vec::new();
        tail.offer(span(1, 1), facts(true, false), &mut |s| kept.push(s));
        tail.offer(span(1, 2), facts(false, false), &mut |s| kept.push(s));
        tail.offer(span(1, 3), facts(false, false), &mut |s| kept.push(s)); // past the per-trace cap
        assert_eq!(tail.held_spans, 2);
        tail.offer(span(2, 4), facts(false, false), &mut |s| kept.push(s));
        assert_eq!(tail.held_spans, 3);
        // A third trace: the oldest (1, failed) is decided early and kept.
        tail.offer(span(3, 5), facts(false, false), &mut |s| kept.push(s));
        assert_eq!(kept.len(), 2);
        assert!(tail.traces.len() <= 2 && tail.held_spans <= 3);
        // A late span of the kept trace follows it.
        tail.offer(span(1, 6), facts(false, false), &mut |s| kept.push(s));
        assert_eq!(kept.len(), 3);
        // Timeouts decide what is left, by the rules (dull: dropped).
        tail.expire(Instant::now() + Duration::from_secs(3600), &mut |s| kept.push(s));
        assert_eq!(kept.len(), 3);
        assert_eq!(tail.held_spans, 0);
        assert!(tail.traces.is_empty());
        assert!(tail.order.is_empty());
    }

    /// A span of about `bytes` bytes (one attribute of that length).
    fn sized(trace: u128, id: u64, bytes: usize) -> SpanData {
        let mut s = span(trace, id);
        s.attributes.push(opentelemetry::KeyValue::new("payload", "x".repeat(bytes)));
        s
    }

    #[test]
    fn held_bytes_stay_within_the_byte_budget_by_deciding_the_oldest_trace_early() {
        let one = crate::policy::limits::approx_size(&sized(1, 1, 10_000));
        let mut tail = Tail::new(cfg().max_bytes(3 * one + one / 2));
        let mut kept = Vec::new();
        tail.offer(sized(1, 1, 10_000), facts(true, false), &mut |s| kept.push(s));
        tail.offer(sized(1, 2, 10_000), facts(false, false), &mut |s| kept.push(s));
        tail.offer(sized(1, 3, 10_000), facts(false, false), &mut |s| kept.push(s));
        assert_eq!((tail.held_spans, tail.held_bytes), (3, 3 * one));
        assert!(kept.is_empty());
        // A fourth span would pass the budget: the oldest trace (1, failed) is decided early, kept.
        tail.offer(sized(2, 4, 10_000), facts(false, false), &mut |s| kept.push(s));
        assert_eq!(kept.len(), 3);
        assert_eq!((tail.held_spans, tail.held_bytes), (1, one));
        // So is its own trace, when it is the oldest: the span follows the decision (dull: dropped).
        let dropped = DROPPED[Dropped::NotSelected as usize].load(Ordering::Relaxed);
        for id in 5..9 {
            tail.offer(sized(2, id, 10_000), facts(false, false), &mut |s| kept.push(s));
            assert!(tail.held_bytes <= tail.cfg.max_bytes);
        }
        assert!(DROPPED[Dropped::NotSelected as usize].load(Ordering::Relaxed) > dropped);
        // One span larger than the whole budget is not held past it: its trace is decided at once.
        tail.offer(sized(3, 9, 100_000), facts(true, false), &mut |s| kept.push(s));
        assert!(tail.held_bytes <= tail.cfg.max_bytes && !tail.traces.contains_key(&TraceId::from(3u128)));
        assert_eq!(kept.last().map(|s| s.span_context.span_id()), Some(SpanId::from(9u64)), "failed: kept");
        assert_eq!(kept.len(), 4);
    }

    #[test]
    fn a_span_lost_before_the_sampler_still_decides_its_trace_when_it_was_the_root() {
        let mut tail = Tail::new(cfg());
        let mut kept = Vec::new();
        tail.offer(span(1, 1), facts(false, false), &mut |s| kept.push(s));
        // The root's redaction failed: it is not held, yet it failed and ended.
        tail.lost(TraceId::from(1u128), facts(true, true), &mut |s| kept.push(s));
        assert_eq!(kept.len(), 1, "the trace is decided (and kept: its root failed)");
        assert!(tail.traces.is_empty() && tail.decided[&TraceId::from(1u128)].root_ended.is_some());
    }

    fn slow_root() -> Facts {
        Facts { failed: false, over_budget: false, root: true, duration: Duration::from_secs(3600) }
    }

    #[test]
    fn a_trace_dropped_with_its_root_open_stays_dropped_however_many_traces_are_decided_meanwhile() {
        let mut tail = Tail::new(cfg().max_traces(2));
        let mut kept = Vec::new();
        tail.offer(span(1, 1), facts(false, false), &mut |s| kept.push(s));
        tail.expire(Instant::now() + Duration::from_secs(3600), &mut |s| kept.push(s));
        assert!(kept.is_empty() && tail.traces.is_empty(), "dull: dropped at the timeout, its root still open");
        // Far more traces than were ever remembered before (max(max_traces, 1,024)).
        for t in 2..5000u128 {
            tail.offer(span(t, 1), facts(false, true), &mut |s| kept.push(s));
        }
        assert!(kept.is_empty());
        // Its late child, then its root, now slow: both follow the drop.
        tail.offer(span(1, 2), facts(false, false), &mut |s| kept.push(s));
        tail.offer(span(1, 3), slow_root(), &mut |s| kept.push(s));
        assert!(kept.is_empty(), "nothing of the dropped trace is exported later");
        assert!(tail.traces.is_empty() && tail.order.is_empty());
        // The root ended: the decision now waits one timeout for stragglers.
        assert!(tail.decided[&TraceId::from(1u128)].root_ended.is_some());
    }

    #[test]
    fn decisions_are_forgotten_a_timeout_after_their_root_ended_and_past_the_cap_ended_ones_first() {
        let mut tail = Tail::new(cfg().timeout(Duration::from_secs(60)));
        tail.max_decisions = 3;
        let mut kept = Vec::new();
        let forgotten = FORGOTTEN.load(Ordering::Relaxed);
        // 1: decided at the timeout, root open. 2 and 3: decided at their root.
        tail.offer(span(1, 1), facts(false, false), &mut |s| kept.push(s));
        tail.expire(Instant::now() + Duration::from_secs(61), &mut |s| kept.push(s));
        tail.offer(span(2, 2), facts(false, true), &mut |s| kept.push(s));
        tail.offer(span(3, 3), facts(false, true), &mut |s| kept.push(s));
        // A fourth at the cap: the ended trace decided first (2) is forgotten, not the open one.
        tail.offer(span(4, 4), facts(false, true), &mut |s| kept.push(s));
        let remembered = |tail: &Tail| {
            let mut ids: Vec<u128> = tail.decided.keys().map(|t| u128::from_be_bytes(t.to_bytes())).collect();
            ids.sort();
            ids
        };
        assert_eq!(remembered(&tail), [1, 3, 4]);
        assert!(FORGOTTEN.load(Ordering::Relaxed) > forgotten);
        assert_eq!(tail.decided.len(), tail.forget_order.len());
        // A timeout after their roots ended, 3 and 4 are forgotten; 1 stays while its root is open.
        tail.expire(Instant::now() + Duration::from_secs(3600), &mut |s| kept.push(s));
        assert_eq!(remembered(&tail), [1]);
        // Its root ends: remembered one more timeout, then forgotten.
        tail.offer(span(1, 5), facts(false, true), &mut |s| kept.push(s));
        tail.expire(Instant::now(), &mut |s| kept.push(s));
        assert_eq!(remembered(&tail), [1]);
        tail.expire(Instant::now() + Duration::from_secs(61), &mut |s| kept.push(s));
        assert!(tail.decided.is_empty() && tail.forget_order.is_empty());
        assert!(kept.is_empty());
        // Only open traces at the cap: the oldest open one is forgotten.
        for t in 10..14u128 {
            tail.offer(span(t, 1), facts(false, false), &mut |s| kept.push(s));
            tail.decide_all(&mut |s| kept.push(s));
        }
        assert_eq!(remembered(&tail), [11, 12, 13]);
    }

    #[test]
    fn the_held_order_stays_as_small_as_the_held_traces_behind_a_long_lived_root() {
        let mut tail = Tail::new(cfg());
        let mut kept = Vec::new();
        // A long-lived trace sits at the front while many others come and go.
        tail.offer(span(1, 1), facts(false, false), &mut |s| kept.push(s));
        for t in 2..10_000u128 {
            tail.offer(span(t, 1), facts(false, false), &mut |s| kept.push(s));
            tail.offer(span(t, 2), facts(false, true), &mut |s| kept.push(s));
            tail.expire(Instant::now(), &mut |s| kept.push(s));
        }
        assert_eq!((tail.traces.len(), tail.order.len()), (1, 1));
    }
}

/// The settings of the tail sampler ([`crate::Sampler::keep_interesting`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeepInteresting {
    pub(crate) ratio: f64,
    pub(crate) slower_than: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_traces: usize,
    pub(crate) max_spans: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_spans_per_trace: usize,
}

/// Default bound on the bytes the tail sampler holds ([`KeepInteresting::max_bytes`]).
const DEFAULT_TAIL_MAX_BYTES: usize = 64 << 20;

impl Default for KeepInteresting {
    /// 10 % of the other traces, slower than 10 s, a 60 s timeout, at most
    /// 4,096 traces, 65,536 spans and 64 MiB held, 1,024 spans a trace.
    fn default() -> Self {
        KeepInteresting {
            ratio: 0.1,
            slower_than: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_traces: 4096,
            max_spans: 65_536,
            max_bytes: DEFAULT_TAIL_MAX_BYTES,
            max_spans_per_trace: 1024,
        }
    }
}

impl KeepInteresting {
    /// The share of traces with nothing interesting that are kept, drawn on
    /// the trace id (`OBSERVRA_TRACES_SAMPLER_ARG`; default 0.1).
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = ratio;
        self
    }
    /// A trace whose root took at least this long is kept
    /// (`OBSERVRA_TAIL_SLOWER_THAN_MS`; default 10 s).
    pub fn slower_than(mut self, d: Duration) -> Self {
        self.slower_than = d;
        self
    }
    /// A trace whose root has not ended this long after its first span
    /// arrived is decided on what is held (`OBSERVRA_TAIL_TIMEOUT_MS`;
    /// default 60 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }
    /// Traces held at once; one more decides the oldest early
    /// (`OBSERVRA_TAIL_MAX_TRACES`; default 4,096).
    pub fn max_traces(mut self, n: usize) -> Self {
        self.max_traces = n;
        self
    }
    /// Spans held in all; one more decides the oldest trace early
    /// (`OBSERVRA_TAIL_MAX_SPANS`; default 65,536).
    pub fn max_spans(mut self, n: usize) -> Self {
        self.max_spans = n;
        self
    }
    /// Bytes held in all, each span counted as it would be exported (after
    /// the span limits, by its attributes', events' and links' lengths);
    /// one more span past it decides the oldest trace early
    /// (`OBSERVRA_TAIL_MAX_BYTES`; default 64 MiB). A single span larger
    /// than this is not held: its trace is decided when it arrives.
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }
    /// Spans held of one trace; more are dropped, counted as
    /// `trace_too_large` (the root is always kept) (`OBSERVRA_TAIL_MAX_SPANS_PER_TRACE`;
    /// default 1,024).
    pub fn max_spans_per_trace(mut self, n: usize) -> Self {
        self.max_spans_per_trace = n;
        self
    }
}
