//! What a span may carry when it leaves: captured content and its modes
//! ([`content`]), the attribute, event and size limits ([`limits`]), and the
//! one policy that applies them with redaction before any backend sees a
//! span ([`span`]). The redaction engine itself ([`crate::redact`]) sits lower, beside
//! the diagnostics, because every message and error goes through it too.

pub(crate) mod content;
pub(crate) mod limits;
pub(crate) mod span;
