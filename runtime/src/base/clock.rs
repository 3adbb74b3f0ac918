//! The span clock: what the caller's thread reads for a span's start and
//! end ([`stamp`]), and what turns those stamps into wall-clock times off
//! the caller's thread ([`Anchor`]).
//!
//! Reading the wall clock costs about 40 ns on the machines this runs on
//! (a `clock_gettime` through the vDSO); a span takes two. Where the kernel
//! itself keeps time with the CPU's time-stamp counter (its clocksource is
//! `tsc`, which it only chooses when the counter is invariant and in step
//! across cores), a stamp is that counter (`rdtsc`, about 10 ns), and the
//! collector converts it with a rate measured once per process against
//! the monotonic clock and an anchor it refreshes against the wall clock.
//! Anywhere else a stamp is simply nanoseconds since the Unix epoch.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How stamps are taken in this process, decided once ([`calibrate`]).
#[derive(Clone, Copy)]
enum Source {
    /// The time-stamp counter, at this many nanoseconds per tick.
    #[cfg(target_arch = "x86_64")]
    Tsc { ns_per_tick: f64 },
    /// Nanoseconds since the Unix epoch.
    Wall,
}

static SOURCE: OnceLock<Source> = OnceLock::new();

/// Wall-clock nanoseconds since the Unix epoch (0 before it).
fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn tsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions; it is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Decides the source once per process: the time-stamp counter when the
/// kernel keeps time with it, its rate measured over 2 ms of the monotonic
/// clock. Called at install, never on a caller's hot path.
pub(crate) fn calibrate() {
    SOURCE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let kernel_uses_tsc =
                std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
                    .is_ok_and(|s| s.trim() == "tsc");
            if kernel_uses_tsc {
                let (t0, c0) = (Instant::now(), tsc());
                std::thread::sleep(Duration::from_millis(2));
                let (t1, c1) = (Instant::now(), tsc());
                let ticks = c1.saturating_sub(c0);
                if ticks > 0 {
                    return Source::Tsc { ns_per_tick: t1.duration_since(t0).as_nanos() as f64 / ticks as f64 };
                }
            }
        }
        Source::Wall
    });
}

/// A span's timestamp, in this process's source's units.
#[inline]
pub(crate) fn stamp() -> u64 {
    match SOURCE.get() {
        #[cfg(target_arch = "x86_64")]
        Some(Source::Tsc { .. }) => tsc(),
        _ => unix_ns(),
    }
}

/// Turns stamps into wall-clock times: a (stamp, wall clock) pair taken
/// together, and the rate. The collector refreshes it, so the wall clock's
/// own adjustments reach the spans.
#[derive(Clone, Copy)]
pub(crate) struct Anchor {
    stamp: u64,
    unix_ns: u64,
    ns_per_tick: f64,
}

impl Anchor {
    /// An anchor taken now.
    pub(crate) fn now() -> Self {
        let ns_per_tick = match SOURCE.get() {
            #[cfg(target_arch = "x86_64")]
            Some(Source::Tsc { ns_per_tick }) => *ns_per_tick,
            _ => 1.0,
        };
        let (stamp, unix_ns) = (stamp(), unix_ns());
        Anchor { stamp, unix_ns, ns_per_tick }
    }

    /// The wall-clock time of `stamp`.
    pub(crate) fn time(&self, stamp: u64) -> SystemTime {
        let delta = (stamp as f64 - self.stamp as f64) * self.ns_per_tick;
        let ns = (self.unix_ns as f64 + delta).max(0.0);
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    }

    /// Seconds from stamp `start` to stamp `end` (0 if `end` is earlier).
    pub(crate) fn seconds(&self, start: u64, end: u64) -> f64 {
        end.saturating_sub(start) as f64 * self.ns_per_tick / 1e9
    }
}

/// A time as RFC 3339 UTC with nanoseconds, as JSONL records write it.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    use std::fmt::Write as _;
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for all u64 days we meet.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut s = String::with_capacity(30);
    let _ = write!(
        s,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_nanos()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_convert_to_the_wall_clock_in_order() {
        calibrate();
        let before = SystemTime::now();
        let s = stamp();
        std::thread::sleep(Duration::from_millis(5));
        let e = stamp();
        let after = SystemTime::now();
        let anchor = Anchor::now();
        let (start, end) = (anchor.time(s), anchor.time(e));
        // Each stamp was taken between the two wall-clock readings around
        // it, whatever the scheduler did; the slack is the conversion's.
        let slack = Duration::from_millis(1);
        assert!(start + slack >= before, "{start:?} before {before:?}");
        assert!(end <= after + slack, "{end:?} after {after:?}");
        assert!(start <= end);
        // The sleep lasted at least 5 ms.
        assert!(anchor.seconds(s, e) >= 0.004, "{}", anchor.seconds(s, e));
        assert_eq!(anchor.seconds(e, s), 0.0);
    }
}
