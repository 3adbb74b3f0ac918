//! The dedicated caller path of `#[llm_call]`.
//!
//! A model call is observra's hottest span, and the general `tracing` path
//! (registry slot, span record, field visitors, close) costs more than the
//! hand-written OpenTelemetry code it replaces. When observra owns the
//! `tracing` subscriber (the one [`crate::Builder::install`] sets), a model
//! call skips `tracing` entirely: the caller's thread takes the start and
//! end time and the ids, keeps what the function returns (usage, response
//! model) in a compact [`FastFrame`] next to a reference to the call site's
//! static names ([`LlmSite`]), and queues the frame. The `observra-metrics`
//! thread turns it into the span's `SpanData` and its GenAI metrics
//! ([`assemble`]). Cost is worked out there too, unless a budget is set or
//! an agent or workflow above keeps totals: then it is worked out on the
//! caller, as budgets and totals need it at once.
//!
//! The frame still takes part in the `tracing` context: a thread-local stack
//! holds the context of every `tracing` span observra records that is
//! entered on this thread and of every model call in progress, so a model
//! call joins the trace of the span it runs in, and a `tracing` span or
//! event inside the call's body becomes its child or its span event. What
//! the path cannot offer is a `tracing::Span` for the call itself:
//! `tracing::Span::current()` inside the body is the enclosing span. A
//! function that needs the call's `tracing` span (`response = manual`,
//! `stream`), content capture, and any subscriber observra does not own use
//! the general path; so does everything with
//! [`crate::Builder::fast_path`]`(false)` (`OBSERVRA_FAST_PATH=false`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use opentelemetry::trace::{Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{IdGenerator, SamplingDecision, ShouldSample, SpanData, SpanEvents, SpanLinks};

use crate::accounting::{self, Contribution, Deferred, Instruments};
use crate::genai::Usage;
use crate::layer::{MAX_ATTRIBUTES, Sink, push_bounded, set_bounded};
use crate::pipeline::Pipeline;
use crate::semconv as sc;

/// Whether the installed pipeline uses the dedicated path (set by install,
/// cleared by shutdown).
pub(crate) static ENABLED: AtomicBool = AtomicBool::new(false);
/// Bumped whenever a pipeline is installed or taken down, so each thread
/// notices when its cached pipeline is stale.
pub(crate) static GENERATION: AtomicU64 = AtomicU64::new(0);

/// What an `#[llm_call]` call site knows at compile time.
#[derive(Debug)]
pub struct LlmSite {
    /// `gen_ai.operation.name`.
    pub operation: &'static str,
    /// `gen_ai.provider.name`.
    pub provider: &'static str,
    /// `gen_ai.request.model`, when the model is a literal.
    pub model: Option<&'static str>,
    /// The span name, when the model is a literal.
    pub name: Option<&'static str>,
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
    /// Whether this span or one above keeps totals (an agent or a workflow).
    pub keeper: bool,
    /// The nearest `tracing` span observra records: itself, or the one the
    /// model call runs in. Totals are added from there upwards.
    pub tracing_id: Option<tracing::Id>,
}

enum Entry {
    /// A `tracing` span observra records, entered on this thread.
    Tracing(Ctx),
    /// A model call of the dedicated path, entered on this thread.
    Fast(FastFrame),
}

thread_local! {
    /// Innermost last.
    static STACK: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    /// The pipeline as this thread last saw it, with its generation.
    static PIPELINE: RefCell<Option<(u64, Arc<Pipeline>)>> = const { RefCell::new(None) };
}

/// Runs `f` on the current pipeline and its generation, without touching
/// the shared lock (or the `Arc`'s count) while the cached one is current.
fn with_pipeline<R>(f: impl FnOnce(u64, &Pipeline) -> R) -> Option<R> {
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

/// Runs `f` on this thread's stack, unless it is in use already (a
/// re-entrant call) or the thread is being torn down.
fn stack<R>(f: impl FnOnce(&mut Vec<Entry>) -> R) -> Option<R> {
    STACK.try_with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s))).ok().flatten()
}

