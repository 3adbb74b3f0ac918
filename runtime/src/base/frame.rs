//! The one record type every span is kept in on the caller's thread,
//! whoever made it ([`Frame`]), the context a span passes to what runs
//! inside it ([`Ctx`]), the shared totals of an agent or workflow
//! ([`RunTotals`]), and the static description of a macro's call site
//! ([`Site`]).

use std::borrow::Cow;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
use opentelemetry::{Key, KeyValue, StringValue, Value};

use crate::account::accounting::{self, Contribution, Deferred, Totals};
use crate::account::usage::{PackedUsage, Usage};
use observra_semconv::{self as sc, operation as op};
use opentelemetry_sdk::trace::RandomIdGenerator;

/// Most attributes kept per span; more are counted in `dropped_attributes_count`.
pub(crate) const MAX_ATTRIBUTES: usize = 128;
/// Most events kept per span; more are counted in the dropped-events count.
pub(crate) const MAX_EVENTS: usize = 128;
/// Most links kept per span.
pub(crate) const MAX_LINKS: usize = 128;
/// Most chunk gaps kept per streamed span (each is one histogram record).
const MAX_CHUNK_GAPS: usize = 4096;

/// A literal attribute value of a call site.
pub trait StaticAttr: Sync {
    /// The value, as exported.
    fn value(&self) -> Value;
}

