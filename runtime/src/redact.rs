//! Redaction of secrets: every string attribute, event attribute and
//! captured message is scrubbed in the export path (on the export thread,
//! never the caller's) before any backend sees it. On by default; it can
//! only be turned off explicitly (`Builder::redaction(false)` or
//! `OBSERVRA_REDACTION=off`).
//!
//! A match is replaced by `[REDACTED:<kind>]`, whole: no built-in rule caps
//! the length of the value it takes, so a secret of any length leaves
//! nothing behind. The built-in rules cover API keys and tokens of the
//! common providers, JWTs, PEM private keys, bearer and basic credentials,
//! credentials in URLs, query strings and form bodies, and card numbers that
//! pass the Luhn check. Two rules go by the key a value is assigned to (in
//! `K=V`, `K: V`, `K := V`, `K => V`, quoted or not, JSON `"k": "v"` and
//! JSON nested in a JSON string `\"k\": \"v\"`):
//!
//! - the key-name rule (`NAMED`): a key named `password`, `secret`,
//!   `token`, or ending in `_key`, `_secret`, `_token`, `_password` (or
//!   `-key`, ...; any case, any prefix: `SIGNING_KEY`, `webhook_secret`,
//!   `"db-password"`) has its value replaced whatever it holds (`*_tokens`
//!   counts such as `max_tokens: 256` are not tokens; a `*_key` value made
//!   of lowercase words only, `sort_key: created_at`, names a field and is
//!   left);
//! - the context rule (`GENERIC`, as secret scanners such as gitleaks
//!   have it): any value of 16 or more characters with high Shannon entropy
//!   assigned to a key whose name says key, secret, token, password,
//!   credential or auth (`aws_secret_access_key = ...`,
//!   `AzureClientCredential := ...`).
//!
//! Attributes whose key is named like a secret are replaced whole (see
//! `SECRET_KEYS`). Users add rules (regex + kind) and key names. Matching
//! is linear-time (the `regex` crate does not backtrack), and one pass of a
//! `RegexSet` over the text decides which rules need to run at all, so text
//! without secrets costs one scan.

use std::borrow::Cow;
use std::sync::OnceLock;

use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use regex::{Regex, RegexSet};

