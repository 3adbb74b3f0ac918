//! The guards that keep a macro's span entered while its function runs:
//! one mechanism for both record paths. [`Call`] keeps a sync body's span
//! entered, [`Instrumented`] enters an async body's span on every poll;
//! both are generic over [`CallSpan`], which a `tracing` span and a call on
//! the frame path ([`FrameSpan`]) implement. An async function's call is
//! chosen once, before its body runs ([`choose`]: the frame path, a
//! `tracing` span, or neither), and awaited as one [`AsyncCall`].
//!
//! A panic that unwinds through a body is recorded as `error.type =
//! panic`, a future dropped before it completes as `cancelled`. The span
//! itself ends when it is dropped, after the caller recorded the result.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Span;

use super::call::{self, FrameSpan};
use super::target::{Target, fail};
use observra_semconv as sc;

/// What a macro's call records into while its function runs: its
/// `tracing` span, or its call on the frame path. Dropping it ends the span.
pub trait CallSpan: Target + Sized {
    /// Proof that the span is entered on this thread; exits it when dropped.
    type Entered<'a>
    where
        Self: 'a;
    /// Makes the span the innermost on this thread until the guard drops.
    fn enter(&self) -> Self::Entered<'_>;
    /// A span that records nothing.
    fn none() -> Self;
}

impl CallSpan for Span {
    type Entered<'a> = tracing::span::Entered<'a>;

    #[inline]
    fn enter(&self) -> Self::Entered<'_> {
        Span::enter(self)
    }

    #[inline]
    fn none() -> Self {
        Span::none()
    }
}

impl CallSpan for FrameSpan {
    type Entered<'a> = call::Entered<'a>;

    #[inline]
    fn enter(&self) -> Self::Entered<'_> {
        FrameSpan::enter(self)
    }

    #[inline]
    fn none() -> Self {
        FrameSpan::none()
    }
}

/// Marks `span` failed (`panic`, `cancelled`) unless it records nothing or
/// a failure is already recorded.
fn record_failure<T: CallSpan>(span: &T, error_type: &'static str, message: &'static str) {
    if !span.disabled() {
        fail(span, error_type, message);
    }
}

/// A span entered for a body (a sync function's, or one poll of an async
/// one): exits it when dropped, and records a panic that unwinds through it.
pub struct Call<'a, T: CallSpan + 'a> {
    span: &'a T,
    _entered: T::Entered<'a>,
}

impl<'a, T: CallSpan> Call<'a, T> {
    /// Enters `span` until the guard drops.
    #[inline]
    pub fn enter(span: &'a T) -> Self {
        Call { span, _entered: span.enter() }
    }
}

impl<T: CallSpan> Drop for Call<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Recorded while the span is still entered; the guard exits it next.
        if std::thread::panicking() {
            record_failure(self.span, sc::ERROR_PANIC, "the function panicked");
        }
    }
}

pin_project_lite::pin_project! {
    /// An async function's body with its span: entered on every poll, ended
    /// as `cancelled` if dropped before completion, `panic` if a poll panics.
    /// Resolves to the body's output and the span, so the caller can record
    /// the result before the span ends.
    pub struct Instrumented<F, T>
    where
        T: CallSpan,
    {
        #[pin]
        inner: F,
        span: Option<T>,
    }

    impl<F, T> PinnedDrop for Instrumented<F, T>
    where
        T: CallSpan,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(span) = this.span.take() {
                record_failure(&span, sc::ERROR_CANCELLED, "the future was dropped before it completed");
            }
        }
    }
}

/// Wraps an async body with its span.
#[inline]
fn instrument<F: Future, T: CallSpan>(span: T, inner: F) -> Instrumented<F, T> {
    Instrumented { inner, span: Some(span) }
}

impl<F: Future, T: CallSpan> Future for Instrumented<F, T> {
    type Output = (F::Output, T);

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(span) = this.span.as_ref() else {
            // Polled after completion: the body itself decides what that means.
            return this.inner.poll(cx).map(|out| (out, T::none()));
        };
        let call = Call::enter(span);
        let poll = this.inner.poll(cx);
        drop(call);
        match poll {
            Poll::Ready(out) => Poll::Ready((out, this.span.take().unwrap_or_else(T::none))),
            Poll::Pending => Poll::Pending,
        }
    }
}

pin_project_lite::pin_project! {
    /// An async function's call on whichever path it took, chosen before
    /// its body first runs ([`choose`]) and awaited once. The macros build
    /// it in a block that ends before the `.await`, so the future they make
    /// holds the span and the body once, not a second copy of each in the
    /// locals they were made in.
    // (pin-project-lite takes no doc comment on a variant's field.)
    #[allow(missing_docs)]
    #[project = AsyncCallProj]
    pub enum AsyncCall<F, S>
    where
        S: CallSpan,
    {
        /// On the frame path.
        Frame {
            #[pin]
            call: Instrumented<F, S>,
        },
        /// With a `tracing` span.
        Tracing {
            #[pin]
            call: Instrumented<F, Span>,
        },
        /// Not recorded.
        Plain {
            #[pin]
            body: F,
        },
    }
}

/// What an [`AsyncCall`] resolves to: the body's output, and the span to
/// record the result on before it ends.
pub enum Called<T, S> {
    /// The frame path's call.
    Frame(T, S),
    /// The `tracing` span.
    Tracing(T, Span),
    /// Not recorded.
    Plain(T),
}

/// The call on the frame path when it started (`frame`), else with the
/// `tracing` span when there is one, else plain.
#[inline]
pub fn choose<F: Future, S: CallSpan>(frame: Option<S>, span: Option<Span>, body: F) -> AsyncCall<F, S> {
    match (frame, span) {
        (Some(frame), _) => AsyncCall::Frame { call: instrument(frame, body) },
        (None, Some(span)) => AsyncCall::Tracing { call: instrument(span, body) },
        (None, None) => AsyncCall::Plain { body },
    }
}

impl<F: Future, S: CallSpan> Future for AsyncCall<F, S> {
    type Output = Called<F::Output, S>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AsyncCallProj::Frame { call } => call.poll(cx).map(|(out, span)| Called::Frame(out, span)),
            AsyncCallProj::Tracing { call } => call.poll(cx).map(|(out, span)| Called::Tracing(out, span)),
            AsyncCallProj::Plain { body } => body.poll(cx).map(Called::Plain),
        }
    }
}
