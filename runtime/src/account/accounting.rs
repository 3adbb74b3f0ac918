//! The accounting rules of GenAI spans: the conventions' instruments
//! (exact names, units and bucket boundaries), a model call's cost, the
//! totals an agent or workflow keeps of what ran beneath it, and budget
//! checks.
//!
//! The rules read typed values, never a span's origin, so a hand-written
//! `tracing` span with the same `gen_ai.*` fields is treated exactly like a
//! macro's. The collector ([`crate::collect`]) applies them off the caller's
//! thread; only budgets (whose callback runs on the caller) and the totals
//! of the agents above make a call work out its cost where it ends.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};

use crate::account::budget::{Budget, BudgetCallback, BudgetEvent, BudgetKind, BudgetUnit, Window, saturating_add_usd};
use crate::account::cost::CostTable;
use crate::account::usage::Usage;
use observra_semconv::{self as sc, metrics as m, operation as op};

/// The GenAI instruments, built once per pipeline.
#[derive(Clone)]
pub(crate) struct Instruments {
    pub(crate) operation_duration: Histogram<f64>,
    pub(crate) token_usage: Histogram<u64>,
    pub(crate) time_to_first_chunk: Histogram<f64>,
    pub(crate) time_per_output_chunk: Histogram<f64>,
    pub(crate) agent_duration: Histogram<f64>,
    pub(crate) tool_duration: Histogram<f64>,
    pub(crate) workflow_duration: Histogram<f64>,
    /// Per agent invocation (the newest conventions only).
    pub(crate) agent_inference_calls: Histogram<u64>,
    pub(crate) agent_own_tool_calls: Histogram<u64>,
    pub(crate) cost: Counter<f64>,
    pub(crate) budget_exceeded: Counter<u64>,
    pub(crate) agent_requests: Counter<u64>,
    pub(crate) agent_errors: Counter<u64>,
    pub(crate) agent_request_duration: Histogram<f64>,
    pub(crate) agent_tokens: Counter<u64>,
    pub(crate) agent_cost: Counter<f64>,
    pub(crate) agent_tool_calls: Counter<u64>,
    pub(crate) agent_tool_errors: Counter<u64>,
    pub(crate) agent_active: UpDownCounter<i64>,
    pub(crate) function_calls: Counter<u64>,
    pub(crate) function_duration: Histogram<f64>,
    pub(crate) http_server_duration: Histogram<f64>,
    pub(crate) http_client_duration: Histogram<f64>,
    pub(crate) mcp_client_duration: Histogram<f64>,
    pub(crate) mcp_server_duration: Histogram<f64>,
    pub(crate) evaluation_score: Histogram<f64>,
}

