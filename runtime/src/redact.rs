//! Redaction of secrets: every string attribute, event attribute and
//! captured message is scrubbed in the export path (on the export thread,
//! never the caller's) before any backend sees it. On by default; it can
//! only be turned off explicitly (`Builder::redaction(false)` or
//! `OBSERVRA_REDACTION=off`).
//!
//! A match is replaced by `[REDACTED:<kind>]`. The built-in rules cover API
//! keys and tokens of the common providers, JWTs, PEM private keys, bearer
//! and basic credentials, credentials in URLs, query strings and form
//! bodies, JSON/YAML/env keys named like secrets whatever their value, and
//! card numbers that pass the Luhn check, and (a context rule, as secret
//! scanners such as gitleaks have it) any value of 16 or more characters
//! with high Shannon entropy assigned to a key whose name says key, secret,
//! token, password, credential or auth (`aws_secret_access_key = ...`,
//! `STRIPE_PRIVATE_KEY: ...`). Users add rules (regex + kind)
//! and key names. Matching is linear-time (the `regex` crate does not
//! backtrack), and one pass of a `RegexSet` over the text decides which
//! rules need to run at all, so text without secrets costs one scan.

use std::borrow::Cow;
use std::sync::OnceLock;

use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use regex::{Captures, Regex, RegexSet};

