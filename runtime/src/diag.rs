//! observra's own diagnostics: what goes wrong inside the pipeline, told to
//! the person running the program, the way the OpenTelemetry SDKs' internal
//! logs do.
//!
//! - The first export failure of each backend is reported at once, with the
//!   backend, its endpoint, the cause (connection refused, an HTTP status,
//!   TLS, a timeout) and what happens next.
//! - After that, at most one line per backend per minute, with counts.
//! - At shutdown, one line per backend that lost anything (failed, dropped
//!   or abandoned spans), and one for metric points that were not delivered.
//! - A clean run prints nothing.
//!
//! Lines go to standard error, or through `tracing` at WARN (target
//! `observra`) when the user's own subscriber is in charge; never through
//! observra's own exported spans (the export threads are suppressed).
//! `OBSERVRA_LOG` (or the standard `OTEL_LOG_LEVEL`) sets the level: `off`,
//! `error`, `warn` (the default), `info` or `debug`.
//!
//! Every message is scrubbed before it is written or stored: header values
//! (`OTEL_EXPORTER_OTLP_*HEADERS`, webhook headers), the webhook secret and
//! URL passwords never appear, in a line or in [`crate::health`].

use std::io::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// How much observra says about its own trouble (`OBSERVRA_LOG`, `OTEL_LOG_LEVEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum DiagnosticLevel {
    /// Nothing.
    Off,
    /// Only what loses data at shutdown.
    Error,
    /// Export failures (first, then once a minute) and losses at shutdown. The default.
    #[default]
    Warn,
    /// Also recoveries after failures.
    Info,
    /// Also every failed export call.
    Debug,
}

impl DiagnosticLevel {
    /// Parses `off|none|error|warn|warning|info|debug` (any case).
    pub(crate) fn parse(v: &str) -> Option<Self> {
        Some(match v.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "0" => Self::Off,
            "error" => Self::Error,
            "warn" | "warning" => Self::Warn,
            "info" => Self::Info,
            "debug" | "trace" => Self::Debug,
            _ => return None,
        })
    }
}

/// Where the lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Standard error: observra owns the subscriber, or there is none.
    Stderr,
    /// `tracing` events at the line's level, target `observra`: the user's subscriber prints them.
    Tracing,
}

static LEVEL: AtomicU8 = AtomicU8::new(DiagnosticLevel::Warn as u8);
static ROUTE: AtomicU8 = AtomicU8::new(0);
/// Values that must never be printed (header values, secrets).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// The shortest secret that is scrubbed: shorter values (`1`, `on`) would
/// blank out ordinary words of a message.
const MIN_SECRET_LEN: usize = 4;

/// Sets the level, the route and the values to scrub (at install).
pub(crate) fn configure(level: DiagnosticLevel, route: Route, secrets: Vec<String>) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    ROUTE.store(matches!(route, Route::Tracing) as u8, Ordering::Relaxed);
    let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= MIN_SECRET_LEN).collect();
    // Longest first, so a secret containing another is removed whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    *SECRETS.write().unwrap_or_else(|p| p.into_inner()) = secrets;
}

fn enabled(level: DiagnosticLevel) -> bool {
    level != DiagnosticLevel::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// `text` with every configured secret replaced by `<redacted>`, every
/// URL without its password, query string and fragment, then through the
/// built-in redaction rules (bearer and basic credentials, provider keys:
/// the engine the export path uses). Every message, error and `health()`
/// value observra makes goes through here.
pub(crate) fn scrub(text: &str) -> String {
    let mut out = strip_url_secrets(text);
    if let Ok(secrets) = SECRETS.read() {
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "<redacted>");
            }
        }
    }
    crate::redact::redact(&out).into_owned()
}

/// Every URL in `text` without what may hold a secret:
/// `scheme://user:password@host/path?query#fragment` →
/// `scheme://user:<redacted>@host/path` (query strings and fragments often
/// carry tokens: webhook codes, signed URLs).
fn strip_url_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let url_end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ']' | '>' | ',' | ';'))
            .unwrap_or(tail.len());
        let url = &tail[..url_end];
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let authority = &url[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon]);
                out.push_str(":<redacted>");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        let path = &url[authority_end..];
        out.push_str(path.split(['?', '#']).next().unwrap_or_default());
        rest = &tail[url_end..];
    }
    out.push_str(rest);
    out
}

