//! The observra `tracing` layer: turns `tracing` spans and events into
//! OpenTelemetry spans.
//!
//! Each span gets a [`SpanRecord`] in its registry extensions when it opens
//! (ids, parent, sampling decision, kind, name, start time, attributes).
//! Fields are interpreted as OpenTelemetry data (`otel.name`, `otel.kind`,
//! `otel.status_code`, `otel.status_message`; every other field becomes a
//! typed attribute), events inside a span become span events, and at close
//! the record becomes a `SpanData` handed to the installed pipeline's
//! non-blocking batch processor. A hand-written `tracing` span with the same
//! fields as a macro-generated one is treated exactly the same way.

use std::any::TypeId;
use std::borrow::Cow;
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState};
use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::trace::{IdGenerator, SamplingDecision, ShouldSample, SpanData, SpanEvents, SpanLinks};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event as TracingEvent, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::accounting::{self, Contribution, Deferred, Totals, as_str, is_total_keeper};
use crate::pipeline::{self, Pipeline};
use crate::semconv as sc;

/// Most attributes kept per span; more are counted in `dropped_attributes_count`.
pub(crate) const MAX_ATTRIBUTES: usize = 128;
/// Most events kept per span; more are counted in the dropped-events count.
pub(crate) const MAX_EVENTS: usize = 128;
/// Most links kept per span.
pub(crate) const MAX_LINKS: usize = 128;

