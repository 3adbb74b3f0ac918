//! Retrying an export: exponential back-off with jitter, `Retry-After`, and
//! a wait that ends early at shutdown. One copy for the webhook backend and
//! the OTLP/HTTP client (traces, metrics and logs alike).

use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "otlp")]
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The wait before retry number `attempt + 1`: `initial × 2^attempt`,
/// capped at `max`, with "equal jitter" (a uniform pick in [½, 1] of that).
pub(crate) fn backoff(initial: Duration, max: Duration, attempt: u32, random: u64) -> Duration {
    let base = initial.saturating_mul(1u32 << attempt.min(20)).min(max);
    let half = base / 2;
    let jitter = if half.is_zero() { 0 } else { random % (half.as_nanos() as u64 + 1) };
    half + Duration::from_nanos(jitter)
}

/// `Retry-After` as a wait: delay-seconds or an HTTP date (RFC 9110: the
/// IMF-fixdate and the two obsolete forms, parsed by `httpdate`). Anything
/// else, including numbers and years too large to represent, is `None`;
/// callers cap the wait.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
        // Too many digits for a u64: longer than any cap, so the longest wait.
        return Some(v.parse::<u64>().map(Duration::from_secs).unwrap_or(Duration::MAX));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Sleeps `wait`, checking `stop` (given the instant the wait would end)
/// every 20 ms; false, at once, when `stop` says the wait must not happen.
pub(crate) fn pause(wait: Duration, stop: impl Fn(Instant) -> bool) -> bool {
    let until = crate::base::deadline::until(wait);
    loop {
        if stop(until) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep(until.saturating_duration_since(now).min(Duration::from_millis(20)));
    }
}

/// When retries must have ended: unset until shutdown starts, then a
/// moment before its deadline, so a backend's thread gives up on a batch
/// (and counts it) while shutdown still waits for it.
#[derive(Debug, Clone, Default)]
#[cfg(feature = "otlp")]
pub(crate) struct RetryEnd(Arc<Mutex<Option<Instant>>>);

#[cfg(feature = "otlp")]
impl RetryEnd {
    /// From now on, no retry may wait past `at`.
    pub(crate) fn set(&self, at: Instant) {
        if let Ok(mut end) = self.0.lock() {
            *end = Some(at);
        }
    }

    /// Whether a wait ending at `wait_ends` would cross the end.
    pub(crate) fn crossed_by(&self, wait_ends: Instant) -> bool {
        self.0.lock().map(|end| end.is_some_and(|end| wait_ends >= end)).unwrap_or(true)
    }
}

/// A seed for [`next_random`]: the clock and the process id.
pub(crate) fn seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ (std::process::id() as u64).rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15
}

/// splitmix64 over a shared counter: jitter and idempotency keys, not secrets.
pub(crate) fn next_random(state: &AtomicU64) -> u64 {
    let mut z = state.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO), "a past date: now");
        let future = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT").expect("parses");
        assert!(future > Duration::from_secs(365 * 86_400));
        for bad in ["soon", "-1", "Sun, 06 Nov 1994 25:00:00 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", ""] {
            assert_eq!(parse_retry_after(bad), None, "{bad}");
        }
    }

    #[test]
    fn huge_retry_after_values_never_panic_and_are_capped_by_the_caller() {
        // A year of 12 and of 19 digits (the debug build used to overflow), and a 20-digit delay.
        for v in ["Fri, 31 Dec 999999999999 23:59:59 GMT", "Fri, 31 Dec 9999999999999999999 23:59:59 GMT"] {
            assert_eq!(parse_retry_after(v), None, "{v}");
        }
        assert_eq!(parse_retry_after("99999999999999999999"), Some(Duration::MAX), "longer than any cap");
        // The pause itself saturates.
        let _ = crate::base::deadline::until(Duration::MAX);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        for (attempt, base) in [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1000), (30, 1000)] {
            for r in [0, 1, u64::MAX / 3, u64::MAX] {
                let w = backoff(initial, max, attempt, r);
                let base = Duration::from_millis(base);
                assert!(w >= base / 2 && w <= base, "attempt {attempt}: {w:?} not in [{:?}, {base:?}]", base / 2);
            }
        }
    }

    #[test]
    #[cfg(feature = "otlp")]
    fn a_pause_that_would_cross_the_end_does_not_happen() {
        let end = RetryEnd::default();
        assert!(pause(Duration::ZERO, |at| end.crossed_by(at)), "no end set");
        end.set(Instant::now() + Duration::from_secs(60));
        assert!(!pause(Duration::from_secs(3600), |at| end.crossed_by(at)));
        assert!(pause(Duration::from_millis(1), |at| end.crossed_by(at)));
    }
}