/// Built-in (kind, pattern) pairs. More specific formats come first. Word
/// boundaries are ASCII (`(?-u:\b)`): secrets are ASCII, and a Unicode `\b`
/// would make the matcher fall back to a slow engine on non-ASCII text.
const BUILTIN: &[(&str, &str)] = &[
    ("private_key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----"),
    ("anthropic_key", r"(?-u:\b)sk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai_project_key", r"(?-u:\b)sk-proj-[A-Za-z0-9_\-]{20,}"),
    ("openai_key", r"(?-u:\b)sk-[A-Za-z0-9_\-]{20,}"),
    ("aws_access_key_id", r"(?-u:\b)(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}(?-u:\b)"),
    ("aws_secret_access_key", r#"(?i)(?-u:\b)aws_?secret_?access_?key["']?\s*[=:]\s*["']?[A-Za-z0-9/+=]{40}"#),
    ("github_fine_grained_token", r"(?-u:\b)github_pat_[A-Za-z0-9_]{22,}"),
    ("github_token", r"(?-u:\b)gh[pousr]_[A-Za-z0-9]{36,}"),
    ("gitlab_token", r"(?-u:\b)glpat-[A-Za-z0-9_\-]{20,}"),
    ("slack_token", r"(?-u:\b)xox[abprs]-[A-Za-z0-9\-]{10,}"),
    ("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"),
    ("discord_webhook", r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_\-]+"),
    ("stripe_key", r"(?-u:\b)(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("google_api_key", r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}"),
    ("google_oauth_token", r"(?-u:\b)ya29\.[0-9A-Za-z_\-]{20,}"),
    ("huggingface_token", r"(?-u:\b)hf_[A-Za-z0-9]{30,}"),
    ("groq_key", r"(?-u:\b)gsk_[A-Za-z0-9]{40,}"),
    ("xai_key", r"(?-u:\b)xai-[A-Za-z0-9]{40,}"),
    ("npm_token", r"(?-u:\b)npm_[A-Za-z0-9]{36}"),
    ("sendgrid_key", r"(?-u:\b)SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),
    ("twilio_key", r"(?-u:\b)SK[0-9a-f]{32}(?-u:\b)"),
    ("mailgun_key", r"(?-u:\b)key-[0-9a-f]{32}(?-u:\b)"),
    ("telegram_bot_token", r"(?-u:\b)[0-9]{8,10}:AA[A-Za-z0-9_\-]{33}(?-u:\b)"),
    ("azure_storage_key", r"(?i)(?-u:\b)AccountKey=[A-Za-z0-9+/=]{40,}"),
    ("jwt", r"(?-u:\b)eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    ("bearer", r"(?i)(?-u:\b)bearer\s+[A-Za-z0-9._~+/\-]{8,}=*"),
    ("basic_auth", r"(?i)(?-u:\b)basic\s+[A-Za-z0-9+/]{8,}={0,2}"),
    ("url_credentials", r"(?i)(?-u:\b)[a-z][a-z0-9+.\-]*://[^\s/:@]+:[^\s/@]+@"),
    (
        "json_secret",
        r#"(?i)"(?:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|authorization|cookie|set-cookie|client[_-]?secret|refresh[_-]?token|access[_-]?token)"\s*:\s*"(?:[^"\\]|\\.)*""#,
    ),
    (
        // The same keys in JSON nested inside a JSON string (escaped quotes).
        "json_secret",
        r#"(?i)\\"(?:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|authorization|cookie|set-cookie|client[_-]?secret|refresh[_-]?token|access[_-]?token)\\"\s*:\s*\\"[^"\\]*\\""#,
    ),
    (
        "credential",
        // A prefix is allowed (`DB_PASSWORD=`), but the value must follow the
        // keyword itself, so `max_tokens: 256` is left alone.
        r#"(?i)[A-Za-z0-9_]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|client[_-]?secret|auth)\s*[=:]\s*[^\s&,;"']+"#,
    ),
    ("cookie", r#"(?i)(?-u:\b)(?:set-)?cookie:\s*[^"'\r\n]+"#),
];

/// Card numbers: 13 to 19 digits, optionally grouped by spaces or dashes;
/// only those passing the Luhn check are redacted.
const CARD: &str = r"(?-u:\b)(?:[0-9][ \-]?){12,18}[0-9](?-u:\b)";

/// The context rule: a key named like a secret, an assignment (`=`, `:`,
/// `:=`, `=>`, quoted or not, also with the escaped quotes of JSON inside
/// a JSON string), then a value of 16 to 256 token characters (group 1).
/// Only values that look random ([`high_entropy`]) are replaced.
const GENERIC: &str = r#"(?i)(?-u:\b)[a-z0-9_.\-]*(?:key|secret|token|passw(?:or)?d|pwd|credential|creds|auth)[a-z0-9_.\-]*(?:\\?["'])?\]?[ \t]*(?::=|=>|=|:)[ \t]*(?:\\?["'])?([A-Za-z0-9/+=_.~\-]{16,256})"#;

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether a value assigned to a secret-named key looks like a generated
/// secret: 3.5 bits of entropy per character or more (gitleaks' threshold
/// for its generic rule), a digit, and either mixed case (base64 keys) or
/// no word separators and two digits or more (hex and lowercase keys). So
/// words and identifiers (`oauth2_client_credentials`,
/// `created_at_descending`) and numbers are left alone.
fn high_entropy(value: &str) -> bool {
    let count = |f: fn(&u8) -> bool| value.as_bytes().iter().filter(|b| f(b)).count();
    let digits = count(u8::is_ascii_digit);
    let (upper, lower) = (count(u8::is_ascii_uppercase), count(u8::is_ascii_lowercase));
    let separated = value.bytes().any(|b| matches!(b, b'_' | b'-' | b'.'));
    let shaped = (upper > 0 && lower > 0 && digits > 0) || (!separated && digits >= 2 && upper + lower > 0);
    shaped && entropy(value) >= 3.5
}

/// Key names whose values are always redacted, whatever they hold.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "cookie",
    "set-cookie",
    "client_secret",
    "access_token",
    "refresh_token",
    "private_key",
    "x-api-key",
];

fn luhn(digits: &str) -> bool {
    let ds: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&ds.len()) {
        return false;
    }
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d })
        .sum();
    sum % 10 == 0
}

