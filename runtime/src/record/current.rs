//! `tracing::Span::current()` inside a call on the frame path, for the
//! subscriber observra installs ([`FrameAware`]).
//!
//! A call on the frame path has no `tracing` span, so, left alone,
//! `Span::current()` in its body is the enclosing `tracing` span, and the
//! idioms built on it (`tracing::Instrument::in_current_span()`,
//! `.instrument(Span::current())`, a library capturing the current span to
//! hand it to a task) would carry work out of the call's trace. Here the
//! subscriber answers `current_span()` with an id that stands for the
//! innermost frame (or a context carried into a future): made only when
//! someone asks, so a call that never asks costs what it did. Entering that
//! id, on any thread or task, puts the frame's context on that thread's
//! stack, so what runs inside is the call's child; a span opened with it as
//! the explicit parent is the call's child too, and `Span::record` of the
//! GenAI fields a library records on a span it adopts ([`FIELDS`]), or of
//! a field the function declares (its literal attributes and recorded
//! parameters, [`site_meta`]), lands on the frame.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use opentelemetry::trace::SpanId;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_core::LevelFilter;
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::span::Current;

use super::layer::{FilteredRegistry, ObservraLayer};
use crate::base::frame::{Ctx, Site};
use crate::record;

/// The `tracing` subscriber `install()` sets when there is none: observra
/// is its only consumer, which is what lets the macros take the frame
/// path; wrapped so that `tracing::Span::current()` stands for a running
/// frame.
pub(crate) type OwnSubscriber =
    FrameAware<tracing_subscriber::layer::Layered<ObservraLayer<FilteredRegistry>, FilteredRegistry>>;

/// The top bit marks an id that stands for a frame. The registry's own ids
/// may have it too (a slot reused very often): those are not in [`HANDED`]
/// and go to the registry as before.
const FRAME_BIT: u64 = 1 << 63;
/// At most this many frame ids are handed out at once; beyond it, ids
/// nobody holds are forgotten first, and `Span::current()` falls back to
/// the enclosing `tracing` span if every one is held.
const MAX_HANDED: usize = 4096;

/// A frame id handed out, with how many `Span`s hold it.
struct Handed {
    ctx: Ctx,
    refs: usize,
}

static HANDED: Mutex<Option<HashMap<u64, Handed>>> = Mutex::new(None);

fn handed<R>(f: impl FnOnce(&mut HashMap<u64, Handed>) -> R) -> R {
    let mut map = HANDED.lock().unwrap_or_else(PoisonError::into_inner);
    f(map.get_or_insert_with(HashMap::new))
}

fn frame_id(span_id: SpanId) -> u64 {
    u64::from_be_bytes(span_id.to_bytes()) | FRAME_BIT
}

/// An id for `ctx` (the same id each time it is asked for), unless too many
/// are held.
fn hand_out(ctx: Ctx) -> Option<Id> {
    let id = frame_id(ctx.span_id);
    handed(|map| {
        if !map.contains_key(&id) {
            if map.len() >= MAX_HANDED {
                map.retain(|_, h| h.refs > 0);
            }
            if map.len() >= MAX_HANDED {
                return None;
            }
            map.insert(id, Handed { ctx, refs: 0 });
        }
        Some(Id::from_u64(id))
    })
}

/// The context an id stands for, if it is a frame id handed out.
fn ctx_of(id: &Id) -> Option<Ctx> {
    if id.into_u64() & FRAME_BIT == 0 {
        return None;
    }
    handed(|map| map.get(&id.into_u64()).map(|h| h.ctx.clone()))
}

/// The call site of every frame id's metadata.
struct FrameCallsite;

impl Callsite for FrameCallsite {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        &FRAME_META
    }
}

static FRAME_CALLSITE: FrameCallsite = FrameCallsite;

/// The fields `Span::record` may set on a frame id's span: what libraries
/// record on a span they adopt as their agent's or tool's (rig does), in
/// the conventions' names and the older ones observra maps.
const FIELDS: &[&str] = &[
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.tool_use_prompt_tokens",
    "gen_ai.usage.reasoning_tokens",
    "gen_ai.response.id",
    "gen_ai.response.model",
    "gen_ai.response.finish_reasons",
    "gen_ai.conversation.id",
    "gen_ai.agent.name",
    "gen_ai.agent.id",
    "gen_ai.agent.description",
    "gen_ai.tool.name",
    "gen_ai.tool.call.id",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "error.type",
    "otel.status_code",
    "otel.status_message",
];

