//! `observra summary`: tokens, cost, errors and latency (and, of streamed
//! calls, the time to the first chunk) per model, agent and tool, and
//! evaluation scores per evaluation, agent and model, over files and an
//! optional time range. `observra report` shows the same totals.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::spans::Span;

/// Accumulated figures of one group.
#[derive(Default)]
struct Group {
    calls: u64,
    errors: u64,
    input_tokens: f64,
    output_tokens: f64,
    cost_usd: f64,
    durations_ms: Vec<f64>,
    /// Of streamed calls: the time to their first chunk.
    first_chunk_ms: Vec<f64>,
}

/// `sum` plus the amount (tokens, cost) attribute `key` of `s`: a negative
/// or non-finite figure in the file adds nothing, and the sum saturates at
/// `f64::MAX` (never a negative or infinite total).
pub fn add_amount(sum: f64, s: &Span, key: &str) -> f64 {
    (sum + s.amount_attr(key).unwrap_or(0.0)).min(f64::MAX)
}

impl Group {
    /// Counts a call: its outcome and timings, not its amounts (see `add_amounts`).
    fn add(&mut self, s: &Span) {
        self.calls = self.calls.saturating_add(1);
        self.errors = self.errors.saturating_add(u64::from(s.failed()));
        self.durations_ms.push(s.duration_ms());
        if let Some(secs) = s.amount_attr(observra::semconv::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) {
            self.first_chunk_ms.push(secs * 1000.0);
        }
    }
    fn add_amounts(&mut self, s: &Span, input: &str, output: &str, cost: &str) {
        self.input_tokens = add_amount(self.input_tokens, s, input);
        self.output_tokens = add_amount(self.output_tokens, s, output);
        self.cost_usd = add_amount(self.cost_usd, s, cost);
    }
    fn quantile(&self, q: f64) -> f64 {
        observra::analytics::percentile(&mut self.durations_ms.clone(), q).unwrap_or(0.0)
    }
    fn to_json(&self) -> Value {
        let mut group = self.figures();
        if !self.first_chunk_ms.is_empty() {
            let q = |q| observra::analytics::percentile(&mut self.first_chunk_ms.clone(), q).unwrap_or(0.0);
            group["time_to_first_chunk_ms"] =
                json!({"streams": self.first_chunk_ms.len(), "p50": q(0.5), "p95": q(0.95)});
        }
        group
    }
    fn figures(&self) -> Value {
        json!({
            "calls": self.calls,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": {"p50": self.quantile(0.5), "p95": self.quantile(0.95), "max": self.quantile(1.0)},
        })
    }
}

/// The amounts a call's span records of itself: input and output tokens, cost.
const OWN: [&str; 3] = ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "observra.cost.usd"];
/// The amounts an agent's span records of what ran beneath it.
const BENEATH: [&str; 3] = ["observra.total.input_tokens", "observra.total.output_tokens", "observra.total.cost.usd"];

/// The summary of `spans`.
pub fn summarize(spans: &[Span]) -> Value {
    let mut models: BTreeMap<String, Group> = BTreeMap::new();
    let mut agents: BTreeMap<String, Group> = BTreeMap::new();
    let mut tools: BTreeMap<String, Group> = BTreeMap::new();
    for s in spans {
        let (group, amounts) = if s.is_llm_call() {
            (models.entry(s.str_attr("gen_ai.request.model").unwrap_or("unknown").to_string()), OWN)
        } else if s.is_agent() {
            // An agent's own usage attributes (rig writes them) repeat what ran beneath it: its totals alone count.
            (agents.entry(s.str_attr("gen_ai.agent.name").unwrap_or("unnamed").to_string()), BENEATH)
        } else if s.is_tool_call() {
            (tools.entry(s.str_attr("gen_ai.tool.name").unwrap_or("unnamed").to_string()), OWN)
        } else {
            continue;
        };
        let g = group.or_default();
        g.add(s);
        let [input, output, cost] = amounts;
        g.add_amounts(s, input, output, cost);
    }
    let evaluations = evaluations(spans);
    let section =
        |m: BTreeMap<String, Group>| -> Value { Value::Object(m.into_iter().map(|(k, g)| (k, g.to_json())).collect()) };
    let total_cost = models.values().fold(0.0, |acc, g| (acc + g.cost_usd).min(f64::MAX));
    let traces: std::collections::HashSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    json!({
        "spans": spans.len(),
        "traces": traces.len(),
        "errors": spans.iter().filter(|s| s.failed()).count(),
        "cost_usd": total_cost,
        "models": section(models),
        "agents": section(agents),
        "tools": section(tools),
        "evaluations": evaluations,
    })
}

