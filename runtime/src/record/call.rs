//! A macro's call on the frame path: no `tracing` span is made.
//!
//! When observra owns the `tracing` subscriber (the one
//! [`crate::Builder::install`] sets), a call of any instrumented function
//! (`#[traced]`, `#[agent]`, `#[workflow]`, `#[tool_call]`, `#[llm_call]`)
//! takes the ids and the start time into a [`Frame`] that points at the
//! call site's static description ([`Site`]), keeps it on the thread's
//! context stack while the body runs (so `tracing` spans and events inside
//! it nest under it; [`super::guard`] enters it, as it does a `tracing`
//! span), and hands it to [`super::close`] when it ends.
//! `tracing::Span::current()` inside the body is the enclosing span.
//! Functions that need a `tracing` span of their own (`response = manual`,
//! `stream`), content capture, any subscriber observra does not own, and
//! [`crate::Builder::fast_path`]`(false)` (`OBSERVRA_FAST_PATH=false`) use
//! the `tracing` path, whose layer records into the same [`Frame`].

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use opentelemetry::StringValue;
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};

use super::{close, innermost, push_frame, take_frame, with_entered};
use crate::base::frame::{Frame, Site};
use crate::base::state::{FRAME_PATH, with_installed};

/// Whether the current `tracing` dispatcher is the subscriber observra built.
fn own_subscriber() -> bool {
    tracing::dispatcher::get_default(|d| d.is::<super::current::OwnSubscriber>())
}

/// A call may take the frame path: the checks passed. Finish with
/// [`FrameStart::start`] or [`FrameStart::start_with_model`].
#[derive(Debug)]
pub struct FrameStart {
    site: &'static Site,
}

/// Whether this call of `site` takes the frame path: observra owns the
/// subscriber, the path is on and this is not an exporter's thread.
#[inline]
pub fn begin(site: &'static Site) -> Option<FrameStart> {
    if !FRAME_PATH.load(Ordering::Relaxed) || crate::base::state::suppressed() || !own_subscriber() {
        return None;
    }
    Some(FrameStart { site })
}

impl FrameStart {
    /// Starts the call (the site's model is a literal).
    #[inline]
    pub fn start(self) -> FrameSpan {
        FrameSpan::open(self.site, None)
    }

    /// Starts the call with the request model it was given.
    #[inline]
    pub fn start_with_model(self, model: &str) -> FrameSpan {
        FrameSpan::open(self.site, Some(StringValue::from(Arc::<str>::from(model))))
    }
}

/// A call in progress on the frame path. Ends (and is queued) when dropped.
pub struct FrameSpan {
    /// The frame while the call is not entered; entered, it is on the
    /// thread's stack. Boxed (`frame::recycled::blank_box`), so it moves
    /// there and back as a pointer.
    frame: RefCell<Option<Box<Frame>>>,
    span_id: SpanId,
}

impl std::fmt::Debug for FrameSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSpan").field("span_id", &self.span_id).finish()
    }
}

impl FrameSpan {
    /// A call that records nothing.
    pub(super) fn none() -> Self {
        FrameSpan { frame: RefCell::new(None), span_id: SpanId::INVALID }
    }

    fn open(site: &'static Site, model: Option<StringValue>) -> Self {
        let parent = innermost();
        let opened = with_installed(|generation, p| {
            let mut frame = crate::base::frame::recycled::blank_box();
            frame.open_in(&p.ids, generation, parent, |trace_id| {
                let result = p.sampler.should_sample(None, trace_id, site.name, &site.kind, &[], &[]);
                result.decision == SamplingDecision::RecordAndSample
            });
            frame.site = Some(site);
            frame.operation = site.operation;
            if let Some(model) = model {
                frame.more().model = Some(model);
            }
            if let Some(function) = site.function {
                frame.more().function_metrics = Some(function);
            }
            if let Some(operation) = site.operation {
                super::opened_as(&mut frame, operation, p);
            }
            frame
        });
        match opened {
            Some(frame) => FrameSpan { span_id: frame.ctx.span_id, frame: RefCell::new(Some(frame)) },
            None => FrameSpan::none(),
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

    /// Makes the call the innermost span of this thread until the guard drops.
    pub(super) fn enter(&self) -> Entered<'_> {
        if let Ok(mut local) = self.frame.try_borrow_mut() {
            if let Some(frame) = local.take() {
                // Not on the stack (re-entrant or torn down): it stays here.
                *local = push_frame(frame);
            }
        }
        Entered(self)
    }

    /// Takes the call off this thread's stack, if it is there.
    fn exit(&self) {
        if self.is_disabled() || self.frame.try_borrow().map_or(true, |f| f.is_some()) {
            return;
        }
        if let Some(frame) = take_frame(self.span_id) {
            match self.frame.try_borrow_mut() {
                Ok(mut local) => *local = Some(frame),
                // Cannot happen (nothing else borrows it now); never lose the call.
                Err(_) => close(frame),
            }
        }
    }
}

impl Drop for FrameSpan {
    fn drop(&mut self) {
        self.exit();
        let frame = self.frame.get_mut().take();
        if let Some(frame) = frame {
            close(frame);
        }
    }
}

/// The call entered on this thread ([`FrameSpan::enter`]): takes it off
/// the thread's stack when dropped.
pub struct Entered<'a>(&'a FrameSpan);

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.exit();
    }
}