/// What a frame id's `Span` says of itself: a span of observra's, whose
/// fields are [`FIELDS`].
static FRAME_META: Metadata<'static> = Metadata::new(
    "observra.frame",
    "observra",
    tracing::Level::ERROR,
    None,
    None,
    None,
    FieldSet::new(FIELDS, Identifier(&FRAME_CALLSITE)),
    Kind::SPAN,
);

/// What `Span::current()` says of itself inside a call of `site`: the
/// [`FIELDS`], the site's literal attributes and the parameters it
/// records, so `Span::current().record(..)` of any of them lands on the
/// call, as it does on the `tracing` path's span. Made once per site (a
/// site is a `static` of the macros, so these are bounded by the program).
fn site_meta(site: &'static Site) -> &'static Metadata<'static> {
    site.meta.0.get_or_init(|| {
        let mut names: Vec<&'static str> = FIELDS.to_vec();
        for name in site.attrs.iter().map(|(k, _)| *k).chain(site.fields.iter().copied()) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let names: &'static [&'static str] = Box::leak(names.into_boxed_slice());
        let fields = FieldSet::new(names, Identifier(&FRAME_CALLSITE));
        Box::leak(Box::new(Metadata::new(
            FRAME_META.name(),
            "observra",
            tracing::Level::ERROR,
            None,
            None,
            None,
            fields,
            Kind::SPAN,
        )))
    })
}

/// The subscriber observra installs: its registry and layer, and an answer
/// to `current_span()` inside a call on the frame path (see the module).
pub(crate) struct FrameAware<S> {
    inner: S,
}

impl<S> FrameAware<S> {
    pub(crate) fn new(inner: S) -> Self {
        FrameAware { inner }
    }
}

/// Runs `f` with `ctx` as the innermost context on this thread.
fn within<R>(ctx: Ctx, f: impl FnOnce() -> R) -> R {
    let span_id = ctx.span_id;
    record::push_carried(ctx);
    let r = f();
    record::pop_carried(span_id);
    r
}

impl<S: Subscriber> Subscriber for FrameAware<S> {
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber)
    }
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }
    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        match span.parent().and_then(ctx_of) {
            // A child of the call: opened with the call's context innermost.
            Some(ctx) => within(ctx, || self.inner.new_span(&Attributes::new(span.metadata(), span.values()))),
            None => self.inner.new_span(span),
        }
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        match ctx_of(span) {
            // On the frame, when it is entered on this thread.
            Some(ctx) => {
                record::with_entered(ctx.span_id, |frame| super::layer::record_values(frame, &FRAME_META, values))
            }
            None => self.inner.record(span, values),
        }
    }
    fn record_follows_from(&self, span: &Id, follows: &Id) {
        if ctx_of(span).is_none() && ctx_of(follows).is_none() {
            self.inner.record_follows_from(span, follows)
        }
    }
    fn event_enabled(&self, event: &Event<'_>) -> bool {
        self.inner.event_enabled(event)
    }
    fn event(&self, event: &Event<'_>) {
        // An event whose explicit parent is a frame id finds no span of the
        // registry's: the other layers see it with no span (a frame takes
        // only the events made inside it, on its thread).
        self.inner.event(event)
    }
    fn enter(&self, span: &Id) {
        match ctx_of(span) {
            Some(ctx) => record::push_carried(ctx),
            None => self.inner.enter(span),
        }
    }
    fn exit(&self, span: &Id) {
        match ctx_of(span) {
            Some(ctx) => record::pop_carried(ctx.span_id),
            None => self.inner.exit(span),
        }
    }
    fn clone_span(&self, id: &Id) -> Id {
        if id.into_u64() & FRAME_BIT != 0 {
            let held = handed(|map| map.get_mut(&id.into_u64()).map(|h| h.refs += 1).is_some());
            if held {
                return id.clone();
            }
        }
        self.inner.clone_span(id)
    }
    fn try_close(&self, id: Id) -> bool {
        if id.into_u64() & FRAME_BIT != 0 {
            let held = handed(|map| map.get_mut(&id.into_u64()).map(|h| h.refs = h.refs.saturating_sub(1)).is_some());
            if held {
                return false;
            }
        }
        self.inner.try_close(id)
    }
    fn current_span(&self) -> Current {
        match record::innermost_frame().and_then(hand_out) {
            Some(id) => Current::new(id, record::innermost_site().map_or(&FRAME_META, site_meta)),
            None => self.inner.current_span(),
        }
    }
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else {
            // SAFETY: the inner subscriber answers for its own types.
            unsafe { self.inner.downcast_raw(id) }
        }
    }
}
