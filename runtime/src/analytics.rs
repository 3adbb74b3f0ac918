//! Session analytics over recorded spans: per-run figures, a baseline of
//! what an agent's runs usually look like, and anomaly checks against it.
//!
//! Works offline on the JSONL records observra writes (see
//! `docs/jsonl-schema.md`), and inside a service on spans it reads back the
//! same way. The `observra baseline` command is a thin wrapper around this
//! module.
//!
//! A **run** is one agent span (`gen_ai.operation.name = invoke_agent`) with
//! everything below it. Its figures:
//!
//! | metric | meaning |
//! |---|---|
//! | `cost_usd` | sum of `observra.cost.usd` of the LLM calls in the run |
//! | `duration_s` | the agent span's duration |
//! | `llm_calls`, `tool_calls` | model calls and tool executions in the run |
//! | `error_rate` | failed calls / calls (LLM and tool) |
//! | `retry_rate` | tool calls that repeat the previous tool call with the same tool and the same arguments hash, / tool calls; the arguments are `gen_ai.tool.call.arguments` when content capture is on, otherwise only the tool name is compared |
//! | `input_tokens`, `output_tokens` | sums of `gen_ai.usage.*` |
//! | `distinct_tools` | different tool names used |
//!
//! A [`Baseline`] holds, per agent name, the mean and sample standard
//! deviation of each metric. [`Baseline::check`] flags every metric of a run
//! more than [`Rule::threshold`] standard deviations from the mean, either
//! way, provided it also differs from the mean by more than
//! [`Rule::min_change`] of the mean (10 % by default): a metric that barely
//! varies (durations dominated by model latency) is not an anomaly for a 2 %
//! change. Degenerate baselines are reported, never divided by: fewer than
//! [`MIN_RUNS`] runs gives [`Verdict::InsufficientBaseline`], and a metric
//! with zero variance flags a run that differs from the constant value by
//! more than `min_change` (any change, when the constant is 0).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fewest runs an agent's baseline needs before runs are checked against it.
pub const MIN_RUNS: usize = 3;

/// The metrics of a run, in the order they are reported.
pub const METRICS: [&str; 9] = [
    "cost_usd",
    "duration_s",
    "llm_calls",
    "tool_calls",
    "error_rate",
    "retry_rate",
    "input_tokens",
    "output_tokens",
    "distinct_tools",
];

/// One span as written to JSONL (the schema of `docs/jsonl-schema.md`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedSpan {
    /// Trace id, 32 hex digits.
    pub trace_id: String,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Parent span id, if any.
    pub parent_span_id: Option<String>,
    /// Span name.
    pub name: String,
    /// `internal`, `client`, `server`, `producer` or `consumer`.
    pub kind: String,
    /// Start, ns since the epoch.
    pub start_ns: u64,
    /// End, ns since the epoch.
    pub end_ns: u64,
    /// `unset`, `ok` or `error`.
    pub status_code: String,
    /// The status description.
    pub status_message: String,
    /// Typed attributes.
    pub attributes: Map<String, Value>,
    /// Events, as written.
    pub events: Vec<Value>,
    /// Links, as written.
    pub links: Vec<Value>,
    /// Resource attributes.
    pub resource: Map<String, Value>,
    /// Instrumentation scope name.
    pub scope_name: String,
    /// Instrumentation scope version.
    pub scope_version: Option<String>,
}

