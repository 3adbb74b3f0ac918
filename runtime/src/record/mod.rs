//! The caller's side of every span: the thread-local context stack, the
//! frame path's calls ([`call`]), the guards that keep either path's span
//! entered while a function runs ([`guard`]), the `tracing` adapter ([`layer`]),
//! the handles users record through ([`span_ref`], [`target`]), carrying a
//! span into a spawned future ([`carry`]), and the one close path.
//!
//! Whatever made a span (an observra macro on the frame path, or a `tracing`
//! span seen by [`crate::ObservraLayer`]), it is recorded into a [`Frame`]:
//! ids, the two timestamps, the typed GenAI fields (usage, models, cost),
//! and a boxed store for what most spans never set (attributes, events,
//! links, status, captured content). When the span ends, [`close`] stamps
//! the end time, works out on the caller only what must be synchronous
//! (budget checks, with their callback, and the totals of the agents and
//! workflows above), and queues the frame for the collector thread
//! ([`crate::collect`]), which turns it into `SpanData` and metrics.
//!
//! Agent and workflow totals travel with the context in a shared
//! [`crate::base::frame::RunTotals`] cell, so a call adds to its agents'
//! totals wherever it runs, on this thread or another.

pub(crate) mod call;
pub mod carry;
pub(crate) mod current;
pub(crate) mod declare;
pub(crate) mod evaluate;
pub(crate) mod guard;
pub(crate) mod layer;
pub(crate) mod span_ref;
pub(crate) mod target;

use std::cell::RefCell;
use std::sync::atomic::Ordering;

use opentelemetry::trace::{Event, SpanContext, SpanId};

use crate::account::accounting::{self, Contribution, Deferred};
use crate::base::frame::{Ctx, Frame};
use crate::base::queue::Note;
use crate::base::state::{self, Installed, with_installed};
use observra_semconv::{self as sc, operation as op};

thread_local! {
    /// Innermost last.
    static STACK: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// An entry of the thread's context stack.
enum Entry {
    /// A `tracing` span observra records, entered on this thread.
    Tracing(tracing::Id, Ctx),
    /// A frame of the frame path, entered on this thread.
    Frame(Box<Frame>),
    /// The context of a span on another thread (or not entered), carried
    /// by a future it spawned ([`carry`]).
    Carried(Ctx),
}

impl Entry {
    fn ctx(&self) -> &Ctx {
        match self {
            Entry::Tracing(_, c) | Entry::Carried(c) => c,
            Entry::Frame(f) => &f.ctx,
        }
    }
}

/// Runs `f` on this thread's stack, unless it is in use already (a
/// re-entrant call) or the thread is being torn down.
fn stack<R>(f: impl FnOnce(&mut Vec<Entry>) -> R) -> Option<R> {
    STACK.try_with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s))).ok().flatten()
}

/// The context of the innermost span entered on this thread.
pub(crate) fn innermost() -> Option<Ctx> {
    stack(|s| s.last().map(|e| e.ctx().clone())).flatten()
}

/// Called by the layer when a span it records is entered.
pub(crate) fn push_tracing(id: tracing::Id, ctx: Ctx) {
    stack(|s| s.push(Entry::Tracing(id, ctx)));
}

/// Called by the layer when a span is exited.
pub(crate) fn pop_tracing(id: &tracing::Id) {
    stack(|s| {
        if let Some(at) = s.iter().rposition(|e| matches!(e, Entry::Tracing(i, _) if i == id)) {
            s.remove(at);
        }
    });
}

/// A remote parent was set on `id` after it was entered: its entries follow.
pub(crate) fn reparent_tracing(id: &tracing::Id, remote: &SpanContext) {
    stack(|s| {
        for e in s.iter_mut() {
            if let Entry::Tracing(i, c) = e {
                if i == id {
                    c.trace_id = remote.trace_id();
                    c.sampled = remote.is_sampled() || crate::base::frame::RECORD_ALL.load(Ordering::Relaxed);
                    c.trace_state = remote.trace_state().clone();
                }
            }
        }
    });
}

/// The context of the innermost frame (or carried context), when one is
/// the innermost span on this thread: a `tracing` span opened now is its
/// child. `None` when the registry knows the innermost span.
pub(crate) fn innermost_frame() -> Option<Ctx> {
    stack(|s| match s.last() {
        Some(Entry::Frame(f)) => Some(f.ctx.clone()),
        Some(Entry::Carried(c)) => Some(c.clone()),
        _ => None,
    })
    .flatten()
}

/// The call site of the innermost frame, when it is a macro's call on
/// this thread (see [`innermost_frame_at`]).
pub(crate) fn innermost_site() -> Option<&'static crate::base::frame::Site> {
    stack(|s| {
        innermost_frame_at(s).and_then(|at| match &s[at] {
            Entry::Frame(f) => f.site,
            _ => None,
        })
    })
    .flatten()
}

/// Puts a carried context on this thread's stack.
pub(crate) fn push_carried(ctx: Ctx) {
    stack(|s| s.push(Entry::Carried(ctx)));
}

/// Takes the carried context `span_id` off this thread's stack.
pub(crate) fn pop_carried(span_id: SpanId) {
    stack(|s| {
        if let Some(at) = s.iter().rposition(|e| matches!(e, Entry::Carried(c) if c.span_id == span_id)) {
            s.remove(at);
        }
    });
}

/// Where the innermost frame is on this thread's stack, when it is the
/// innermost span: a frame on top, or the context of a frame that is
/// entered lower on this thread, carried back on top (its
/// `tracing::Span::current()` entered inside it, see [`current`]).
fn innermost_frame_at(s: &[Entry]) -> Option<usize> {
    match s.last()? {
        Entry::Frame(_) => Some(s.len() - 1),
        Entry::Carried(c) => position(s, c.span_id),
        Entry::Tracing(..) => None,
    }
}

