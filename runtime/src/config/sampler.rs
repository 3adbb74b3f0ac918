//! The [`Sampler`]: which spans are recorded, set in code or read from
//! `OTEL_TRACES_SAMPLER` (with `OTEL_TRACES_SAMPLER_ARG`) and
//! `OBSERVRA_TRACES_SAMPLER` (observra's tail sampler and its
//! `OBSERVRA_TAIL_*` settings), and validated either way.

use super::env::{EnvSource, parse_millis, parse_positive, parse_positive_millis, pick};
use crate::collect::tail::KeepInteresting;
use crate::error::{Error, Result, Setting};

/// Which spans are recorded. Mirrors `OTEL_TRACES_SAMPLER`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Record every span (`always_on`).
    AlwaysOn,
    /// Record nothing (`always_off`).
    AlwaysOff,
    /// Record a fraction of traces, decided by trace id (`traceidratio`).
    TraceIdRatio(f64),
    /// Follow the parent's decision; roots always sampled (`parentbased_always_on`, the default).
    ParentBasedAlwaysOn,
    /// Follow the parent's decision; roots never sampled (`parentbased_always_off`).
    ParentBasedAlwaysOff,
    /// Follow the parent's decision; roots sampled by ratio (`parentbased_traceidratio`).
    ParentBasedTraceIdRatio(f64),
    /// Tail sampling in process (`OBSERVRA_TRACES_SAMPLER=keep_interesting`):
    /// see [`Sampler::keep_interesting`].
    KeepInteresting(KeepInteresting),
}

impl Sampler {
    /// Tail sampling in process: every span is recorded, and the collector
    /// holds a trace's spans until its local root ends, then keeps the
    /// whole trace when any span failed, any budget was crossed, the root
    /// took longer than [`KeepInteresting::slower_than`], or a ratio draw on
    /// the trace id says so ([`KeepInteresting::ratio`]); otherwise it drops
    /// it, counted in `observra.pipeline.sampler.dropped` by reason.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use observra::Sampler;
    ///
    /// let _telemetry = observra::init()
    ///     .sampler(Sampler::keep_interesting().ratio(0.05).slower_than(Duration::from_secs(20)))
    ///     .install();
    /// ```
    ///
    /// GenAI, agent and HTTP metrics count every call whatever it decides.
    /// A span is held once it is fit to leave (content policy, redaction
    /// and the span limits applied: captured content is cut at 64 KiB by
    /// default), and memory is bounded ([`KeepInteresting::max_traces`],
    /// [`KeepInteresting::max_spans`], [`KeepInteresting::max_bytes`],
    /// [`KeepInteresting::max_spans_per_trace`]),
    /// and a trace whose root does not end within
    /// [`KeepInteresting::timeout`] is decided on what is held, by the same
    /// rules without the duration one. The decision is local: a trace whose
    /// root is in another process is decided here on the spans made here
    /// (cross-service tail sampling is the OpenTelemetry Collector's job).
    pub fn keep_interesting() -> KeepInteresting {
        KeepInteresting::default()
    }
}

impl From<KeepInteresting> for Sampler {
    fn from(k: KeepInteresting) -> Sampler {
        Sampler::KeepInteresting(k)
    }
}

/// The sampler set in code, validated; else the one the environment names;
/// else `parentbased_always_on`.
pub(super) fn resolve(code: Option<Sampler>, env: &EnvSource) -> Result<Sampler> {
    match code {
        Some(s) => validate_sampler(s),
        None => parse_sampler(env),
    }
}

fn validate_sampler(s: Sampler) -> Result<Sampler> {
    match s {
        Sampler::TraceIdRatio(r)
        | Sampler::ParentBasedTraceIdRatio(r)
        | Sampler::KeepInteresting(KeepInteresting { ratio: r, .. })
            if !(0.0..=1.0).contains(&r) =>
        {
            Err(Error::invalid(Setting::Builder("sampler"), r.to_string(), "the ratio must be between 0 and 1"))
        }
        Sampler::KeepInteresting(k) => {
            let zero = [
                ("keep_interesting().max_traces", k.max_traces),
                ("keep_interesting().max_spans", k.max_spans),
                ("keep_interesting().max_bytes", k.max_bytes),
                ("keep_interesting().max_spans_per_trace", k.max_spans_per_trace),
            ]
            .into_iter()
            .find(|(_, n)| *n == 0);
            if let Some((name, n)) = zero {
                return Err(Error::invalid(Setting::Builder(name), n.to_string(), "must be at least 1"));
            }
            if k.timeout.is_zero() {
                return Err(Error::invalid(
                    Setting::Builder("keep_interesting().timeout"),
                    "0".to_string(),
                    "must be longer than zero",
                ));
            }
            Ok(s)
        }
        s => Ok(s),
    }
}