/// Built-in (kind, pattern) pairs. More specific formats come first. Word
/// boundaries are ASCII (`(?-u:\b)`): secrets are ASCII, and a Unicode `\b`
/// would make the matcher fall back to a slow engine on non-ASCII text. No
/// repetition that takes a value has an upper bound (`{40,}`, never
/// `{40}` or `{16,256}`): a longer value than the format's usual length is
/// taken whole, never cut with its tail left in the text.
const BUILTIN: &[(&str, &str)] = &[
    ("private_key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----"),
    ("anthropic_key", r"(?-u:\b)sk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai_project_key", r"(?-u:\b)sk-proj-[A-Za-z0-9_\-]{20,}"),
    ("openai_key", r"(?-u:\b)sk-[A-Za-z0-9_\-]{20,}"),
    ("aws_access_key_id", r"(?-u:\b)(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16,}(?-u:\b)"),
    ("aws_secret_access_key", r#"(?i)(?-u:\b)aws_?secret_?access_?key["']?\s*[=:]\s*["']?[A-Za-z0-9/+=]{40,}"#),
    ("github_fine_grained_token", r"(?-u:\b)github_pat_[A-Za-z0-9_]{22,}"),
    ("github_token", r"(?-u:\b)gh[pousr]_[A-Za-z0-9]{36,}"),
    ("gitlab_token", r"(?-u:\b)glpat-[A-Za-z0-9_\-]{20,}"),
    ("slack_token", r"(?-u:\b)xox[abprs]-[A-Za-z0-9\-]{10,}"),
    ("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"),
    ("discord_webhook", r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_\-]+"),
    ("stripe_key", r"(?-u:\b)(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("google_api_key", r"(?-u:\b)AIza[0-9A-Za-z_\-]{35,}"),
    ("google_oauth_token", r"(?-u:\b)ya29\.[0-9A-Za-z_\-]{20,}"),
    ("huggingface_token", r"(?-u:\b)hf_[A-Za-z0-9]{30,}"),
    ("groq_key", r"(?-u:\b)gsk_[A-Za-z0-9]{40,}"),
    ("xai_key", r"(?-u:\b)xai-[A-Za-z0-9]{40,}"),
    ("npm_token", r"(?-u:\b)npm_[A-Za-z0-9]{36,}"),
    ("sendgrid_key", r"(?-u:\b)SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}"),
    ("twilio_key", r"(?-u:\b)SK[0-9a-f]{32,}(?-u:\b)"),
    ("mailgun_key", r"(?-u:\b)key-[0-9a-f]{32,}(?-u:\b)"),
    ("telegram_bot_token", r"(?-u:\b)[0-9]{8,}:AA[A-Za-z0-9_\-]{33,}(?-u:\b)"),
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
        // keyword itself, so `max_tokens: 256` is left alone. `:=` and `=>`
        // are one separator (else `PASSWORD := v` would take `=` as the
        // value), and a value starting with a quote or `\"` is the key-name
        // rule's (else `PASSWORD=\"v\"` in a JSON string would take `\`).
        r#"(?i)[A-Za-z0-9_]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|client[_-]?secret|auth)\s*(?::=|=>|[=:])\s*[^\s&,;"'\\][^\s&,;"']*"#,
    ),
    ("cookie", r#"(?i)(?-u:\b)(?:set-)?cookie:\s*[^"'\r\n]+"#),
];

/// Card numbers: 13 to 19 digits, optionally grouped by spaces or dashes;
/// only those passing the Luhn check are redacted.
const CARD: &str = r"(?-u:\b)(?:[0-9][ \-]?){12,18}[0-9](?-u:\b)";

/// The assignment after a key: the key's closing quote (also the escaped
/// quote of JSON inside a JSON string, or `']` of `settings['k']`), then
/// `=`, `:`, `:=` or `=>`.
macro_rules! assignment {
    () => {
        r#"(?:\\?["'])?\]?[ \t]*(?::=|=>|=|:)[ \t]*"#
    };
}

/// The key of the context rule: a name that says key, secret, token,
/// password, credential or auth.
macro_rules! generic_key {
    () => {
        r#"[a-z0-9_.\-]*(?:key|secret|token|passw(?:or)?d|pwd|credential|creds|auth)[a-z0-9_.\-]*"#
    };
}

/// The key of the key-name rule: `password`, `passwd`, `secret`, `token`,
/// or a name ending in `_key`, `_secret`, `_token`, `_password`, `_passwd`
/// or the same with `-` (the suffix's word is group 1). `max_tokens` does
/// not end in `_token`.
macro_rules! named_key {
    () => {
        r#"(?:[a-z0-9_.\-]*[_\-](key|secret|token|passw(?:or)?d)|(?:secret|token|passw(?:or)?d))"#
    };
}

/// The context rule: a key named like a secret, an assignment (`=`, `:`,
/// `:=`, `=>`, quoted or not, also with the escaped quotes of JSON inside
/// a JSON string), then a value of 16 or more token characters, all of
/// them. Only values that look random ([`high_entropy`]) are replaced.
const GENERIC: &str = concat!(
    r"(?i)(?-u:\b)",
    generic_key!(),
    assignment!(),
    // A `[REDACTED:kind]` an earlier rule left inside the value (a known
    // key embedded in a longer secret) is part of it: the value is taken
    // whole, never cut at the marker with its tail left behind.
    r#"(?:\\?["'])?(?:[A-Za-z0-9/+=_.~\-]|\[REDACTED:[a-z_]+\]){16,}"#
);

/// [`GENERIC`] up to its value, anchored: where the value of a match starts.
const GENERIC_KEY: &str = concat!(r"^(?i)", generic_key!(), assignment!(), r#"(?:\\?["'])?"#);

/// The key-name rule: a key named like a secret ([`named_key`]), an
/// assignment, then the whole value, whatever it holds: up to the closing
/// `\"` of JSON nested in a JSON string, the closing quote, or a delimiter
/// (whitespace, `&`, `,`, `;`, a quote, or the `\n`, `\r`, `\t`, `\"`
/// escapes of a JSON string; `\\` and other backslashes are part of the
/// value). Without a closing quote it takes the rest: a value cut short is
/// still taken.
const NAMED: &str = concat!(
    r"(?i)(?-u:\b)",
    named_key!(),
    assignment!(),
    r#"(?:\\"[^"\\]*|"(?:[^"\\]|\\.)*|'[^'\\]*|(?:[^\s&,;"'\\\[{]|\[REDACTED:[a-z_]+\])(?:[^\s&,;"'\\]|\\[^nrt"])*)"#
);

/// [`NAMED`] up to its value (the opening quote included), anchored.
const NAMED_KEY: &str = concat!(r"^(?i)", named_key!(), assignment!(), r#"(?:\\"|"|')?"#);

/// [`NAMED`] up to the first character of its value: what the prefilter
/// looks for (see [`presence`]).
const NAMED_PRESENCE: &str = concat!(r"(?i)(?-u:\b)", named_key!(), assignment!(), r#"(?:\\"|"|'|[^\s&,;"'\\\[{])"#);

/// A built-in pattern as the prefilter looks for it: a trailing `{n,}` cut
/// to `{n}`, which matches wherever the pattern does. The `RegexSet`
/// reports every pattern that matches anywhere, so it reads the whole text,
/// and an open-ended value left in it kept its automaton matching, on its
/// slow path, all along a long value; the rule itself takes the whole value.
fn presence(pattern: &str) -> Cow<'_, str> {
    if let Some(open) = pattern.strip_suffix(",}").and_then(|p| p.rfind('{')) {
        let digits = &pattern[open + 1..pattern.len() - 2];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Cow::Owned(format!("{}}}", &pattern[..pattern.len() - 2]));
        }
    }
    Cow::Borrowed(pattern)
}

/// `text` with the matches of `re` that `pick` chooses replaced: `pick`
/// gets a match and returns the kind and where in the match the replaced
/// part starts (it runs to the match's end), or `None` to leave it. Only
/// the bounds of a match are searched for (a DFA's work, cheap however long
/// the value); borrowed when nothing was replaced.
fn replace_picked<'a>(
    text: &'a str,
    re: &Regex,
    mut pick: impl FnMut(&str) -> Option<(&'static str, usize)>,
) -> Cow<'a, str> {
    let mut out = String::new();
    let mut copied = 0;
    for m in re.find_iter(text) {
        if let Some((kind, from)) = pick(m.as_str()) {
            out.push_str(&text[copied..m.start() + from]);
            out.push_str("[REDACTED:");
            out.push_str(kind);
            out.push(']');
            copied = m.end();
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Whether `value` is nothing but `[REDACTED:<kind>]` markers (or empty):
/// an earlier rule took it already.
fn taken_already(value: &str) -> bool {
    let mut rest = value;
    while let Some(r) = rest.strip_prefix("[REDACTED:") {
        match r.find(']') {
            Some(end) => rest = &r[end + 1..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whether a `*_key` value names something rather than being a key:
/// lowercase words joined by `_`, `-` or `.` (`created_at`, `tenant-id`).
fn names_a_field(value: &str) -> bool {
    value.split(['_', '-', '.']).all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

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

/// Attribute key names whose values are always redacted, whatever they
/// hold (matched on the key's last `.` or `/` segment, any case), besides
/// every name ending in one of [`SECRET_SUFFIXES`].
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

/// Endings of attribute key names whose values are always redacted
/// (`app.signing_key`, `webhook_secret`, `x-auth-token`). `_tokens` is not
/// among them: `gen_ai.usage.input_tokens` is a count.
const SECRET_SUFFIXES: &[&str] = &["_key", "-key", "_secret", "-secret", "_token", "-token", "_password", "-password"];

/// Whether `name` ends in one of [`SECRET_SUFFIXES`], in any case.
fn secret_suffix(name: &str) -> bool {
    let name = name.as_bytes();
    SECRET_SUFFIXES
        .iter()
        .any(|s| name.len() >= s.len() && name[name.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes()))
}

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
    /// Every rule's pattern, then the card pattern, the context rule and
    /// the key-name rule (the built-in ones as [`presence`] has them): one
    /// scan finds which apply.
    set: RegexSet,
    card: Regex,
    /// The context rule ([`GENERIC`]) and its key ([`GENERIC_KEY`]).
    generic: (Regex, Regex),
    /// The key-name rule ([`NAMED`]) and its key ([`NAMED_KEY`]).
    named: (Regex, Regex),
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
        let mut prefilter: Vec<Cow<'_, str>> = Vec::new();
        for (kind, pattern) in extra_rules {
            let re = Regex::new(pattern).map_err(|e| format!("rule {kind:?}: invalid pattern {pattern:?}: {e}"))?;
            rules.push((kind.clone(), re));
            prefilter.push(Cow::Borrowed(pattern));
        }
        for (kind, pattern) in BUILTIN {
            // Built-in patterns are constants covered by tests.
            if let Ok(re) = Regex::new(pattern) {
                rules.push((kind.to_string(), re));
                prefilter.push(presence(pattern));
            }
        }
        let card = Regex::new(CARD).map_err(|e| e.to_string())?;
        let compile = |p: &str| Regex::new(p).map_err(|e| e.to_string());
        let generic = (compile(GENERIC)?, compile(GENERIC_KEY)?);
        let named = (compile(NAMED)?, compile(NAMED_KEY)?);
        prefilter.extend([Cow::Borrowed(CARD), presence(GENERIC), Cow::Borrowed(NAMED_PRESENCE)]);
        let set = RegexSet::new(&prefilter).map_err(|e| e.to_string())?;
        let keys = SECRET_KEYS.iter().map(|k| k.to_string()).chain(extra_keys.iter().cloned()).collect();
        Ok(Redactor { rules, set, card, generic, named, keys, custom: Vec::new() })
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
        // Most text holds no secret: one search that allocates nothing says
        // so (which rules matched is asked only of text where one did).
        if !self.set.is_match(text) {
            return Cow::Borrowed(text);
        }
        let hits = self.set.matches(text);
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        for (i, (kind, re)) in self.rules.iter().enumerate() {
            // A rule that did not match the original cannot match after an
            // earlier rule replaced part of it with `[REDACTED:..]`.
            if hits.matched(i) && re.is_match(&out) {
                let replacement = format!("[REDACTED:{kind}]");
                out = Cow::Owned(re.replace_all(&out, regex::NoExpand(&replacement)).into_owned());
            }
        }
        if hits.matched(self.rules.len()) {
            let replaced = replace_picked(&out, &self.card, |m| luhn(m).then_some(("card_number", 0)));
            if let Cow::Owned(s) = replaced {
                out = Cow::Owned(s);
            }
        }
        if hits.matched(self.rules.len() + 1) {
            let (rule, key) = &self.generic;
            let replaced = replace_picked(&out, rule, |m| {
                // The key stays readable; only the value goes, whole.
                let from = key.find(m).map_or(0, |k| k.end());
                high_entropy(&m[from..]).then_some(("generic_secret", from))
            });
            if let Cow::Owned(s) = replaced {
                out = Cow::Owned(s);
            }
        }
        // After the context rule, so a random value keeps its
        // `generic_secret` kind; this takes what it left (a value that is
        // not random, or the rest of a quoted one).
        if hits.matched(self.rules.len() + 2) {
            let (rule, key) = &self.named;
            let replaced = replace_picked(&out, rule, |m| {
                // The key is found in every match; failing that, all goes.
                let Some(k) = key.captures(m) else { return Some(("credential", 0)) };
                let from = k.get(0).map_or(0, |k| k.end());
                let value = &m[from..];
                let a_key = k.get(1).is_some_and(|w| w.as_str().eq_ignore_ascii_case("key"));
                let leave = taken_already(value) || (a_key && names_a_field(value));
                (!leave).then_some(("credential", from))
            });
            if let Cow::Owned(s) = replaced {
                out = Cow::Owned(s);
            }
        }
        out
    }

    fn secret_key(&self, key: &str) -> bool {
        let last = key.rsplit(['.', '/']).next().unwrap_or(key);
        self.keys.iter().any(|s| s.eq_ignore_ascii_case(last)) || secret_suffix(last)
    }

    /// Redacts one attribute's value: whole when its key is named like a
    /// secret, else its strings.
    pub(crate) fn value(&self, key: &str, v: &mut Value) {
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

    /// No rule takes part of a value: every repetition is open-ended, save
    /// basic credentials' `=` padding (at most two by definition).
    #[test]
    fn no_rule_caps_the_length_of_a_value() {
        let bound = Regex::new(r"\{[0-9]+(,[0-9]+)?\}").unwrap();
        for (kind, p) in BUILTIN.iter().chain(&[("generic_secret", GENERIC), ("credential", NAMED)]) {
            for m in bound.find_iter(p) {
                assert!(*kind == "basic_auth" && &p[m.start() - 1..m.end()] == "={0,2}", "{kind}: {}", m.as_str());
            }
        }
    }

    #[test]
    fn the_key_name_rule_takes_the_whole_value_in_every_form() {
        let r = Redactor::new(&[], &[]).unwrap();
        let long = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".repeat(10);
        for (text, want) in [
            (format!("SIGNING_KEY={long}"), "SIGNING_KEY=[REDACTED:generic_secret]".to_string()),
            (format!(r#"{{"signing_key":"{long}"}}"#), r#"{"signing_key":"[REDACTED:generic_secret]"}"#.into()),
            ("SIGNING_KEY=hunter2 next".into(), "SIGNING_KEY=[REDACTED:credential] next".into()),
            // The credential rule takes `*_secret: v` whole, key and all, first.
            ("webhook_secret: plain words".into(), "[REDACTED:credential] words".into()),
            ("Db-Password := abc".into(), "Db-[REDACTED:credential]".into()),
            ("Signing-Key := abc1".into(), "Signing-Key := [REDACTED:credential]".into()),
            (
                r#"{"db-password": "two words", "n": 1}"#.into(),
                r#"{"db-password": "[REDACTED:credential]", "n": 1}"#.into(),
            ),
            (r#"{\"api_token\":\"abc\"}"#.into(), r#"{\"api_token\":\"[REDACTED:credential]\"}"#.into()),
            ("service_key: 'a b c'".into(), "service_key: '[REDACTED:credential]'".into()),
            (r#"{"signing_key": "cut sh"#.into(), r#"{"signing_key": "[REDACTED:credential]"#.into()),
        ] {
            assert_eq!(r.redact(&text), want, "{text}");
        }
        for kept in [
            "max_tokens: 256",
            "input_tokens=12",
            "gen_ai.usage.output_tokens = 40",
            "sort_key: created_at",
            r#"{"partition_key": "tenant-id"}"#,
            r#"{"db_password": ""}"#,
            "monkey: banana42",
            "the keyboard: us",
        ] {
            assert_eq!(r.redact(kept), kept);
        }
    }

    #[test]
    fn the_prefilter_cuts_only_a_trailing_open_ended_count() {
        assert_eq!(presence(r"sk-[A-Za-z0-9_\-]{20,}"), r"sk-[A-Za-z0-9_\-]{20}");
        assert!(presence(GENERIC).ends_with("{16}"));
        for p in [r"SK[0-9a-f]{32,}(?-u:\b)", r"[0-9]{8,}:", "x{,}", "a{2,3}"] {
            assert_eq!(presence(p), p);
        }
        // Long values of the provider formats go whole, as the prefilter found them.
        let r = Redactor::new(&[], &[]).unwrap();
        let tail = "aB3dE5".repeat(1000);
        for head in ["sk-", "sk-proj-", "ghp_", "glpat-", "xoxb-", "AIza", "npm_", "gsk_", "hf_"] {
            let text = format!("k {head}{tail} end");
            let out = r.redact(&text);
            assert!(!out.contains("aB3dE5") && out.ends_with("] end"), "{head}: {out}");
        }
    }

    #[test]
    fn attribute_keys_ending_like_secrets_are_secret() {
        let r = Redactor::new(&[], &[]).unwrap();
        for key in ["app.signing_key", "WEBHOOK_SECRET", "x-auth-token", "db/admin_password", "password"] {
            assert!(r.secret_key(key), "{key}");
        }
        for key in ["gen_ai.usage.input_tokens", "gen_ai.request.max_tokens", "keyboard", "token_count", "é"] {
            assert!(!r.secret_key(key), "{key}");
        }
    }

    #[test]
    fn luhn_accepts_valid_numbers_only() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(luhn("5500-0000-0000-0004"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(!luhn("1234"));
    }
}
