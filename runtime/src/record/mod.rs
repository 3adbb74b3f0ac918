//! The caller's side of every span: the one record type ([`Frame`]), the
//! thread-local context stack, and the one close path.
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
//! [`Keeper`] cell, so a call adds to its agents' totals wherever it runs,
//! on this thread or another.

pub(crate) mod call;
pub mod carry;

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
use opentelemetry::{Key, KeyValue, StringValue, Value};

use crate::accounting::{self, Contribution, Deferred, Totals};
use crate::genai::Usage;
use crate::pipeline::Pipeline;
use crate::semconv::{self as sc, operation as op};

pub use call::Site;

/// Most attributes kept per span; more are counted in `dropped_attributes_count`.
pub(crate) const MAX_ATTRIBUTES: usize = 128;
/// Most events kept per span; more are counted in the dropped-events count.
pub(crate) const MAX_EVENTS: usize = 128;
/// Most links kept per span.
pub(crate) const MAX_LINKS: usize = 128;
/// Most chunk gaps kept per streamed span (each is one histogram record).
const MAX_CHUNK_GAPS: usize = 4096;

/// Bumped whenever a pipeline is installed or taken down, so each thread
/// notices when its cached pipeline is stale, and a span that outlives its
/// pipeline is counted as dropped.
pub(crate) static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Innermost last.
    static STACK: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    /// The pipeline as this thread last saw it, with its generation.
    static PIPELINE: RefCell<Option<(u64, Arc<Pipeline>)>> = const { RefCell::new(None) };
}

/// Runs `f` on the current pipeline and its generation, without touching
/// the shared lock (or the `Arc`'s count) while the cached one is current.
pub(crate) fn with_pipeline<R>(f: impl FnOnce(u64, &Pipeline) -> R) -> Option<R> {
    let generation = GENERATION.load(Ordering::Acquire);
    PIPELINE
        .try_with(|cell| {
            let mut cached = cell.try_borrow_mut().ok()?;
            if cached.as_ref().is_none_or(|(g, _)| *g != generation) {
                *cached = crate::pipeline::current().map(|p| (generation, p));
            }
            let (g, p) = cached.as_ref()?;
            Some(f(*g, p))
        })
        .ok()
        .flatten()
}

/// Running totals of an agent or workflow span, shared with everything
/// that runs beneath it (through the context, across threads too).
pub(crate) struct Keeper {
    totals: Mutex<Totals>,
    /// The agent's name, for an agent (its budget events name it).
    agent: std::sync::OnceLock<String>,
    is_agent: bool,
    /// The keeper above this one, if any.
    parent: Option<Arc<Keeper>>,
}

impl Keeper {
    /// The totals so far.
    pub(crate) fn totals(&self) -> Totals {
        *self.totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a contribution to this keeper and every keeper above it, with
    /// the budget check of each agent among them.
    fn add(
        self: &Arc<Self>,
        contribution: &Contribution,
        acc: &accounting::Accounting,
        trace_id: TraceId,
        deferred: &mut Deferred,
    ) {
        let mut next = Some(self);
        while let Some(k) = next {
            let mut totals = k.totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            totals.add(contribution);
            if k.is_agent {
                accounting::check_agent_budget(
                    acc,
                    &mut totals,
                    k.agent.get().map(String::as_str),
                    trace_id,
                    contribution.model.as_deref(),
                    deferred,
                );
            }
            drop(totals);
            next = k.parent.as_ref();
        }
    }
}

/// The context a span passes to what runs inside it.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
    pub trace_state: TraceState,
    /// The conversation id of this span or the nearest one above.
    pub conversation_id: Option<Value>,
    /// The agent this span runs for: its own name or the nearest agent above.
    pub agent: Option<StringValue>,
    /// The totals of this span (an agent or a workflow) or the nearest one above.
    pub keeper: Option<Arc<Keeper>>,
}

impl Ctx {
    /// The span context, as propagated to other processes.
    pub(crate) fn span_context(&self) -> SpanContext {
        let flags = if self.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        SpanContext::new(self.trace_id, self.span_id, flags, false, self.trace_state.clone())
    }
}

