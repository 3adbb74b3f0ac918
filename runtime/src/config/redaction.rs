//! Redaction settings: the [`Redaction`] builder and its resolution
//! against `OBSERVRA_REDACTION` into the redaction engine.

use std::sync::Arc;

use super::env::{EnvSource, pick};
use crate::error::{Error, Result, Setting};
use crate::redact::{CustomRedaction, Redactor};

/// What is redacted from every exported string: set in code with
/// [`crate::Builder::redact`]. Redaction is on unless turned off here or by
/// `OBSERVRA_REDACTION=off`.
///
/// ```no_run
/// let _telemetry = observra::init()
///     .redact(
///         observra::Redaction::new()
///             .rule("ticket", r"TCK-[0-9]{6}")
///             .key("customer_email"),
///     )
///     .install();
/// ```
#[derive(Clone, Default)]
pub struct Redaction {
    on: Option<bool>,
    rules: Vec<(String, String)>,
    keys: Vec<String>,
    custom: Vec<(String, CustomRedaction)>,
}

impl std::fmt::Debug for Redaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redaction")
            .field("on", &self.on)
            .field("rules", &self.rules)
            .field("keys", &self.keys)
            .field("matchers", &self.custom.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

/// `on`/`true`/`1` or `off`/`false`/`0`.
fn parse_on_off(v: &str) -> std::result::Result<bool, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err("expected on or off"),
    }
}

impl Redaction {
    /// The built-in rules, on.
    pub fn new() -> Self {
        Redaction::default()
    }
    /// Turns redaction on or off (overrides `OBSERVRA_REDACTION`).
    pub fn enabled(mut self, on: bool) -> Self {
        self.on = Some(on);
        self
    }
    /// Adds a rule: matches of `pattern` (a regex) become `[REDACTED:<kind>]`.
    /// An invalid pattern is an error at `install()`.
    pub fn rule(mut self, kind: impl Into<String>, pattern: impl Into<String>) -> Self {
        self.rules.push((kind.into(), pattern.into()));
        self
    }
    /// Adds an attribute key whose values are always redacted (matched on
    /// the last dotted segment, case-insensitively).
    pub fn key(mut self, name: impl Into<String>) -> Self {
        self.keys.push(name.into());
        self
    }
    /// Adds your own matcher, run after the patterns: return the text with
    /// its secrets replaced, or `None` when it found nothing.
    pub fn matcher(
        mut self,
        kind: impl Into<String>,
        matcher: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.custom.push((kind.into(), Arc::new(matcher)));
        self
    }

    /// The redaction engine, or `None` when redaction is off.
    pub(crate) fn resolve(self, env: &EnvSource) -> Result<Option<Arc<Redactor>>> {
        if !pick(self.on, env, "OBSERVRA_REDACTION", parse_on_off)?.unwrap_or(true) {
            return Ok(None);
        }
        let Redaction { rules, keys, custom, .. } = self;
        let redactor = Redactor::new(&rules, &keys).map(|r| r.with_custom(custom)).map_err(|reason| {
            let bad = rules.iter().find(|(k, _)| reason.contains(k.as_str()));
            Error::invalid(Setting::Builder("redact_rule"), bad.map(|(_, p)| p.clone()).unwrap_or_default(), reason)
        })?;
        Ok(Some(Arc::new(redactor)))
    }
}