/// The backend and where it exports to, as every diagnostic names them.
pub(crate) fn who(backend: &str, target: &str) -> String {
    if target.is_empty() || target == backend { backend.to_string() } else { format!("{backend} {target}") }
}

/// An endpoint as it may be shown: no password, no query string (webhook
/// URLs often carry a token there).
pub(crate) fn display_endpoint(url: &str) -> String {
    strip_url_secrets(url)
}

/// Writes one line, if `level` is enabled. Never panics, never fails.
pub(crate) fn emit(level: DiagnosticLevel, message: &str) {
    if !enabled(level) {
        return;
    }
    let message = scrub(message);
    if ROUTE.load(Ordering::Relaxed) == 1 {
        match level {
            DiagnosticLevel::Error => tracing::error!(target: "observra", "{message}"),
            DiagnosticLevel::Warn => tracing::warn!(target: "observra", "{message}"),
            DiagnosticLevel::Info => tracing::info!(target: "observra", "{message}"),
            _ => tracing::debug!(target: "observra", "{message}"),
        }
    } else {
        let line = format!("observra: {message}\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// A short cause for an export error, for a person: the exporters report
/// errors as text (the SDK's `OTelSdkError` carries a string), so this
/// reads the text for the usual causes and otherwise keeps its start.
pub(crate) fn cause(error: &str) -> String {
    let e = error.to_ascii_lowercase();
    let status = http_status(&e);
    if e.contains("connection refused") || e.contains("tcp connect error") && e.contains("refused") {
        "connection refused".into()
    } else if let Some(code) = status {
        match code {
            401 => "HTTP 401 Unauthorized: check the credentials in the headers".into(),
            403 => "HTTP 403 Forbidden".into(),
            404 => "HTTP 404 Not Found: check the endpoint's path".into(),
            c => format!("HTTP {c}"),
        }
    } else if e.contains("unknownissuer") || e.contains("unknown issuer") || e.contains("self-signed") {
        "TLS error: the collector's certificate is not trusted (add its CA with OTEL_EXPORTER_OTLP_CERTIFICATE)".into()
    } else if e.contains("notvalidforname") || e.contains("not valid for name") {
        "TLS error: the collector's certificate is not valid for this host name".into()
    } else if e.contains("expired") && e.contains("certificate") {
        "TLS error: the collector's certificate has expired".into()
    } else if e.contains("certificate") {
        "TLS error: invalid certificate".into()
    } else if e.contains("tls") || e.contains("ssl") || e.contains("handshake") {
        "TLS error".into()
    } else if e.contains("timed out") || e.contains("timeout") || e.contains("deadline") {
        "timed out".into()
    } else if e.contains("dns") || e.contains("lookup") || e.contains("resolve") {
        "the host name did not resolve".into()
    } else if e.contains("no space left") {
        "no space left on the device".into()
    } else {
        let mut short: String = scrub(error).chars().take(200).collect();
        if error.chars().count() > 200 {
            short.push('…');
        }
        short
    }
}

/// An HTTP status named in an error text (`status code: 401`, `HTTP 503`, `status: 401`).
fn http_status(lower: &str) -> Option<u16> {
    for marker in ["status code: ", "status code ", "http ", "status: ", "status "] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(marker) {
            let start = from + i + marker.len();
            let digits: String = lower[start..].chars().take_while(char::is_ascii_digit).collect();
            if digits.len() == 3 {
                if let Ok(code) = digits.parse::<u16>() {
                    if (400..600).contains(&code) {
                        return Some(code);
                    }
                }
            }
            from = start;
        }
    }
    None
}

/// `3 spans`, `1 span`, `2 metric points`, `1 metric point`.
fn count(n: u64, unit: &str) -> String {
    match (n, unit.strip_suffix('s')) {
        (1, Some(one)) => format!("1 {one}"),
        _ => format!("{n} {unit}"),
    }
}

/// How often the summary line of repeated failures may be printed, per backend.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Reports one backend's failures: the first at once, then a summary at
/// most once a minute. Used from the backend's export thread only.
#[derive(Debug)]
pub(crate) struct Reporter {
    backend: &'static str,
    target: String,
    unit: &'static str,
    state: Mutex<ReporterState>,
}

#[derive(Debug, Default)]
struct ReporterState {
    first_told: bool,
    /// When the last line was printed.
    last_line: Option<Instant>,
    /// Since the last line: failed export calls, items they carried, items dropped at a full queue.
    failed_exports: u64,
    failed_items: u64,
    dropped_items: u64,
    last_cause: Option<String>,
    /// The backend's dropped total last seen.
    seen_dropped: u64,
    /// Failed calls since the last success.
    failing_streak: u64,
}

impl Reporter {
    /// A reporter for `backend` exporting to `target` (already fit to show), counting `unit`s.
    pub(crate) fn new(backend: &'static str, target: &str, unit: &'static str) -> Self {
        Reporter { backend, target: display_endpoint(target), unit, state: Mutex::new(ReporterState::default()) }
    }

    pub(crate) fn who(&self) -> String {
        who(self.backend, &self.target)
    }

    /// An export call carrying `items` failed with `error`; `next` says what happens now.
    pub(crate) fn export_failed(&self, items: u64, error: &str, next: &str) {
        let cause = cause(error);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.failing_streak += 1;
        emit(
            DiagnosticLevel::Debug,
            &format!("{}: export of {} failed: {}", self.who(), count(items, self.unit), scrub(error)),
        );
        if st.tell_first() {
            drop(st);
            emit(
                DiagnosticLevel::Warn,
                &format!(
                    "{}: export failed ({cause}): {} {next}; further failures are summarised at most once a minute",
                    self.who(),
                    count(items, self.unit)
                ),
            );
            return;
        }
        st.failed_exports += 1;
        st.failed_items += items;
        st.last_cause = Some(cause);
        self.summarise_if_due(st);
    }

    /// Items dropped at a full queue: `total` is the backend's dropped count so far.
    pub(crate) fn dropped_so_far(&self, total: u64, capacity: usize) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if total <= st.seen_dropped {
            return;
        }
        let new = total - st.seen_dropped;
        st.seen_dropped = total;
        if st.tell_first() {
            drop(st);
            emit(
                DiagnosticLevel::Warn,
                &format!(
                    "{}: the queue is full ({capacity} {}): {} dropped; the backend is slower than the program \
                     (raise OTEL_BSP_MAX_QUEUE_SIZE or check the backend); further drops are summarised at most once a minute",
                    self.who(),
                    self.unit,
                    count(new, self.unit)
                ),
            );
            return;
        }
        st.dropped_items += new;
        self.summarise_if_due(st);
    }

    /// An export call succeeded.
    pub(crate) fn export_ok(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.failing_streak > 0 {
            let n = std::mem::take(&mut st.failing_streak);
            drop(st);
            emit(DiagnosticLevel::Info, &format!("{}: exporting again after {n} failed export(s)", self.who()));
        }
    }

    /// Prints the pending summary if a minute has passed since the last line.
    pub(crate) fn tick(&self) {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.summarise_if_due(st);
    }

    fn summarise_if_due(&self, mut st: std::sync::MutexGuard<'_, ReporterState>) {
        let due = st.last_line.is_none_or(|t| t.elapsed() >= SUMMARY_EVERY);
        if !due || (st.failed_exports == 0 && st.dropped_items == 0) {
            return;
        }
        let since = st.last_line.map(|t| t.elapsed().as_secs()).unwrap_or(0);
        let mut parts = Vec::new();
        if st.failed_exports > 0 {
            parts.push(format!(
                "{} more failed export(s), {} {} lost (last: {})",
                st.failed_exports,
                st.failed_items,
                self.unit,
                st.last_cause.as_deref().unwrap_or("unknown")
            ));
        }
        if st.dropped_items > 0 {
            parts.push(format!("{} {} dropped at a full queue", st.dropped_items, self.unit));
        }
        st.failed_exports = 0;
        st.failed_items = 0;
        st.dropped_items = 0;
        st.last_line = Some(Instant::now());
        drop(st);
        emit(DiagnosticLevel::Warn, &format!("{}: {} in the last {since} s", self.who(), parts.join("; ")));
    }
}

impl ReporterState {
    /// True (once) when the first line is due: it is told at once.
    fn tell_first(&mut self) -> bool {
        if self.first_told {
            return false;
        }
        self.first_told = true;
        self.last_line = Some(Instant::now());
        true
    }
}

/// The shutdown line of a backend that lost items: `None` when nothing was lost.
pub(crate) fn loss_line(
    who: &str,
    unit: &str,
    failed: u64,
    dropped: u64,
    abandoned: u64,
    last_error: Option<&str>,
) -> Option<String> {
    let lost = failed + dropped + abandoned;
    if lost == 0 {
        return None;
    }
    let mut why = Vec::new();
    if failed > 0 {
        why.push(last_error.map(cause).unwrap_or_else(|| "export failed".into()));
    }
    if dropped > 0 {
        why.push(format!("{dropped} dropped at a full queue or after shutdown"));
    }
    if abandoned > 0 {
        why.push(format!("{abandoned} still unsent when the shutdown deadline passed"));
    }
    Some(format!("{who}: {} not delivered ({})", count(lost, unit), why.join("; ")))
}

/// The last transport error of one exporter, taken when its failure is
/// reported (the OTLP/HTTP client keeps it; the SDK reduces it to
/// "network error").
pub(crate) type LastCause = std::sync::Arc<std::sync::Mutex<Option<String>>>;

/// An export error with its transport cause, when the client kept one.
pub(crate) fn explain(error: String, cause: Option<&LastCause>) -> String {
    let taken = cause.and_then(|c| c.lock().ok().and_then(|mut c| c.take()));
    match taken {
        Some(c) if error.contains("network error") => format!("{error}: {c}"),
        _ => error,
    }
}

/// Metric data points delivered / not delivered by the OTLP metric exporter.
pub(crate) static METRIC_POINTS_EXPORTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub(crate) static METRIC_POINTS_FAILED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What the OTLP metric exporter failed to deliver, for diagnostics.
#[derive(Debug)]
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub(crate) struct MetricsDiag {
    pub(crate) reporter: crate::diag::Reporter,
    pub(crate) cause: Option<crate::diag::LastCause>,
    pub(crate) failed_points: std::sync::atomic::AtomicU64,
    pub(crate) last_error: std::sync::Mutex<Option<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_configured_secrets_credentials_and_url_passwords() {
        configure(DiagnosticLevel::Warn, Route::Stderr, vec!["hunter2-token".into(), "ab".into()]);
        let s = scrub("sent hunter2-token; Authorization: Bearer abc.def-123, to https://u:p4ss@h:1/x?k=1 ab");
        assert!(!s.contains("hunter2") && !s.contains("abc.def") && !s.contains("p4ss"), "{s}");
        assert!(s.ends_with(" ab"), "short values are not scrubbed: {s}");
        assert_eq!(
            display_endpoint("https://u:pw@hooks.example/in?token=xyz"),
            "https://u:<redacted>@hooks.example/in"
        );
    }

    #[test]
    fn causes_are_named() {
        assert_eq!(
            cause("error sending request: tcp connect error: Connection refused (os error 111)"),
            "connection refused"
        );
        assert!(
            cause("HTTP export failed. Url: http://x/v1/traces, Status Code: 401, Response: ...")
                .starts_with("HTTP 401")
        );
        assert_eq!(cause("webhook: HTTP 503 after 3 attempt(s)"), "HTTP 503");
        assert_eq!(cause("operation timed out"), "timed out");
        assert_eq!(
            cause("invalid peer certificate: UnknownIssuer"),
            "TLS error: the collector's certificate is not trusted (add its CA with OTEL_EXPORTER_OTLP_CERTIFICATE)"
        );
        assert_eq!(cause("tls handshake eof"), "TLS error");
    }

    #[test]
    fn a_loss_line_names_counts_and_causes() {
        assert_eq!(loss_line("otlp x", "spans", 0, 0, 0, None), None);
        let l = loss_line("otlp http://127.0.0.1:9/v1/traces", "spans", 13, 0, 0, Some("Connection refused")).unwrap();
        assert_eq!(l, "otlp http://127.0.0.1:9/v1/traces: 13 spans not delivered (connection refused)");
    }
}
