//! What a report page shows, computed from the spans read: one run per
//! trace (root, start, duration, status, spans, model calls, tokens, cost,
//! budget crossings, evaluations), newest first; the tree of the newest
//! traces, within a cap on the spans embedded; the totals of
//! `observra summary` over the traces selected; and remarks on parent links
//! that form a cycle.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use observra::semconv as sc;
use serde_json::Value;

use crate::spans::{Period, Span};
use crate::summary;
use crate::tree::{self, Node};

/// The name of the warning event observra puts on the current span when a
/// budget is crossed (a `tracing` event, target `observra::budget`).
pub const BUDGET_EVENT: &str = "budget exceeded";

/// Which traces a report shows, and how much of them it embeds.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Only traces whose first span started in this period.
    pub period: Period,
    /// Only this trace.
    pub trace: Option<String>,
    /// Spans embedded in full (tree, attributes, events), newest traces
    /// first; older traces are listed as runs only.
    pub max_spans: usize,
    /// Runs listed, newest first; older traces count in the totals only.
    pub max_runs: usize,
}

/// One trace as a row of the runs table.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The trace id.
    pub trace_id: String,
    /// The name of its (earliest) root span.
    pub root: String,
    /// `service.name` of its root span.
    pub service: String,
    /// The earliest start and latest end of its spans, ns since the epoch.
    pub start_ns: u64,
    /// See `start_ns`.
    pub end_ns: u64,
    /// Its spans, and of them the ones that ended in error.
    pub spans: usize,
    /// See `spans`.
    pub errors: usize,
    /// Model calls and tool executions.
    pub llm_calls: usize,
    /// See `llm_calls`.
    pub tool_calls: usize,
    /// Tokens and cost of its model calls (as `observra summary` adds them).
    pub input_tokens: f64,
    /// See `input_tokens`.
    pub output_tokens: f64,
    /// See `input_tokens`.
    pub cost_usd: f64,
    /// Budget crossing events and evaluation results on its spans.
    pub budget_crossings: usize,
    /// See `budget_crossings`.
    pub evaluations: usize,
    /// Agent names and requested models in it, sorted.
    pub agents: Vec<String>,
    /// See `agents`.
    pub models: Vec<String>,
    /// Its spans in [`Model::spans`].
    pub range: Range<usize>,
    /// Its spans in tree order (indices into `range`), when embedded; fewer
    /// than `spans` when the cap cut the trace.
    pub tree: Option<Vec<Node>>,
}

impl Run {
    /// Its duration in ns.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
    /// Whether any of its spans ended in error.
    pub fn failed(&self) -> bool {
        self.errors > 0
    }
}

/// Everything a report page shows.
#[derive(Debug)]
pub struct Model {
    /// The selected spans, trace by trace.
    pub spans: Vec<Span>,
    /// Newest first, at most `max_runs`.
    pub runs: Vec<Run>,
    /// Traces selected (listed or not) and their spans.
    pub traces_total: usize,
    /// Traces not listed (older than the listed ones).
    pub runs_left_out: usize,
    /// Spans of the listed traces not embedded in full.
    pub spans_left_out: usize,
    /// The figures of `observra summary` over the selected spans.
    pub totals: Value,
    /// Spans placed at the top of their tree because their parent links
    /// form a cycle: (trace id, span id, name).
    pub cycles: Vec<(String, String, String)>,
}

/// Groups `spans` by trace and keeps the selected traces.
fn select(spans: Vec<Span>, selection: &Selection) -> Vec<Vec<Span>> {
    let mut order: HashMap<String, usize> = HashMap::new();
    let mut traces: Vec<Vec<Span>> = Vec::new();
    for s in spans {
        if selection.trace.as_ref().is_some_and(|t| !t.eq_ignore_ascii_case(&s.trace_id)) {
            continue;
        }
        let next = traces.len();
        let i = *order.entry(s.trace_id.clone()).or_insert(next);
        if i == next {
            traces.push(Vec::new());
        }
        traces[i].push(s);
    }
    traces.retain(|t| selection.period.contains(t.iter().map(|s| s.start_ns).min().unwrap_or(0)));
    traces
}