/// Called by the layer when a span it records is entered.
pub(crate) fn push_tracing(ctx: Ctx) {
    stack(|s| s.push(Entry::Tracing(ctx)));
}

/// Called by the layer when a span is exited.
pub(crate) fn pop_tracing(id: &tracing::Id) {
    stack(|s| {
        let at = s.iter().rposition(|e| matches!(e, Entry::Tracing(c) if c.tracing_id.as_ref() == Some(id)));
        if let Some(at) = at {
            s.remove(at);
        }
    });
}

/// A remote parent was set on `id` after it was entered: its entries follow.
pub(crate) fn reparent_tracing(id: &tracing::Id, remote: &SpanContext) {
    stack(|s| {
        for e in s.iter_mut() {
            if let Entry::Tracing(c) = e {
                if c.tracing_id.as_ref() == Some(id) {
                    c.trace_id = remote.trace_id();
                    c.sampled = remote.is_sampled();
                    c.trace_state = remote.trace_state().clone();
                }
            }
        }
    });
}

/// The context of the innermost model call, when one is the innermost span
/// on this thread (a `tracing` span opened now is its child).
pub(crate) fn innermost_call() -> Option<Ctx> {
    stack(|s| match s.last() {
        Some(Entry::Fast(f)) => Some(f.ctx.clone()),
        _ => None,
    })
    .flatten()
}

/// When the innermost span on this thread is a model call: whether it is sampled.
pub(crate) fn innermost_call_sampled() -> Option<bool> {
    stack(|s| match s.last() {
        Some(Entry::Fast(f)) => Some(f.ctx.sampled),
        _ => None,
    })
    .flatten()
}

/// Adds an event to the innermost model call, if one is innermost.
pub(crate) fn add_event_to_innermost(event: Event) {
    stack(|s| {
        if let Some(Entry::Fast(f)) = s.last_mut() {
            f.add_event(event);
        }
    });
}

/// Where the model call `span_id` is on this thread's stack, if entered.
fn position(s: &[Entry], span_id: SpanId) -> Option<usize> {
    s.iter().rposition(|e| matches!(e, Entry::Fast(f) if f.ctx.span_id == span_id))
}

/// Runs `f` on the model call `span_id` if it is entered on this thread.
pub(crate) fn with_entered(span_id: SpanId, f: impl FnOnce(&mut FastFrame)) {
    stack(|s| {
        if let Some(Entry::Fast(frame)) = position(s, span_id).map(|at| &mut s[at]) {
            f(frame);
        }
    });
}

/// The span context of the innermost model call, for propagation.
pub(crate) fn innermost_span_context() -> Option<SpanContext> {
    innermost_call().map(|c| {
        let flags = if c.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        SpanContext::new(c.trace_id, c.span_id, flags, false, c.trace_state)
    })
}

/// Whether the current `tracing` dispatcher is the subscriber observra built.
fn own_subscriber() -> bool {
    tracing::dispatcher::get_default(|d| d.is::<crate::pipeline::OwnSubscriber>())
}

/// One model call of the dedicated path: what the caller keeps until the
/// call ends, then queues for [`assemble`]. Kept small (it moves a few
/// times on the caller's thread): what most calls never set is in [`More`].
pub(crate) struct FastFrame {
    site: &'static LlmSite,
    /// Own ids, and what is inherited from above.
    ctx: Ctx,
    parent_span_id: SpanId,
    start: SystemTime,
    end: SystemTime,
    usage: Usage,
    response_model: Option<StringValue>,
    /// The cost, when the caller already worked it out.
    cost: Option<Option<f64>>,
    generation: u64,
    more: Option<Box<More>>,
}

/// The parts of a model call most calls do not have.
#[derive(Default)]
struct More {
    /// The request model when it is not a literal.
    model: Option<StringValue>,
    /// Every other attribute, in the order set.
    attrs: Vec<KeyValue>,
    dropped_attributes: u32,
    events: Vec<Event>,
    dropped_events: u32,
    captured: Vec<KeyValue>,
    error: Option<(Cow<'static, str>, String)>,
}

impl FastFrame {
    fn usage(&self) -> Option<Usage> {
        (self.usage != Usage::default()).then_some(self.usage)
    }

