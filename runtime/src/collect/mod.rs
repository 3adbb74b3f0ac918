//! The collector: one thread, off every caller, that turns closed
//! [`Frame`]s into `SpanData` and the GenAI, agent and function metrics.
//!
//! Callers queue frames on a bounded queue ([`crate::base::queue`]). Here,
//! once per span: the cost of a model call (unless the caller already
//! worked it out for a budget), the conventions' metrics with their exact
//! names, units and buckets, the totals an agent or workflow carries, the
//! details event, and the span itself, handed to every backend at once
//! ([`FanOut`]).

mod assemble;
mod evaluations;
mod metrics;
pub(crate) mod tail;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use opentelemetry::{KeyValue, StringValue};
use opentelemetry_sdk::trace::SpanData;

use crate::account::accounting::Instruments;
use crate::base::clock::Anchor;
use crate::base::loss::Loss;
use crate::base::queue::{Control, FrameQueue, LostSpan, Note, QueueEnd};
use crate::base::state::{Installed, suppress_current_thread};
use crate::export::batch::FanOut;
use crate::policy::span::SpanPolicy;
use evaluations::{Pending, Responses};
use metrics::{Labels, find, set_labels};
use observra_semconv as sc;
use tail::KeepInteresting;
use tail::Tail;

/// Starts the `observra-collector` thread on the receiving end of a queue:
/// it assembles frames for `installed` (held weakly: the install owns the
/// queue), hands the spans to `backends` and records metrics on `ins`.
pub(crate) fn start(
    end: QueueEnd,
    ins: Option<Instruments>,
    backends: Arc<FanOut>,
    policy: SpanPolicy,
    tail: Option<KeepInteresting>,
    installed: Weak<Installed>,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("observra-collector".into()).spawn(move || {
        suppress_current_thread();
        let out = Collector {
            backends: &backends,
            outbox: Default::default(),
            policy: &policy,
            tail: std::cell::RefCell::new(tail.map(Tail::new)),
            agents_seen: Default::default(),
            linted: Default::default(),
            responses: Default::default(),
            pending: Default::default(),
            qualified: Default::default(),
        };
        let mut drops = BufferDrops::new();
        let mut drain = || {
            drain(&end, &installed, &out, ins.as_ref());
            drops.check(end.bound());
        };
        loop {
            match end.control.recv_timeout(FrameQueue::TICK) {
                Ok(Control::Wake) => {
                    end.woken();
                    drain();
                }
                Ok(Control::Flush(reply)) => {
                    drain();
                    let _ = reply.send(());
                }
                Ok(Control::Stop(reply)) => {
                    drain();
                    if let Some(p) = installed.upgrade() {
                        out.land_evaluations(&p, ins.as_ref(), true);
                    }
                    out.decide_held();
                    out.hand_over();
                    let _ = reply.send(());
                    return;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => drain(),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    drain();
                    // Handed over as `out` drops.
                    out.decide_held();
                    return;
                }
            }
        }
    })?;
    Ok(())
}

/// Where assembled spans go: once made fit to leave, to every backend.
struct Collector<'a> {
    backends: &'a FanOut,
    /// Spans fit to leave, handed to the backends together
    /// ([`Collector::hand_over`]): at the end of each drain, and every
    /// [`HAND_OVER`] spans.
    outbox: std::cell::RefCell<Vec<SpanData>>,
    policy: &'a SpanPolicy,
    /// The tail sampler, when `keep_interesting` is on.
    tail: std::cell::RefCell<Option<Tail>>,
    /// Agents whose error counter has been started at 0 (bounded).
    agents_seen: std::cell::RefCell<std::collections::HashSet<Option<StringValue>>>,
    /// Span names already warned about a missing required GenAI attribute (bounded).
    linted: std::cell::RefCell<std::collections::HashSet<String>>,
    /// Recent model calls by response id, for evaluations that come after
    /// them ([`crate::evaluate`]); bounded.
    responses: std::cell::RefCell<Responses>,
    /// Evaluations whose call has not been seen yet (bounded).
    pending: std::cell::RefCell<Pending>,
    /// `module::function` of each `#[traced(metrics)]` function, made once.
    qualified: std::cell::RefCell<std::collections::HashMap<(&'static str, &'static str), StringValue>>,
}

/// At most this many agent names get error counters started at 0.
const MAX_AGENTS_SEEN: usize = 1024;

/// Spans handed to the backends at once, at most.
const HAND_OVER: usize = 512;

impl Drop for Collector<'_> {
    /// The thread stopped (or died): what it made is still delivered.
    fn drop(&mut self) {
        self.hand_over();
    }
}