/// The status a span ends with.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

/// One span being recorded, whoever made it: a macro's call on the frame
/// path, or a `tracing` span seen by observra's layer. Kept small (it moves
/// a few times on the caller's thread): what most spans never set is in
/// [`More`].
#[doc(hidden)]
pub struct Frame {
    /// What the call site knew at compile time, for a macro's call.
    pub(crate) site: Option<&'static Site>,
    /// Own ids, and what is inherited from above.
    pub(crate) ctx: Ctx,
    pub(crate) parent_span_id: SpanId,
    /// `gen_ai.operation.name`, when it is one of the conventions'.
    pub(crate) operation: Option<&'static str>,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) usage: Usage,
    pub(crate) response_model: Option<StringValue>,
    /// The cost, when the caller already worked it out.
    pub(crate) cost: Option<Option<f64>>,
    pub(crate) generation: u64,
    pub(crate) more: Option<Box<More>>,
}

/// The parts of a span most model calls do not have.
#[derive(Default)]
pub(crate) struct More {
    /// The span name, unless the site gives it.
    pub name: Option<Cow<'static, str>>,
    /// The name is `{name} {request model}`, made off the caller's thread.
    pub name_with_model: bool,
    pub kind: Option<SpanKind>,
    pub parent_is_remote: bool,
    /// The request model when it is not a literal of the site.
    pub model: Option<StringValue>,
    /// Every other attribute, in the order set.
    pub attrs: Vec<KeyValue>,
    pub dropped_attributes: u32,
    pub events: Vec<Event>,
    pub dropped_events: u32,
    pub links: Vec<Link>,
    /// Content kept for the `gen_ai.client.inference.operation.details` event.
    pub captured: Vec<KeyValue>,
    /// Gaps between output chunks of a streamed response, seconds.
    pub chunk_gaps: Vec<f64>,
    pub status: StatusCode,
    pub status_message: Option<String>,
    /// Whether a `gen_ai.operation.name` is set (any value).
    pub genai: bool,
    /// `#[traced(metrics)]`: function and module labels.
    pub function_metrics: Option<(&'static str, &'static str)>,
    /// Labels `agent.requests.active` was incremented with.
    pub active_labels: Option<Vec<KeyValue>>,
    /// Whether `ctx.keeper` is this span's own.
    pub keeps_totals: bool,
    /// A model without a price, noted on the caller: the warning goes on this span.
    pub unknown_model: Option<String>,
}

/// Sets (or replaces) `key` in `attrs`, at most [`MAX_ATTRIBUTES`] of
/// them; one that does not fit is counted in `dropped`.
pub(crate) fn set_bounded(attrs: &mut Vec<KeyValue>, dropped: &mut u32, key: Key, value: Value) {
    if let Some(kv) = attrs.iter_mut().find(|kv| kv.key == key) {
        kv.value = value;
    } else if attrs.len() < MAX_ATTRIBUTES {
        attrs.push(KeyValue::new(key, value));
    } else {
        *dropped = dropped.saturating_add(1);
    }
}

/// Adds `event` to `events`, at most [`MAX_EVENTS`] of them; one that does
/// not fit is counted in `dropped`.
pub(crate) fn push_bounded(events: &mut Vec<Event>, dropped: &mut u32, event: Event) {
    if events.len() < MAX_EVENTS {
        events.push(event);
    } else {
        *dropped = dropped.saturating_add(1);
    }
}

/// The conventions' operation named `name`, as a static string.
fn known_operation(name: &str) -> Option<&'static str> {
    op::LLM.iter().chain(&[op::EXECUTE_TOOL, op::INVOKE_AGENT, op::INVOKE_WORKFLOW]).find(|k| **k == name).copied()
}

