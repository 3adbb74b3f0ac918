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
//! Memory is bounded three ways: traces held at once, spans held in all,
//! and spans held per trace. A trace that would overflow the first two
//! makes room by deciding the oldest held trace early; a span past the
//! third is dropped (counted as `trace_too_large`). A trace whose root has
//! not ended within the timeout (a long-running agent, a root in another
//! process that never reaches here) is decided on what is held, by the
//! same rules without the duration one: "the timeout rule". Spans of a
//! trace that arrive after its decision follow it (kept, or dropped as
//! `late` unless they failed or crossed a budget themselves).
//!
//! The GenAI, agent and HTTP metrics are recorded before any of this: they
//! count every call whatever the sampler decides.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::SpanData;

use crate::config::KeepInteresting;

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
    interesting: bool,
    since: Instant,
}

/// The tail sampler's state, owned by the collector thread.
pub(crate) struct Tail {
    cfg: KeepInteresting,
    traces: HashMap<TraceId, Held>,
    /// Held traces, oldest first (entries of traces decided since are skipped).
    order: VecDeque<(TraceId, Instant)>,
    /// Recent decisions (keep?), for spans that arrive after them; bounded.
    decided: HashMap<TraceId, bool>,
    decided_order: VecDeque<TraceId>,
    held_spans: usize,
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
            order: VecDeque::new(),
            decided: HashMap::new(),
            decided_order: VecDeque::new(),
            held_spans: 0,
        }
    }

    /// Takes a finished span: holds it, or decides its trace (its root
    /// ended), handing what is kept to `out`.
    pub(crate) fn offer(&mut self, span: SpanData, facts: Facts, out: &mut dyn FnMut(SpanData)) {
        let trace_id = span.span_context.trace_id();
        if let Some(&keep) = self.decided.get(&trace_id) {
            if keep || facts.interesting() {
                out(span);
            } else {
                count(Dropped::Late, 1);
            }
            return;
        }
        if !self.traces.contains_key(&trace_id) {
            // Room for one more trace and one more span, made by deciding the oldest early.
            while self.traces.len() >= self.cfg.max_traces || self.held_spans >= self.cfg.max_spans {
                if !self.decide_oldest(out) {
                    break;
                }
            }
            let now = Instant::now();
            self.traces.insert(trace_id, Held { spans: Vec::new(), interesting: false, since: now });
            self.order.push_back((trace_id, now));
        } else {
            while self.held_spans >= self.cfg.max_spans {
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
            self.held_spans += 1;
            HELD.store(self.held_spans as u64, Ordering::Relaxed);
        } else {
            count(Dropped::TraceTooLarge, 1);
        }
        if facts.root {
            let slow = facts.duration >= self.cfg.slower_than;
            self.decide(trace_id, slow, out);
        }
    }

    /// Decides the traces held longer than the timeout, by the timeout rule.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut dyn FnMut(SpanData)) {
        while let Some(&(trace_id, since)) = self.order.front() {
            if !self.is_current(trace_id, since) {
                self.order.pop_front();
                continue;
            }
            if now.saturating_duration_since(since) < self.cfg.timeout {
                break;
            }
            self.order.pop_front();
            self.decide(trace_id, false, out);
        }
    }

    /// Decides every held trace by the timeout rule (at shutdown).
    pub(crate) fn decide_all(&mut self, out: &mut dyn FnMut(SpanData)) {
        while self.decide_oldest(out) {}
    }

    /// Whether the `order` entry `(trace_id, since)` is a trace still held.
    fn is_current(&self, trace_id: TraceId, since: Instant) -> bool {
        self.traces.get(&trace_id).is_some_and(|h| h.since == since)
    }

    /// Decides the oldest held trace by the timeout rule; false when none is held.
    fn decide_oldest(&mut self, out: &mut dyn FnMut(SpanData)) -> bool {
        while let Some((trace_id, since)) = self.order.pop_front() {
            if self.is_current(trace_id, since) {
                self.decide(trace_id, false, out);
                return true;
            }
        }
        false
    }

    /// Keeps or drops every held span of `trace_id`, and remembers which.
    fn decide(&mut self, trace_id: TraceId, slow: bool, out: &mut dyn FnMut(SpanData)) {
        let Some(held) = self.traces.remove(&trace_id) else { return };
        self.held_spans -= held.spans.len();
        HELD.store(self.held_spans as u64, Ordering::Relaxed);
        let keep = held.interesting || slow || drawn(trace_id, self.cfg.ratio);
        if keep {
            held.spans.into_iter().for_each(&mut *out);
        } else {
            count(Dropped::NotSelected, held.spans.len());
        }
        // Remember the decision for spans still to come (spawned work that
        // outlives its root), as many as traces may be held, oldest forgotten first.
        if self.decided_order.len() >= self.cfg.max_traces.max(1024) {
            if let Some(old) = self.decided_order.pop_front() {
                self.decided.remove(&old);
            }
        }
        self.decided.insert(trace_id, keep);
        self.decided_order.push_back(trace_id);
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
    }
}