thread_local! {
    static SUPPRESSED: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as an exporter thread: spans and events created
/// on it (by HTTP clients, for example) are not exported, which would loop.
pub(crate) fn suppress_current_thread() {
    let _ = SUPPRESSED.try_with(|s| s.set(true));
}

pub(crate) fn suppressed() -> bool {
    // A thread being torn down records nothing.
    SUPPRESSED.try_with(|s| s.get()).unwrap_or(true)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StatusCode {
    Unset,
    Ok,
    Error,
}

/// What observra keeps about one open span.
pub(crate) struct SpanRecord {
    pipeline: Arc<Pipeline>,
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    parent_span_id: SpanId,
    parent_is_remote: bool,
    trace_state: TraceState,
    pub(crate) sampled: bool,
    name: Cow<'static, str>,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<KeyValue>,
    dropped_attributes: u32,
    events: Vec<Event>,
    dropped_events: u32,
    links: Vec<Link>,
    status_code: StatusCode,
    status_message: Option<String>,
    /// Whether this is a GenAI span (`gen_ai.operation.name` is set).
    genai: bool,
    /// The conversation id of this span or the nearest ancestor that has one.
    conversation_id: Option<Value>,
    /// Totals of what ran beneath, kept by agent and workflow spans.
    totals: Option<Totals>,
    /// Content kept for the `gen_ai.client.inference.operation.details` event.
    captured: Vec<KeyValue>,
    /// Gaps between output chunks of a streamed response, seconds.
    chunk_gaps: Vec<f64>,
    /// `#[traced(metrics)]`: function and module labels.
    function_metrics: Option<(&'static str, &'static str)>,
    wants_function_metrics: bool,
    /// Labels `agent.requests.active` was incremented with.
    active_labels: Option<Vec<KeyValue>>,
    /// The agent this span runs for: its own name, or the nearest agent above.
    agent: Option<opentelemetry::StringValue>,
    /// Whether this span or one above keeps totals.
    keeper: bool,
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

/// Where the macros' helpers record: a `tracing` span's record, or a model
/// call of the dedicated path ([`crate::fast`]).
#[doc(hidden)]
pub trait Sink {
    /// Sets (or replaces) an attribute.
    fn set_attribute(&mut self, key: Key, value: Value);
    /// Adds an event, within the per-span bound.
    fn add_event(&mut self, event: Event);
    /// Keeps captured content for the details event.
    fn add_captured(&mut self, kv: KeyValue);
    /// Whether a failure is already recorded (the first one wins).
    fn has_error(&self) -> bool;
    /// Marks the span failed with `error.type` and a status description.
    fn set_error(&mut self, error_type: Cow<'static, str>, message: String);
}

impl Sink for SpanRecord {
    fn set_attribute(&mut self, key: Key, value: Value) {
        SpanRecord::set_attribute(self, key, value)
    }
    fn add_event(&mut self, event: Event) {
        SpanRecord::add_event(self, event)
    }
    fn add_captured(&mut self, kv: KeyValue) {
        SpanRecord::add_captured(self, kv)
    }
    fn has_error(&self) -> bool {
        SpanRecord::has_error(self)
    }
    fn set_error(&mut self, error_type: Cow<'static, str>, message: String) {
        SpanRecord::set_error(self, error_type, message)
    }
}

/// Most chunk gaps kept per streamed span (each is one histogram record).
const MAX_CHUNK_GAPS: usize = 4096;

impl SpanRecord {
    /// Sets (or replaces) an attribute.
    pub(crate) fn set_attribute(&mut self, key: Key, value: Value) {
        match key.as_str() {
            sc::GEN_AI_OPERATION_NAME => {
                self.genai = true;
                if let Some(op) = as_str(&value) {
                    if is_total_keeper(op) && self.totals.is_none() {
                        self.totals = Some(Totals::default());
                    }
                }
            }
            sc::GEN_AI_CONVERSATION_ID => self.conversation_id = Some(value.clone()),
            _ => {}
        }
        set_bounded(&mut self.attributes, &mut self.dropped_attributes, key, value);
    }

    /// Adds an event, within the per-span bound.
    pub(crate) fn add_event(&mut self, event: Event) {
        push_bounded(&mut self.events, &mut self.dropped_events, event);
    }

    /// A string attribute's value.
    pub(crate) fn attr_str(&self, key: &str) -> Option<&str> {
        accounting::find_str(&self.attributes, key)
    }

    /// An attribute's value.
    pub(crate) fn attr_value(&self, key: &str) -> Option<&Value> {
        accounting::find(&self.attributes, key)
    }

    /// This span's context, as propagated to other processes.
    pub(crate) fn span_context(&self) -> SpanContext {
        let flags = if self.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        SpanContext::new(self.trace_id, self.span_id, flags, false, self.trace_state.clone())
    }

    /// What this span passes to what runs inside it: `tracing` spans, and
    /// model calls of the dedicated path.
    fn fast_ctx(&self, id: &Id) -> crate::fast::Ctx {
        crate::fast::Ctx {
            trace_id: self.trace_id,
            span_id: self.span_id,
            sampled: self.sampled,
            trace_state: self.trace_state.clone(),
            conversation_id: self.conversation_id.clone(),
            agent: self.agent.clone(),
            keeper: self.keeper,
            tracing_id: Some(id.clone()),
        }
    }

    /// Re-parents this span onto a caller in another process (parent-based
    /// sampling: the caller's decision is followed).
    pub(crate) fn set_remote_parent(&mut self, remote: &SpanContext) {
        self.trace_id = remote.trace_id();
        self.parent_span_id = remote.span_id();
        self.parent_is_remote = true;
        self.trace_state = remote.trace_state().clone();
        self.sampled = remote.is_sampled();
    }

    /// Keeps captured content for the details event.
    pub(crate) fn add_captured(&mut self, kv: KeyValue) {
        if self.captured.len() < MAX_ATTRIBUTES {
            self.captured.push(kv);
        }
    }

    /// Records the gap before an output chunk of a stream.
    pub(crate) fn add_chunk_gap(&mut self, seconds: f64) {
        if self.chunk_gaps.len() < MAX_CHUNK_GAPS {
            self.chunk_gaps.push(seconds);
        }
    }

    /// Replaces the exported span name.
    pub(crate) fn set_name(&mut self, name: Cow<'static, str>) {
        self.name = name;
    }

    /// Whether the status is already ERROR (the first failure recorded wins).
    pub(crate) fn has_error(&self) -> bool {
        self.status_code == StatusCode::Error
    }

    /// Marks the span failed with `error.type` and a status description.
    pub(crate) fn set_error(&mut self, error_type: Cow<'static, str>, message: String) {
        self.set_attribute(Key::from_static_str(sc::ERROR_TYPE), Value::String(error_type.into()));
        self.status_code = StatusCode::Error;
        self.status_message = Some(message);
    }

    fn record_field(&mut self, field: &Field, value: FieldValue<'_>) {
        match (field.name(), value) {
            (sc::OTEL_NAME, v) => self.name = Cow::Owned(v.into_string()),
            (sc::OTEL_KIND, v) => {
                let kind = match v {
                    FieldValue::Str(text) => parse_kind(text),
                    other => parse_kind(&other.into_string()),
                };
                if let Some(kind) = kind {
                    self.kind = kind;
                }
            }
            (sc::OTEL_STATUS_CODE, v) => {
                self.status_code = match v.into_string().to_ascii_uppercase().as_str() {
                    "OK" => StatusCode::Ok,
                    "ERROR" => StatusCode::Error,
                    _ => StatusCode::Unset,
                }
            }
            (sc::OTEL_STATUS_MESSAGE, v) => self.status_message = Some(v.into_string()),
            (sc::OBSERVRA_FUNCTION_METRICS, _) => self.wants_function_metrics = true,
            (name, v) => self.set_attribute(Key::from_static_str(name), v.into_value()),
        }
    }

    fn into_span_data(self, end: SystemTime) -> SpanData {
        let status = match self.status_code {
            StatusCode::Unset => Status::Unset,
            StatusCode::Ok => Status::Ok,
            StatusCode::Error => Status::error(self.status_message.unwrap_or_default()),
        };
        let mut events = SpanEvents::default();
        events.events = self.events;
        events.dropped_count = self.dropped_events;
        let mut links = SpanLinks::default();
        links.links = self.links;
        SpanData {
            span_context: SpanContext::new(self.trace_id, self.span_id, TraceFlags::SAMPLED, false, self.trace_state),
            parent_span_id: self.parent_span_id,
            parent_span_is_remote: self.parent_is_remote,
            span_kind: self.kind,
            name: self.name,
            start_time: self.start,
            end_time: end,
            attributes: self.attributes,
            dropped_attributes_count: self.dropped_attributes,
            events,
            links,
            status,
            instrumentation_scope: self.pipeline.scope.clone(),
        }
    }
}

fn parse_kind(s: &str) -> Option<SpanKind> {
    let is = |k: &str| s.eq_ignore_ascii_case(k);
    match () {
        _ if is("client") => Some(SpanKind::Client),
        _ if is("server") => Some(SpanKind::Server),
        _ if is("producer") => Some(SpanKind::Producer),
        _ if is("consumer") => Some(SpanKind::Consumer),
        _ if is("internal") => Some(SpanKind::Internal),
        _ => None,
    }
}

/// One field value as `tracing` delivered it.
enum FieldValue<'a> {
    Str(&'a str),
    Owned(String),
    I64(i64),
    F64(f64),
    Bool(bool),
}

impl FieldValue<'_> {
    fn into_string(self) -> String {
        match self {
            FieldValue::Str(s) => s.to_string(),
            FieldValue::Owned(s) => s,
            FieldValue::I64(i) => i.to_string(),
            FieldValue::F64(f) => f.to_string(),
            FieldValue::Bool(b) => b.to_string(),
        }
    }
    fn into_value(self) -> Value {
        match self {
            FieldValue::Str(s) => Value::String(shared_str(s)),
            FieldValue::Owned(s) => Value::String(std::sync::Arc::<str>::from(s).into()),
            FieldValue::I64(i) => Value::I64(i),
            FieldValue::F64(f) => Value::F64(f),
            FieldValue::Bool(b) => Value::Bool(b),
        }
    }
}

/// Values the GenAI macros record on every span: kept static, so recording
/// and cloning them (into metric attributes) allocates nothing.
const COMMON_VALUES: &[&str] = &[
    sc::operation::CHAT,
    sc::operation::TEXT_COMPLETION,
    sc::operation::GENERATE_CONTENT,
    sc::operation::EMBEDDINGS,
    sc::operation::EXECUTE_TOOL,
    sc::operation::INVOKE_AGENT,
    sc::operation::INVOKE_WORKFLOW,
    "openai",
    "anthropic",
    "aws.bedrock",
    "azure.ai.openai",
    "azure.ai.inference",
    "gcp.gemini",
    "gcp.vertex_ai",
    "gcp.gen_ai",
    "mistral_ai",
    "cohere",
    "groq",
    "deepseek",
    "perplexity",
    "x_ai",
    "ibm.watsonx.ai",
    "ollama",
    "function",
    "extension",
    "datastore",
    "client",
    "server",
    "internal",
    "producer",
    "consumer",
];

/// A field's string as an attribute value: static when it is a common
/// one, else shared (one allocation; clones are free).
fn shared_str(s: &str) -> opentelemetry::StringValue {
    match COMMON_VALUES.iter().find(|c| **c == s) {
        Some(c) => (*c).into(),
        None => std::sync::Arc::<str>::from(s).into(),
    }
}

/// Feeds `tracing` field values to a sink of `(field, value)`.
struct Visitor<F: FnMut(&Field, FieldValue<'_>)>(F);

impl<F: FnMut(&Field, FieldValue<'_>)> Visit for Visitor<F> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        (self.0)(field, FieldValue::F64(value))
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        (self.0)(field, FieldValue::I64(value))
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(v) => (self.0)(field, FieldValue::I64(v)),
            Err(_) => (self.0)(field, FieldValue::Owned(value.to_string())),
        }
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        match i64::try_from(value) {
            Ok(v) => (self.0)(field, FieldValue::I64(v)),
            Err(_) => (self.0)(field, FieldValue::Owned(value.to_string())),
        }
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        match i64::try_from(value) {
            Ok(v) => (self.0)(field, FieldValue::I64(v)),
            Err(_) => (self.0)(field, FieldValue::Owned(value.to_string())),
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        (self.0)(field, FieldValue::Bool(value))
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        (self.0)(field, FieldValue::Str(value))
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        (self.0)(field, FieldValue::Owned(value.to_string()))
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        (self.0)(field, FieldValue::Owned(format!("{value:?}")))
    }
}

/// A `tracing` event as a span event: the message is its name, the other
/// fields its attributes, plus its level and target.
fn span_event(event: &TracingEvent<'_>) -> Event {
    let meta = event.metadata();
    let mut name: Option<String> = None;
    let mut attributes = Vec::with_capacity(meta.fields().len() + 2);
    event.record(&mut Visitor(|f: &Field, v: FieldValue<'_>| {
        if f.name() == sc::MESSAGE {
            name = Some(v.into_string());
        } else {
            attributes.push(KeyValue::new(Key::from_static_str(f.name()), v.into_value()));
        }
    }));
    attributes.push(KeyValue::new(sc::EVENT_LEVEL, meta.level().as_str()));
    attributes.push(KeyValue::new(sc::EVENT_TARGET, meta.target().to_string()));
    let name = name.map(Cow::Owned).unwrap_or(Cow::Borrowed(meta.name()));
    Event::new(name, SystemTime::now(), attributes, 0)
}

/// Gives the runtime's macro helpers access to a span's record through the
/// dispatcher, whatever the concrete subscriber type is.
pub(crate) struct RecordAccess(AccessFn, AccessFn);

/// Finds a span's record (or, for the second, the records of the span and
/// every span above it) through a dispatcher and runs a closure on it.
type AccessFn = fn(&Dispatch, &Id, &mut dyn FnMut(&mut SpanRecord));

fn access_scope<S>(dispatch: &Dispatch, id: &Id, f: &mut dyn FnMut(&mut SpanRecord))
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(subscriber) = dispatch.downcast_ref::<S>() else { return };
    let Some(span) = subscriber.span(id) else { return };
    for s in span.scope() {
        let mut ext = s.extensions_mut();
        if let Some(record) = ext.get_mut::<SpanRecord>() {
            f(record);
        }
    }
}

/// Adds a model call of the dedicated path to the totals of the agents and
/// workflows from the span `id` upwards, with their budget checks.
pub(crate) fn contribute(
    id: &Id,
    contribution: &Contribution,
    acc: &accounting::Accounting,
    trace_id: TraceId,
    deferred: &mut Deferred,
) {
    tracing::dispatcher::get_default(|dispatch| {
        if let Some(access) = dispatch.downcast_ref::<RecordAccess>() {
            (access.1)(dispatch, id, &mut |record| add_to_totals(record, contribution, acc, trace_id, deferred));
        }
    });
}

/// Adds what a closing span contributes to one ancestor's totals (when it
/// keeps any), and checks an agent's budget.
fn add_to_totals(
    parent: &mut SpanRecord,
    contribution: &Contribution,
    acc: &accounting::Accounting,
    trace_id: TraceId,
    deferred: &mut Deferred,
) {
    let is_agent = parent.attr_str(sc::GEN_AI_OPERATION_NAME) == Some(sc::operation::INVOKE_AGENT);
    // Only an agent's budget check names it.
    let agent = if is_agent { parent.attr_str(sc::GEN_AI_AGENT_NAME).map(str::to_string) } else { None };
    if let Some(totals) = parent.totals.as_mut() {
        totals.add(contribution);
        if is_agent {
            accounting::check_agent_budget(
                acc,
                totals,
                agent.as_deref(),
                trace_id,
                contribution.model.as_deref(),
                deferred,
            );
        }
    }
}

fn access_record<S>(dispatch: &Dispatch, id: &Id, f: &mut dyn FnMut(&mut SpanRecord))
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(subscriber) = dispatch.downcast_ref::<S>() else { return };
    let Some(span) = subscriber.span(id) else { return };
    let mut ext = span.extensions_mut();
    if let Some(record) = ext.get_mut::<SpanRecord>() {
        f(record);
    }
}