/// Scores of one evaluation for one agent and model.
#[derive(Default)]
struct Scores {
    count: u64,
    scored: u64,
    sum: f64,
    labels: BTreeMap<String, u64>,
}

/// Every `gen_ai.evaluation.result` event, grouped by evaluation name, the
/// graded call's agent and its model: count, mean score, labels. The
/// model is the graded span's (a late evaluation's span is the graded
/// call's child, and carries it); the agent the nearest agent above.
fn evaluations(spans: &[Span]) -> Value {
    let by_id: std::collections::HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let parent = |s: &Span| s.parent_span_id.as_deref().and_then(|p| by_id.get(p).copied());
    let agent_of = |s: &Span| -> String {
        let mut cur = Some(s);
        let mut hops = 0;
        while let (Some(c), true) = (cur, hops < 64) {
            if let Some(a) = c.str_attr("gen_ai.agent.name") {
                return a.to_string();
            }
            cur = parent(c);
            hops += 1;
        }
        "none".to_string()
    };
    let mut groups: BTreeMap<(String, String, String), Scores> = BTreeMap::new();
    for s in spans {
        for e in &s.events {
            if e["name"] != "gen_ai.evaluation.result" {
                continue;
            }
            let a = &e["attributes"];
            let name = a["gen_ai.evaluation.name"].as_str().unwrap_or("unnamed").to_string();
            let model = s
                .str_attr("gen_ai.request.model")
                .or_else(|| parent(s).and_then(|p| p.str_attr("gen_ai.request.model")))
                .unwrap_or("none")
                .to_string();
            let g = groups.entry((name, agent_of(s), model)).or_default();
            g.count += 1;
            if let Some(v) = a["gen_ai.evaluation.score.value"].as_f64() {
                g.scored += 1;
                g.sum += v;
            }
            if let Some(l) = a["gen_ai.evaluation.score.label"].as_str() {
                *g.labels.entry(l.to_string()).or_default() += 1;
            }
        }
    }
    Value::Array(
        groups
            .into_iter()
            .map(|((name, agent, model), g)| {
                json!({
                    "evaluation": name,
                    "agent": agent,
                    "model": model,
                    "count": g.count,
                    "mean_score": if g.scored > 0 { json!(g.sum / g.scored as f64) } else { Value::Null },
                    "labels": g.labels,
                })
            })
            .collect(),
    )
}

/// The summary as aligned text tables.
pub fn table(summary: &Value) -> String {
    let mut out = format!(
        "{} spans in {} traces, {} errors, cost ${:.6}\n",
        summary["spans"],
        summary["traces"],
        summary["errors"],
        summary["cost_usd"].as_f64().unwrap_or(0.0)
    );
    for (title, key) in [("model", "models"), ("agent", "agents"), ("tool", "tools")] {
        let Some(groups) = summary[key].as_object().filter(|g| !g.is_empty()) else { continue };
        out.push_str(&format!(
            "\n{:<28} {:>6} {:>6} {:>10} {:>10} {:>12} {:>9} {:>9}\n",
            title, "calls", "errors", "in tok", "out tok", "cost USD", "p50 ms", "p95 ms"
        ));
        for (name, g) in groups {
            out.push_str(&format!(
                "{:<28} {:>6} {:>6} {:>10} {:>10} {:>12.6} {:>9.2} {:>9.2}\n",
                name,
                g["calls"].as_u64().unwrap_or(0),
                g["errors"].as_u64().unwrap_or(0),
                g["input_tokens"].as_f64().unwrap_or(0.0),
                g["output_tokens"].as_f64().unwrap_or(0.0),
                g["cost_usd"].as_f64().unwrap_or(0.0),
                g["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
                g["latency_ms"]["p95"].as_f64().unwrap_or(0.0),
            ));
        }
    }
    if let Some(evals) = summary["evaluations"].as_array().filter(|e| !e.is_empty()) {
        out.push_str(&format!(
            "\n{:<20} {:<20} {:<20} {:>6} {:>10}  labels\n",
            "evaluation", "agent", "model", "count", "mean"
        ));
        for e in evals {
            let labels: Vec<String> = e["labels"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            let mean = e["mean_score"].as_f64().map_or("-".to_string(), |m| format!("{m:.3}"));
            out.push_str(&format!(
                "{:<20} {:<20} {:<20} {:>6} {:>10}  {}\n",
                e["evaluation"].as_str().unwrap_or(""),
                e["agent"].as_str().unwrap_or(""),
                e["model"].as_str().unwrap_or(""),
                e["count"].as_u64().unwrap_or(0),
                mean,
                labels.join(" ")
            ));
        }
    }
    out
}

/// Why a `--since`/`--until` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeError {
    /// Neither a duration nor an RFC 3339 time. `detail` is the date
    /// parser's reason when the text looked like a date.
    Unrecognised { text: String, detail: Option<String> },
    /// A duration back from now longer than nanoseconds in a `u64` can
    /// count (213503 days, about 584 years).
    DurationTooLong { text: String },
    /// An RFC 3339 time before 1970-01-01T00:00:00Z, which span times
    /// (nanoseconds since the epoch) cannot express.
    BeforeEpoch { text: String },
}

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unrecognised { text, detail } => {
                write!(
                    f,
                    "{text:?} is neither a duration (30s, 15m, 2h, 7d) nor an RFC 3339 time (2026-11-23T09:00:00Z)"
                )?;
                detail.as_ref().map_or(Ok(()), |d| write!(f, ": {d}"))
            }
            Self::DurationTooLong { text } => {
                write!(f, "{text:?} is too long a duration: at most {MAX_DAYS}d (about 584 years) can be counted back")
            }
            Self::BeforeEpoch { text } => write!(f, "{text:?} is before 1970-01-01T00:00:00Z, where span times begin"),
        }
    }
}