impl Instruments {
    /// Every GenAI, agent, function, HTTP, MCP and evaluation instrument, on `meter`.
    pub(crate) fn new(meter: &Meter) -> Self {
        use m::{DURATION_BUCKETS as SECS, HTTP_DURATION_BUCKETS as HTTP_SECS, MCP_DURATION_BUCKETS as MCP_SECS};
        let make = Make(meter);
        let (seconds, count, usd) =
            (|n, d, b| make.seconds(n, d, b), |n, u, d| make.count(n, u, d), |n, d| make.usd(n, d));
        Instruments {
            operation_duration: seconds(m::OPERATION_DURATION, "GenAI operation duration.", SECS),
            token_usage: make.counts(
                m::TOKEN_USAGE,
                "{token}",
                "Number of input and output tokens used.",
                m::TOKEN_BUCKETS,
            ),
            time_to_first_chunk: seconds(
                m::TIME_TO_FIRST_CHUNK,
                "Time to receive the first chunk of a streamed response.",
                SECS,
            ),
            time_per_output_chunk: seconds(
                m::TIME_PER_OUTPUT_CHUNK,
                "Time between consecutive output chunks of a streamed response.",
                SECS,
            ),
            agent_duration: seconds(m::INVOKE_AGENT_DURATION, "Agent invocation duration.", m::AGENT_DURATION_BUCKETS),
            tool_duration: seconds(m::EXECUTE_TOOL_DURATION, "Tool execution duration.", SECS),
            workflow_duration: seconds(m::WORKFLOW_DURATION, "Workflow duration.", m::WORKFLOW_DURATION_BUCKETS),
            agent_inference_calls: make.counts(
                m::INVOKE_AGENT_INFERENCE_CALLS,
                "{inference_call}",
                "The number of inference (model) calls a GenAI agent makes during a single invocation.",
                m::CALL_COUNT_BUCKETS,
            ),
            agent_own_tool_calls: make.counts(
                m::INVOKE_AGENT_TOOL_CALLS,
                "{tool_call}",
                "The number of tool calls a GenAI agent makes during a single invocation.",
                m::CALL_COUNT_BUCKETS,
            ),
            cost: usd(m::COST, "Cost of model calls."),
            budget_exceeded: count(m::BUDGET_EXCEEDED, "{event}", "Budget limits crossed."),
            agent_requests: count(m::AGENT_REQUESTS, "{request}", "Total agent requests."),
            agent_errors: count(m::AGENT_ERRORS, "{request}", "Failed agent requests."),
            agent_request_duration: seconds(m::AGENT_DURATION, "Agent request duration.", SECS),
            agent_tokens: count(m::AGENT_TOKENS, "{token}", "Tokens consumed (input and output)."),
            agent_cost: usd(m::AGENT_COST, "Estimated cost."),
            agent_tool_calls: count(m::AGENT_TOOL_CALLS, "{call}", "Tool invocations."),
            agent_tool_errors: count(m::AGENT_TOOL_ERRORS, "{call}", "Tool invocations that failed."),
            agent_active: meter
                .i64_up_down_counter(m::AGENT_ACTIVE)
                .with_unit("{request}")
                .with_description("Agent requests in progress.")
                .build(),
            function_calls: count(m::FUNCTION_CALLS, "{call}", "Calls of instrumented functions."),
            function_duration: seconds(m::FUNCTION_DURATION, "Duration of instrumented functions.", SECS),
            http_server_duration: seconds(m::HTTP_SERVER_DURATION, "Duration of HTTP server requests.", HTTP_SECS),
            http_client_duration: seconds(m::HTTP_CLIENT_DURATION, "Duration of HTTP client requests.", HTTP_SECS),
            mcp_client_duration: seconds(
                m::MCP_CLIENT_DURATION,
                "The duration of the MCP request or notification as observed on the sender.",
                MCP_SECS,
            ),
            evaluation_score: make.histogram(
                m::EVALUATION_SCORE,
                "{score}",
                "Evaluation scores of GenAI calls, by evaluation name and label.",
                m::EVALUATION_BUCKETS,
            ),
            mcp_server_duration: seconds(
                m::MCP_SERVER_DURATION,
                "MCP request or notification duration as observed on the receiver.",
                MCP_SECS,
            ),
        }
    }
}

/// Makes the instruments of [`Instruments::new`] on one meter.
struct Make<'a>(&'a Meter);

impl Make<'_> {
    fn histogram(
        &self,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        buckets: &[f64],
    ) -> Histogram<f64> {
        self.0
            .f64_histogram(name)
            .with_unit(unit)
            .with_description(description)
            .with_boundaries(buckets.to_vec())
            .build()
    }
    fn seconds(&self, name: &'static str, description: &'static str, buckets: &[f64]) -> Histogram<f64> {
        self.histogram(name, "s", description, buckets)
    }
    /// A histogram of counts (tokens, calls).
    fn counts(
        &self,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        buckets: &[f64],
    ) -> Histogram<u64> {
        self.0
            .u64_histogram(name)
            .with_unit(unit)
            .with_description(description)
            .with_boundaries(buckets.to_vec())
            .build()
    }
    fn count(&self, name: &'static str, unit: &'static str, description: &'static str) -> Counter<u64> {
        self.0.u64_counter(name).with_unit(unit).with_description(description).build()
    }
    fn usd(&self, name: &'static str, description: &'static str) -> Counter<f64> {
        self.0.f64_counter(name).with_unit("{USD}").with_description(description).build()
    }
}