impl RecordedSpan {
    /// Reads a span from a JSONL record; an error names what is missing.
    pub fn from_json(v: &Value) -> Result<RecordedSpan, String> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let n = |k: &str| v.get(k).and_then(Value::as_u64);
        let obj = |k: &str| v.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        let arr = |k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(RecordedSpan {
            trace_id: s("trace_id").ok_or("no trace_id")?,
            span_id: s("span_id").ok_or("no span_id")?,
            parent_span_id: s("parent_span_id"),
            name: s("name").ok_or("no name")?,
            kind: s("kind").unwrap_or_else(|| "internal".into()),
            start_ns: n("start_time_unix_nano").ok_or("no start_time_unix_nano")?,
            end_ns: n("end_time_unix_nano").ok_or("no end_time_unix_nano")?,
            status_code: v["status"]["code"].as_str().unwrap_or("unset").to_string(),
            status_message: v["status"]["message"].as_str().unwrap_or("").to_string(),
            attributes: obj("attributes"),
            events: arr("events"),
            links: arr("links"),
            resource: obj("resource"),
            scope_name: v["scope"]["name"].as_str().unwrap_or("observra").to_string(),
            scope_version: v["scope"]["version"].as_str().map(str::to_string),
        })
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }
    /// A string attribute.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }
    /// A numeric attribute.
    pub fn num_attr(&self, key: &str) -> Option<f64> {
        self.attributes.get(key).and_then(Value::as_f64)
    }
    /// A numeric attribute that is an amount (tokens, cost): `None` when it
    /// is missing, negative or not finite, so sums of amounts never go
    /// negative.
    pub fn amount_attr(&self, key: &str) -> Option<f64> {
        self.num_attr(key).filter(|v| v.is_finite() && *v >= 0.0)
    }
    /// Whether the span ended in error.
    pub fn failed(&self) -> bool {
        self.status_code == "error"
    }
    /// `gen_ai.operation.name`, if any.
    pub fn operation(&self) -> Option<&str> {
        self.str_attr(observra_semconv::GEN_AI_OPERATION_NAME)
    }
    /// Whether this is a model call (chat, completion, generate_content, embeddings).
    pub fn is_llm_call(&self) -> bool {
        self.operation().is_some_and(|o| observra_semconv::operation::LLM.contains(&o))
    }
    /// Whether this is a tool execution.
    pub fn is_tool_call(&self) -> bool {
        self.operation() == Some(observra_semconv::operation::EXECUTE_TOOL)
    }
    /// Whether this is an agent run.
    pub fn is_agent(&self) -> bool {
        self.operation() == Some(observra_semconv::operation::INVOKE_AGENT)
    }
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunMetrics {
    /// `gen_ai.agent.name` (or the span name).
    pub agent: String,
    /// The agent span's id.
    pub run_id: String,
    /// The trace it belongs to.
    pub trace_id: String,
    /// Start, ns since the epoch.
    pub start_ns: u64,
    /// See the module docs.
    pub cost_usd: f64,
    /// See the module docs.
    pub duration_s: f64,
    /// See the module docs.
    pub llm_calls: f64,
    /// See the module docs.
    pub tool_calls: f64,
    /// See the module docs.
    pub error_rate: f64,
    /// See the module docs.
    pub retry_rate: f64,
    /// See the module docs.
    pub input_tokens: f64,
    /// See the module docs.
    pub output_tokens: f64,
    /// See the module docs.
    pub distinct_tools: f64,
}

impl RunMetrics {
    /// Each metric's value, in [`METRICS`] order.
    pub fn values(&self) -> [(&'static str, f64); 9] {
        [
            ("cost_usd", self.cost_usd),
            ("duration_s", self.duration_s),
            ("llm_calls", self.llm_calls),
            ("tool_calls", self.tool_calls),
            ("error_rate", self.error_rate),
            ("retry_rate", self.retry_rate),
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("distinct_tools", self.distinct_tools),
        ]
    }
}

/// Saturating sum of amounts: `f64::MAX` rather than infinity.
fn sum_amounts(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |sum, v| (sum + v).min(f64::MAX))
}

/// Every run in `spans` (spans of any number of traces, in any order).
///
/// Parent links that form a cycle (a span that is its own parent, or two
/// spans each other's) are followed once: every span is counted at most
/// once per run, and the walk always ends.
pub fn runs(spans: &[RecordedSpan]) -> Vec<RunMetrics> {
    let mut children: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        if let Some(p) = &s.parent_span_id {
            children.entry((s.trace_id.as_str(), p.as_str())).or_default().push(i);
        }
    }
    let mut out = Vec::new();
    for (a, agent) in spans.iter().enumerate().filter(|(_, s)| s.is_agent()) {
        // Everything below the agent span, each span once.
        let mut below = Vec::new();
        let mut seen = std::collections::HashSet::from([a]);
        let mut stack = vec![agent.span_id.as_str()];
        while let Some(id) = stack.pop() {
            for &c in children.get(&(agent.trace_id.as_str(), id)).into_iter().flatten() {
                if seen.insert(c) {
                    below.push(&spans[c]);
                    stack.push(spans[c].span_id.as_str());
                }
            }
        }
        below.sort_by_key(|s| s.start_ns);
        let llm: Vec<_> = below.iter().filter(|s| s.is_llm_call()).collect();
        let tools: Vec<_> = below.iter().filter(|s| s.is_tool_call()).collect();
        let calls = (llm.len() + tools.len()) as f64;
        let errors = llm.iter().chain(tools.iter()).filter(|s| s.failed()).count() as f64;
        let key = |s: &RecordedSpan| {
            (
                s.str_attr("gen_ai.tool.name").unwrap_or(&s.name).to_string(),
                s.attributes.get("gen_ai.tool.call.arguments").map(Value::to_string),
            )
        };
        let retries = tools.windows(2).filter(|w| key(w[0]) == key(w[1])).count() as f64;
        let distinct: BTreeSet<String> = tools.iter().map(|s| key(s).0).collect();
        let sum = |list: &[&&RecordedSpan], k: &str| sum_amounts(list.iter().filter_map(|s| s.amount_attr(k)));
        out.push(RunMetrics {
            agent: agent.str_attr("gen_ai.agent.name").unwrap_or(&agent.name).to_string(),
            run_id: agent.span_id.clone(),
            trace_id: agent.trace_id.clone(),
            start_ns: agent.start_ns,
            cost_usd: sum(&llm, observra_semconv::OBSERVRA_COST_USD),
            duration_s: agent.duration_ms() / 1000.0,
            llm_calls: llm.len() as f64,
            tool_calls: tools.len() as f64,
            error_rate: if calls > 0.0 { errors / calls } else { 0.0 },
            retry_rate: if tools.is_empty() { 0.0 } else { retries / tools.len() as f64 },
            input_tokens: sum(&llm, observra_semconv::GEN_AI_USAGE_INPUT_TOKENS),
            output_tokens: sum(&llm, observra_semconv::GEN_AI_USAGE_OUTPUT_TOKENS),
            distinct_tools: distinct.len() as f64,
        });
    }
    out.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then_with(|| a.run_id.cmp(&b.run_id)));
    out
}

