//! [`SpanRef`]: a handle on the span the current code runs in, whichever
//! path records it (a call on the frame path has no `tracing` span).

use opentelemetry::trace::{SpanContext, SpanId, TraceId};

use super::target::{Target, set_attribute};
use crate::base::attr_value::AttributeValue;
use crate::base::frame::{Ctx, Frame};
use crate::record;

/// The span the current code runs in ([`crate::current_span`]), for
/// recording on it, propagating it, or carrying it into a spawned future
/// ([`crate::Instrument`]). It does not keep the span open.
#[derive(Clone)]
pub struct SpanRef {
    span: tracing::Span,
    /// Set for a call of the frame path (which has no `tracing` span).
    frame: Option<Ctx>,
}

impl std::fmt::Debug for SpanRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanRef").field("span", &self.span).field("frame", &self.frame.is_some()).finish()
    }
}

impl SpanRef {
    /// The innermost span on this thread.
    pub(crate) fn current() -> Self {
        match record::innermost_frame() {
            Some(ctx) => SpanRef { span: tracing::Span::none(), frame: Some(ctx) },
            None => SpanRef { span: tracing::Span::current(), frame: None },
        }
    }

    /// The `tracing` span (disabled for a call on the frame path, which
    /// has none: its `tracing` context is the enclosing span's).
    pub fn tracing_span(&self) -> &tracing::Span {
        &self.span
    }

    /// Whether observra records this span.
    pub fn is_recording(&self) -> bool {
        !self.disabled()
    }

    /// Sets a typed attribute on the span (arrays stay arrays). `None` sets nothing.
    pub fn set_attribute<T: AttributeValue + ?Sized>(&self, key: &'static str, value: &T) -> &Self {
        set_attribute(self, key, value);
        self
    }

    /// The span's trace id, to log it, link to a trace in a UI or hand it
    /// to an evaluation; `None` when observra does not record this span
    /// (outside any span, or not installed). It prints as the 32 lowercase
    /// hex digits a `traceparent` carries: `format!("{}", id)`.
    ///
    /// ```no_run
    /// #[observra::traced]
    /// fn handle() {
    ///     if let Some(id) = observra::current_span().trace_id() {
    ///         println!("trace {id}");
    ///     }
    /// }
    /// ```
    pub fn trace_id(&self) -> Option<TraceId> {
        self.span_context().map(|c| c.trace_id())
    }

    /// The span's own id (16 lowercase hex digits when printed); `None`
    /// when observra does not record this span.
    pub fn span_id(&self) -> Option<SpanId> {
        self.span_context().map(|c| c.span_id())
    }

    /// The span's context (trace id, span id, sampled flag, trace state),
    /// as propagated to other processes; `None` when observra does not
    /// record this span.
    pub fn span_context(&self) -> Option<SpanContext> {
        match &self.frame {
            Some(ctx) => Some(ctx.span_context()),
            None => {
                let mut out = None;
                super::layer::with_record(&self.span, |r| out = Some(r.ctx.span_context()));
                out
            }
        }
    }

    /// The context carried into a future, for a call on the frame path.
    pub(crate) fn frame_ctx(&self) -> Option<Ctx> {
        self.frame.clone()
    }

    /// Makes the span a child of a caller in another process.
    pub(crate) fn set_remote_parent(&self, remote: &SpanContext) {
        match &self.frame {
            Some(ctx) => record::with_entered(ctx.span_id, |f| f.set_remote_parent(remote)),
            None => {
                super::layer::with_record(&self.span, |r| r.set_remote_parent(remote));
                if let Some(id) = self.span.id() {
                    // Already entered: what runs inside follows it too.
                    record::reparent_tracing(&id, remote);
                }
            }
        }
    }
}

impl Target for SpanRef {
    fn disabled(&self) -> bool {
        self.frame.is_none() && self.span.is_disabled()
    }
    fn with_frame_dyn(&self, f: &mut dyn FnMut(&mut Frame)) {
        match &self.frame {
            Some(ctx) => record::with_entered(ctx.span_id, |frame| f(frame)),
            None => self.span.with_frame_dyn(f),
        }
    }
}

impl From<tracing::Span> for SpanRef {
    fn from(span: tracing::Span) -> Self {
        SpanRef { span, frame: None }
    }
}

impl From<&tracing::Span> for SpanRef {
    fn from(span: &tracing::Span) -> Self {
        SpanRef { span: span.clone(), frame: None }
    }
}

impl From<&SpanRef> for SpanRef {
    fn from(span: &SpanRef) -> Self {
        span.clone()
    }
}