/// A run's figures from its spans (the tree and range are set by the caller).
fn run_of(spans: &[Span], root: &Span) -> Run {
    let llm: Vec<&Span> = spans.iter().filter(|s| s.is_llm_call()).collect();
    let sum = |key: &str| llm.iter().fold(0.0, |acc, s| summary::add_amount(acc, s, key));
    let events = |name: &str| spans.iter().flat_map(|s| &s.events).filter(|e| e["name"] == name).count();
    let names = |keep: fn(&Span) -> bool, key: &str| -> Vec<String> {
        let set: BTreeSet<&str> = spans.iter().filter(|s| keep(s)).filter_map(|s| s.str_attr(key)).collect();
        set.into_iter().map(str::to_string).collect()
    };
    Run {
        trace_id: root.trace_id.clone(),
        root: root.name.clone(),
        service: root.resource.get("service.name").and_then(Value::as_str).unwrap_or("").to_string(),
        start_ns: spans.iter().map(|s| s.start_ns).min().unwrap_or(0),
        end_ns: spans.iter().map(|s| s.end_ns).max().unwrap_or(0),
        spans: spans.len(),
        errors: spans.iter().filter(|s| s.failed()).count(),
        llm_calls: llm.len(),
        tool_calls: spans.iter().filter(|s| s.is_tool_call()).count(),
        input_tokens: sum(sc::GEN_AI_USAGE_INPUT_TOKENS),
        output_tokens: sum(sc::GEN_AI_USAGE_OUTPUT_TOKENS),
        cost_usd: sum(sc::OBSERVRA_COST_USD),
        budget_crossings: events(BUDGET_EVENT),
        evaluations: events(sc::GEN_AI_EVALUATION_EVENT),
        agents: names(Span::is_agent, sc::GEN_AI_AGENT_NAME),
        models: names(Span::is_llm_call, sc::GEN_AI_REQUEST_MODEL),
        range: 0..0,
        tree: None,
    }
}

/// Builds the model of the traces `selection` picks from `spans`.
pub fn build(spans: Vec<Span>, selection: &Selection) -> Model {
    let traces = select(spans, selection);
    let mut all = Vec::with_capacity(traces.iter().map(Vec::len).sum());
    let mut runs = Vec::with_capacity(traces.len());
    let mut cycles = Vec::new();
    for trace in traces {
        let nodes = tree::walk(&trace);
        let Some(top) = nodes.first() else { continue };
        let mut run = run_of(&trace, &trace[top.index]);
        for n in nodes.iter().filter(|n| n.breaks_cycle) {
            let s = &trace[n.index];
            cycles.push((s.trace_id.clone(), s.span_id.clone(), s.name.clone()));
        }
        run.range = all.len()..all.len() + trace.len();
        run.tree = Some(nodes);
        all.extend(trace);
        runs.push(run);
    }
    let totals = summary::summarize(&all);
    runs.sort_by(|a, b| b.start_ns.cmp(&a.start_ns).then_with(|| a.trace_id.cmp(&b.trace_id)));
    let traces_total = runs.len();
    let runs_left_out = traces_total.saturating_sub(selection.max_runs);
    runs.truncate(selection.max_runs);
    let spans_left_out = cap_trees(&mut runs, selection.max_spans);
    Model { spans: all, runs, traces_total, runs_left_out, spans_left_out, totals, cycles }
}

