//! `observra summary`: tokens, cost, errors and latency per model, agent and
//! tool, and evaluation scores per evaluation, agent and model, over files
//! and an optional time range.

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
}

impl Group {
    fn add(&mut self, s: &Span) {
        self.calls += 1;
        self.errors += u64::from(s.failed());
        self.input_tokens += s.num_attr("gen_ai.usage.input_tokens").unwrap_or(0.0);
        self.output_tokens += s.num_attr("gen_ai.usage.output_tokens").unwrap_or(0.0);
        self.cost_usd += s.num_attr("observra.cost.usd").unwrap_or(0.0);
        self.durations_ms.push(s.duration_ms());
    }
    fn quantile(&self, q: f64) -> f64 {
        observra::analytics::percentile(&mut self.durations_ms.clone(), q).unwrap_or(0.0)
    }
    fn to_json(&self) -> Value {
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

/// The summary of `spans`.
pub fn summarize(spans: &[Span]) -> Value {
    let mut models: BTreeMap<String, Group> = BTreeMap::new();
    let mut agents: BTreeMap<String, Group> = BTreeMap::new();
    let mut tools: BTreeMap<String, Group> = BTreeMap::new();
    for s in spans {
        if s.is_llm_call() {
            let model = s.str_attr("gen_ai.request.model").unwrap_or("unknown");
            models.entry(model.to_string()).or_default().add(s);
        } else if s.is_agent() {
            let agent = s.str_attr("gen_ai.agent.name").unwrap_or("unnamed");
            let g = agents.entry(agent.to_string()).or_default();
            g.add(s);
            g.input_tokens += s.num_attr("observra.total.input_tokens").unwrap_or(0.0);
            g.output_tokens += s.num_attr("observra.total.output_tokens").unwrap_or(0.0);
            g.cost_usd += s.num_attr("observra.total.cost.usd").unwrap_or(0.0);
        } else if s.is_tool_call() {
            let tool = s.str_attr("gen_ai.tool.name").unwrap_or("unnamed");
            tools.entry(tool.to_string()).or_default().add(s);
        }
    }
    let evaluations = evaluations(spans);
    let section =
        |m: BTreeMap<String, Group>| -> Value { Value::Object(m.into_iter().map(|(k, g)| (k, g.to_json())).collect()) };
    let total_cost = models.values().fold(0.0, |acc, g| acc + g.cost_usd);
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

/// Parses `--since`/`--until`: a duration back from now (`30s`, `15m`,
/// `2h`, `7d`) or an RFC 3339 UTC time (`2026-11-23T09:00:00Z`); returns ns
/// since the epoch.
pub fn parse_time(text: &str, now_ns: u64) -> Result<u64, String> {
    let t = text.trim();
    if let Some((num, unit)) = t.char_indices().last().map(|(i, c)| (&t[..i], c)) {
        if let Ok(n) = num.parse::<u64>() {
            let secs = match unit {
                's' => Some(n),
                'm' => Some(n * 60),
                'h' => Some(n * 3600),
                'd' => Some(n * 86_400),
                _ => None,
            };
            if let Some(secs) = secs {
                return Ok(now_ns.saturating_sub(secs * 1_000_000_000));
            }
        }
    }
    // YYYY-MM-DDTHH:MM:SS[.fraction]Z
    let bad = || format!("{text:?} is neither a duration (30s, 15m, 2h, 7d) nor an RFC 3339 UTC time");
    let b = t.as_bytes();
    if b.len() < 20 || !t.ends_with('Z') || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| t.get(r).and_then(|s| s.parse::<i64>().ok()).ok_or_else(bad);
    let (y, mo, d, h, mi, s) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = t.get(19..t.len() - 1).unwrap_or("");
    let nanos = match frac.strip_prefix('.') {
        Some(digits) if !digits.is_empty() && digits.len() <= 9 => {
            digits.parse::<u64>().map_err(|_| bad())? * 10u64.pow(9 - digits.len() as u32)
        }
        Some(_) => return Err(bad()),
        None => 0,
    };
    // Days from civil (Howard Hinnant).
    let (yy, mm) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    // Past the year 2554 nanoseconds no longer fit a u64: saturate.
    u64::try_from(secs).map(|s| s.saturating_mul(1_000_000_000).saturating_add(nanos)).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_parse_as_durations_or_rfc3339() {
        assert_eq!(parse_time("2026-11-23T09:41:00Z", 0), Ok(1_795_426_860_000_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z", 0), Ok(1_500_000_000));
        assert_eq!(parse_time("2h", 10_000_000_000_000), Ok(10_000_000_000_000 - 7_200_000_000_000));
        assert!(parse_time("yesterday", 0).is_err());
        assert_eq!(parse_time("2999-01-01T00:00:00Z", 0), Ok(u64::MAX), "far future saturates");
    }
}