    fn request_model(&self) -> Option<StringValue> {
        match self.site.model {
            Some(m) => Some(StringValue::from(m)),
            None => self.more.as_ref().and_then(|m| m.model.clone()),
        }
    }

    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Box::default)
    }
}

impl Sink for FastFrame {
    fn set_attribute(&mut self, key: Key, value: Value) {
        let value = match (self.usage.field_mut(key.as_str()), value) {
            (Some(slot), Value::I64(n)) if n >= 0 => {
                *slot = Some(n as u64);
                return;
            }
            (_, v) => v,
        };
        let value = match (key.as_str(), value) {
            (sc::GEN_AI_RESPONSE_MODEL, Value::String(s)) => {
                self.response_model = Some(s);
                return;
            }
            (sc::GEN_AI_REQUEST_MODEL, Value::String(s)) => {
                self.more().model = Some(s);
                return;
            }
            (sc::GEN_AI_CONVERSATION_ID, v) => {
                self.ctx.conversation_id = Some(v);
                return;
            }
            (_, v) => v,
        };
        let more = self.more();
        set_bounded(&mut more.attrs, &mut more.dropped_attributes, key, value);
    }

    fn add_event(&mut self, event: Event) {
        let more = self.more();
        push_bounded(&mut more.events, &mut more.dropped_events, event);
    }

    fn add_captured(&mut self, kv: KeyValue) {
        let more = self.more();
        if more.captured.len() < MAX_ATTRIBUTES {
            more.captured.push(kv);
        }
    }

    fn has_error(&self) -> bool {
        self.more.as_ref().is_some_and(|m| m.error.is_some())
    }

    fn set_error(&mut self, error_type: Cow<'static, str>, message: String) {
        self.more().error = Some((error_type, message));
    }
}

/// A model call may take the dedicated path: the checks passed. Finish
/// with [`FastStart::start`] or [`FastStart::start_with_model`].
#[derive(Debug)]
pub struct FastStart {
    site: &'static LlmSite,
}

/// Whether this call of `site` takes the dedicated path: observra owns the
/// subscriber, the path is on, content capture is off and this is not an
/// exporter's thread.
#[inline]
pub fn begin(site: &'static LlmSite) -> Option<FastStart> {
    if !ENABLED.load(Ordering::Relaxed)
        || crate::content::capturing()
        || crate::layer::suppressed()
        || !own_subscriber()
    {
        return None;
    }
    Some(FastStart { site })
}

impl FastStart {
    /// Starts the call (the site's model is a literal).
    #[inline]
    pub fn start(self) -> FastSpan {
        FastSpan::open(self.site, None)
    }

    /// Starts the call with the request model it was given.
    #[inline]
    pub fn start_with_model(self, model: &str) -> FastSpan {
        FastSpan::open(self.site, Some(StringValue::from(Arc::<str>::from(model))))
    }
}

/// A model call in progress on the dedicated path. Ends (and is queued)
/// when dropped.
pub struct FastSpan {
    /// The frame while the call is not entered; entered, it is on the
    /// thread's stack.
    frame: RefCell<Option<FastFrame>>,
    span_id: SpanId,
}

impl std::fmt::Debug for FastSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastSpan").field("span_id", &self.span_id).finish()
    }
}

impl FastSpan {
    fn none() -> Self {
        FastSpan { frame: RefCell::new(None), span_id: SpanId::INVALID }
    }

