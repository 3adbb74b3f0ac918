//! Span limits, applied once per span on the export thread: the standard
//! `OTEL_*_LIMIT` variables, a bound on captured message content, and the
//! size of one export request.
//!
//! One model call with a long context can put hundreds of kilobytes into a
//! single attribute, and a batch of such spans is far over what a collector
//! accepts in one request (an OpenTelemetry Collector's gRPC receiver
//! refuses messages over 4 MiB by default): the whole batch would fail and
//! every span in it would be lost. So:
//!
//! - `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` (unlimited by default) cuts every
//!   string value, in spans, events and links;
//! - captured content (the conventions' message attributes) is cut at
//!   `OBSERVRA_CONTENT_MAX_BYTES` (64 KiB by default) even without it;
//! - a span whose values were cut says which, in `observra.truncated`;
//! - `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_EVENT_COUNT_LIMIT`,
//!   `OTEL_SPAN_LINK_COUNT_LIMIT`, `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT` and
//!   `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT` (128 each, also the most observra
//!   records) bound the counts, and what is cut is counted in the span's
//!   dropped counts;
//! - an export request is cut at `OBSERVRA_EXPORT_MAX_BYTES` (3 MiB by
//!   default, estimated from the spans' contents) as well as at the batch
//!   size.
//!
//! Values are cut at a character boundary, never inside a UTF-8 sequence.

use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;

use crate::base::attr_value::attributes_size;
use crate::error::{Error, Result, Setting};

/// The attribute naming the keys whose values were cut.
pub(crate) const TRUNCATED: &str = "observra.truncated";

/// Default bound on one captured content value.
pub const DEFAULT_CONTENT_MAX_BYTES: usize = 64 << 10;
/// Default bound on one export request's estimated size.
pub const DEFAULT_EXPORT_MAX_BYTES: usize = 3 << 20;
/// Default (and highest) count limit: what the recorder keeps per span.
const COUNT: usize = crate::base::frame::MAX_ATTRIBUTES;

/// The limits in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanLimits {
    pub value_len: Option<usize>,
    pub content_len: usize,
    pub span_attributes: usize,
    pub events: usize,
    pub links: usize,
    pub event_attributes: usize,
    pub link_attributes: usize,
    pub max_request_bytes: usize,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            value_len: None,
            content_len: DEFAULT_CONTENT_MAX_BYTES,
            span_attributes: COUNT,
            events: COUNT,
            links: COUNT,
            event_attributes: COUNT,
            link_attributes: COUNT,
            max_request_bytes: DEFAULT_EXPORT_MAX_BYTES,
        }
    }
}

impl SpanLimits {
    /// Reads the limits from the environment (`get` returns a variable's value).
    pub(crate) fn resolve(get: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let num = |var: &'static str| -> Result<Option<usize>> {
            get(var)
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| Error::invalid(Setting::Env(var), v.clone(), "expected a non-negative integer"))
                })
                .transpose()
        };
        let count = |var: &'static str| -> Result<usize> { Ok(num(var)?.unwrap_or(COUNT).min(COUNT)) };
        let d = SpanLimits::default();
        let positive = |var: &'static str, v: Option<usize>, default: usize| -> Result<usize> {
            match v {
                Some(0) => Err(Error::invalid(Setting::Env(var), "0", "expected a positive number of bytes")),
                Some(v) => Ok(v),
                None => Ok(default),
            }
        };
        Ok(SpanLimits {
            value_len: num("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")?,
            content_len: positive("OBSERVRA_CONTENT_MAX_BYTES", num("OBSERVRA_CONTENT_MAX_BYTES")?, d.content_len)?,
            span_attributes: count("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT")?,
            events: count("OTEL_SPAN_EVENT_COUNT_LIMIT")?,
            links: count("OTEL_SPAN_LINK_COUNT_LIMIT")?,
            event_attributes: count("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT")?,
            link_attributes: count("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT")?,
            max_request_bytes: positive(
                "OBSERVRA_EXPORT_MAX_BYTES",
                num("OBSERVRA_EXPORT_MAX_BYTES")?,
                d.max_request_bytes,
            )?,
        })
    }

    fn value_limit(&self, key: &str) -> Option<usize> {
        let general = self.value_len;
        if crate::policy::content::is_content_attribute(key) {
            Some(general.map_or(self.content_len, |g| g.min(self.content_len)))
        } else {
            general
        }
    }
}