/// Mean and sample standard deviation of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1); 0 with fewer than 2 runs.
    pub std: f64,
}

impl Stat {
    fn of(values: &[f64]) -> Stat {
        let n = values.len() as f64;
        if values.is_empty() {
            return Stat { mean: 0.0, std: 0.0 };
        }
        // Huge (finite) values whose sum overflows are divided before
        // summing; the spread saturates at `f64::MAX`.
        let sum = values.iter().sum::<f64>();
        let mean = if sum.is_finite() { sum / n } else { values.iter().map(|v| v / n).sum::<f64>().min(f64::MAX) };
        let var =
            if values.len() < 2 { 0.0 } else { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) };
        Stat { mean, std: var.sqrt().min(f64::MAX) }
    }
}

/// One agent's baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgentBaseline {
    /// Runs it was computed from.
    pub runs: usize,
    /// Start of the oldest and newest run, ns since the epoch.
    pub first_start_ns: u64,
    /// See `first_start_ns`.
    pub last_start_ns: u64,
    /// Per metric, by name (see [`METRICS`]).
    pub metrics: BTreeMap<String, Stat>,
}

/// Per-agent baselines; stored as a small JSON file by `observra baseline update`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Baseline {
    /// Format version of the file.
    pub version: u32,
    /// By agent name.
    pub agents: BTreeMap<String, AgentBaseline>,
}

impl Baseline {
    /// Computes the baseline of `runs`, grouped by agent name.
    pub fn compute(runs: &[RunMetrics]) -> Baseline {
        let mut by_agent: BTreeMap<&str, Vec<&RunMetrics>> = BTreeMap::new();
        for r in runs {
            by_agent.entry(r.agent.as_str()).or_default().push(r);
        }
        let agents = by_agent
            .into_iter()
            .map(|(agent, rs)| {
                let metrics = METRICS
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let values: Vec<f64> = rs.iter().map(|r| r.values()[i].1).collect();
                        (m.to_string(), Stat::of(&values))
                    })
                    .collect();
                let starts = rs.iter().map(|r| r.start_ns);
                let first_start_ns = starts.clone().min().unwrap_or(0);
                let last_start_ns = starts.max().unwrap_or(0);
                (agent.to_string(), AgentBaseline { runs: rs.len(), first_start_ns, last_start_ns, metrics })
            })
            .collect();
        Baseline { version: 1, agents }
    }

    /// Checks `run` against its agent's baseline (see [`Rule`]).
    pub fn check(&self, run: &RunMetrics, rule: Rule) -> CheckReport {
        let threshold = rule.threshold;
        let mut report = CheckReport {
            agent: run.agent.clone(),
            run_id: run.run_id.clone(),
            trace_id: run.trace_id.clone(),
            threshold,
            verdict: Verdict::Normal,
            message: String::new(),
            findings: Vec::new(),
        };
        let Some(base) = self.agents.get(&run.agent) else {
            report.verdict = Verdict::UnknownAgent;
            report.message = format!("no baseline for agent {:?}: run `observra baseline update` first", run.agent);
            return report;
        };
        if base.runs < MIN_RUNS {
            report.verdict = Verdict::InsufficientBaseline;
            report.message = format!(
                "the baseline of agent {:?} has {} run(s); at least {MIN_RUNS} are needed to judge a run",
                run.agent, base.runs
            );
            return report;
        }
        for (name, value) in run.values() {
            let Some(stat) = base.metrics.get(name) else { continue };
            // Relative to the mean; any change counts when the mean is 0.
            let changed = (value - stat.mean).abs() > rule.min_change * stat.mean.abs() + 1e-12;
            let (z, flagged, note) = if stat.std > 0.0 {
                let z = (value - stat.mean) / stat.std;
                (Some(z), z.abs() > threshold && changed, String::new())
            } else {
                let differs = changed;
                let note = if differs {
                    format!("every baseline run had {}; this run has {value}", stat.mean)
                } else {
                    String::new()
                };
                (None, differs, note)
            };
            report.findings.push(Finding { metric: name, value, mean: stat.mean, std: stat.std, z, flagged, note });
        }
        if report.findings.iter().any(|f| f.flagged) {
            report.verdict = Verdict::Anomalous;
            let names: Vec<_> = report.findings.iter().filter(|f| f.flagged).map(|f| f.metric).collect();
            report.message = format!("anomalous: {}", names.join(", "));
        } else {
            report.message = "within the baseline".into();
        }
        report
    }
}