    fn open(site: &'static LlmSite, model: Option<StringValue>) -> Self {
        let parent = stack(|s| {
            s.last().map(|e| match e {
                Entry::Tracing(c) => c.clone(),
                Entry::Fast(f) => f.ctx.clone(),
            })
        })
        .flatten();
        let opened = with_pipeline(|generation, p| {
            let span_id = p.ids.new_span_id();
            let (ctx, parent_span_id) = match parent {
                Some(parent) => {
                    let parent_span_id = parent.span_id;
                    (Ctx { span_id, ..parent }, parent_span_id)
                }
                None => {
                    let trace_id = p.ids.new_trace_id();
                    let name = site.name.unwrap_or(site.operation);
                    let result = p.sampler.should_sample(None, trace_id, name, &SpanKind::Client, &[], &[]);
                    let ctx = Ctx {
                        trace_id,
                        span_id,
                        sampled: result.decision == SamplingDecision::RecordAndSample,
                        trace_state: TraceState::default(),
                        conversation_id: None,
                        agent: None,
                        keeper: false,
                        tracing_id: None,
                    };
                    (ctx, SpanId::INVALID)
                }
            };
            FastFrame {
                site,
                ctx,
                parent_span_id,
                start: SystemTime::now(),
                end: SystemTime::UNIX_EPOCH,
                usage: Usage::default(),
                response_model: None,
                cost: None,
                generation,
                more: model.map(|model| Box::new(More { model: Some(model), ..More::default() })),
            }
        });
        match opened {
            Some(frame) => FastSpan { span_id: frame.ctx.span_id, frame: RefCell::new(Some(frame)) },
            None => FastSpan::none(),
        }
    }

    /// False: a call on this path is always recorded (for the macros'
    /// `is_disabled` checks, shared with `tracing::Span`).
    #[inline]
    pub fn is_disabled(&self) -> bool {
        self.span_id == SpanId::INVALID
    }

    /// Runs `f` on the frame, wherever it is.
    pub(crate) fn with(&self, f: impl FnOnce(&mut FastFrame)) {
        if let Ok(mut local) = self.frame.try_borrow_mut() {
            if let Some(frame) = local.as_mut() {
                return f(frame);
            }
        }
        with_entered(self.span_id, f);
    }

    /// Makes the call the innermost span of this thread.
    fn enter(&self) {
        let Ok(mut local) = self.frame.try_borrow_mut() else { return };
        let Some(frame) = local.take() else { return };
        let mut frame = Some(frame);
        stack(|s| {
            if let Some(f) = frame.take() {
                s.push(Entry::Fast(f));
            }
        });
        // Not on the stack (re-entrant or torn down): it stays here.
        if frame.is_some() {
            *local = frame;
        }
    }

    /// Takes the call off this thread's stack.
    fn exit(&self) {
        if let Some(frame) = self.take_entered() {
            match self.frame.try_borrow_mut() {
                Ok(mut local) => *local = Some(frame),
                // Cannot happen (nothing else borrows it now); never lose the call.
                Err(_) => close(frame),
            }
        }
    }

    /// Takes the call off this thread's stack, if it is there.
    fn take_entered(&self) -> Option<FastFrame> {
        if self.is_disabled() || self.frame.try_borrow().map_or(true, |f| f.is_some()) {
            return None;
        }
        stack(|s| match position(s, self.span_id).map(|at| s.remove(at)) {
            Some(Entry::Fast(frame)) => Some(frame),
            _ => None,
        })
        .flatten()
    }

    /// Marks the call failed (`panic`, `cancelled`) unless it already is.
    fn fail(&self, error_type: &'static str, message: &'static str) {
        self.with(|f| {
            if !f.has_error() {
                f.set_error(Cow::Borrowed(error_type), message.to_string());
            }
        });
    }
}

impl Drop for FastSpan {
    fn drop(&mut self) {
        self.exit();
        let frame = self.frame.get_mut().take();
        if let Some(frame) = frame {
            close(frame);
        }
    }
}

/// Ends a call: stamps the end, does what must happen on the caller
/// (budgets, totals), and queues the frame.
#[inline]
fn close(mut frame: FastFrame) {
    frame.end = SystemTime::now();
    let queued = with_pipeline(|generation, p| {
        if generation != frame.generation {
            return false;
        }
        let acc = &p.accounting;
        if frame.ctx.keeper || acc.has_budgets() {
            caller_accounting(&mut frame, acc);
        }
        match &acc.metrics {
            Some(q) => {
                q.send_span(frame);
                true
            }
            None => false,
        }
    });
    if queued != Some(true) {
        // The pipeline it belonged to has stopped.
        crate::batch::ORPHANED.fetch_add(1, Ordering::AcqRel);
    }
}