/// `s` cut to at most `max` bytes at a character boundary, if longer.
fn cut(s: &str, max: usize) -> Option<String> {
    if s.len() <= max {
        return None;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(s[..end].to_string())
}

/// Cuts one value; true if anything was cut.
fn cut_value(v: &mut Value, max: usize) -> bool {
    match v {
        Value::String(s) => match cut(s.as_str(), max) {
            Some(c) => {
                *s = StringValue::from(c);
                true
            }
            None => false,
        },
        Value::Array(Array::String(items)) => {
            let mut any = false;
            for s in items.iter_mut() {
                if let Some(c) = cut(s.as_str(), max) {
                    *s = StringValue::from(c);
                    any = true;
                }
            }
            any
        }
        _ => false,
    }
}

/// Cuts the values of `attrs` to their limits; returns the keys cut.
fn cut_attributes(attrs: &mut [KeyValue], limits: &SpanLimits, cut_keys: &mut Vec<StringValue>) {
    for kv in attrs.iter_mut() {
        if let Some(max) = limits.value_limit(kv.key.as_str()) {
            if cut_value(&mut kv.value, max) && !cut_keys.iter().any(|k| k.as_str() == kv.key.as_str()) {
                cut_keys.push(StringValue::from(kv.key.as_str().to_string()));
            }
        }
    }
}

/// Keeps at most `max` of `items`, counting the rest in `dropped`.
fn cap<T>(items: &mut Vec<T>, max: usize, dropped: &mut u32) {
    if items.len() > max {
        *dropped += (items.len() - max) as u32;
        items.truncate(max);
    }
}

/// Applies `limits` to `span`.
pub(crate) fn apply(span: &mut SpanData, limits: &SpanLimits) {
    let mut cut_keys = Vec::new();
    cut_attributes(&mut span.attributes, limits, &mut cut_keys);
    cap(&mut span.attributes, limits.span_attributes, &mut span.dropped_attributes_count);
    cap(&mut span.events.events, limits.events, &mut span.events.dropped_count);
    for e in span.events.events.iter_mut() {
        cut_attributes(&mut e.attributes, limits, &mut cut_keys);
        cap(&mut e.attributes, limits.event_attributes, &mut e.dropped_attributes_count);
    }
    cap(&mut span.links.links, limits.links, &mut span.links.dropped_count);
    for l in span.links.links.iter_mut() {
        cut_attributes(&mut l.attributes, limits, &mut cut_keys);
        cap(&mut l.attributes, limits.link_attributes, &mut l.dropped_attributes_count);
    }
    if let Some(max) = limits.value_len {
        if let Some(c) = cut(&span.name, max) {
            span.name = c.into();
        }
    }
    if !cut_keys.is_empty() {
        // One more than the count limit at most: saying what was cut matters more.
        span.attributes.push(KeyValue::new(TRUNCATED, Value::Array(Array::String(cut_keys))));
    }
}

/// About how many bytes `span` takes in an export request (OTLP protobuf
/// is close to the raw lengths; JSON escaping can add more, which the
/// default request bound leaves room for).
pub(crate) fn approx_size(span: &SpanData) -> usize {
    let events: usize = span.events.iter().map(|e| e.name.len() + attributes_size(&e.attributes) + 24).sum();
    let links: usize = span.links.iter().map(|l| attributes_size(&l.attributes) + 48).sum();
    span.name.len() + attributes_size(&span.attributes) + events + links + 96
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_at_a_character_boundary() {
        assert_eq!(cut("héllo", 2).as_deref(), Some("h"), "not inside é");
        assert_eq!(cut("héllo", 3).as_deref(), Some("hé"));
        assert_eq!(cut("short", 10), None);
    }

    #[test]
    fn limits_come_from_the_standard_variables() {
        let env = |k: &str| match k {
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT" => Some("100".to_string()),
            "OTEL_SPAN_EVENT_COUNT_LIMIT" => Some("5".to_string()),
            "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT" => Some("100000".to_string()),
            _ => None,
        };
        let l = SpanLimits::resolve(&env).unwrap();
        assert_eq!((l.value_len, l.events, l.span_attributes), (Some(100), 5, COUNT));
        assert_eq!(l.value_limit("gen_ai.input.messages"), Some(100), "the smaller of the two");
        let bad = |k: &str| (k == "OTEL_SPAN_LINK_COUNT_LIMIT").then(|| "many".to_string());
        let e = SpanLimits::resolve(&bad).unwrap_err();
        assert_eq!(e.setting(), Some(&Setting::Env("OTEL_SPAN_LINK_COUNT_LIMIT")));
    }
}