/// A user's own matcher: returns the text with its secrets replaced, or
/// `None` when it found nothing.
pub type CustomRedaction = std::sync::Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A compiled set of rules.
pub struct Redactor {
    rules: Vec<(String, Regex)>,
    /// Every rule's pattern, then the card pattern: one scan finds which apply.
    set: RegexSet,
    card: Regex,
    /// The context rule ([`GENERIC`]).
    generic: Regex,
    keys: Vec<String>,
    /// Users' own matchers, run after the patterns.
    custom: Vec<(String, CustomRedaction)>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &self.rules.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("keys", &self.keys)
            .field("custom", &self.custom.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

impl Redactor {
    /// The built-in rules, plus user rules `(kind, pattern)` and key names.
    /// An invalid pattern is an error naming it.
    pub fn new(extra_rules: &[(String, String)], extra_keys: &[String]) -> Result<Self, String> {
        let mut rules = Vec::new();
        for (kind, pattern) in extra_rules {
            let re = Regex::new(pattern).map_err(|e| format!("rule {kind:?}: invalid pattern {pattern:?}: {e}"))?;
            rules.push((kind.clone(), re));
        }
        for (kind, pattern) in BUILTIN {
            // Built-in patterns are constants covered by tests.
            if let Ok(re) = Regex::new(pattern) {
                rules.push((kind.to_string(), re));
            }
        }
        let card = Regex::new(CARD).map_err(|e| e.to_string())?;
        let generic = Regex::new(GENERIC).map_err(|e| e.to_string())?;
        let set =
            RegexSet::new(rules.iter().map(|(_, re)| re.as_str()).chain([CARD, GENERIC])).map_err(|e| e.to_string())?;
        let keys = SECRET_KEYS.iter().map(|k| k.to_string()).chain(extra_keys.iter().cloned()).collect();
        Ok(Redactor { rules, set, card, generic, keys, custom: Vec::new() })
    }

    /// Adds the user's own matchers (`Builder::redact_with`).
    pub(crate) fn with_custom(mut self, custom: Vec<(String, CustomRedaction)>) -> Self {
        self.custom = custom;
        self
    }

    /// Replaces every secret in `text`; borrowed when nothing matched.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let out = self.redact_patterns(text);
        if self.custom.is_empty() {
            return out;
        }
        let mut out = out;
        for (_, f) in &self.custom {
            if let Some(r) = f(&out) {
                out = Cow::Owned(r);
            }
        }
        out
    }

    fn redact_patterns<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let hits = self.set.matches(text);
        if !hits.matched_any() {
            return Cow::Borrowed(text);
        }
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        for (i, (kind, re)) in self.rules.iter().enumerate() {
            // A rule that did not match the original cannot match after an
            // earlier rule replaced part of it with `[REDACTED:..]`.
            if hits.matched(i) && re.is_match(&out) {
                let replacement = format!("[REDACTED:{kind}]");
                out = Cow::Owned(re.replace_all(&out, regex::NoExpand(&replacement)).into_owned());
            }
        }
        if hits.matched(self.rules.len()) && self.card.is_match(&out) {
            let replaced = self.card.replace_all(&out, |c: &Captures<'_>| {
                let m = &c[0];
                if luhn(m) { "[REDACTED:card_number]".to_string() } else { m.to_string() }
            });
            if let Cow::Owned(s) = replaced {
                out = Cow::Owned(s);
            }
        }
        if hits.matched(self.rules.len() + 1) && self.generic.is_match(&out) {
            let replaced = self.generic.replace_all(&out, |c: &Captures<'_>| {
                let (all, value) = (c.get(0).expect("whole match"), c.get(1).expect("the value group"));
                if high_entropy(value.as_str()) {
                    // The key stays readable; only the value goes.
                    format!("{}[REDACTED:generic_secret]", &all.as_str()[..value.start() - all.start()])
                } else {
                    all.as_str().to_string()
                }
            });
            if let Cow::Owned(s) = replaced {
                out = Cow::Owned(s);
            }
        }
        out
    }

    fn secret_key(&self, key: &str) -> bool {
        let last = key.rsplit(['.', '/']).next().unwrap_or(key);
        self.keys.iter().any(|s| s.eq_ignore_ascii_case(last))
    }

    fn value(&self, key: &str, v: &mut Value) {
        if self.secret_key(key) {
            *v = Value::String(StringValue::from(format!(
                "[REDACTED:{}]",
                key.rsplit(['.', '/']).next().unwrap_or(key)
            )));
            return;
        }
        match v {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s.as_str()) {
                    *s = StringValue::from(r);
                }
            }
            Value::Array(Array::String(items)) => {
                for s in items.iter_mut() {
                    if let Cow::Owned(r) = self.redact(s.as_str()) {
                        *s = StringValue::from(r);
                    }
                }
            }
            _ => {}
        }
    }

    fn attributes(&self, attrs: &mut [KeyValue]) {
        for kv in attrs {
            self.value(kv.key.as_str(), &mut kv.value);
        }
    }

    /// Scrubs a span: its name, attributes, event names and attributes,
    /// status message, link attributes.
    pub(crate) fn span(&self, span: &mut SpanData) {
        // A name computed at run time (`otel.name`, a model from a parameter) can carry a secret.
        if let Cow::Owned(r) = self.redact(&span.name) {
            span.name = Cow::Owned(r);
        }
        self.attributes(&mut span.attributes);
        for e in span.events.events.iter_mut() {
            if let Cow::Owned(r) = self.redact(&e.name) {
                e.name = Cow::Owned(r);
            }
            self.attributes(&mut e.attributes);
        }
        for l in span.links.links.iter_mut() {
            self.attributes(&mut l.attributes);
        }
        if let opentelemetry::trace::Status::Error { description } = &mut span.status {
            if let Cow::Owned(r) = self.redact(description) {
                *description = Cow::Owned(r);
            }
        }
    }
}

