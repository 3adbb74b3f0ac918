//! Carrying the current span into a future that runs elsewhere
//! (`tokio::spawn(fut.in_current_span())`): [`crate::Instrument`].
//!
//! A call on the frame path has no `tracing` span, so `tracing`'s own
//! `Instrument` cannot carry it. This wrapper carries both: the `tracing`
//! span (entered on every poll, for the user's own layers) and observra's
//! context (pushed on the thread's context stack for every poll), so spans
//! opened inside the future are children of the span it was made in,
//! whichever path recorded that span.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::span_ref::SpanRef;
use super::{Ctx, innermost, pop_carried, push_carried};

pin_project_lite::pin_project! {
    /// A future carrying a span's context into every poll. Made by
    /// [`crate::Instrument`].
    #[derive(Debug)]
    pub struct Carried<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
        ctx: Option<CtxBox>,
    }
}

/// The carried context (opaque to `Debug`).
struct CtxBox(Ctx);

impl std::fmt::Debug for CtxBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ctx")
    }
}

impl<F: Future> Future for Carried<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _enter = this.span.enter();
        let Some(CtxBox(ctx)) = this.ctx.as_ref() else {
            return this.inner.poll(cx);
        };
        let span_id = ctx.span_id;
        push_carried(ctx.clone());
        // Popped even when the poll unwinds.
        struct Pop(opentelemetry::trace::SpanId);
        impl Drop for Pop {
            fn drop(&mut self) {
                pop_carried(self.0);
            }
        }
        let _pop = Pop(span_id);
        this.inner.poll(cx)
    }
}

/// Attaches a span to a future, whichever path records the span.
///
/// ```no_run
/// use observra::Instrument;
///
/// #[observra::traced]
/// async fn leaf() {}
///
/// #[observra::traced]
/// async fn root() {
///     // The spawned leaf is a child of `root`.
///     let _ = tokio::spawn(leaf().in_current_span()).await;
/// }
/// ```
pub trait Instrument: Sized {
    /// Carries the current span (observra's or `tracing`'s) into this future.
    fn in_current_span(self) -> Carried<Self> {
        let ctx = innermost().map(CtxBox);
        Carried { inner: self, span: tracing::Span::current(), ctx }
    }

    /// Carries `span` into this future.
    fn instrument(self, span: impl Into<SpanRef>) -> Carried<Self> {
        let span = span.into();
        let ctx = span.frame_ctx().map(CtxBox);
        Carried { inner: self, span: span.tracing_span().clone(), ctx }
    }
}

impl<F: Future> Instrument for F {}