/// Cost, budgets and the callback: the pipeline's accounting settings.
pub(crate) struct Accounting {
    pub instruments: Option<Instruments>,
    pub prices: CostTable,
    pub budget: Budget,
    pub window: Option<Window>,
    pub callback: Option<BudgetCallback>,
}

/// Running totals an agent or workflow span keeps of what ran beneath it.
/// Every sum saturates (counts at `u64::MAX`, cost at `f64::MAX`): a huge
/// or hostile usage figure never overflows, and no total goes negative.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub llm_calls: u64,
    pub tool_calls: u64,
    /// Of those, the calls an agent made itself (not through an agent
    /// beneath it): the conventions' per-invocation counts.
    pub own_llm_calls: u64,
    pub own_tool_calls: u64,
    pub any_usage: bool,
    pub any_cost: bool,
    pub budget_crossed: bool,
}

impl Totals {
    pub(crate) fn add(&mut self, c: &Contribution) {
        if c.is_llm {
            self.llm_calls = self.llm_calls.saturating_add(1);
        }
        if c.is_tool {
            self.tool_calls = self.tool_calls.saturating_add(1);
        }
        if let Some(u) = &c.usage {
            self.any_usage = true;
            self.input_tokens = self.input_tokens.saturating_add(u.input_tokens.unwrap_or(0));
            self.output_tokens = self.output_tokens.saturating_add(u.output_tokens.unwrap_or(0));
        }
        if let Some(cost) = c.cost {
            self.any_cost = true;
            self.cost_usd = saturating_add_usd(self.cost_usd, cost);
        }
    }

    /// Counts a call the agent keeping these totals made itself.
    pub(crate) fn add_own(&mut self, c: &Contribution) {
        self.own_llm_calls = self.own_llm_calls.saturating_add(u64::from(c.is_llm));
        self.own_tool_calls = self.own_tool_calls.saturating_add(u64::from(c.is_tool));
    }

    /// Input plus output tokens, saturating.
    pub(crate) fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    pub(crate) fn to_attributes(self) -> Vec<KeyValue> {
        let mut out = vec![
            KeyValue::new(sc::OBSERVRA_TOTAL_LLM_CALLS, clamp_i64(self.llm_calls)),
            KeyValue::new(sc::OBSERVRA_TOTAL_TOOL_CALLS, clamp_i64(self.tool_calls)),
        ];
        if self.any_usage {
            out.push(KeyValue::new(sc::OBSERVRA_TOTAL_INPUT_TOKENS, clamp_i64(self.input_tokens)));
            out.push(KeyValue::new(sc::OBSERVRA_TOTAL_OUTPUT_TOKENS, clamp_i64(self.output_tokens)));
        }
        if self.any_cost {
            out.push(KeyValue::new(sc::OBSERVRA_TOTAL_COST_USD, self.cost_usd));
        }
        out
    }
}

/// A count as an `i64` attribute: clamped at `i64::MAX`, never wrapped negative.
pub(crate) fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// What a closing span adds to its agent/workflow ancestors.
#[derive(Debug, Default, Clone)]
pub(crate) struct Contribution {
    pub is_llm: bool,
    pub is_tool: bool,
    pub usage: Option<Usage>,
    pub cost: Option<f64>,
    pub model: Option<String>,
}

impl Contribution {
    pub(crate) fn is_empty(&self) -> bool {
        !self.is_llm && !self.is_tool
    }
}

/// Things to do once the registry's locks are released.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    pub budget_events: Vec<BudgetEvent>,
    pub unknown_model: Option<String>,
}