/// Cost, budget checks and the totals of the agents and workflows above,
/// on the caller's thread (where the budget callback runs).
fn caller_accounting(frame: &mut FastFrame, acc: &accounting::Accounting) {
    let mut deferred = Deferred::default();
    let usage = frame.usage();
    let request = frame.request_model();
    let (model, cost) =
        accounting::llm_cost(acc, usage.as_ref(), frame.response_model.as_ref(), request.as_ref(), &mut deferred);
    let model = model.as_ref().map(|m| m.as_str());
    accounting::llm_budgets(acc, usage.as_ref(), cost, model, frame.ctx.trace_id, &mut deferred);
    frame.cost = Some(cost);
    if let (true, Some(id)) = (frame.ctx.keeper, &frame.ctx.tracing_id) {
        let wants_model = acc.budget.agent_usd.is_some() || acc.budget.agent_tokens.is_some();
        let contribution = Contribution {
            is_llm: true,
            is_tool: false,
            usage,
            cost,
            model: if wants_model { model.map(str::to_string) } else { None },
        };
        crate::layer::contribute(id, &contribution, acc, frame.ctx.trace_id, &mut deferred);
    }
    accounting::emit(acc, deferred);
}

/// Builds the span and records the metrics of a queued model call (on the
/// `observra-metrics` thread).
pub(crate) fn assemble(frame: FastFrame, p: &Pipeline, ins: Option<&Instruments>) {
    let acc = &p.accounting;
    let mut deferred = Deferred::default();
    let usage = frame.usage();
    let request = frame.request_model();
    let (model, cost) = match frame.cost {
        Some(cost) => {
            (accounting::llm_cost(acc, None, frame.response_model.as_ref(), request.as_ref(), &mut deferred).0, cost)
        }
        None => {
            accounting::llm_cost(acc, usage.as_ref(), frame.response_model.as_ref(), request.as_ref(), &mut deferred)
        }
    };
    let site = frame.site;
    let more = frame.more.map(|m| *m).unwrap_or_default();
    let mut attrs = Vec::with_capacity(12 + more.attrs.len());
    attrs.push(KeyValue::new(sc::GEN_AI_OPERATION_NAME, site.operation));
    attrs.push(KeyValue::new(sc::GEN_AI_PROVIDER_NAME, site.provider));
    if let Some(m) = &request {
        attrs.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, Value::String(m.clone())));
    }
    attrs.extend(more.attrs);
    for (key, n) in frame.usage.attributes() {
        attrs.push(KeyValue::new(key, i64::try_from(n).unwrap_or(i64::MAX)));
    }
    if let Some(m) = &frame.response_model {
        attrs.push(KeyValue::new(sc::GEN_AI_RESPONSE_MODEL, Value::String(m.clone())));
    }
    let failed = more.error.is_some();
    if let Some((error_type, _)) = &more.error {
        attrs.push(KeyValue::new(sc::ERROR_TYPE, Value::String(error_type.clone().into())));
    }
    if let Some(c) = cost {
        attrs.push(KeyValue::new(sc::OBSERVRA_COST_USD, c));
    }
    if let Some(cid) = frame.ctx.conversation_id {
        attrs.push(KeyValue::new(sc::GEN_AI_CONVERSATION_ID, cid));
    }
    let duration_s = frame.end.duration_since(frame.start).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    if let Some(ins) = ins {
        accounting::MetricJob::llm(
            site.operation,
            &attrs,
            duration_s,
            failed,
            usage,
            cost,
            None,
            Vec::new(),
            frame.ctx.agent,
            model,
        )
        .record(ins);
    }
    // This thread's own `tracing` events are not recorded (it is an
    // exporter's), so the warning the `tracing` path leaves on the current
    // span is put on this call's span here.
    let unknown_model = deferred.unknown_model.clone();
    accounting::emit(acc, deferred);
    if !frame.ctx.sampled {
        return;
    }
    let mut events = SpanEvents::default();
    events.events = more.events;
    events.dropped_count = more.dropped_events;
    if let Some(model) = unknown_model {
        let attributes = vec![
            KeyValue::new("model", model),
            KeyValue::new(sc::EVENT_LEVEL, "WARN"),
            KeyValue::new(sc::EVENT_TARGET, "observra::cost"),
        ];
        events.events.push(Event::new(accounting::UNKNOWN_MODEL_WARNING, frame.end, attributes, 0));
    }
    if !more.captured.is_empty() {
        events.events.push(Event::new(sc::GEN_AI_DETAILS_EVENT, frame.end, more.captured, 0));
    }
    let name = match (site.name, &request) {
        (Some(name), _) => Cow::Borrowed(name),
        (None, Some(m)) => Cow::Owned(format!("{} {}", site.operation, m.as_str())),
        (None, None) => Cow::Borrowed(site.operation),
    };
    let status = match more.error {
        Some((_, message)) => Status::error(message),
        None => Status::Unset,
    };
    p.submit(SpanData {
        span_context: SpanContext::new(
            frame.ctx.trace_id,
            frame.ctx.span_id,
            TraceFlags::SAMPLED,
            false,
            frame.ctx.trace_state,
        ),
        parent_span_id: frame.parent_span_id,
        parent_span_is_remote: false,
        span_kind: SpanKind::Client,
        name,
        start_time: frame.start,
        end_time: frame.end,
        attributes: attrs,
        dropped_attributes_count: more.dropped_attributes,
        events,
        links: SpanLinks::default(),
        status,
        instrumentation_scope: p.scope.clone(),
    });
}