/// Runs `f` on the record of `span`, if observra is recording it.
pub(crate) fn with_record(span: &tracing::Span, f: impl FnOnce(&mut SpanRecord)) {
    let mut f = Some(f);
    span.with_subscriber(|(id, dispatch)| {
        if let Some(access) = dispatch.downcast_ref::<RecordAccess>() {
            (access.0)(dispatch, id, &mut |record| {
                if let Some(f) = f.take() {
                    f(record)
                }
            });
        }
    });
}

/// Whether the current default dispatcher includes observra's layer.
pub(crate) fn dispatcher_has_layer(dispatch: &Dispatch) -> bool {
    dispatch.downcast_ref::<RecordAccess>().is_some()
}

/// The observra `tracing` layer. Add it to your own registry with
/// [`crate::layer()`]; [`crate::Builder::install`] adds it for you when you
/// have no subscriber.
pub struct ObservraLayer<S> {
    access: RecordAccess,
    /// True only in the subscriber `install()` builds, where observra is the
    /// sole consumer: then nothing is recorded at all while no pipeline is
    /// active. In a user's subscriber other layers may want the spans.
    gate: bool,
    _subscriber: PhantomData<fn(S)>,
}

impl<S> std::fmt::Debug for ObservraLayer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObservraLayer")
    }
}