impl Frame {
    /// A new frame under `parent` (or a root when `None`), with a fresh
    /// span id from `p` and, for a root, a fresh trace and the sampler's
    /// decision for `name` and `kind`.
    pub(crate) fn open(
        p: &Pipeline,
        generation: u64,
        parent: Option<Ctx>,
        sample: impl FnOnce(TraceId) -> bool,
    ) -> Frame {
        let span_id = opentelemetry_sdk::trace::IdGenerator::new_span_id(&p.ids);
        let (ctx, parent_span_id) = match parent {
            Some(parent) => {
                let parent_span_id = parent.span_id;
                (Ctx { span_id, ..parent }, parent_span_id)
            }
            None => {
                let trace_id = opentelemetry_sdk::trace::IdGenerator::new_trace_id(&p.ids);
                let ctx = Ctx {
                    trace_id,
                    span_id,
                    sampled: sample(trace_id),
                    trace_state: TraceState::default(),
                    conversation_id: None,
                    agent: None,
                    keeper: None,
                };
                (ctx, SpanId::INVALID)
            }
        };
        Frame {
            site: None,
            ctx,
            parent_span_id,
            operation: None,
            start: SystemTime::now(),
            end: SystemTime::UNIX_EPOCH,
            usage: Usage::default(),
            response_model: None,
            cost: None,
            generation,
            more: None,
        }
    }

    pub(crate) fn usage(&self) -> Option<Usage> {
        (self.usage != Usage::default()).then_some(self.usage)
    }

    pub(crate) fn request_model(&self) -> Option<StringValue> {
        match self.site.and_then(|s| s.model) {
            Some(m) => Some(StringValue::from(m)),
            None => self.more.as_ref().and_then(|m| m.model.clone()),
        }
    }

