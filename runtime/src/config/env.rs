//! Where settings come from when the code sets none: the environment
//! ([`EnvSource`]), the one rule that picks between the two ([`pick`]), and
//! the parsers of the values the variables hold.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::{Error, Result, Setting};

/// Where configuration values are read from when the builder has none.
pub(crate) enum EnvSource {
    Process,
    Map(HashMap<String, String>),
}

impl EnvSource {
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        let v = match self {
            EnvSource::Process => std::env::var(key).ok(),
            EnvSource::Map(m) => m.get(key).cloned(),
        };
        // The OpenTelemetry spec treats an empty value as unset.
        v.filter(|v| !v.trim().is_empty())
    }
}

/// The one rule every setting follows: the value set in code; else the
/// environment variable, parsed (a typed error naming the variable and the
/// value when it does not parse); else `None`, for the caller's default.
pub(crate) fn pick<T>(
    code: Option<T>,
    env: &EnvSource,
    var: &'static str,
    parse: fn(&str) -> std::result::Result<T, &'static str>,
) -> Result<Option<T>> {
    if code.is_some() {
        return Ok(code);
    }
    match env.get(var) {
        None => Ok(None),
        Some(v) => parse(v.trim()).map(Some).map_err(|reason| Error::invalid(Setting::Env(var), v, reason)),
    }
}

/// A count.
pub(crate) fn parse_usize(v: &str) -> std::result::Result<usize, &'static str> {
    v.parse().map_err(|_| "expected a non-negative integer")
}

/// A duration in whole milliseconds.
pub(crate) fn parse_millis(v: &str) -> std::result::Result<Duration, &'static str> {
    v.parse::<u64>().map(Duration::from_millis).map_err(|_| "expected a whole number of milliseconds")
}

/// `true`/`1` or `false`/`0`.
pub(crate) fn parse_flag(v: &str) -> std::result::Result<bool, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("expected true or false"),
    }
}

/// A count of at least one.
pub(super) fn parse_positive(v: &str) -> std::result::Result<usize, &'static str> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number of at least 1"),
    }
}

/// A duration in whole milliseconds, longer than zero.
pub(super) fn parse_positive_millis(v: &str) -> std::result::Result<Duration, &'static str> {
    match v.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
        _ => Err("expected a whole number of milliseconds, at least 1"),
    }
}

/// Parses a `key=value,key2=value2` list with percent-encoded values, as
/// used by `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`.
pub(super) fn parse_kv_list(var: &'static str, raw: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in raw.split(',') {
        if item.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            return Err(Error::invalid(
                Setting::Env(var),
                raw,
                format!("entry {:?} has no '='; expected key=value pairs separated by commas", item.trim()),
            ));
        };
        let key = k.trim();
        if key.is_empty() {
            return Err(Error::invalid(Setting::Env(var), raw, format!("entry {:?} has an empty key", item.trim())));
        }
        let value = percent_decode(v.trim())
            .ok_or_else(|| Error::invalid(Setting::Env(var), raw, format!("entry {key:?} has a malformed %-escape")))?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_escapes_and_rejects_bad_ones() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%2").as_deref(), None);
        assert_eq!(percent_decode("%zz").as_deref(), None);
    }
}