/// The model a model call is priced by (the response model when it has a
/// price, else the request model) and the call's cost, if both are known.
/// An unknown model is noted once in `deferred` for a warning.
pub(crate) fn llm_cost(
    acc: &Accounting,
    usage: Option<&Usage>,
    response_model: Option<&opentelemetry::StringValue>,
    request_model: Option<&opentelemetry::StringValue>,
    deferred: &mut Deferred,
) -> (Option<opentelemetry::StringValue>, Option<f64>) {
    let model_value = response_model.filter(|m| acc.prices.price(m.as_str()).is_some()).or(request_model).cloned();
    let cost = match (usage, model_value.as_ref()) {
        (Some(u), Some(model)) => match acc.prices.cost(model.as_str(), u) {
            Some(c) => Some(c),
            None => {
                if acc.prices.price(model.as_str()).is_none() && crate::account::cost::first_miss(model.as_str()) {
                    deferred.unknown_model = Some(model.to_string());
                }
                None
            }
        },
        _ => None,
    };
    (model_value, cost)
}

impl Accounting {
    /// Whether any budget is set: then every model call's cost is worked
    /// out on the caller's thread, where the budget callback runs.
    pub(crate) fn has_budgets(&self) -> bool {
        let b = &self.budget;
        b.call_usd.is_some()
            || b.call_tokens.is_some()
            || b.agent_usd.is_some()
            || b.agent_tokens.is_some()
            || self.window.is_some()
    }
}

/// The per-call and per-window budget checks of one model call.
pub(crate) fn llm_budgets(
    acc: &Accounting,
    usage: Option<&Usage>,
    cost: Option<f64>,
    model: Option<&str>,
    trace_id: opentelemetry::trace::TraceId,
    deferred: &mut Deferred,
) {
    let event = |unit, limit, observed| BudgetEvent {
        kind: BudgetKind::Call,
        unit,
        limit,
        observed,
        model: model.map(str::to_string),
        agent: None,
        trace_id: trace_id.to_string(),
    };
    if let (Some(limit), Some(c)) = (acc.budget.call_usd, cost) {
        if c > limit {
            deferred.budget_events.push(event(BudgetUnit::Usd, limit, c));
        }
    }
    if let (Some(limit), Some(u)) = (acc.budget.call_tokens, usage) {
        let tokens = u.total_tokens();
        if tokens > limit {
            deferred.budget_events.push(event(BudgetUnit::Tokens, limit as f64, tokens as f64));
        }
    }
    if let (Some(window), Some(c)) = (&acc.window, cost) {
        if let Some(total) = window.add(c) {
            deferred.budget_events.push(BudgetEvent {
                kind: BudgetKind::Window,
                unit: BudgetUnit::Usd,
                limit: window.limit(),
                observed: total,
                model: model.map(str::to_string),
                agent: None,
                trace_id: trace_id.to_string(),
            });
        }
    }
}

/// Checks an agent's running totals after a contribution; reports a
/// crossing once per agent invocation.
pub(crate) fn check_agent_budget(
    acc: &Accounting,
    totals: &mut Totals,
    agent: Option<&str>,
    trace_id: opentelemetry::trace::TraceId,
    model: Option<&str>,
    deferred: &mut Deferred,
) {
    if totals.budget_crossed {
        return;
    }
    let mut crossed = None;
    if let Some(limit) = acc.budget.agent_usd {
        if totals.cost_usd > limit {
            crossed = Some((BudgetUnit::Usd, limit, totals.cost_usd));
        }
    }
    if let (None, Some(limit)) = (crossed, acc.budget.agent_tokens) {
        let tokens = totals.tokens();
        if tokens > limit {
            crossed = Some((BudgetUnit::Tokens, limit as f64, tokens as f64));
        }
    }
    if let Some((unit, limit, observed)) = crossed {
        totals.budget_crossed = true;
        deferred.budget_events.push(BudgetEvent {
            kind: BudgetKind::Agent,
            unit,
            limit,
            observed,
            model: model.map(str::to_string),
            agent: agent.map(str::to_string),
            trace_id: trace_id.to_string(),
        });
    }
}

/// The warning for a model without a price (once per model).
pub(crate) const UNKNOWN_MODEL_WARNING: &str =
    "no price for this model: no cost is recorded for it (add one with OBSERVRA_PRICES or Builder::price)";

