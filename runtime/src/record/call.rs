//! A macro's call on the frame path: no `tracing` span is made.
//!
//! When observra owns the `tracing` subscriber (the one
//! [`crate::Builder::install`] sets), a call of an instrumented function
//! takes the ids and the start time into a [`Frame`] that points at the
//! call site's static names ([`LlmSite`]), keeps it on the thread's
//! context stack while the body runs (so `tracing` spans and events inside
//! it nest under it), and hands it to [`super::close`] when it ends.
//! `tracing::Span::current()` inside the body is the enclosing span.
//! Functions that need a `tracing` span of their own (`response = manual`,
//! `stream`), content capture, any subscriber observra does not own, and
//! [`crate::Builder::fast_path`]`(false)` (`OBSERVRA_FAST_PATH=false`) use
//! the `tracing` path, whose layer records into the same [`Frame`].

use std::borrow::Cow;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use opentelemetry::StringValue;
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};

use super::{Frame, close, innermost, push_frame, take_frame, with_entered, with_pipeline};
use crate::semconv as sc;

/// Whether the installed pipeline uses the frame path (set by install,
/// cleared by shutdown).
pub(crate) static ENABLED: AtomicBool = AtomicBool::new(false);

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

/// Whether the current `tracing` dispatcher is the subscriber observra built.
fn own_subscriber() -> bool {
    tracing::dispatcher::get_default(|d| d.is::<crate::pipeline::OwnSubscriber>())
}

/// A call may take the frame path: the checks passed. Finish with
/// [`FastStart::start`] or [`FastStart::start_with_model`].
#[derive(Debug)]
pub struct FastStart {
    site: &'static LlmSite,
}

/// Whether this call of `site` takes the frame path: observra owns the
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

/// A call in progress on the frame path. Ends (and is queued) when dropped.
pub struct FastSpan {
    /// The frame while the call is not entered; entered, it is on the
    /// thread's stack.
    frame: RefCell<Option<Frame>>,
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
        let parent = innermost();
        let opened = with_pipeline(|generation, p| {
            let mut frame = Frame::open(p, generation, parent, |trace_id| {
                let name = site.name.unwrap_or(site.operation);
                let result = p.sampler.should_sample(None, trace_id, name, &SpanKind::Client, &[], &[]);
                result.decision == SamplingDecision::RecordAndSample
            });
            frame.site = Some(site);
            frame.operation = Some(site.operation);
            if let Some(model) = model {
                frame.more().model = Some(model);
            }
            frame
        });
        match opened {
            Some(frame) => FastSpan { span_id: frame.ctx.span_id, frame: RefCell::new(Some(frame)) },
            None => FastSpan::none(),
        }
    }

    /// Whether nothing is being recorded (no pipeline was installed).
    #[inline]
    pub fn is_disabled(&self) -> bool {
        self.span_id == SpanId::INVALID
    }

    /// Runs `f` on the frame, wherever it is.
    pub(crate) fn with(&self, f: impl FnOnce(&mut Frame)) {
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
        // Not on the stack (re-entrant or torn down): it stays here.
        *local = push_frame(frame);
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
    fn take_entered(&self) -> Option<Frame> {
        if self.is_disabled() || self.frame.try_borrow().map_or(true, |f| f.is_some()) {
            return None;
        }
        take_frame(self.span_id)
    }

    /// Marks the call failed (`panic`, `cancelled`) unless it already is.
    pub(crate) fn fail(&self, error_type: &'static str, message: &'static str) {
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
    /// An async call's body: the call is entered on every poll, ended as
    /// `cancelled` if dropped before completion, `panic` if a poll panics.
    /// Resolves to the body's output and the call.
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
