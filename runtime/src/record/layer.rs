//! The observra `tracing` layer: an adapter that turns `tracing` callbacks
//! into the operations of the one record path ([`crate::record`]).
//!
//! Each span gets a [`Frame`] in its registry extensions when it opens
//! (ids, parent, sampling decision, kind, name, start time, attributes),
//! in a recycled box (`frame::recycled`), so at close it goes on as a
//! pointer.
//! Fields are interpreted as OpenTelemetry data (`otel.name`, `otel.kind`,
//! `otel.status_code`, `otel.status_message`; every other field becomes a
//! typed attribute), events inside a span become span events, and at close
//! the frame goes through the same [`record::close`] as a macro's call on
//! the frame path. A hand-written `tracing` span with the same fields as a
//! macro-generated one is treated exactly the same way.

use std::any::TypeId;
use std::borrow::Cow;
use std::marker::PhantomData;
use std::time::SystemTime;

use opentelemetry::trace::{Event, Link, SpanContext, SpanKind, TraceFlags, TraceState};
use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event as TracingEvent, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::base::frame::{Frame, StatusCode, recycled};
use crate::base::state::{self, ACTIVE, suppressed};
use crate::policy::content;
use crate::record;
use observra_semconv as sc;

/// Records one `tracing` field on a span's frame.
/// Records a span's `values` into its frame (GenAI and HTTP spans even when
/// sampled out: their metrics count every call).
pub(crate) fn record_values(frame: &mut Frame, meta: &'static Metadata<'static>, values: &Record<'_>) {
    if frame.ctx.sampled || frame.in_metrics() {
        values.record(&mut Visitor(|f: &Field, v: FieldValue<'_>| record_field(frame, meta, f, v)));
    }
}

fn record_field(frame: &mut Frame, meta: &'static Metadata<'static>, field: &Field, value: FieldValue<'_>) {
    match (field.name(), value) {
        (sc::OTEL_NAME, v) => frame.set_name(Cow::Owned(v.into_string())),
        (sc::OTEL_KIND, v) => {
            let kind = match v {
                FieldValue::Str(text) => parse_kind(text),
                other => parse_kind(&other.into_string()),
            };
            if let Some(kind) = kind {
                frame.set_kind(kind);
            }
        }
        (sc::OTEL_STATUS_CODE, v) => {
            let code = match v.into_string().to_ascii_uppercase().as_str() {
                "OK" => StatusCode::Ok,
                "ERROR" => StatusCode::Error,
                _ => StatusCode::Unset,
            };
            frame.set_status(code, None);
        }
        (sc::OTEL_STATUS_MESSAGE, v) => {
            let code = frame.more.as_ref().map(|m| m.status).unwrap_or_default();
            frame.set_status(code, Some(v.into_string()));
        }
        (sc::OBSERVRA_FUNCTION_METRICS, _) => frame.more().function_metrics = Some((meta.name(), meta.target())),
        // A library's own GenAI fields, in the names it still uses.
        (name, v) if name.starts_with("gen_ai.") => {
            let (key, v) = match normalise(name, v.into_value()) {
                Normalised::As(key, v) => (key, v),
                Normalised::Kept(v) => (Key::from_static_str(name), v),
                Normalised::Failed(kind) => {
                    if !frame.has_error() {
                        frame.set_error(Cow::Borrowed(kind), String::new());
                    }
                    return;
                }
                Normalised::Dropped => return,
            };
            if content::is_content_attribute(key.as_str()) {
                // Messages a library recorded follow the content policy as
                // the macros' captured content does: dropped unless capture
                // is on, then on the span and/or the details event.
                content::record_value(frame, key, v);
            } else {
                frame.set_attribute(key, v);
            }
        }
        (name, v) => frame.set_attribute(Key::from_static_str(name), v.into_value()),
    }
}

/// What a library's non-standard or deprecated `gen_ai.*` field becomes.
enum Normalised {
    /// The conventions' attribute for it.
    As(Key, Value),
    /// A failure marker: the span failed with this `error.type`.
    Failed(&'static str),
    /// Nothing (already counted elsewhere, or no meaning in the conventions).
    Dropped,
    /// A name observra does not rewrite.
    Kept(Value),
}

/// Rewrites the `gen_ai.*` names libraries still emit into the conventions'
/// current ones, so their spans get the same treatment as observra's own
/// (rig 0.44, older OpenLLMetry-style code): renamed usage and provider
/// names, the deprecated `gen_ai.prompt`/`gen_ai.completion` as messages
/// (content, so the content policy applies), and rig's tool outcome as the
/// span's error.
fn normalise(key: &str, v: Value) -> Normalised {
    let to = |k: &'static str, v: Value| Normalised::As(Key::from_static_str(k), v);
    match key {
        "gen_ai.usage.reasoning_tokens" => to(sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, v),
        "gen_ai.usage.prompt_tokens" => to(sc::GEN_AI_USAGE_INPUT_TOKENS, v),
        "gen_ai.usage.completion_tokens" => to(sc::GEN_AI_USAGE_OUTPUT_TOKENS, v),
        "gen_ai.system" => to(sc::GEN_AI_PROVIDER_NAME, v),
        // Part of the input tokens already (Gemini's tool-use prompt).
        "gen_ai.usage.tool_use_prompt_tokens" => Normalised::Dropped,
        "gen_ai.tool.call.outcome" => match v.as_str().to_ascii_lowercase().as_str() {
            "error" | "failure" | "failed" => Normalised::Failed("tool_error"),
            _ => Normalised::Dropped,
        },
        "gen_ai.tool.error.type" => to(sc::ERROR_TYPE, v),
        "gen_ai.prompt" => to(sc::GEN_AI_INPUT_MESSAGES, as_messages(v, "user")),
        "gen_ai.completion" => to(sc::GEN_AI_OUTPUT_MESSAGES, as_messages(v, "assistant")),
        _ => Normalised::Kept(v),
    }
}

/// A deprecated prompt/completion value as the conventions' messages: kept
/// as it is when it already is a JSON array, else one text message of `role`.
fn as_messages(v: Value, role: &'static str) -> Value {
    let text = v.as_str();
    if text.trim_start().starts_with('[') {
        return Value::String(text.into_owned().into());
    }
    let json = serde_json::json!([{"role": role, "parts": [{"type": "text", "content": text}]}]);
    Value::String(json.to_string().into())
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

/// The registry under observra's own subscriber, with its level filter.
/// The MCP SDK's own spans (rmcp's session-long `serve_inner`, its
/// `streamable_http_session` and transport workers): not recorded. The MCP
/// integration records every request as the conventions say, and these
/// would each be a trace of one span the length of a session; what runs
/// inside them is the child of the nearest span observra records, and
/// their events, like their spans, are not exported.
fn transport_internals(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    target.strip_prefix("rmcp").is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

pub(crate) type FilteredRegistry =
    tracing_subscriber::layer::Layered<tracing::level_filters::LevelFilter, tracing_subscriber::Registry>;

/// Gives the runtime's macro helpers access to a span's frame through the
/// dispatcher, whatever the concrete subscriber type is.
pub(crate) struct RecordAccess(AccessFn);

/// Finds a span's frame through a dispatcher and runs a closure on it.
type AccessFn = fn(&Dispatch, &Id, &mut dyn FnMut(&mut Frame));

fn access_record<S>(dispatch: &Dispatch, id: &Id, f: &mut dyn FnMut(&mut Frame))
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(subscriber) = dispatch.downcast_ref::<S>() else { return };
    let Some(span) = subscriber.span(id) else { return };
    let mut ext = span.extensions_mut();
    if let Some(frame) = ext.get_mut::<Box<Frame>>() {
        f(frame);
    }
}

/// Runs `f` on the frame of `span`, if observra is recording it.
pub(crate) fn with_record(span: &tracing::Span, f: impl FnOnce(&mut Frame)) {
    let mut f = Some(f);
    span.with_subscriber(|(id, dispatch)| {
        if let Some(access) = dispatch.downcast_ref::<RecordAccess>() {
            (access.0)(dispatch, id, &mut |frame| {
                if let Some(f) = f.take() {
                    f(frame)
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
        ObservraLayer { access: RecordAccess(access_record::<S>), gate: false, _subscriber: PhantomData }
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
        !self.gate || ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !ACTIVE.load(std::sync::atomic::Ordering::Acquire) || suppressed() || transport_internals(attrs.metadata()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // A frame running here is the parent; else the nearest ancestor
        // observra records gives the trace and the sampling decision.
        //
        // A call on the frame path has no `tracing` span, so to a library
        // `Span::current()` looks disabled while one runs, and libraries
        // open an explicit root then (`parent: None`; rig's agent span
        // does) meaning "no span is current". It is the running frame's
        // child, as it would be the child of the same call recorded as a
        // `tracing` span. An explicit root under a current `tracing` span
        // stays a root.
        let in_frame =
            if self.gate && (attrs.is_contextual() || attrs.is_root()) { record::innermost_frame() } else { None };
        let parent = in_frame
            .or_else(|| span.scope().skip(1).find_map(|p| p.extensions().get::<Box<Frame>>().map(|f| f.ctx.clone())));
        let meta = attrs.metadata();
        let is_root = parent.is_none();
        let opened = state::with_installed(|generation, p| {
            let mut frame = recycled::blank_box();
            frame.open_in(&p.ids, generation, parent, |_| false);
            let more = frame.more();
            more.name = Some(Cow::Borrowed(meta.name()));
            // GenAI spans gain a few attributes after creation: room for them
            // up front saves reallocations.
            more.attrs.reserve(meta.fields().len());
            attrs.record(&mut Visitor(|f: &Field, v: FieldValue<'_>| record_field(&mut frame, meta, f, v)));
            if is_root {
                let trace_id = frame.ctx.trace_id;
                let more = frame.more();
                let name = more.name.clone().unwrap_or(Cow::Borrowed(meta.name()));
                let kind = more.kind.clone().unwrap_or(SpanKind::Internal);
                let result = p.sampler.should_sample(None, trace_id, &name, &kind, &more.attrs, &[]);
                frame.ctx.sampled = result.decision == SamplingDecision::RecordAndSample;
            }
            if let Some(operation) = frame.operation {
                super::opened_as(&mut frame, operation, p);
            }
            frame
        });
        if let Some(frame) = opened {
            span.extensions_mut().insert(frame);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let meta = span.metadata();
        let mut ext = span.extensions_mut();
        if let Some(frame) = ext.get_mut::<Box<Frame>>() {
            record_values(frame, meta, values);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        let Some(other) = ctx.span(follows) else { return };
        let target = other.extensions().get::<Box<Frame>>().map(|f| (f.ctx.trace_id, f.ctx.span_id));
        let (Some((trace_id, span_id)), Some(span)) = (target, ctx.span(id)) else { return };
        let mut ext = span.extensions_mut();
        if let Some(frame) = ext.get_mut::<Box<Frame>>() {
            let cx = SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, false, TraceState::default());
            frame.add_link(Link::with_context(cx));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if !self.gate {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let entered = span.extensions().get::<Box<Frame>>().map(|f| f.ctx.clone());
        if let Some(c) = entered {
            record::push_tracing(id.clone(), c);
        }
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        if self.gate {
            record::pop_tracing(id);
        }
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        if suppressed() {
            return;
        }
        // Inside a frame of the frame path: the event is the frame's.
        if self.gate && event.is_contextual() {
            if let Some(sampled) = record::innermost_frame_sampled() {
                if sampled {
                    record::add_event_to_innermost(span_event(event));
                }
                return;
            }
        }
        let Some(span) = ctx.event_span(event) else { return };
        let mut ext = span.extensions_mut();
        let Some(frame) = ext.get_mut::<Box<Frame>>() else { return };
        if !frame.ctx.sampled {
            return;
        }
        frame.add_event(span_event(event));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let frame = span.extensions_mut().remove::<Box<Frame>>();
        drop(span);
        if let Some(frame) = frame {
            record::close(frame);
        }
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