impl<S> ObservraLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    pub(crate) fn new() -> Self {
        ObservraLayer {
            access: RecordAccess(access_record::<S>, access_scope::<S>),
            gate: false,
            _subscriber: PhantomData,
        }
    }

    /// The layer for the subscriber `install()` owns.
    pub(crate) fn gated() -> Self {
        ObservraLayer { gate: true, ..Self::new() }
    }
}

impl<S> Layer<S> for ObservraLayer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        if self.gate {
            // Asked again on every call, so that shutdown turns recording off.
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::always()
        }
    }

    fn enabled(&self, _: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        !self.gate || crate::ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !crate::ACTIVE.load(std::sync::atomic::Ordering::Acquire) || suppressed() {
            return;
        }
        let Some(pipeline) = pipeline::current() else { return };
        let Some(span) = ctx.span(id) else { return };
        // A model call of the dedicated path running here is the parent;
        // else the nearest ancestor observra records gives the trace and the
        // sampling decision.
        let in_call = if self.gate && attrs.is_contextual() { crate::fast::innermost_call() } else { None };
        let parent = in_call.or_else(|| {
            span.scope().skip(1).find_map(|p| p.extensions().get::<SpanRecord>().map(|r| r.fast_ctx(&p.id())))
        });
        let meta = attrs.metadata();
        let mut record = SpanRecord {
            trace_id: TraceId::INVALID,
            span_id: pipeline.ids.new_span_id(),
            parent_span_id: SpanId::INVALID,
            parent_is_remote: false,
            trace_state: TraceState::default(),
            sampled: false,
            name: Cow::Borrowed(meta.name()),
            kind: SpanKind::Internal,
            start: SystemTime::now(),
            // GenAI spans gain a few attributes after creation (model, usage,
            // cost): room for them up front saves reallocations.
            attributes: Vec::with_capacity(
                meta.fields().len() + if meta.fields().field(sc::GEN_AI_OPERATION_NAME).is_some() { 6 } else { 0 },
            ),
            dropped_attributes: 0,
            events: Vec::new(),
            dropped_events: 0,
            links: Vec::new(),
            status_code: StatusCode::Unset,
            status_message: None,
            genai: false,
            conversation_id: None,
            totals: None,
            captured: Vec::new(),
            chunk_gaps: Vec::new(),
            function_metrics: None,
            wants_function_metrics: false,
            active_labels: None,
            agent: None,
            keeper: false,
            pipeline,
        };
        attrs.record(&mut Visitor(|f: &Field, v: FieldValue<'_>| record.record_field(f, v)));
        let mut parent_agent = None;
        match parent {
            Some(parent) => {
                record.trace_id = parent.trace_id;
                record.trace_state = parent.trace_state;
                record.parent_span_id = parent.span_id;
                record.sampled = parent.sampled;
                if record.conversation_id.is_none() {
                    record.conversation_id = parent.conversation_id;
                }
                parent_agent = parent.agent;
                record.keeper = parent.keeper;
            }
            None => {
                record.trace_id = record.pipeline.ids.new_trace_id();
                let result = record.pipeline.sampler.should_sample(
                    None,
                    record.trace_id,
                    &record.name,
                    &record.kind,
                    &record.attributes,
                    &[],
                );
                record.sampled = result.decision == SamplingDecision::RecordAndSample;
            }
        }
        record.keeper |= record.totals.is_some();
        record.agent = match record.attr_value(sc::GEN_AI_AGENT_NAME) {
            Some(Value::String(name))
                if record.attr_str(sc::GEN_AI_OPERATION_NAME) == Some(sc::operation::INVOKE_AGENT) =>
            {
                Some(name.clone())
            }
            _ => parent_agent,
        };
        if record.wants_function_metrics {
            record.function_metrics = Some((meta.name(), meta.target()));
        }
        if record.genai && record.attr_str(sc::GEN_AI_OPERATION_NAME) == Some(sc::operation::INVOKE_AGENT) {
            let agent = record.attr_str(sc::GEN_AI_AGENT_NAME).map(str::to_string);
            record.active_labels = accounting::agent_started(&record.pipeline.accounting, agent.as_deref());
        }
        span.extensions_mut().insert(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(record) = ext.get_mut::<SpanRecord>() {
            // GenAI spans are recorded even when sampled out: their metrics count every call.
            if record.sampled || record.genai {
                values.record(&mut Visitor(|f: &Field, v: FieldValue<'_>| record.record_field(f, v)));
            }
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        let Some(other) = ctx.span(follows) else { return };
        let target = other.extensions().get::<SpanRecord>().map(|r| (r.trace_id, r.span_id));
        let (Some((trace_id, span_id)), Some(span)) = (target, ctx.span(id)) else { return };
        let mut ext = span.extensions_mut();
        if let Some(record) = ext.get_mut::<SpanRecord>() {
            if record.links.len() < MAX_LINKS {
                let cx = SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, false, TraceState::default());
                record.links.push(Link::with_context(cx));
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.gate {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let fast_ctx = span.extensions().get::<SpanRecord>().map(|r| r.fast_ctx(id));
        if let Some(c) = fast_ctx {
            crate::fast::push_tracing(c);
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        if self.gate {
            crate::fast::pop_tracing(id);
        }
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        if suppressed() {
            return;
        }
        // Inside a model call of the dedicated path: the event is the call's.
        if self.gate && event.is_contextual() {
            if let Some(sampled) = crate::fast::innermost_call_sampled() {
                if sampled {
                    crate::fast::add_event_to_innermost(span_event(event));
                }
                return;
            }
        }
        let Some(span) = ctx.event_span(event) else { return };
        let mut ext = span.extensions_mut();
        let Some(record) = ext.get_mut::<SpanRecord>() else { return };
        if !record.sampled {
            return;
        }
        record.add_event(span_event(event));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(mut record) = span.extensions_mut().remove::<SpanRecord>() else { return };
        if !record.sampled && !record.genai && record.function_metrics.is_none() {
            return;
        }
        let end = SystemTime::now();
        let pipeline = record.pipeline.clone();
        let mut deferred = Deferred::default();
        let duration = end.duration_since(record.start).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let failed = record.status_code == StatusCode::Error;
        if let Some((function, module)) = record.function_metrics {
            accounting::function_metrics(&pipeline.accounting, function, module, failed, duration);
        }
        if let Some(labels) = record.active_labels.take() {
            accounting::agent_ended(&pipeline.accounting, &labels);
        }
        if record.genai {
            let trace_id = record.trace_id;
            let gaps = std::mem::take(&mut record.chunk_gaps);
            let agent = record.agent.clone();
            let closing = accounting::Closing { duration_s: duration, trace_id, agent: agent.as_ref(), failed };
            let contribution: Contribution =
                accounting::on_close(&pipeline.accounting, &mut record.attributes, &closing, &gaps, &mut deferred);
            // A conversation id set on an agent reaches the GenAI spans beneath it.
            if let Some(cid) = record.conversation_id.clone() {
                if !record.attributes.iter().any(|kv| kv.key.as_str() == sc::GEN_AI_CONVERSATION_ID) {
                    record.set_attribute(Key::from_static_str(sc::GEN_AI_CONVERSATION_ID), cid);
                }
            }
            if let Some(totals) = record.totals {
                for kv in totals.to_attributes() {
                    record.set_attribute(kv.key, kv.value);
                }
            }
            if !record.captured.is_empty() {
                let captured = std::mem::take(&mut record.captured);
                record.add_event(Event::new(sc::GEN_AI_DETAILS_EVENT, end, captured, 0));
            }
            if !contribution.is_empty() {
                for ancestor in span.scope().skip(1) {
                    let mut ext = ancestor.extensions_mut();
                    if let Some(parent) = ext.get_mut::<SpanRecord>() {
                        add_to_totals(parent, &contribution, &pipeline.accounting, trace_id, &mut deferred);
                    }
                }
            }
        }
        if record.sampled {
            pipeline.submit(record.into_span_data(end));
        }
        drop(span);
        accounting::emit(&pipeline.accounting, deferred);
    }

    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == TypeId::of::<RecordAccess>() {
            Some(&self.access as *const RecordAccess as *const ())
        } else {
            None
        }
    }
}