impl std::error::Error for TimeError {}

const NANOS_PER_SEC: u64 = 1_000_000_000;
/// The longest duration, in days, whose nanoseconds fit a `u64`.
const MAX_DAYS: u64 = u64::MAX / (86_400 * NANOS_PER_SEC);

/// Parses `--since`/`--until`: a duration back from now (`30s`, `15m`,
/// `2h`, `7d`) or an RFC 3339 time (`2026-11-23T09:00:00Z`, or with an
/// offset such as `+02:00`); returns ns since the epoch. A duration reaching
/// back past the epoch gives the epoch; one too long to count in
/// nanoseconds is an error. A time past the year 2554, where nanoseconds no
/// longer fit a `u64`, saturates to `u64::MAX`.
pub fn parse_time(text: &str, now_ns: u64) -> Result<u64, TimeError> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    let t = text.trim();
    if let Some((i, unit)) = t.char_indices().last() {
        let unit_secs: Option<u64> = match unit {
            's' => Some(1),
            'm' => Some(60),
            'h' => Some(3600),
            'd' => Some(86_400),
            _ => None,
        };
        if let Some(unit_secs) = unit_secs {
            let too_long = || TimeError::DurationTooLong { text: text.to_string() };
            match t[..i].parse::<u64>() {
                Ok(n) => {
                    let ns =
                        n.checked_mul(unit_secs).and_then(|s| s.checked_mul(NANOS_PER_SEC)).ok_or_else(too_long)?;
                    return Ok(now_ns.saturating_sub(ns));
                }
                Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => return Err(too_long()),
                Err(_) => {}
            }
        }
    }
    let date = OffsetDateTime::parse(t, &Rfc3339).map_err(|e| {
        let b = t.as_bytes();
        let looks_like_date = b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
        TimeError::Unrecognised { text: text.to_string(), detail: looks_like_date.then(|| e.to_string()) }
    })?;
    let ns = date.unix_timestamp_nanos();
    if ns < 0 {
        return Err(TimeError::BeforeEpoch { text: text.to_string() });
    }
    Ok(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// `ns` since the epoch as RFC 3339 UTC with nanoseconds, the form of the
/// JSONL files' `start_time`: `2026-11-23T09:41:00.123456789Z`.
pub fn format_time(ns: u64) -> String {
    // Every u64 of nanoseconds (up to the year 2554) is a date `time` holds.
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{TimeError, format_time, parse_time, summarize};

    const NOW: u64 = 1_795_426_860_000_000_000; // 2026-11-23T09:41:00Z

    #[test]
    fn an_agent_whose_span_also_carries_usage_counts_its_tokens_once() {
        // rig's agent span records usage of its own besides observra's totals.
        let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rig-agent.jsonl"));
        let spans = crate::spans::read_file(path).unwrap();
        let agent = spans.iter().find(|s| s.is_agent()).unwrap();
        assert!(agent.num_attr("gen_ai.usage.input_tokens").is_some(), "the fixture still shows the case");
        let s = summarize(&spans);
        let (a, m) = (&s["agents"]["support"], &s["models"]["gpt-4o-mini"]);
        assert_eq!(a["input_tokens"], m["input_tokens"], "{s:#}");
        assert_eq!(a["output_tokens"], m["output_tokens"], "{s:#}");
        assert_eq!(a["cost_usd"], m["cost_usd"], "{s:#}");
    }

    #[test]
    fn times_parse_as_durations_or_rfc3339() {
        assert_eq!(parse_time("2026-11-23T09:41:00Z", 0), Ok(NOW));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z", 0), Ok(1_500_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:00.000000001Z", 0), Ok(1));
        assert_eq!(parse_time("2026-11-23T10:41:00+01:00", 0), Ok(NOW), "an offset is converted to UTC");
        assert_eq!(parse_time("2024-02-29T00:00:00Z", 0), Ok(1_709_164_800_000_000_000), "a leap day");
        assert_eq!(parse_time("2h", 10_000_000_000_000), Ok(10_000_000_000_000 - 7_200_000_000_000));
        assert_eq!(parse_time("30m", NOW), Ok(NOW - 1_800_000_000_000));
        assert_eq!(parse_time(" 7d ", NOW), Ok(NOW - 7 * 86_400_000_000_000));
        assert_eq!(parse_time("45s", NOW), Ok(NOW - 45_000_000_000));
        assert!(parse_time("yesterday", 0).is_err());
        assert_eq!(parse_time("2999-01-01T00:00:00Z", 0), Ok(u64::MAX), "far future saturates");
    }

    #[test]
    fn bad_and_huge_values_are_typed_errors_never_overflow() {
        for text in ["300000000000d", "213504d", "99999999999999999999999999d", "18446744074s"] {
            let e = parse_time(text, NOW).unwrap_err();
            assert_eq!(e, TimeError::DurationTooLong { text: text.to_string() });
            assert!(e.to_string().contains("too long a duration"), "{e}");
        }
        // The longest countable duration, and any reaching past the epoch, give the epoch.
        assert_eq!(parse_time("213503d", NOW), Ok(0));
        assert_eq!(parse_time("36500d", NOW), Ok(0));
        assert_eq!(parse_time("213503d", u64::MAX), Ok(u64::MAX - 213_503 * 86_400 * 1_000_000_000));

        let e = parse_time("1969-12-31T23:59:59Z", NOW).unwrap_err();
        assert!(matches!(e, TimeError::BeforeEpoch { .. }), "{e:?}");
        let e = parse_time("2026-02-30T00:00:00Z", NOW).unwrap_err();
        assert!(matches!(&e, TimeError::Unrecognised { detail: Some(_), .. }), "{e:?}");
        assert!(e.to_string().contains("day"), "names the bad part: {e}");
        for text in ["last tuesday", "", "d", "-5m", "5M", "2026-11-23", "2026-11-23T09:41:00", "2026-11-23T25:00:00Z"]
        {
            assert!(matches!(parse_time(text, NOW), Err(TimeError::Unrecognised { .. })), "{text:?}");
        }
    }

    #[test]
    fn times_format_as_the_jsonl_files_do() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(format_time(NOW + 123_456_789), "2026-11-23T09:41:00.123456789Z");
        assert_eq!(format_time(1_709_164_800_000_000_000), "2024-02-29T00:00:00.000000000Z");
        assert_eq!(format_time(u64::MAX), "2554-07-21T23:34:33.709551615Z");
    }

    proptest! {
        #[test]
        fn formatted_times_parse_back_exactly(ns in any::<u64>()) {
            prop_assert_eq!(parse_time(&format_time(ns), 0), Ok(ns));
        }

        #[test]
        fn any_duration_or_text_gives_a_time_or_an_error_never_a_panic(
            n in any::<u64>(), unit in "[smhdx]", now in any::<u64>(), text in "\\PC{0,40}",
        ) {
            let _ = parse_time(&format!("{n}{unit}"), now);
            let _ = parse_time(&format!("{n}0000{unit}"), now);
            let _ = parse_time(&text, now);
        }
    }
}