    pub(crate) fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Box::default)
    }

    /// Whether this is a GenAI span (`gen_ai.operation.name` is set).
    pub(crate) fn is_genai(&self) -> bool {
        self.site.is_some_and(|s| s.operation.is_some()) || self.more.as_ref().is_some_and(|m| m.genai)
    }

    /// Whether the span is recorded at all: sampled, or counted in metrics.
    pub(crate) fn wanted(&self) -> bool {
        self.ctx.sampled || self.is_genai() || self.more.as_ref().is_some_and(|m| m.function_metrics.is_some())
    }

    /// An attribute's value (among the generic ones).
    pub(crate) fn attr(&self, key: &str) -> Option<&Value> {
        self.more.as_ref()?.attrs.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
    }

    /// A string attribute's value, set on the span or a literal of its site.
    fn string_attr(&self, key: &str) -> Option<StringValue> {
        match self.attr(key).cloned().or_else(|| self.site.and_then(|s| s.attr(key))) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// What a span of `operation` does when it opens, whoever made it: an
    /// agent or a workflow keeps totals, an agent names what runs beneath
    /// it and counts itself in `agent.requests.active`.
    pub(crate) fn opened_as(&mut self, operation: &'static str, acc: &accounting::Accounting) {
        if accounting::is_total_keeper(operation) {
            self.keep_totals();
        }
        if operation == op::INVOKE_AGENT {
            let agent = self.string_attr(sc::GEN_AI_AGENT_NAME);
            self.more().active_labels = accounting::agent_started(acc, agent.as_ref().map(|a| a.as_str()));
            if agent.is_some() {
                self.ctx.agent = agent;
            }
        }
    }

    /// Sets (or replaces) an attribute. The GenAI fields observra reads
    /// (usage, models, conversation id, operation) are kept typed.
    pub fn set_attribute(&mut self, key: Key, value: Value) {
        let value = match (self.usage.field_mut(key.as_str()), value) {
            (Some(slot), Value::I64(n)) if n >= 0 => {
                *slot = Some(n as u64);
                return;
            }
            (_, v) => v,
        };
        match (key.as_str(), value) {
            (sc::GEN_AI_RESPONSE_MODEL, Value::String(s)) => {
                self.response_model = Some(s);
            }
            (sc::GEN_AI_REQUEST_MODEL, Value::String(s)) => {
                self.more().model = Some(s);
            }
            (sc::GEN_AI_OPERATION_NAME, v) => {
                self.more().genai = true;
                if let Value::String(s) = &v {
                    self.operation = known_operation(s.as_str());
                    if self.operation.is_some_and(accounting::is_total_keeper) {
                        self.keep_totals();
                    }
                }
                self.set_plain(key, v);
            }
            (sc::GEN_AI_AGENT_NAME, Value::String(name)) => {
                // An agent's name may come after its operation: its budget events name it.
                if let (true, Some(keeper)) = (self.more.as_ref().is_some_and(|m| m.keeps_totals), &self.ctx.keeper) {
                    let _ = keeper.agent.set(name.as_str().to_string());
                }
                self.set_plain(key, Value::String(name));
            }
            (sc::GEN_AI_CONVERSATION_ID, v) => {
                self.ctx.conversation_id = Some(v.clone());
                self.set_plain(key, v);
            }
            (_, v) => self.set_plain(key, v),
        }
    }

    /// Sets an attribute with no meaning to observra.
    fn set_plain(&mut self, key: Key, value: Value) {
        let more = self.more();
        set_bounded(&mut more.attrs, &mut more.dropped_attributes, key, value);
    }

    /// Makes this span keep totals of what runs beneath it (an agent or a
    /// workflow): a cell of its own, which its children find in the context.
    pub(crate) fn keep_totals(&mut self) {
        if self.more.as_ref().is_some_and(|m| m.keeps_totals) {
            return;
        }
        let is_agent = self.operation == Some(op::INVOKE_AGENT);
        let agent = std::sync::OnceLock::new();
        if let (true, Some(name)) = (is_agent, self.string_attr(sc::GEN_AI_AGENT_NAME)) {
            let _ = agent.set(name.as_str().to_string());
        }
        self.ctx.keeper = Some(Arc::new(Keeper {
            totals: Mutex::new(Totals::default()),
            agent,
            is_agent,
            parent: self.ctx.keeper.take(),
        }));
        self.more().keeps_totals = true;
    }

    /// Adds an event, within the per-span bound.
    pub fn add_event(&mut self, event: Event) {
        let more = self.more();
        push_bounded(&mut more.events, &mut more.dropped_events, event);
    }

    /// Adds a link, within the per-span bound.
    pub(crate) fn add_link(&mut self, link: Link) {
        let more = self.more();
        if more.links.len() < MAX_LINKS {
            more.links.push(link);
        }
    }

    /// Keeps captured content for the details event.
    pub fn add_captured(&mut self, kv: KeyValue) {
        let more = self.more();
        if more.captured.len() < MAX_ATTRIBUTES {
            more.captured.push(kv);
        }
    }

    /// Records the gap before an output chunk of a stream.
    pub(crate) fn add_chunk_gap(&mut self, seconds: f64) {
        let more = self.more();
        if more.chunk_gaps.len() < MAX_CHUNK_GAPS {
            more.chunk_gaps.push(seconds);
        }
    }

    /// Replaces the exported span name.
    pub(crate) fn set_name(&mut self, name: Cow<'static, str>) {
        let more = self.more();
        more.name = Some(name);
        more.name_with_model = false;
    }

    /// Names the span `{operation} {request model}` (made off the caller's
    /// thread) and sets the request model.
    pub(crate) fn set_model_name(&mut self, operation: &'static str, model: StringValue) {
        let more = self.more();
        more.name = Some(Cow::Borrowed(operation));
        more.name_with_model = true;
        more.model = Some(model);
    }

    pub(crate) fn set_kind(&mut self, kind: SpanKind) {
        self.more().kind = Some(kind);
    }

    pub(crate) fn set_status(&mut self, status: StatusCode, message: Option<String>) {
        let more = self.more();
        more.status = status;
        if message.is_some() {
            more.status_message = message;
        }
    }

    /// Whether the status is already ERROR (the first failure recorded wins).
    pub fn has_error(&self) -> bool {
        self.more.as_ref().is_some_and(|m| m.status == StatusCode::Error)
    }

    /// Marks the span failed with `error.type` and a status description.
    pub fn set_error(&mut self, error_type: Cow<'static, str>, message: String) {
        self.set_plain(Key::from_static_str(sc::ERROR_TYPE), Value::String(error_type.into()));
        let more = self.more();
        more.status = StatusCode::Error;
        more.status_message = Some(message);
    }

    /// Re-parents this span onto a caller in another process (parent-based
    /// sampling: the caller's decision is followed).
    pub(crate) fn set_remote_parent(&mut self, remote: &SpanContext) {
        self.ctx.trace_id = remote.trace_id();
        self.parent_span_id = remote.span_id();
        self.ctx.trace_state = remote.trace_state().clone();
        self.ctx.sampled = remote.is_sampled();
        self.more().parent_is_remote = true;
    }
}