/// When a metric is anomalous.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Rule {
    /// Standard deviations from the mean beyond which a metric is flagged (default 2).
    pub threshold: f64,
    /// Smallest change, as a fraction of the mean, that can be flagged (default 0.1).
    pub min_change: f64,
}

impl Default for Rule {
    fn default() -> Self {
        Rule { threshold: 2.0, min_change: 0.1 }
    }
}

impl Rule {
    /// The default rule with another threshold.
    pub fn threshold(threshold: f64) -> Self {
        Rule { threshold, ..Rule::default() }
    }
    /// This rule with another minimum change.
    pub fn min_change(self, min_change: f64) -> Self {
        Rule { min_change, ..self }
    }
}

/// The outcome of [`Baseline::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Every metric within the threshold.
    Normal,
    /// At least one metric beyond the threshold.
    Anomalous,
    /// The agent's baseline has fewer than [`MIN_RUNS`] runs.
    InsufficientBaseline,
    /// The baseline has no such agent.
    UnknownAgent,
}

/// One metric of a checked run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Finding {
    /// Metric name.
    pub metric: &'static str,
    /// This run's value.
    pub value: f64,
    /// Baseline mean.
    pub mean: f64,
    /// Baseline standard deviation.
    pub std: f64,
    /// Standard deviations from the mean (`None` when the baseline has no variance).
    pub z: Option<f64>,
    /// Whether it is beyond the threshold.
    pub flagged: bool,
    /// Why, when the plain z-score does not say it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A run checked against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// Agent name.
    pub agent: String,
    /// The run's agent span id.
    pub run_id: String,
    /// Its trace id.
    pub trace_id: String,
    /// The threshold used, in standard deviations.
    pub threshold: f64,
    /// The outcome.
    pub verdict: Verdict,
    /// One line saying why.
    pub message: String,
    /// Every metric, flagged or not.
    pub findings: Vec<Finding>,
}

/// The nearest-rank percentile: one definition for `health()`'s export
/// latencies and the CLI's summaries.
pub use crate::export::batch::percentile;

#[cfg(test)]
mod tests {
    use super::*;

    fn run(agent: &str, cost: f64, tools: f64) -> RunMetrics {
        RunMetrics {
            agent: agent.into(),
            run_id: format!("{cost}"),
            trace_id: String::new(),
            start_ns: 0,
            cost_usd: cost,
            duration_s: 1.0,
            llm_calls: 2.0,
            tool_calls: tools,
            error_rate: 0.0,
            retry_rate: 0.0,
            input_tokens: 100.0,
            output_tokens: 10.0,
            distinct_tools: 1.0,
        }
    }

    fn span(id: &str, parent: Option<&str>, attributes: Value) -> RecordedSpan {
        RecordedSpan::from_json(&serde_json::json!({
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": id, "parent_span_id": parent, "name": id,
            "start_time_unix_nano": 1, "end_time_unix_nano": 2, "attributes": attributes,
        }))
        .unwrap()
    }