/// When the innermost span on this thread is a frame: whether it is sampled.
pub(crate) fn innermost_frame_sampled() -> Option<bool> {
    stack(|s| innermost_frame_at(s).map(|at| s[at].ctx().sampled)).flatten()
}

/// Adds an event to the innermost frame, if one is innermost.
pub(crate) fn add_event_to_innermost(event: Event) {
    stack(|s| {
        if let Some(Entry::Frame(f)) = innermost_frame_at(s).map(|at| &mut s[at]) {
            f.add_event(event);
        }
    });
}

/// Where the frame `span_id` is on this thread's stack, if entered.
fn position(s: &[Entry], span_id: SpanId) -> Option<usize> {
    s.iter().rposition(|e| matches!(e, Entry::Frame(f) if f.ctx.span_id == span_id))
}

/// Runs `f` on the frame `span_id` if it is entered on this thread.
pub(crate) fn with_entered(span_id: SpanId, f: impl FnOnce(&mut Frame)) {
    stack(|s| {
        if let Some(Entry::Frame(frame)) = position(s, span_id).map(|at| &mut s[at]) {
            f(frame);
        }
    });
}

/// Puts `frame` on this thread's stack; gives it back if it cannot be.
fn push_frame(frame: Box<Frame>) -> Option<Box<Frame>> {
    let mut frame = Some(frame);
    stack(|s| {
        if let Some(f) = frame.take() {
            s.push(Entry::Frame(f));
        }
    });
    frame
}

/// Takes the frame `span_id` off this thread's stack, if it is there.
fn take_frame(span_id: SpanId) -> Option<Box<Frame>> {
    stack(|s| match position(s, span_id).map(|at| s.remove(at)) {
        Some(Entry::Frame(frame)) => Some(frame),
        _ => None,
    })
    .flatten()
}

/// Ends a span: stamps the end, does what must happen on the caller
/// (budgets, totals), and queues the frame for the collector.
pub(crate) fn close(mut frame: Box<Frame>) {
    frame.end = crate::base::clock::stamp();
    if !frame.wanted() {
        crate::base::frame::recycled::keep_frame_box(frame);
        return;
    }
    let mut deferred = Deferred::default();
    let sampled = frame.ctx.sampled;
    let queued = with_installed(|generation, p| {
        if generation != frame.generation {
            return false;
        }
        let acc = &p.accounting;
        let contributes =
            frame.ctx.run_totals.is_some() && frame.operation.is_some_and(|o| !accounting::keeps_run_totals(o));
        if contributes || acc.has_budgets() {
            caller_accounting(&mut frame, acc, &mut deferred);
            if !deferred.budget_events.is_empty() {
                frame.more().over_budget = true;
            }
        }
        p.queue.send(frame);
        true
    });
    if queued != Some(true) && sampled {
        // The pipeline it belonged to has stopped (the hand-over counts its own losses).
        crate::base::loss::Loss::Stopped.span();
    }
    // Budget warnings and callbacks run with nothing of observra's borrowed,
    // so a callback may itself call instrumented code.
    if !deferred.budget_events.is_empty() {
        if let Some(p) = state::installed() {
            accounting::emit(&p.accounting, deferred);
        }
    }
}

/// Cost, budget checks and the totals of the agents and workflows above,
/// on the caller's thread (where the budget callback runs).
fn caller_accounting(frame: &mut Frame, acc: &accounting::Accounting, deferred: &mut Deferred) {
    let Some(operation) = frame.operation else { return };
    let mut contribution = Contribution::default();
    if op::LLM.contains(&operation) {
        let usage = frame.usage();
        let request = frame.request_model();
        let (model, cost) =
            accounting::llm_cost(acc, usage.as_ref(), frame.response_model.as_ref(), request.as_ref(), deferred);
        let model = model.as_ref().map(|m| m.as_str());
        accounting::llm_budgets(acc, usage.as_ref(), cost, model, frame.ctx.trace_id, deferred);
        frame.cost = Some(cost);
        contribution.is_llm = true;
        contribution.usage = usage;
        contribution.cost = cost;
        if acc.budget.agent_usd.is_some() || acc.budget.agent_tokens.is_some() {
            contribution.model = model.map(str::to_string);
        }
    } else if operation == op::EXECUTE_TOOL {
        contribution.is_tool = true;
    }
    // The totals of an agent or workflow span are its own: it adds nothing to itself.
    let own = frame.keeps_totals;
    if let (false, false, Some(run_totals)) = (own, contribution.is_empty(), &frame.ctx.run_totals) {
        run_totals.add(&contribution, acc, frame.ctx.trace_id, deferred);
    }
    // The unknown-model warning goes on the call's own span, made later.
    if let Some(model) = deferred.unknown_model.take() {
        frame.more().unknown_model = Some(model);
    }
}

/// What a span of `operation` does when it opens, whoever made it: an
/// agent or a workflow keeps totals, an agent names what runs beneath
/// it and counts itself in `agent.requests.active`.
pub(crate) fn opened_as(frame: &mut Frame, operation: &'static str, p: &Installed) {
    if accounting::keeps_run_totals(operation) {
        frame.keep_totals();
    }
    if operation == op::INVOKE_AGENT {
        let agent = frame.string_attr(sc::GEN_AI_AGENT_NAME);
        // Counted by the collector, off this thread; taken back at close
        // only if the note reached it.
        if p.accounting.instruments.is_some() && p.queue.note(Note::AgentStarted(agent.clone())) {
            frame.agent_noted = true;
            frame.agent_named = agent.is_some();
        }
        if agent.is_some() {
            frame.ctx.agent = agent;
        }
    }
}
