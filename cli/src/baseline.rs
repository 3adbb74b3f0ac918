//! `observra baseline`: compute per-agent baselines from JSONL files, show
//! them, and check a run against them (exit code 1 when it is anomalous, so
//! it can gate CI). The figures and rules are `observra::analytics`'s.

use std::path::Path;

use observra::analytics::{Baseline, CheckReport, METRICS, RunMetrics, Verdict};
use serde_json::json;

use crate::spans::Span;

/// Runs per agent, newest last, keeping the last `last` of each agent.
pub fn select_runs(spans: &[Span], since_ns: Option<u64>, last: Option<usize>) -> Vec<RunMetrics> {
    let mut runs: Vec<RunMetrics> =
        observra::analytics::runs(spans).into_iter().filter(|r| since_ns.is_none_or(|t| r.start_ns >= t)).collect();
    if let Some(n) = last {
        let mut kept = Vec::new();
        let mut agents: Vec<String> = runs.iter().map(|r| r.agent.clone()).collect();
        agents.sort();
        agents.dedup();
        for agent in agents {
            let mine: Vec<_> = runs.iter().filter(|r| r.agent == agent).cloned().collect();
            kept.extend(mine.into_iter().rev().take(n));
        }
        kept.sort_by_key(|r| r.start_ns);
        runs = kept;
    }
    runs
}

/// Reads a baseline file.
pub fn load(path: &Path) -> Result<Baseline, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e} (create it with `observra baseline update`)", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a baseline file: {e}", path.display()))
}

/// Writes a baseline file.
pub fn save(path: &Path, baseline: &Baseline) -> Result<(), String> {
    let text = serde_json::to_string_pretty(baseline).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

/// One line per agent: the runs it was computed from, and a warning when too few.
pub fn update_summary(baseline: &Baseline) -> String {
    let mut out = String::new();
    for (agent, b) in &baseline.agents {
        out.push_str(&format!("{agent}: {} run(s)", b.runs));
        if b.runs < observra::analytics::MIN_RUNS {
            out.push_str(&format!(
                " (fewer than {}: runs of this agent will not be judged until there are more)",
                observra::analytics::MIN_RUNS
            ));
        }
        out.push('\n');
    }
    if baseline.agents.is_empty() {
        out.push_str("no agent runs found (spans with gen_ai.operation.name = invoke_agent)\n");
    }
    out
}

/// The baseline as a table: one row per agent and metric.
pub fn show_table(baseline: &Baseline) -> String {
    let mut out = format!("{:<20} {:>5} {:<15} {:>14} {:>14}\n", "agent", "runs", "metric", "mean", "std");
    for (agent, b) in &baseline.agents {
        for m in METRICS {
            if let Some(s) = b.metrics.get(m) {
                out.push_str(&format!("{agent:<20} {:>5} {m:<15} {:>14.6} {:>14.6}\n", b.runs, s.mean, s.std));
            }
        }
    }
    out
}

/// Check reports as a table.
pub fn check_table(reports: &[CheckReport]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!("run {} of agent {} (trace {}): {}\n", r.run_id, r.agent, r.trace_id, r.message));
        if r.findings.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "  {:<15} {:>14} {:>14} {:>14} {:>8}  {}\n",
            "metric", "value", "mean", "std", "z", "flag"
        ));
        for f in &r.findings {
            let z = f.z.map(|z| format!("{z:.2}")).unwrap_or_else(|| "-".into());
            let flag = if f.flagged { format!("ANOMALOUS {}", f.note) } else { String::new() };
            out.push_str(&format!(
                "  {:<15} {:>14.6} {:>14.6} {:>14.6} {:>8}  {}\n",
                f.metric,
                f.value,
                f.mean,
                f.std,
                z,
                flag.trim_end()
            ));
        }
    }
    out
}

/// Check reports as JSON.
pub fn check_json(reports: &[CheckReport]) -> serde_json::Value {
    json!({
        "anomalous": reports.iter().any(|r| r.verdict == Verdict::Anomalous),
        "runs": reports,
    })
}

/// The runs in `spans` identified by `id`: an agent span's id, or a trace id
/// (every agent run in the trace).
pub fn find_runs(spans: &[Span], id: &str) -> Vec<RunMetrics> {
    let id = id.trim().to_ascii_lowercase();
    observra::analytics::runs(spans).into_iter().filter(|r| r.run_id == id || r.trace_id == id).collect()
}