impl StaticAttr for &'static str {
    fn value(&self) -> Value {
        Value::String(StringValue::from(*self))
    }
}
impl StaticAttr for bool {
    fn value(&self) -> Value {
        Value::Bool(*self)
    }
}
macro_rules! static_int {
    ($($t:ty),*) => {$(
        impl StaticAttr for $t {
            fn value(&self) -> Value {
                Value::I64(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
static_int!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);
impl StaticAttr for f64 {
    fn value(&self) -> Value {
        Value::F64(*self)
    }
}
impl StaticAttr for f32 {
    fn value(&self) -> Value {
        // Through its shortest decimal form, so `0.2f32` stays `0.2`.
        Value::F64(self.to_string().parse().unwrap_or(f64::from(*self)))
    }
}

/// What an instrumented function's call site knows at compile time: one
/// `static` per call site, made by the macro.
pub struct Site {
    /// The span name (for a model call whose model is not a literal, the
    /// operation: the model is added off the caller's thread).
    pub name: &'static str,
    /// The span kind.
    pub kind: SpanKind,
    /// `gen_ai.operation.name`, for the GenAI macros.
    pub operation: Option<&'static str>,
    /// `gen_ai.request.model`, when the model is a literal.
    pub model: Option<&'static str>,
    /// The name is `{name} {request model}`.
    pub name_with_model: bool,
    /// Every other literal attribute.
    pub attrs: &'static [(&'static str, &'static dyn StaticAttr)],
    /// `#[traced(metrics)]`: the function and module labels.
    pub function: Option<(&'static str, &'static str)>,
    /// The parameters recorded with `Debug` (`fields(..)`, `args`): with
    /// the literal attributes, what `tracing::Span::current().record(..)`
    /// may set inside a call, as on the `tracing` path's span.
    pub fields: &'static [&'static str],
    /// The `tracing` metadata of `Span::current()` inside a call, made the
    /// first time someone asks.
    pub meta: SiteMeta,
}

/// A site's `tracing` metadata, made once, when first asked for.
pub struct SiteMeta(pub(crate) std::sync::OnceLock<&'static tracing::Metadata<'static>>);

impl SiteMeta {
    /// Nothing made yet.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        SiteMeta(std::sync::OnceLock::new())
    }
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site").field("name", &self.name).field("operation", &self.operation).finish()
    }
}

impl Site {
    /// The literal attribute `key`, if the site has it.
    pub(crate) fn attr(&self, key: &str) -> Option<Value> {
        self.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.value())
    }
}

/// Running totals of an agent or workflow span, shared with everything
/// that runs beneath it (through the context, across threads too).
pub(crate) struct RunTotals {
    totals: Mutex<Totals>,
    /// The agent's name, for an agent (its budget events name it).
    agent: std::sync::OnceLock<StringValue>,
    is_agent: bool,
    /// The totals above these, if any.
    parent: Option<Arc<RunTotals>>,
}

impl RunTotals {
    /// A cell that holds nothing: what a recycled one holds between two
    /// runs ([`recycled`]).
    fn blank() -> RunTotals {
        RunTotals {
            totals: Mutex::new(Totals::default()),
            agent: std::sync::OnceLock::new(),
            is_agent: false,
            parent: None,
        }
    }

    /// The totals so far.
    pub(crate) fn totals(&self) -> Totals {
        *self.totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a contribution to these totals and every one above them, with
    /// the budget check of each agent among them.
    pub(crate) fn add(
        self: &Arc<Self>,
        contribution: &Contribution,
        acc: &accounting::Accounting,
        trace_id: TraceId,
        deferred: &mut Deferred,
    ) {
        let mut next = Some(self);
        // The nearest agent made the call itself; those above, through it.
        let mut own = true;
        while let Some(k) = next {
            let mut totals = k.totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            totals.add(contribution);
            if k.is_agent && std::mem::take(&mut own) {
                totals.add_own(contribution);
            }
            if k.is_agent {
                accounting::check_agent_budget(
                    acc,
                    &mut totals,
                    k.agent.get().map(StringValue::as_str),
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
    pub run_totals: Option<Arc<RunTotals>>,
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
    /// Start and end, as [`super::clock::stamp`]s.
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) usage: PackedUsage,
    pub(crate) response_model: Option<StringValue>,
    /// `gen_ai.response.id`, kept typed so a reply costs no side store, in
    /// a string the collector gives back ([`super::recycle`]).
    pub(crate) response_id: Option<String>,
    /// `gen_ai.response.finish_reasons`, when they are known ones.
    pub(crate) finish: FinishReasons,
    /// The cost, when the caller already worked it out.
    pub(crate) cost: Option<Option<f64>>,
    pub(crate) generation: u64,
    /// Whether `ctx.run_totals` is this span's own (an agent or a workflow).
    pub(crate) keeps_totals: bool,
    /// This agent's start was told to the collector
    /// (`agent.requests.active`), under its own name when `agent_named`
    /// (`ctx.agent`), else under none: taken back when it ends. Kept in
    /// the frame, so an agent needs no side store.
    pub(crate) agent_noted: bool,
    pub(crate) agent_named: bool,
    pub(crate) more: Option<Box<More>>,
}

/// Finish reasons a model call reported, when each is one of the
/// [`FinishReasons::KNOWN`] (at most four): packed in two bytes, so
/// recording them on the caller's thread allocates nothing; the collector
/// makes the attribute.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FinishReasons(u16);

impl FinishReasons {
    pub(crate) const NONE: FinishReasons = FinishReasons(0);
    /// The reasons providers report (OpenAI, Anthropic, Gemini, Bedrock, ...).
    const KNOWN: [&'static str; 15] = [
        "stop",
        "length",
        "tool_calls",
        "content_filter",
        "function_call",
        "error",
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "refusal",
        "pause_turn",
        "safety",
        "recitation",
        "other",
    ];

    /// Adds `reason`; `None` when it is not a known one or there are four already.
    pub(crate) fn with(self, reason: &str) -> Option<FinishReasons> {
        let index = Self::KNOWN.iter().position(|k| *k == reason)? as u16 + 1;
        let len = self.len();
        (len < 4).then(|| FinishReasons(self.0 | (index << (4 * len))))
    }

    fn len(self) -> u32 {
        (16 - self.0.leading_zeros()).div_ceil(4)
    }

    /// The reasons, in order.
    pub(crate) fn iter(self) -> impl Iterator<Item = &'static str> {
        (0..self.len()).map(move |i| Self::KNOWN[usize::from((self.0 >> (4 * i)) & 0xf) - 1])
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }
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
    /// When a stream's first output chunk arrived (a clock stamp).
    pub first_chunk: Option<u64>,
    pub status: StatusCode,
    pub status_message: Option<String>,
    /// Whether a `gen_ai.operation.name` is set (any value).
    pub genai: bool,
    /// Whether `http.request.method` is set: an HTTP server or client
    /// span, counted in the HTTP duration metrics sampled or not.
    pub http: bool,
    /// Whether `mcp.method.name` is set: an MCP request, counted in the MCP
    /// duration metrics sampled or not.
    pub mcp: bool,
    /// The tool or prompt this MCP server span names was asked for by a
    /// client but not declared by the server: its metrics say `_OTHER`
    /// instead (the span keeps the name).
    pub undeclared: bool,
    /// `#[traced(metrics)]`: function and module labels.
    pub function_metrics: Option<(&'static str, &'static str)>,
    /// A budget was crossed when this call ended (the tail sampler keeps its trace).
    pub over_budget: bool,
    /// A model without a price, noted on the caller: the warning goes on this span.
    pub unknown_model: Option<String>,
}

impl More {
    /// About how many bytes this holds, itself included.
    fn approx_bytes(&self) -> usize {
        use super::attr_value::attributes_size;
        let events: usize = self.events.iter().map(|e| e.name.len() + attributes_size(&e.attributes) + 48).sum();
        let links: usize = self.links.iter().map(|l| attributes_size(&l.attributes) + 64).sum();
        std::mem::size_of::<More>()
            + self.name.as_ref().map_or(0, |n| n.len())
            + attributes_size(&self.attrs)
            + attributes_size(&self.captured)
            + events
            + links
            + self.chunk_gaps.len() * 8
            + self.status_message.as_ref().map_or(0, String::len)
            + self.unknown_model.as_ref().map_or(0, String::len)
    }
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
    op::LLM
        .iter()
        .chain(&[op::EXECUTE_TOOL, op::INVOKE_AGENT, op::INVOKE_WORKFLOW, op::RETRIEVAL])
        .find(|k| **k == name)
        .copied()
}

/// Whether every span is recorded whatever a remote caller decided: the
/// tail sampler decides on the collector (`Sampler::keep_interesting`).
pub(crate) static RECORD_ALL: AtomicBool = AtomicBool::new(false);

impl Frame {
    /// A frame that records nothing: what a recycled box holds between
    /// two calls ([`recycled`]).
    pub(crate) fn blank() -> Frame {
        Frame {
            site: None,
            ctx: Ctx {
                trace_id: TraceId::INVALID,
                span_id: SpanId::INVALID,
                sampled: false,
                trace_state: TraceState::NONE,
                conversation_id: None,
                agent: None,
                run_totals: None,
            },
            parent_span_id: SpanId::INVALID,
            operation: None,
            start: 0,
            end: 0,
            usage: PackedUsage::default(),
            response_model: None,
            response_id: None,
            finish: FinishReasons::NONE,
            cost: None,
            generation: 0,
            keeps_totals: false,
            agent_noted: false,
            agent_named: false,
            more: None,
        }
    }

    /// A new frame under `parent` (or a root when `None`): [`Frame::open_in`]
    /// on a blank one.
    #[cfg(test)]
    pub(crate) fn open(
        ids: &RandomIdGenerator,
        generation: u64,
        parent: Option<Ctx>,
        sample: impl FnOnce(TraceId) -> bool,
    ) -> Frame {
        let mut frame = Frame::blank();
        frame.open_in(ids, generation, parent, sample);
        frame
    }

    /// Opens this blank frame ([`Frame::blank`], which every recycled box
    /// holds: [`recycled::blank_box`]) as a new span under `parent` (or a
    /// root when `None`), with a fresh span id from `ids` and, for a root,
    /// a fresh trace and `sample`'s decision. Only what a blank frame does
    /// not hold already is written: a box is filled in place, its 320
    /// bytes never copied.
    #[inline]
    pub(crate) fn open_in(
        &mut self,
        ids: &RandomIdGenerator,
        generation: u64,
        parent: Option<Ctx>,
        sample: impl FnOnce(TraceId) -> bool,
    ) {
        debug_assert!(self.site.is_none() && self.more.is_none() && self.start == 0, "a blank frame");
        let span_id = opentelemetry_sdk::trace::IdGenerator::new_span_id(ids);
        match parent {
            Some(parent) => {
                self.parent_span_id = parent.span_id;
                self.ctx = Ctx { span_id, ..parent };
            }
            None => {
                let trace_id = opentelemetry_sdk::trace::IdGenerator::new_trace_id(ids);
                self.ctx.trace_id = trace_id;
                self.ctx.span_id = span_id;
                self.ctx.sampled = sample(trace_id);
            }
        }
        self.start = super::clock::stamp();
        self.generation = generation;
    }

    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage.get()
    }

    /// Sets `gen_ai.response.id`, in a recycled string.
    pub(crate) fn set_response_id(&mut self, id: &str) {
        match &mut self.response_id {
            Some(s) => {
                s.clear();
                s.push_str(id);
            }
            None => self.response_id = Some(super::recycle::string(id)),
        }
    }

    /// Sets `gen_ai.response.finish_reasons` to known reasons, packed
    /// (replacing any set before).
    pub(crate) fn set_finish_reasons(&mut self, reasons: FinishReasons) {
        if let Some(more) = self.more.as_mut() {
            more.attrs.retain(|kv| kv.key.as_str() != sc::GEN_AI_RESPONSE_FINISH_REASONS);
        }
        self.finish = reasons;
    }

    pub(crate) fn request_model(&self) -> Option<StringValue> {
        match self.site.and_then(|s| s.model) {
            Some(m) => Some(StringValue::from(m)),
            None => self.more.as_ref().and_then(|m| m.model.clone()),
        }
    }

    pub(crate) fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(recycled::more_box)
    }

    /// Whether this is a GenAI span (`gen_ai.operation.name` is set).
    pub(crate) fn is_genai(&self) -> bool {
        self.site.is_some_and(|s| s.operation.is_some()) || self.more.as_ref().is_some_and(|m| m.genai)
    }

    /// Whether the span is recorded at all: sampled, or counted in metrics.
    pub(crate) fn wanted(&self) -> bool {
        self.ctx.sampled || self.in_metrics() || self.more.as_ref().is_some_and(|m| m.function_metrics.is_some())
    }

    /// About how many bytes this frame holds while it waits for the
    /// collector: itself and what its [`More`] keeps on the heap (captured
    /// content included: it is cut to the limits only on the collector).
    pub(crate) fn charge(&self) -> usize {
        std::mem::size_of::<Frame>()
            + self.more.as_ref().map_or(0, |m| m.approx_bytes())
            + self.response_id.as_ref().map_or(0, String::capacity)
    }

    /// Whether this is its trace's local root: no parent, or a parent in
    /// another process.
    pub(crate) fn is_local_root(&self) -> bool {
        self.parent_span_id == SpanId::INVALID || self.more.as_ref().is_some_and(|m| m.parent_is_remote)
    }

    /// Whether the span ends with status ERROR.
    pub(crate) fn failed(&self) -> bool {
        self.more.as_ref().is_some_and(|m| m.status == StatusCode::Error)
    }

    /// Whether the span feeds the conventions' metrics (GenAI or HTTP),
    /// which count every call, sampled or not.
    pub(crate) fn in_metrics(&self) -> bool {
        self.is_genai() || self.more.as_ref().is_some_and(|m| m.http || m.mcp)
    }

    /// The tool a tool call names (`gen_ai.tool.name`, set or a literal of its site).
    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    pub(crate) fn tool_name(&self) -> Option<StringValue> {
        self.string_attr(sc::GEN_AI_TOOL_NAME)
    }

    /// An attribute's value (among the generic ones).
    pub(crate) fn attr(&self, key: &str) -> Option<&Value> {
        self.more.as_ref()?.attrs.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
    }

    /// A string attribute's value, set on the span or a literal of its site.
    pub(crate) fn string_attr(&self, key: &str) -> Option<StringValue> {
        match self.attr(key).cloned().or_else(|| self.site.and_then(|s| s.attr(key))) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Sets (or replaces) an attribute. The GenAI fields observra reads
    /// (usage, models, conversation id, operation) are kept typed.
    pub fn set_attribute(&mut self, key: Key, value: Value) {
        if let Value::I64(n) = value {
            if n >= 0 && self.usage.set(key.as_str(), n as u64) {
                return;
            }
        }
        match (key.as_str(), value) {
            (sc::GEN_AI_RESPONSE_MODEL, Value::String(s)) => {
                self.response_model = Some(s);
            }
            (sc::GEN_AI_RESPONSE_ID, Value::String(s)) => self.set_response_id(s.as_str()),
            (sc::GEN_AI_RESPONSE_FINISH_REASONS, v) => {
                self.finish = FinishReasons::NONE;
                self.set_plain(key, v);
            }
            (sc::GEN_AI_REQUEST_MODEL, Value::String(s)) => {
                self.more().model = Some(s);
            }
            (sc::GEN_AI_OPERATION_NAME, v) => {
                self.more().genai = true;
                if let Value::String(s) = &v {
                    self.operation = known_operation(s.as_str());
                    if self.operation.is_some_and(accounting::keeps_run_totals) {
                        self.keep_totals();
                    }
                }
                self.set_plain(key, v);
            }
            (sc::GEN_AI_AGENT_NAME, Value::String(name)) => {
                // An agent's name may come after its operation: its budget events name it.
                if let (true, Some(run_totals)) = (self.keeps_totals, &self.ctx.run_totals) {
                    let _ = run_totals.agent.set(name.clone());
                }
                self.set_plain(key, Value::String(name));
            }
            (sc::HTTP_REQUEST_METHOD, v) => {
                self.more().http = true;
                self.set_plain(key, v);
            }
            (sc::MCP_METHOD_NAME, v) => {
                self.more().mcp = true;
                self.set_plain(key, v);
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
        if self.keeps_totals {
            return;
        }
        let is_agent = self.operation == Some(op::INVOKE_AGENT);
        let agent = std::sync::OnceLock::new();
        if let (true, Some(name)) = (is_agent, self.string_attr(sc::GEN_AI_AGENT_NAME)) {
            let _ = agent.set(name);
        }
        self.ctx.run_totals = Some(recycled::run_totals(RunTotals {
            totals: Mutex::new(Totals::default()),
            agent,
            is_agent,
            parent: self.ctx.run_totals.take(),
        }));
        self.keeps_totals = true;
    }

    /// The name this agent's start was told to the collector under
    /// (`Some(None)`: no name), once: the collector takes it back.
    pub(crate) fn take_active_agent(&mut self) -> Option<Option<StringValue>> {
        let noted = std::mem::replace(&mut self.agent_noted, false);
        noted.then(|| if self.agent_named { self.ctx.agent.clone() } else { None })
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
        // Recorded again (a library's field set twice): the last value counts.
        if let Some(at) = more.captured.iter().position(|c| c.key == kv.key) {
            more.captured[at] = kv;
        } else if more.captured.len() < MAX_ATTRIBUTES {
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

    /// Notes that a stream's first output chunk arrived now; the time to
    /// first chunk is measured from the frame's start on the collector.
    pub(crate) fn mark_first_chunk(&mut self) {
        let now = crate::base::clock::stamp();
        let more = self.more();
        if more.first_chunk.is_none() {
            more.first_chunk = Some(now);
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

    /// Re-parents this span onto a caller in another process. `remote`'s
    /// sampled flag is already the configured sampler's decision for this
    /// span (`propagation::set_remote_parent` asked it), unless the tail
    /// sampler records everything here.
    pub(crate) fn set_remote_parent(&mut self, remote: &SpanContext) {
        self.ctx.trace_id = remote.trace_id();
        self.parent_span_id = remote.span_id();
        self.ctx.trace_state = remote.trace_state().clone();
        self.ctx.sampled = remote.is_sampled() || RECORD_ALL.load(std::sync::atomic::Ordering::Relaxed);
        self.more().parent_is_remote = true;
    }
}

/// A call's frame, its side store and an agent's or a workflow's totals
/// cell, recycled ([`super::recycle`]): taken from the caller's stock,
/// given back by the collector once it handled them. A frame then moves as
/// a pointer (onto the thread's context stack, into its buffer, to the
/// collector), never as its 320 bytes.
#[allow(clippy::vec_box, reason = "the boxes are what is recycled: a frame moves as a pointer")]
pub(crate) mod recycled {
    use std::cell::RefCell;
    use std::sync::Arc;

    use super::{Frame, More, RunTotals};
    use crate::base::recycle::Recycler;

    thread_local! {
        static FRAME_STOCK: RefCell<Vec<Box<Frame>>> = const { RefCell::new(Vec::new()) };
        static FRAMES_GIVEN: RefCell<Vec<Box<Frame>>> = const { RefCell::new(Vec::new()) };
        static MORE_STOCK: RefCell<Vec<Box<More>>> = const { RefCell::new(Vec::new()) };
        static MORE_GIVEN: RefCell<Vec<Box<More>>> = const { RefCell::new(Vec::new()) };
        static TOTALS_STOCK: RefCell<Vec<Arc<RunTotals>>> = const { RefCell::new(Vec::new()) };
        static TOTALS_GIVEN: RefCell<Vec<Arc<RunTotals>>> = const { RefCell::new(Vec::new()) };
    }

    /// Frame boxes (320 bytes each: at most about 330 KB pooled).
    static FRAMES: Recycler<Box<Frame>> = Recycler::new(&FRAME_STOCK, &FRAMES_GIVEN, 1024);
    /// Side stores (what most spans never set).
    static MORES: Recycler<Box<More>> = Recycler::new(&MORE_STOCK, &MORE_GIVEN, 1024);
    /// Totals cells, each given back when nothing else holds it any more.
    static TOTALS: Recycler<Arc<RunTotals>> = Recycler::new(&TOTALS_STOCK, &TOTALS_GIVEN, 1024);

    /// Asks early for the memory of the box or cell the next take gives.
    fn warm<T>(coming: &impl std::ops::Deref<Target = T>) {
        crate::base::recycle::prefetch_for_write(&**coming);
    }

    /// A blank frame in a box from this thread's stock (a new one only
    /// when none is at hand), to open in place ([`Frame::open_in`]).
    #[inline]
    pub(crate) fn blank_box() -> Box<Frame> {
        FRAMES.take(warm).unwrap_or_else(|| Box::new(Frame::blank()))
    }

    /// A box this thread took and did not hand over (a call nobody
    /// wanted): back into its stock.
    pub(crate) fn keep_frame_box(mut boxed: Box<Frame>) {
        *boxed = Frame::blank();
        FRAMES.keep(boxed);
    }

    /// The frame out of its box (on the collector's thread), the box
    /// given back.
    pub(crate) fn unbox(mut boxed: Box<Frame>) -> Frame {
        let frame = std::mem::replace(&mut *boxed, Frame::blank());
        FRAMES.give_back(boxed);
        frame
    }

    /// An empty side store, from this thread's stock.
    pub(super) fn more_box() -> Box<More> {
        MORES.take(warm).unwrap_or_default()
    }

    /// What a handled frame's side store holds, taken out on the
    /// collector's thread; the box is given back.
    pub(crate) fn unbox_more(mut boxed: Box<More>) -> More {
        let more = std::mem::take(&mut *boxed);
        MORES.give_back(boxed);
        more
    }

    /// `totals` in a cell from this thread's stock (a new one only when
    /// none is at hand).
    pub(super) fn run_totals(totals: RunTotals) -> Arc<RunTotals> {
        if let Some(mut cell) = TOTALS.take(warm) {
            if let Some(slot) = Arc::get_mut(&mut cell) {
                *slot = totals;
                return cell;
            }
        }
        Arc::new(totals)
    }

    /// Gives an agent's or a workflow's totals cell back (on the
    /// collector's thread, its frame handled) if nothing else holds it.
    pub(crate) fn give_back_totals(mut cell: Arc<RunTotals>) {
        if let Some(slot) = Arc::get_mut(&mut cell) {
            *slot = RunTotals::blank();
            TOTALS.give_back(cell);
        }
    }

    /// Puts what this thread gave back into the pools (the response-id
    /// strings' too).
    pub(crate) fn flush() {
        crate::base::recycle::flush();
        FRAMES.flush();
        MORES.flush();
        TOTALS.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::FinishReasons;

    /// The pool's round trip through the collector is `tests/alloc.rs`
    /// (no allocation once warm); here, what stays on one thread.
    #[test]
    fn a_frame_comes_out_of_its_box_whole_and_an_unused_box_is_taken_again() {
        use super::{Frame, recycled};
        let ids = opentelemetry_sdk::trace::RandomIdGenerator::default();
        let opened = |generation| {
            let mut boxed = recycled::blank_box();
            boxed.open_in(&ids, generation, None, |_| true);
            boxed
        };
        let frame = recycled::unbox(opened(7));
        assert_eq!(frame.generation, 7, "the frame comes out whole");
        let mut boxed = opened(8);
        boxed.more().attrs.push(opentelemetry::KeyValue::new("k", "v"));
        let at = &*boxed as *const Frame as usize;
        recycled::keep_frame_box(boxed);
        let again = opened(9);
        assert_eq!(&*again as *const Frame as usize, at, "the box kept in this thread's stock is taken next");
        assert_eq!(again.generation, 9, "holding only the new frame");
        assert!(again.more.is_none(), "nothing of the frame before");
    }

    #[test]
    fn a_frame_stays_within_its_size() {
        // It moves a few times on the caller's thread: what most spans never
        // set lives in `More`, usage is packed, finish reasons are two bytes.
        let size = std::mem::size_of::<super::Frame>();
        assert!(size <= 320, "a Frame takes {size} bytes");
    }

    #[test]
    fn known_finish_reasons_pack_in_order_up_to_four() {
        let mut packed = FinishReasons::NONE;
        assert!(packed.is_empty());
        for reason in ["stop", "tool_calls", "other", "length"] {
            packed = packed.with(reason).expect("known, and room");
        }
        assert_eq!(packed.iter().collect::<Vec<_>>(), ["stop", "tool_calls", "other", "length"]);
        assert_eq!(packed.with("stop"), None, "four at most");
        assert_eq!(FinishReasons::NONE.with("my_reason"), None, "unknown reasons take the list");
        let one = FinishReasons::NONE.with("other").unwrap();
        assert_eq!(one.iter().collect::<Vec<_>>(), ["other"], "the last known one (index 15) packs too");
    }
}