/// What [`redact`] returns if the built-in rules could not be built: the
/// text is withheld whole, never returned unredacted.
pub const WITHHELD: &str = "[REDACTED:redaction_unavailable]";

/// The built-in rules, built once. They are constants a unit test compiles,
/// and `install()` builds the same set (a typed error there), so `None`
/// here means a broken build of observra itself.
fn builtin() -> Option<&'static Redactor> {
    static DEFAULT: OnceLock<Option<Redactor>> = OnceLock::new();
    DEFAULT.get_or_init(|| Redactor::new(&[], &[]).ok()).as_ref()
}

/// Redacts `text` with the built-in rules (the engine the export path uses,
/// without user additions). Fails closed: should the rules ever be
/// unavailable, the whole text is withheld ([`WITHHELD`]), never returned
/// as it was.
pub fn redact(text: &str) -> Cow<'_, str> {
    match builtin() {
        Some(r) => r.redact(text),
        None => Cow::Borrowed(WITHHELD),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_pattern_compiles() {
        for (kind, p) in BUILTIN {
            assert!(Regex::new(p).is_ok(), "{kind}");
        }
        assert!(BUILTIN.len() + 2 >= 30, "at least 30 formats (rules, card numbers, key names)");
    }

    #[test]
    fn the_context_rule_takes_random_values_only() {
        assert!(Regex::new(GENERIC).is_ok());
        assert!(high_entropy("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        assert!(high_entropy("9f8e7d6c5b4a39281706f5e4d3c2b1a0"));
        assert!(!high_entropy("created_at_descending_order"), "no digit: a word");
        assert!(!high_entropy("oauth2_client_credentials"), "an identifier");
        assert!(!high_entropy("12345678901234567890"), "no letter: a number");
        assert!(!high_entropy("aaaaaaaaaaaaaaaa1111"), "low entropy");
    }

    #[test]
    fn luhn_accepts_valid_numbers_only() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("5500-0000-0000-0004"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(!luhn("1234"));
    }
}