/// Keeps the trees of the newest runs within `max_spans` spans: the newest
/// run keeps the first `max_spans` spans of its tree if it alone is over;
/// after the first run that does not fit, no tree is kept. Returns how many
/// spans of the listed runs are left without detail.
fn cap_trees(runs: &mut [Run], max_spans: usize) -> usize {
    let mut room = max_spans;
    let mut full = true;
    let mut left_out = 0;
    for (i, run) in runs.iter_mut().enumerate() {
        let Some(tree) = run.tree.as_mut() else { continue };
        if full && tree.len() <= room {
            room -= tree.len();
        } else if i == 0 {
            // Parents come before their children in tree order: a prefix is a tree.
            left_out += tree.len() - room;
            tree.truncate(room);
            full = false;
        } else {
            left_out += tree.len();
            run.tree = None;
            full = false;
        }
    }
    left_out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spans::{Mode, read_input};

    fn example_spans(name: &str) -> Vec<Span> {
        let path = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name);
        let input = read_input(&[path], &[], Mode::Strict).unwrap();
        assert!(input.notes.is_empty(), "{:?}", input.notes);
        input.spans
    }

    fn everything() -> Selection {
        Selection { period: Period::default(), trace: None, max_spans: 100_000, max_runs: 100_000 }
    }

    /// `(name, depth, parent name)` of each span of the run in tree order.
    fn shape<'a>(model: &'a Model, run: &Run) -> Vec<(&'a str, usize, Option<&'a str>)> {
        let spans = &model.spans[run.range.clone()];
        let nodes = run.tree.as_ref().expect("a tree");
        nodes
            .iter()
            .map(|n| (spans[n.index].name.as_str(), n.depth, n.parent.map(|p| spans[p].name.as_str())))
            .collect()
    }

    #[test]
    fn the_support_agent_run_is_one_trace_with_its_tree_in_time_order() {
        let model = build(example_spans("support-agent.jsonl"), &everything());
        assert_eq!(model.runs.len(), 1);
        let run = &model.runs[0];
        assert_eq!(run.root, "invoke_workflow support-desk");
        assert_eq!(run.service, "support-agent");
        assert_eq!((run.spans, run.errors, run.llm_calls, run.tool_calls), (13, 1, 4, 4));
        assert_eq!(run.agents, vec!["support"]);
        assert_eq!(run.models, vec!["gpt-4o-mini"]);
        let shape = shape(&model, run);
        assert_eq!(shape[0], ("invoke_workflow support-desk", 0, None));
        let agents: Vec<_> = shape.iter().filter(|s| s.0 == "invoke_agent support").collect();
        assert_eq!(agents.len(), 2);
        assert!(agents.iter().all(|a| a.1 == 1 && a.2 == Some("invoke_workflow support-desk")));
        assert!(shape[1..].iter().all(|s| s.1 >= 1), "one root: {shape:?}");
        assert!(shape.iter().filter(|s| s.1 == 2).all(|s| s.2 == Some("invoke_agent support")), "{shape:?}");
        // Children in start order, each after its parent.
        let spans = &model.spans[run.range.clone()];
        let nodes = run.tree.as_ref().unwrap();
        for pair in nodes.windows(2).filter(|w| w[0].parent == w[1].parent) {
            assert!(spans[pair[0].index].start_ns <= spans[pair[1].index].start_ns);
        }
    }

    #[test]
    fn run_figures_are_the_sums_of_its_model_calls() {
        let spans = example_spans("support-agent.jsonl");
        let chats: Vec<&Span> = spans.iter().filter(|s| s.operation() == Some("chat")).collect();
        let cost: f64 = chats.iter().map(|s| s.num_attr("observra.cost.usd").unwrap()).sum();
        let input: f64 = chats.iter().map(|s| s.num_attr("gen_ai.usage.input_tokens").unwrap()).sum();
        let output: f64 = chats.iter().map(|s| s.num_attr("gen_ai.usage.output_tokens").unwrap()).sum();
        let first = spans.iter().map(|s| s.start_ns).min().unwrap();
        let last = spans.iter().map(|s| s.end_ns).max().unwrap();
        let model = build(spans, &everything());
        let run = &model.runs[0];
        assert!((run.cost_usd - cost).abs() < 1e-15, "{} vs {cost}", run.cost_usd);
        assert_eq!((run.input_tokens, run.output_tokens), (input, output));
        assert_eq!((run.start_ns, run.duration_ns()), (first, last - first));
        assert!((model.totals["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-15);
        assert_eq!(model.totals["tools"]["lookup_order"]["errors"], 1);
        assert_eq!(model.totals["agents"]["support"]["calls"], 2);
    }

    #[test]
    fn the_rig_run_nests_rigs_spans_under_the_workflow() {
        let model = build(example_spans("rig-agent.jsonl"), &everything());
        let run = &model.runs[0];
        assert_eq!(run.root, "invoke_workflow rig-desk");
        assert_eq!((run.spans, run.errors, run.llm_calls, run.tool_calls), (5, 0, 2, 1));
        let shape = shape(&model, run);
        assert_eq!(shape[1], ("invoke_agent support", 1, Some("invoke_workflow rig-desk")));
        assert!(shape[2..].iter().all(|s| s.1 == 2 && s.2 == Some("invoke_agent support")), "{shape:?}");
        // rig's agent span carries usage too: only the model calls count.
        let agent = model.spans.iter().find(|s| s.is_agent()).unwrap();
        assert!(agent.num_attr("gen_ai.usage.input_tokens").is_some());
        let calls: f64 = model
            .spans
            .iter()
            .filter(|s| s.is_llm_call())
            .map(|s| s.num_attr("gen_ai.usage.input_tokens").unwrap())
            .sum();
        assert_eq!(run.input_tokens, calls);
    }

    #[test]
    fn streamed_calls_give_the_time_to_first_chunk_per_model() {
        let model = build(example_spans("openai-conformance.jsonl"), &everything());
        let streamed = model.spans.iter().find(|s| s.num_attr(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK).is_some());
        let secs = streamed.expect("a streamed call").num_attr(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK).unwrap();
        let model_name = streamed.unwrap().str_attr("gen_ai.request.model").unwrap();
        let t = &model.totals["models"][model_name]["time_to_first_chunk_ms"];
        assert_eq!(t["streams"], 1, "{t}");
        assert!((t["p50"].as_f64().unwrap() - secs * 1000.0).abs() < 1e-9);
    }

    #[test]
    fn evaluations_and_budget_crossings_are_counted_per_run() {
        let mut spans = example_spans("rag-agent.jsonl");
        let evaluations = build(spans.clone(), &everything()).runs.iter().map(|r| r.evaluations).sum::<usize>();
        assert_eq!(evaluations, 1, "the rag agent grades its answer once");
        let budget = serde_json::json!({"name": BUDGET_EVENT, "attributes": {"target": "observra::budget"}});
        spans[0].events.push(budget.clone());
        spans[0].events.push(budget);
        let model = build(spans, &everything());
        assert_eq!(model.runs.iter().map(|r| r.budget_crossings).sum::<usize>(), 2);
    }

    fn synthetic(traces: usize, per_trace: usize) -> Vec<Span> {
        let mut spans = Vec::new();
        for t in 0..traces {
            for i in 0..per_trace {
                let v = serde_json::json!({
                    "trace_id": format!("{t:032x}"), "span_id": format!("{t:08x}{i:08x}"),
                    "parent_span_id": (i > 0).then(|| format!("{t:08x}{:08x}", 0)), "name": format!("s{i}"),
                    "start_time_unix_nano": (t * 1000 + i) as u64, "end_time_unix_nano": (t * 1000 + i + 1) as u64,
                });
                spans.push(Span::from_json(&v).unwrap());
            }
        }
        spans
    }

    #[test]
    fn the_newest_traces_are_embedded_within_the_cap_and_the_rest_listed() {
        let selection = Selection { max_spans: 25, max_runs: 8, ..everything() };
        let model = build(synthetic(10, 10), &selection);
        assert_eq!((model.traces_total, model.runs.len(), model.runs_left_out), (10, 8, 2));
        let trees: Vec<Option<usize>> = model.runs.iter().map(|r| r.tree.as_ref().map(Vec::len)).collect();
        assert_eq!(trees[..3], [Some(10), Some(10), None], "newest first, whole trees only");
        assert!(trees[3..].iter().all(Option::is_none));
        assert_eq!(model.spans_left_out, 60);
        assert!(model.runs.windows(2).all(|w| w[0].start_ns >= w[1].start_ns));
        assert_eq!(model.totals["spans"], 100, "totals count every selected trace");

        // One trace larger than the cap keeps the start of its tree.
        let model = build(synthetic(1, 50), &Selection { max_spans: 20, ..everything() });
        let tree = model.runs[0].tree.as_ref().unwrap();
        assert_eq!((tree.len(), model.spans_left_out), (20, 30));
        assert!(tree.iter().all(|n| n.parent.is_none_or(|p| tree.iter().any(|m| m.index == p))));
    }

    #[test]
    fn the_period_and_the_trace_id_select_whole_traces() {
        let spans = synthetic(5, 3);
        let model =
            build(spans.clone(), &Selection { period: Period { since: Some(2000), until: None }, ..everything() });
        assert_eq!(model.runs.len(), 3);
        assert!(model.runs.iter().all(|r| r.spans == 3), "a trace is not cut by the period");
        let id = format!("{:032X}", 4);
        let model = build(spans, &Selection { trace: Some(id), ..everything() });
        assert_eq!(model.runs.len(), 1);
        assert_eq!(model.runs[0].trace_id, format!("{:032x}", 4));
    }

    #[test]
    fn a_cycle_of_parent_links_is_remarked_and_each_span_placed_once() {
        let v = |id: &str, parent: &str, start: u64| {
            Span::from_json(&serde_json::json!({
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": id, "parent_span_id": parent,
                "name": id, "start_time_unix_nano": start, "end_time_unix_nano": start + 5,
            }))
            .unwrap()
        };
        let model = build(vec![v("a", "b", 1), v("b", "a", 2)], &everything());
        assert_eq!(model.cycles, vec![("4bf92f3577b34da6a3ce929d0e0e4736".into(), "a".into(), "a".into())]);
        assert_eq!(shape(&model, &model.runs[0]), vec![("a", 0, None), ("b", 1, Some("a"))]);
    }
}