/// The call entered for a scope: exits on drop, and records a panic that
/// unwinds through it.
struct Entered<'a>(&'a FastSpan);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.exit();
        if std::thread::panicking() {
            self.0.fail(sc::ERROR_PANIC, "the function panicked");
        }
    }
}

/// Keeps a sync function's call entered for its body, and ends it there.
pub struct FastSync<'a> {
    span: &'a FastSpan,
}

impl<'a> FastSync<'a> {
    /// Enters `span` for the rest of the call.
    #[inline]
    pub fn enter(span: &'a FastSpan) -> Self {
        span.enter();
        FastSync { span }
    }
    /// The call being recorded.
    #[inline]
    pub fn span(&self) -> &FastSpan {
        self.span
    }
}

impl Drop for FastSync<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.span.fail(sc::ERROR_PANIC, "the function panicked");
        }
        // Ends the call straight from the thread's stack (the span, dropped
        // next, then has nothing left to end).
        match self.span.take_entered() {
            Some(frame) => close(frame),
            None => self.span.exit(),
        }
    }
}

pin_project_lite::pin_project! {
    /// An async model call's body: the call is entered on every poll,
    /// ended as `cancelled` if dropped before completion, `panic` if a poll
    /// panics. Resolves to the body's output and the call.
    pub struct FastInstrumented<F> {
        #[pin]
        inner: F,
        span: Option<FastSpan>,
    }

    impl<F> PinnedDrop for FastInstrumented<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(span) = this.span.take() {
                span.fail(sc::ERROR_CANCELLED, "the future was dropped before it completed");
            }
        }
    }
}

/// Wraps an async body with its call.
#[inline]
pub fn instrument<F: Future>(span: FastSpan, inner: F) -> FastInstrumented<F> {
    FastInstrumented { inner, span: Some(span) }
}

impl<F: Future> Future for FastInstrumented<F> {
    type Output = (F::Output, FastSpan);

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(span) = this.span.as_ref() else {
            return this.inner.poll(cx).map(|out| (out, FastSpan::none()));
        };
        span.enter();
        let entered = Entered(span);
        let poll = this.inner.poll(cx);
        drop(entered);
        match poll {
            Poll::Ready(out) => Poll::Ready((out, this.span.take().unwrap_or_else(FastSpan::none))),
            Poll::Pending => Poll::Pending,
        }
    }
}