    /// `runs` of `spans` on another thread, failing (not hanging) after 10 s.
    fn runs_within_10s(spans: Vec<RecordedSpan>) -> Vec<RunMetrics> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(runs(&spans));
        });
        rx.recv_timeout(std::time::Duration::from_secs(10)).expect("runs() ends on cyclic parent links")
    }

    #[test]
    fn cyclic_parent_links_are_followed_once() {
        let agent = || serde_json::json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"});
        let chat =
            |tokens: i64| serde_json::json!({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": tokens});
        // An agent that is its own parent, with one model call below it.
        let r = runs_within_10s(vec![span("a1", Some("a1"), agent()), span("c1", Some("a1"), chat(10))]);
        assert_eq!((r.len(), r[0].llm_calls, r[0].input_tokens), (1, 1.0, 10.0), "{r:?}");
        // Two spans each other's parent: the agent and a model call.
        let r = runs_within_10s(vec![span("a2", Some("c2"), agent()), span("c2", Some("a2"), chat(10))]);
        assert_eq!((r.len(), r[0].llm_calls, r[0].input_tokens), (1, 1.0, 10.0), "{r:?}");
        // A model call that is its own parent, below an agent.
        let r = runs_within_10s(vec![span("a3", None, agent()), span("c3", Some("c3"), chat(10))]);
        assert_eq!((r.len(), r[0].llm_calls), (1, 0.0), "{r:?}");
    }

    #[test]
    fn negative_and_huge_figures_never_make_a_negative_or_infinite_sum() {
        let agent = serde_json::json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"});
        let chat = |tokens: f64, cost: f64| serde_json::json!({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": tokens, "observra.cost.usd": cost});
        let spans = vec![
            span("a", None, agent),
            span("c1", Some("a"), chat(-1e6, -3.0)),
            span("c2", Some("a"), chat(f64::MAX, f64::MAX)),
            span("c3", Some("a"), chat(f64::MAX, f64::MAX)),
        ];
        let r = runs(&spans);
        assert_eq!((r[0].input_tokens, r[0].cost_usd), (f64::MAX, f64::MAX), "{r:?}");
        let b = Baseline::compute(&[r[0].clone(), r[0].clone(), r[0].clone()]);
        let s = b.agents["a"].metrics["cost_usd"];
        assert!(s.mean.is_finite() && s.std.is_finite(), "{s:?}");
    }

    #[test]
    fn flags_beyond_the_threshold_and_handles_degenerate_baselines() {
        let history: Vec<_> = [1.0, 1.2, 0.8, 1.1, 0.9].iter().map(|c| run("a", *c, 2.0)).collect();
        let b = Baseline::compute(&history);
        let s = b.agents["a"].metrics["cost_usd"];
        assert!((s.mean - 1.0).abs() < 1e-12 && (s.std - 0.158_113_883).abs() < 1e-6, "{s:?}");
        assert_eq!(b.check(&run("a", 1.05, 2.0), Rule::default()).verdict, Verdict::Normal);
        let bad = b.check(&run("a", 10.0, 2.0), Rule::default());
        assert_eq!(bad.verdict, Verdict::Anomalous);
        assert_eq!(bad.message, "anomalous: cost_usd");
        // Zero variance: tool_calls was always 2.
        let r = b.check(&run("a", 1.0, 3.0), Rule::default());
        let f = r.findings.iter().find(|f| f.metric == "tool_calls").unwrap();
        assert!(f.flagged && f.z.is_none() && f.note.contains("every baseline run had 2"), "{f:?}");
        // Beyond 2 sigma but within 10 % of the mean: not flagged; with min_change 0 it is.
        let near = b.check(&run("a", 1.35, 2.0), Rule::default());
        assert_eq!(near.verdict, Verdict::Anomalous, "35 % above the mean and 2.2 sigma");
        let history: Vec<_> = [100.0, 100.2, 99.8, 100.1, 99.9].iter().map(|c| run("a", *c, 2.0)).collect();
        let tight = Baseline::compute(&history);
        assert_eq!(tight.check(&run("a", 101.0, 2.0), Rule::default()).verdict, Verdict::Normal, "1 % off");
        assert_eq!(tight.check(&run("a", 101.0, 2.0), Rule::default().min_change(0.0)).verdict, Verdict::Anomalous);
        // Too few runs, unknown agent.
        let small = Baseline::compute(&history[..2]);
        assert_eq!(small.check(&run("a", 9.0, 2.0), Rule::default()).verdict, Verdict::InsufficientBaseline);
        assert_eq!(b.check(&run("b", 1.0, 2.0), Rule::default()).verdict, Verdict::UnknownAgent);
        assert_eq!(Stat::of(&[]), Stat { mean: 0.0, std: 0.0 });
        assert_eq!(Stat::of(&[4.0]), Stat { mean: 4.0, std: 0.0 });
    }
}