/// Emits what was deferred until the registry's locks were released.
pub(crate) fn emit(acc: &Accounting, deferred: Deferred) {
    if let Some(model) = deferred.unknown_model {
        tracing::warn!(
            target: "observra::cost",
            model = model.as_str(),
            UNKNOWN_MODEL_WARNING
        );
    }
    for event in deferred.budget_events {
        if let Some(ins) = &acc.instruments {
            ins.budget_exceeded.add(1, &[KeyValue::new(sc::OBSERVRA_BUDGET_KIND, event.kind.as_str())]);
        }
        tracing::warn!(
            target: "observra::budget",
            budget_kind = event.kind.as_str(),
            unit = event.unit.as_str(),
            limit = event.limit,
            observed = event.observed,
            model = event.model.as_deref().unwrap_or(""),
            agent = event.agent.as_deref().unwrap_or(""),
            "budget exceeded"
        );
        if let Some(cb) = &acc.callback {
            let cb = cb.clone();
            // A panicking callback must not unwind into the host's span close.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(&event)));
        }
    }
}

/// Whether spans of this operation keep totals of what runs beneath them.
pub(crate) fn keeps_run_totals(operation: &str) -> bool {
    operation == op::INVOKE_AGENT || operation == op::INVOKE_WORKFLOW
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::budget::Budget;
    use opentelemetry::Value;
    use opentelemetry::trace::TraceId;

    fn llm(usage: Usage, cost: Option<f64>) -> Contribution {
        Contribution { is_llm: true, usage: Some(usage), cost, ..Contribution::default() }
    }

    #[test]
    fn totals_saturate_and_their_attributes_never_turn_negative() {
        let mut t = Totals::default();
        for _ in 0..3 {
            t.add(&llm(Usage::new(u64::MAX, u64::MAX - 1), Some(f64::MAX)));
        }
        assert_eq!((t.input_tokens, t.output_tokens, t.llm_calls), (u64::MAX, u64::MAX, 3));
        assert_eq!(t.cost_usd, f64::MAX, "saturates rather than becoming infinite");
        t.add(&llm(Usage::new(1, 1), Some(f64::NAN)));
        t.add(&llm(Usage::new(1, 1), Some(-5.0)));
        assert_eq!(t.cost_usd, f64::MAX, "a NaN or negative cost adds nothing");
        t.llm_calls = u64::MAX;
        t.tool_calls = u64::MAX;
        t.add(&Contribution { is_llm: true, is_tool: true, ..Contribution::default() });
        assert_eq!((t.llm_calls, t.tool_calls), (u64::MAX, u64::MAX));
        let attrs = t.to_attributes();
        assert_eq!(attrs.len(), 5);
        for kv in attrs {
            match kv.value {
                Value::I64(n) => assert_eq!(n, i64::MAX, "{} clamps", kv.key),
                Value::F64(f) => assert!(f.is_finite() && f >= 0.0, "{}: {f}", kv.key),
                v => panic!("{}: {v:?}", kv.key),
            }
        }
    }

    #[test]
    fn token_budgets_of_huge_counts_fire_without_overflowing() {
        let acc = Accounting {
            instruments: None,
            prices: CostTable::empty(),
            budget: Budget::new().per_call_tokens(1_000).per_agent_tokens(1_000),
            window: None,
            callback: None,
        };
        let mut d = Deferred::default();
        llm_budgets(&acc, Some(&Usage::new(u64::MAX, u64::MAX)), None, Some("m"), TraceId::INVALID, &mut d);
        assert_eq!(d.budget_events.len(), 1);
        assert_eq!(d.budget_events[0].observed, u64::MAX as f64);
        let mut totals = Totals { input_tokens: u64::MAX, output_tokens: 1, ..Totals::default() };
        check_agent_budget(&acc, &mut totals, Some("a"), TraceId::INVALID, None, &mut d);
        assert_eq!(d.budget_events.len(), 2);
        assert_eq!(d.budget_events[1].observed, u64::MAX as f64);
    }
}
