//! Redaction of secrets in captured content: one function, [`redact`],
//! that every captured string goes through. The rule set here is a
//! deliberately small default (API keys and tokens of the most common
//! providers, bearer credentials, private keys, credentials in URLs and
//! `key=value` pairs); the full engine with user rules grows behind the
//! same function. Matching is linear-time (`regex-lite` has no
//! backtracking).

use std::borrow::Cow;
use std::sync::OnceLock;

use regex_lite::Regex;

/// (label, pattern). Order matters: more specific formats first.
const RULES: &[(&str, &str)] = &[
    ("private_key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    ("anthropic_key", r"sk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai_key", r"sk-(?:proj-)?[A-Za-z0-9_\-]{20,}"),
    ("aws_access_key_id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
    ("slack_token", r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
    ("stripe_key", r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    ("bearer", r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{8,}=*"),
    ("url_credentials", r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s/:@]+:[^\s/@]+@"),
    ("credential", r#"(?i)\b(?:password|passwd|pwd|secret|token|api[_-]?key)\s*[=:]\s*[^\s&,;"']+"#),
];

fn rules() -> &'static [(&'static str, Regex)] {
    static COMPILED: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        // The patterns are constants covered by tests; one that failed to
        // compile would be skipped rather than take the host program down.
        RULES.iter().filter_map(|(label, p)| Regex::new(p).ok().map(|r| (*label, r))).collect()
    })
}

/// Replaces every secret found in `text` with `[REDACTED:<kind>]`.
/// Returns the input unchanged (borrowed) when nothing matched.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out: Cow<'_, str> = Cow::Borrowed(text);
    for (label, re) in rules() {
        if re.is_match(&out) {
            let replacement = format!("[REDACTED:{label}]");
            out = Cow::Owned(re.replace_all(&out, regex_lite::NoExpand(&replacement)).into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn common_secrets_are_replaced_with_their_kind() {
        let cases = [
            ("key sk-proj-abcdefghijklmnopqrstuvwx12", "openai_key"),
            ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "anthropic_key"),
            ("AKIAIOSFODNN7EXAMPLE", "aws_access_key_id"),
            ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github_token"),
            ("Authorization: Bearer abc.def.ghijkl", "bearer"),
            ("https://user:hunter2@db.example.com/x", "url_credentials"),
            ("?api_key=12345&x=1", "credential"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "private_key"),
        ];
        for (input, kind) in cases {
            let out = redact(input);
            assert!(out.contains(&format!("[REDACTED:{kind}]")), "{input} -> {out}");
        }
        assert!(!redact("password: hunter2").contains("hunter2"));
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for s in ["gpt-4o-2024-08-06", "version 1.2.3", "trace 4bf92f3577b34da6a3ce929d0e0e4736", "ask-me-anything"] {
            assert!(matches!(redact(s), std::borrow::Cow::Borrowed(_)), "{s}");
        }
    }
}