impl Collector<'_> {
    /// Puts a span fit to leave in the outbox.
    fn submit(&self, span: SpanData) {
        let full = {
            let mut outbox = self.outbox.borrow_mut();
            outbox.push(span);
            outbox.len() >= HAND_OVER
        };
        if full {
            self.hand_over();
        }
    }

    /// Hands the outbox to the backends: one queue operation per backend
    /// for the batch, not one per span.
    fn hand_over(&self) {
        let spans = std::mem::take(&mut *self.outbox.borrow_mut());
        if !spans.is_empty() {
            self.backends.hand_over(spans);
        }
    }

    /// The fully qualified name (`module::function`) of a function, shared.
    fn qualified(&self, (function, module): (&'static str, &'static str)) -> StringValue {
        let mut names = self.qualified.borrow_mut();
        if let Some(name) = names.get(&(function, module)) {
            return name.clone();
        }
        let name = StringValue::from(std::sync::Arc::<str>::from(format!("{module}::{function}")));
        // Function names are static: the map is bounded by the program's call sites.
        names.insert((function, module), name.clone());
        name
    }

    /// Metric labels as they may leave ([`Labels`]).
    fn labels(&self) -> Labels<'_> {
        Labels(self.policy.redactor.as_deref())
    }

    /// Warns once per span name when a span declares a model operation but
    /// lacks an attribute the GenAI conventions require of it, naming what
    /// is missing (a hand-made `chat` span is otherwise silently invalid).
    /// `name` is the span's name before redaction (a name made at run time
    /// can carry a secret): the line names it as it is exported.
    fn lint(&self, name: &str, operation: &str, attrs: &[KeyValue]) {
        let missing: Vec<&str> = [sc::GEN_AI_PROVIDER_NAME, sc::GEN_AI_REQUEST_MODEL]
            .into_iter()
            .filter(|k| find(attrs, k).is_none())
            .collect();
        if missing.is_empty() {
            return;
        }
        let mut seen = self.linted.borrow_mut();
        if seen.len() >= MAX_AGENTS_SEEN || !seen.insert(name.to_string()) {
            return;
        }
        let name = self.labels().text(name);
        crate::diag::emit(
            crate::diag::DiagnosticLevel::Warn,
            &format!(
                "span `{name}` declares gen_ai.operation.name = {operation} but has no {}, which the GenAI \
                 conventions require of it: use #[llm_call(provider = ..., model = ...)] or set the attribute \
                 (warned once per span name)",
                missing.join(" and ")
            ),
        );
    }

    /// Makes a finished span fit to leave (the content policy, redaction
    /// and the span limits, once), then hands it to the tail sampler when
    /// there is one (it submits what it keeps), else to every backend. The
    /// sampler so holds spans as they will leave, cut to the limits, never
    /// a megabyte of captured prompt. A span whose redaction failed is
    /// dropped and counted, never exported (the sampler still learns what
    /// it tells of its trace).
    fn offer(&self, mut span: SpanData, facts: tail::Facts) {
        let fit = self.policy.apply(&mut span);
        let mut tail = self.tail.borrow_mut();
        match (tail.as_mut(), fit) {
            (Some(t), true) => t.offer(span, facts, &mut |s| self.submit(s)),
            (Some(t), false) => {
                t.lost(span.span_context.trace_id(), facts, &mut |s| self.submit(s));
                redaction_failed();
            }
            (None, true) => {
                drop(tail);
                self.submit(span);
            }
            (None, false) => redaction_failed(),
        }
    }

    /// Tells the tail sampler what a span dropped on the caller (the
    /// buffers had no room) knew of its trace: a failure or a budget
    /// crossed keeps the trace; a root's end decides it.
    fn lost_on_caller(&self, lost: &LostSpan, anchor: &Anchor) {
        if let Some(t) = self.tail.borrow_mut().as_mut() {
            let facts = tail::Facts {
                failed: lost.failed,
                over_budget: lost.over_budget,
                root: lost.root,
                duration: std::time::Duration::from_secs_f64(anchor.seconds(lost.start, lost.end)),
            };
            t.lost(lost.trace_id, facts, &mut |s| self.submit(s));
        }
    }

    /// Decides the held traces whose root has not ended in time.
    fn expire_held(&self) {
        if let Some(t) = self.tail.borrow_mut().as_mut() {
            t.expire(std::time::Instant::now(), &mut |s| self.submit(s));
        }
    }

    /// Decides every held trace (the pipeline is stopping).
    fn decide_held(&self) {
        if let Some(t) = self.tail.borrow_mut().as_mut() {
            t.decide_all(&mut |s| self.submit(s));
        }
    }
}

/// Says when closed spans were dropped on the callers' threads for want of
/// room in their buffers: at once the first time, then at most once a
/// minute with the count since (the collector's thread prints it, never a
/// caller's).
struct BufferDrops {
    /// The `collector_queue` total last seen.
    seen: u64,
    /// Dropped since the last line.
    untold: u64,
    last_line: Option<std::time::Instant>,
}

impl BufferDrops {
    fn new() -> Self {
        BufferDrops { seen: collector_queue_total(), untold: 0, last_line: None }
    }

