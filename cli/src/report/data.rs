//! The report model as the JSON the page's script reads: what `page.js`
//! expects, field by field, in one place. Times on the page are
//! milliseconds since the epoch (a run's start, as JavaScript dates count)
//! and microseconds from the trace's start (a span's bars), so no figure
//! needs more precision than a JavaScript number has.

use serde_json::{Map, Value, json};

use super::model::{Model, Run, Selection};
use crate::spans::Span;
use crate::summary::format_time;

/// Longest string value embedded whole (captured messages can be long).
pub const MAX_STRING_BYTES: usize = 64 * 1024;

/// What the page says about how it was made.
pub struct Origin<'a> {
    /// The files and folders given.
    pub sources: &'a [std::path::PathBuf],
    /// When the page was made, ns since the epoch.
    pub generated_ns: u64,
    /// What was selected.
    pub selection: &'a Selection,
    /// Problems with the input, one line each.
    pub warnings: &'a [String],
}

/// The page's data.
pub fn page_data(model: &Model, origin: &Origin<'_>) -> Value {
    let sel = origin.selection;
    let traces: Map<String, Value> =
        model.runs.iter().filter_map(|r| r.tree.as_ref().map(|_| (r.trace_id.clone(), trace(model, r)))).collect();
    json!({
        "generated": format_time(origin.generated_ns),
        "sources": origin.sources.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "selection": {
            "since": sel.period.since.map(format_time),
            "until": sel.period.until.map(format_time),
            "trace": sel.trace,
        },
        "limits": {
            "max_spans": sel.max_spans,
            "max_runs": sel.max_runs,
            "traces": model.traces_total,
            "runs_left_out": model.runs_left_out,
            "spans_left_out": model.spans_left_out,
        },
        "warnings": origin.warnings,
        "totals": model.totals,
        "runs": model.runs.iter().map(run).collect::<Vec<_>>(),
        "traces": traces,
    })
}

fn run(r: &Run) -> Value {
    let detail = match &r.tree {
        Some(t) if t.len() == r.spans => "full",
        Some(_) => "partial",
        None => "none",
    };
    json!({
        "trace_id": r.trace_id,
        "root": r.root,
        "service": r.service,
        "start_ms": r.start_ns as f64 / 1e6,
        "duration_ms": r.duration_ns() as f64 / 1e6,
        "status": if r.failed() { "error" } else { "ok" },
        "spans": r.spans,
        "errors": r.errors,
        "llm_calls": r.llm_calls,
        "tool_calls": r.tool_calls,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cost_usd": r.cost_usd,
        "budget_crossings": r.budget_crossings,
        "evaluations": r.evaluations,
        "agents": r.agents,
        "models": r.models,
        "detail": detail,
    })
}

/// One embedded trace: its spans in tree order, resources listed once.
fn trace(model: &Model, r: &Run) -> Value {
    let spans = &model.spans[r.range.clone()];
    let mut resources: Vec<&Map<String, Value>> = Vec::new();
    let nodes = r.tree.as_deref().unwrap_or_default();
    let rows: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let s = &spans[n.index];
            let resource = resources.iter().position(|x| *x == &s.resource).unwrap_or_else(|| {
                resources.push(&s.resource);
                resources.len() - 1
            });
            let mut row = span(s, r.start_ns);
            row["parent"] = n.parent.map(|p| spans[p].span_id.clone()).into();
            row["depth"] = n.depth.into();
            row["resource"] = resource.into();
            row
        })
        .collect();
    json!({"resources": resources, "spans": rows})
}

/// Microseconds from `origin` to `ns` (negative for a span that started
/// before the trace's first, which cannot happen, but costs nothing).
fn offset_us(ns: u64, origin: u64) -> f64 {
    (ns as f64 - origin as f64) / 1e3
}

fn span(s: &Span, origin: u64) -> Value {
    let events: Vec<Value> = s
        .events
        .iter()
        .map(|e| {
            let at = e["time_unix_nano"].as_u64().map(|t| offset_us(t, origin));
            json!({"name": e["name"], "at_us": at, "attributes": clamp(e["attributes"].clone())})
        })
        .collect();
    json!({
        "id": s.span_id,
        "parent_span_id": s.parent_span_id,
        "name": s.name,
        "kind": s.kind,
        "status": s.status_code,
        "message": s.status_message,
        "start_us": offset_us(s.start_ns, origin),
        "duration_us": s.end_ns.saturating_sub(s.start_ns) as f64 / 1e3,
        "attributes": clamp(Value::Object(s.attributes.clone())),
        "events": events,
        "links": s.links,
    })
}

/// `v` with every string longer than [`MAX_STRING_BYTES`] cut (at a
/// character boundary) and marked with how much was left out.
fn clamp(v: Value) -> Value {
    match v {
        Value::String(s) if s.len() > MAX_STRING_BYTES => {
            let mut end = MAX_STRING_BYTES;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            Value::String(format!("{}… [{} more bytes not embedded in this page]", &s[..end], s.len() - end))
        }
        Value::Array(a) => Value::Array(a.into_iter().map(clamp).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, clamp(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_are_cut_at_a_character_boundary_and_say_so() {
        let long = "é".repeat(MAX_STRING_BYTES);
        let Value::String(cut) = clamp(json!(long)) else { panic!() };
        assert!(cut.len() < long.len() && cut.starts_with("éé"));
        assert!(cut.ends_with(&format!("[{} more bytes not embedded in this page]", long.len() - MAX_STRING_BYTES)));
        assert_eq!(clamp(json!({"a": ["short"]})), json!({"a": ["short"]}));
    }
}
