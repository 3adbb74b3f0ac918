//! The typed errors `install()` and the other public entry points return.
//!
//! Every configuration error names the setting (an environment variable or a
//! builder method) and the value that was rejected, so a user can fix it
//! without reading our source, except where the value may hold a secret:
//! no error carries a secret. A setting whose name says it holds one
//! (headers, keys, secrets, tokens, passwords) has its value withheld (its
//! length is shown), and every other value and reason goes through the
//! same scrubbing as every diagnostic: URLs without password, query string
//! or fragment, and the redaction rules.

use std::borrow::Cow;
use std::fmt;

/// Where a rejected configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// An environment variable, by name (e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`).
    Env(&'static str),
    /// A builder method, by name (e.g. `Builder::endpoint`).
    Builder(&'static str),
}

impl Setting {
    /// Whether values of this setting may be secrets, so are never shown:
    /// header lists (`OTEL_EXPORTER_OTLP_HEADERS` carries API keys), keys,
    /// secrets, tokens and passwords.
    pub fn holds_secret(&self) -> bool {
        let name = match self {
            Setting::Env(n) | Setting::Builder(n) => n.to_ascii_lowercase(),
        };
        ["header", "key", "secret", "token", "password", "credential"].iter().any(|w| name.contains(w))
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setting::Env(name) => write!(f, "environment variable {name}"),
            Setting::Builder(name) => write!(f, "builder setting `{name}`"),
        }
    }
}

/// Errors from setting up or running the observra pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value could not be used.
    #[error("invalid {setting}: {value:?}: {reason}")]
    InvalidConfig {
        /// The setting that held the value.
        setting: Setting,
        /// The value as it was given.
        value: String,
        /// What is wrong with it and what is allowed.
        reason: String,
    },
    /// `install()` was called while an earlier installation is still active.
    #[error(
        "observra is already installed; drop the first guard (or call observra::shutdown()) before installing again"
    )]
    AlreadyInstalled,
    /// A global `tracing` subscriber without `observra::layer()` is already set.
    #[error(
        "a global tracing subscriber is already set and it does not include observra::layer(); add `.with(observra::layer())` to your registry before calling install()"
    )]
    ForeignSubscriber,
    /// An exporter could not be built (for example, its HTTP client failed to start).
    #[error("could not build the {backend} exporter: {reason}")]
    Exporter {
        /// The backend that failed.
        backend: &'static str,
        /// The underlying reason.
        reason: String,
    },
    /// A file the configuration names could not be opened.
    #[error("could not open {path:?} ({setting}): {source}")]
    Io {
        /// The setting that named the path.
        setting: Setting,
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An existing hash-chained JSONL file cannot be continued safely: its
    /// head anchor is unreadable or corrupt, or its last record does not
    /// verify with the audit key. Nothing is written, rather than silently
    /// starting a new chain.
    #[error("cannot continue the audit chain ({setting}): {source}")]
    AuditChain {
        /// The setting that named the file.
        setting: Setting,
        /// What is wrong, naming the file.
        source: AuditError,
    },
    /// Flushing or shutting down did not finish in time or failed.
    #[error("{operation} did not complete: {reason}")]
    Export {
        /// `flush` or `shutdown`.
        operation: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// There is no installed pipeline to act on.
    #[error("observra is not installed")]
    NotInstalled,
}

impl Error {
    /// A configuration error; the value and the reason are scrubbed here,
    /// once, so neither Display nor Debug can show a secret.
    pub(crate) fn invalid(setting: Setting, value: impl Into<String>, reason: impl Into<String>) -> Self {
        let (value, reason) = (value.into(), reason.into());
        if setting.holds_secret() {
            let reason = withhold(&reason, &value);
            let value = format!("<withheld: {} characters>", value.chars().count());
            return Error::InvalidConfig { setting, value, reason: crate::diag::scrub(&reason) };
        }
        Error::InvalidConfig { setting, value: crate::diag::scrub(&value), reason: crate::diag::scrub(&reason) }
    }

    /// An exporter that could not be built, its reason scrubbed.
    pub(crate) fn exporter(backend: &'static str, reason: impl AsRef<str>) -> Self {
        Error::Exporter { backend, reason: crate::diag::scrub(reason.as_ref()) }
    }

    /// The setting a configuration error names, if this is one.
    pub fn setting(&self) -> Option<&Setting> {
        match self {
            Error::InvalidConfig { setting, .. } | Error::Io { setting, .. } | Error::AuditChain { setting, .. } => {
                Some(setting)
            }
            _ => None,
        }
    }
}

/// `reason` without any piece of the secret `value` (its entries and their
/// parts, four characters or longer), for a reason that quotes what it rejects.
fn withhold(reason: &str, value: &str) -> String {
    let mut pieces: Vec<&str> = std::iter::once(value)
        .chain(value.split([',', ';', '=', ' ']))
        .map(str::trim)
        .filter(|p| p.len() >= 4)
        .collect();
    pieces.sort_by_key(|p| std::cmp::Reverse(p.len()));
    let mut out = reason.to_string();
    for p in pieces {
        out = out.replace(p, "<withheld>");
    }
    out
}

/// Result alias for observra's fallible operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Problems reading an encrypted or chained file back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line could not be decrypted or parsed.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Chooses the `error.type` an error is reported with.
///
/// By default `#[traced]` reports an `Err` with its Rust type name. Implement
/// this for your error type to report a low-cardinality class instead:
///
/// ```
/// use std::borrow::Cow;
///
/// enum FetchError { Timeout, Status(u16) }
///
/// impl observra::ErrorType for FetchError {
///     fn error_type(&self) -> Cow<'static, str> {
///         match self {
///             FetchError::Timeout => "timeout".into(),
///             FetchError::Status(code) => code.to_string().into(),
///         }
///     }
/// }
/// ```
pub trait ErrorType {
    /// The value of the `error.type` attribute for this error.
    fn error_type(&self) -> Cow<'static, str>;
}