/// An entry of the thread's context stack.
enum Entry {
    /// A `tracing` span observra records, entered on this thread.
    Tracing(tracing::Id, Ctx),
    /// A frame of the frame path, entered on this thread.
    Frame(Frame),
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
                    c.sampled = remote.is_sampled();
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

/// When the innermost span on this thread is a frame: whether it is sampled.
pub(crate) fn innermost_frame_sampled() -> Option<bool> {
    stack(|s| match s.last() {
        Some(Entry::Frame(f)) => Some(f.ctx.sampled),
        _ => None,
    })
    .flatten()
}

/// Adds an event to the innermost frame, if one is innermost.
pub(crate) fn add_event_to_innermost(event: Event) {
    stack(|s| {
        if let Some(Entry::Frame(f)) = s.last_mut() {
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
fn push_frame(frame: Frame) -> Option<Frame> {
    let mut frame = Some(frame);
    stack(|s| {
        if let Some(f) = frame.take() {
            s.push(Entry::Frame(f));
        }
    });
    frame
}

/// Takes the frame `span_id` off this thread's stack, if it is there.
fn take_frame(span_id: SpanId) -> Option<Frame> {
    stack(|s| match position(s, span_id).map(|at| s.remove(at)) {
        Some(Entry::Frame(frame)) => Some(frame),
        _ => None,
    })
    .flatten()
}

/// Ends a span: stamps the end, does what must happen on the caller
/// (budgets, totals), and queues the frame for the collector.
pub(crate) fn close(mut frame: Frame) {
    frame.end = SystemTime::now();
    if !frame.wanted() {
        return;
    }
    let queued = with_pipeline(|generation, p| {
        if generation != frame.generation {
            return false;
        }
        let acc = &p.accounting;
        let contributes =
            frame.ctx.keeper.is_some() && frame.operation.is_some_and(|o| !accounting::is_total_keeper(o));
        if contributes || acc.has_budgets() {
            caller_accounting(&mut frame, acc);
        }
        p.collector.as_ref().is_some_and(|c| c.send(frame))
    });
    if queued != Some(true) {
        // The pipeline it belonged to has stopped, or the collector's queue is full.
        crate::batch::ORPHANED.fetch_add(1, Ordering::AcqRel);
    }
}

/// Cost, budget checks and the totals of the agents and workflows above,
/// on the caller's thread (where the budget callback runs).
fn caller_accounting(frame: &mut Frame, acc: &accounting::Accounting) {
    let Some(operation) = frame.operation else { return };
    let mut deferred = Deferred::default();
    let mut contribution = Contribution::default();
    if op::LLM.contains(&operation) {
        let usage = frame.usage();
        let request = frame.request_model();
        let (model, cost) =
            accounting::llm_cost(acc, usage.as_ref(), frame.response_model.as_ref(), request.as_ref(), &mut deferred);
        let model = model.as_ref().map(|m| m.as_str());
        accounting::llm_budgets(acc, usage.as_ref(), cost, model, frame.ctx.trace_id, &mut deferred);
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
    // The keeper of a keeper span is its own: it adds nothing to itself.
    let own = frame.more.as_ref().is_some_and(|m| m.keeps_totals);
    if let (false, false, Some(keeper)) = (own, contribution.is_empty(), &frame.ctx.keeper) {
        keeper.add(&contribution, acc, frame.ctx.trace_id, &mut deferred);
    }
    // The unknown-model warning goes on the call's own span, made later.
    if let Some(model) = deferred.unknown_model.take() {
        frame.more().unknown_model = Some(model);
    }
    accounting::emit(acc, deferred);
}