/// `OBSERVRA_TRACES_SAMPLER=keep_interesting` and its settings, which
/// override `OTEL_TRACES_SAMPLER`; `None` when it is not set.
fn parse_tail_sampler(env: &EnvSource) -> Result<Option<Sampler>> {
    let Some(name) = env.get("OBSERVRA_TRACES_SAMPLER") else { return Ok(None) };
    if !name.trim().eq_ignore_ascii_case("keep_interesting") {
        return Err(Error::invalid(
            Setting::Env("OBSERVRA_TRACES_SAMPLER"),
            name,
            "unsupported sampler; expected keep_interesting (the OpenTelemetry samplers go in OTEL_TRACES_SAMPLER)",
        ));
    }
    let d = KeepInteresting::default();
    let ratio = pick(None, env, "OBSERVRA_TRACES_SAMPLER_ARG", |v| match v.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("expected a ratio between 0 and 1"),
    })?;
    Ok(Some(Sampler::KeepInteresting(KeepInteresting {
        ratio: ratio.unwrap_or(d.ratio),
        slower_than: pick(None, env, "OBSERVRA_TAIL_SLOWER_THAN_MS", parse_millis)?.unwrap_or(d.slower_than),
        timeout: pick(None, env, "OBSERVRA_TAIL_TIMEOUT_MS", parse_positive_millis)?.unwrap_or(d.timeout),
        max_traces: pick(None, env, "OBSERVRA_TAIL_MAX_TRACES", parse_positive)?.unwrap_or(d.max_traces),
        max_spans: pick(None, env, "OBSERVRA_TAIL_MAX_SPANS", parse_positive)?.unwrap_or(d.max_spans),
        max_bytes: pick(None, env, "OBSERVRA_TAIL_MAX_BYTES", parse_positive)?.unwrap_or(d.max_bytes),
        max_spans_per_trace: pick(None, env, "OBSERVRA_TAIL_MAX_SPANS_PER_TRACE", parse_positive)?
            .unwrap_or(d.max_spans_per_trace),
    })))
}

fn parse_sampler(env: &EnvSource) -> Result<Sampler> {
    if let Some(tail) = parse_tail_sampler(env)? {
        return Ok(tail);
    }
    let Some(name) = env.get("OTEL_TRACES_SAMPLER") else {
        return Ok(Sampler::ParentBasedAlwaysOn);
    };
    let ratio = || -> Result<f64> {
        let Some(arg) = env.get("OTEL_TRACES_SAMPLER_ARG") else {
            return Ok(1.0);
        };
        match arg.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
            _ => Err(Error::invalid(Setting::Env("OTEL_TRACES_SAMPLER_ARG"), arg, "expected a ratio between 0 and 1")),
        }
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "always_on" => Ok(Sampler::AlwaysOn),
        "always_off" => Ok(Sampler::AlwaysOff),
        "traceidratio" => Ok(Sampler::TraceIdRatio(ratio()?)),
        "parentbased_always_on" => Ok(Sampler::ParentBasedAlwaysOn),
        "parentbased_always_off" => Ok(Sampler::ParentBasedAlwaysOff),
        "parentbased_traceidratio" => Ok(Sampler::ParentBasedTraceIdRatio(ratio()?)),
        _ => Err(Error::invalid(
            Setting::Env("OTEL_TRACES_SAMPLER"),
            name,
            "unsupported sampler; expected one of: always_on, always_off, traceidratio, \
             parentbased_always_on, parentbased_always_off, parentbased_traceidratio",
        )),
    }
}