    fn check(&mut self, bound: usize) {
        let total = collector_queue_total();
        self.untold += total.saturating_sub(self.seen);
        self.seen = total;
        let due = self.last_line.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60));
        if self.untold == 0 || !due {
            return;
        }
        crate::diag::emit(
            crate::diag::DiagnosticLevel::Warn,
            &format!(
                "{} closed span(s) dropped on the callers' threads: their buffers ({} KiB in all) were full, a burst \
                 faster than the collector (counted as collector_queue); raise OBSERVRA_SPAN_BUFFER_BYTES (or \
                 Builder::span_buffer_bytes) to absorb it; further drops are summarised at most once a minute",
                std::mem::take(&mut self.untold),
                bound >> 10
            ),
        );
        self.last_line = Some(std::time::Instant::now());
    }
}

fn collector_queue_total() -> u64 {
    crate::base::loss::read(&crate::base::loss::SPANS_LOST)[Loss::CollectorQueue as usize]
}

/// Counts a span dropped because its redaction failed (a redaction rule
/// panicked), and says so once.
fn redaction_failed() {
    Loss::RedactionFailed.span();
    static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !TOLD.swap(true, Ordering::AcqRel) {
        crate::diag::emit(
            crate::diag::DiagnosticLevel::Warn,
            "redaction failed (a redaction rule panicked): the span was dropped rather than exported \
             unredacted; later failures are counted in health().spans_redaction_failed",
        );
    }
}

/// Takes every queued frame and assembles it.
fn drain(end: &QueueEnd, installed: &Weak<Installed>, out: &Collector<'_>, ins: Option<&Instruments>) {
    // Once per drain, not per frame: the count is shared with every span.
    let p = installed.upgrade();
    // Stamps become wall-clock times against an anchor taken now.
    let anchor = Anchor::now();
    // Agents whose closing frame the queue dropped: taken before the notes,
    // so each one's start is counted by the end of them.
    let ended = end.take_ended();
    // Notes first: an agent's start is told before its frame closes.
    while let Ok(note) = end.notes.try_recv() {
        match note {
            Note::Evaluation(graded) => out.evaluation(graded, p.as_deref(), ins),
            Note::AgentStarted(agent) => {
                if let Some(ins) = ins {
                    let labels = set_labels(out.labels(), agent.as_ref(), None, None);
                    ins.agent_active.add(1, &labels);
                    // A new agent's error counter starts at 0, so its error
                    // rate reads 0 rather than "no data" before its first failure.
                    let mut seen = out.agents_seen.borrow_mut();
                    if seen.len() < MAX_AGENTS_SEEN && seen.insert(agent) {
                        ins.agent_errors.add(0, &labels);
                    }
                }
            }
        }
    }
    for (agent, n) in ended {
        agent_ended(out, ins, agent.as_ref(), n);
    }
    let mut lost = Vec::new();
    let mut taken = end.sweep(&mut lost);
    for l in lost {
        out.lost_on_caller(&l, &anchor);
    }
    while let Some(boxed) = taken.next() {
        let mut frame = crate::base::frame::recycled::unbox(boxed);
        let Some(p) = &p else {
            if frame.ctx.sampled {
                Loss::Stopped.span();
            }
            continue;
        };
        let sampled = frame.ctx.sampled;
        // An agent counted in `agent.requests.active` is taken back here,
        // whatever becomes of its frame.
        let agent = frame.take_active_agent();
        // An agent's or a workflow's own totals cell, given back once handled.
        let own_totals = frame.keeps_totals.then(|| frame.ctx.run_totals.clone()).flatten();
        // A panic in a metric reader or a backend's queue must not stop
        // the thread; what it loses is counted.
        let ok =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| assemble::assemble(frame, p, out, ins, &anchor)))
                .is_ok();
        if let Some(agent) = agent {
            agent_ended(out, ins, agent.as_ref(), 1);
        }
        if let Some(cell) = own_totals {
            crate::base::frame::recycled::give_back_totals(cell);
        }
        if !ok {
            Loss::AssemblyFailed.metric_job();
            if sampled {
                Loss::AssemblyFailed.span();
            }
            crate::diag::emit(
                crate::diag::DiagnosticLevel::Warn,
                "assembling a span panicked: the span was dropped and counted",
            );
        }
    }
    drop(taken);
    crate::base::frame::recycled::flush();
    if let Some(p) = &p {
        out.land_evaluations(p, ins, false);
    }
    out.expire_held();
    out.hand_over();
}

/// `agent.requests.active` -n for `agent`: its runs ended (or their frames
/// were lost; the start was counted all the same).
fn agent_ended(out: &Collector<'_>, ins: Option<&Instruments>, agent: Option<&StringValue>, n: u64) {
    // A panic in a metric reader must not stop the thread.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some(ins) = ins {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            ins.agent_active.add(-n, &set_labels(out.labels(), agent, None, None));
        }
    }));
}
