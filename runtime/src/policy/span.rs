//! The one policy a span passes before any backend sees it: captured
//! content removed unless capture is on, then redaction, then the span
//! limits.

use opentelemetry_sdk::trace::SpanData;

use std::sync::Arc;

use super::limits::SpanLimits;
use crate::redact::Redactor;

/// What makes a span fit to leave, applied once per span by the collector
/// before it is handed to the backends.
#[derive(Clone)]
pub(crate) struct SpanPolicy {
    /// Whether message content may leave at all (capture is on); when not,
    /// the conventions' content attributes are removed from every span.
    pub content_allowed: bool,
    pub limits: SpanLimits,
    pub redactor: Option<Arc<Redactor>>,
}

impl SpanPolicy {
    /// Makes one span fit to leave: content removed unless capture is on,
    /// then redacted, then cut to the span limits (after redaction, so a
    /// cut can never split a secret past its pattern). False when its
    /// redaction panicked: fail closed, the span is not exported.
    pub(crate) fn apply(&self, span: &mut SpanData) -> bool {
        if !self.content_allowed {
            super::content::strip_content(span);
        }
        if let Some(r) = &self.redactor {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.span(span))).is_err() {
                return false;
            }
        }
        super::limits::apply(span, &self.limits);
        true
    }
}
