//! What the recording helpers act on: a `tracing` span the layer records,
//! a call on the frame path, or a handle on either ([`Target`]), and the
//! few operations every helper is built from.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::Event;
use opentelemetry::{Key, KeyValue};
use tracing::Span;

use super::call::FrameSpan;
use super::layer::with_record;
use crate::base::attr_value::AttributeValue;
use crate::base::frame::Frame;
use observra_semconv as sc;

/// What the macros' helpers record on: a `tracing` span, or a call on the
/// frame path. Either way the record is a [`Frame`].
pub trait Target {
    /// True when nothing is being recorded.
    fn disabled(&self) -> bool;
    /// Runs `f` on the frame, if there is one.
    fn with_frame_dyn(&self, f: &mut dyn FnMut(&mut Frame));
}

impl Target for Span {
    #[inline]
    fn disabled(&self) -> bool {
        self.is_disabled()
    }
    fn with_frame_dyn(&self, f: &mut dyn FnMut(&mut Frame)) {
        with_record(self, |r| f(r));
    }
}

impl Target for FrameSpan {
    #[inline]
    fn disabled(&self) -> bool {
        self.is_disabled()
    }
    fn with_frame_dyn(&self, f: &mut dyn FnMut(&mut Frame)) {
        self.with(|frame| f(frame));
    }
}

impl<T: Target + ?Sized> Target for &T {
    #[inline]
    fn disabled(&self) -> bool {
        (**self).disabled()
    }
    fn with_frame_dyn(&self, f: &mut dyn FnMut(&mut Frame)) {
        (**self).with_frame_dyn(f)
    }
}

/// Runs `f` once on the frame of `target`, if there is one.
pub(crate) fn with_sink<T: Target + ?Sized>(target: &T, f: impl FnOnce(&mut Frame)) {
    let mut f = Some(f);
    target.with_frame_dyn(&mut |sink| {
        if let Some(f) = f.take() {
            f(sink)
        }
    });
}

/// Marks `target` failed (`panic`, `cancelled`) unless a failure is already recorded.
pub(crate) fn fail<T: Target + ?Sized>(target: &T, error_type: &'static str, message: &'static str) {
    with_sink(target, |r| {
        if !r.has_error() {
            r.set_error(Cow::Borrowed(error_type), message.to_string());
        }
    });
}

/// Records an `Err` return: status ERROR with the message, `error.type`,
/// and an `exception` event with the error's type and message.
pub fn record_error<T: Target + ?Sized>(
    span: &T,
    error_type: Cow<'static, str>,
    message: String,
    exception_type: &'static str,
) {
    with_sink(span, |r| {
        let event = Event::new(
            sc::EXCEPTION_EVENT,
            SystemTime::now(),
            vec![
                KeyValue::new(sc::EXCEPTION_TYPE, exception_type),
                KeyValue::new(sc::EXCEPTION_MESSAGE, message.clone()),
            ],
            0,
        );
        r.add_event(event);
        r.set_error(error_type, message);
    });
}

/// Sets a typed attribute on `span` (arrays stay arrays). `None` sets nothing.
#[inline]
pub fn set_attribute<S: Target + ?Sized, T: AttributeValue + ?Sized>(span: &S, key: &'static str, value: &T) {
    if span.disabled() {
        return;
    }
    if let Some(v) = value.to_attribute_value() {
        with_sink(span, |r| r.set_attribute(Key::from_static_str(key), v));
    }
}
