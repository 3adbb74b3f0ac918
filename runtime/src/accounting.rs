//! What happens when a GenAI span closes: the GenAI metrics (exact names,
//! units and bucket boundaries of the semantic conventions), the call's
//! cost, the totals an agent or workflow span carries of what ran beneath
//! it, and budget checks.
//!
//! It reads only the span's attributes, so a hand-written `tracing` span
//! with the same `gen_ai.*` fields is treated exactly like a macro's.
//!
//! Cost, totals and budgets are worked out on the caller's thread (the span
//! must carry them); the GenAI metric records are not: the caller queues a
//! compact [`MetricJob`] and the `observra-metrics` thread records it. A full
//! queue drops the job and counts it (`health().metric_jobs_dropped`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};
use opentelemetry::{Key, KeyValue, Value};

use crate::budget::{Budget, BudgetCallback, BudgetEvent, BudgetKind, Window};
use crate::cost::CostTable;
use crate::genai::Usage;
use crate::semconv::{self as sc, metrics as m, operation as op};

/// The GenAI instruments, built once per pipeline.
#[derive(Clone)]
pub(crate) struct Instruments {
    operation_duration: Histogram<f64>,
    token_usage: Histogram<u64>,
    time_to_first_chunk: Histogram<f64>,
    time_per_output_chunk: Histogram<f64>,
    agent_duration: Histogram<f64>,
    tool_duration: Histogram<f64>,
    workflow_duration: Histogram<f64>,
    cost: Counter<f64>,
    budget_exceeded: Counter<u64>,
    agent_requests: Counter<u64>,
    agent_errors: Counter<u64>,
    agent_request_duration: Histogram<f64>,
    agent_tokens: Counter<u64>,
    agent_cost: Counter<f64>,
    agent_tool_calls: Counter<u64>,
    agent_tool_errors: Counter<u64>,
    pub(crate) agent_active: UpDownCounter<i64>,
    function_calls: Counter<u64>,
    function_duration: Histogram<f64>,
}

impl Instruments {
    pub(crate) fn new(meter: &Meter) -> Self {
        let seconds = |name: &'static str, description: &'static str, buckets: &[f64]| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(buckets.to_vec())
                .build()
        };
        Instruments {
            operation_duration: seconds(m::OPERATION_DURATION, "GenAI operation duration.", m::DURATION_BUCKETS),
            token_usage: meter
                .u64_histogram(m::TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Number of input and output tokens used.")
                .with_boundaries(m::TOKEN_BUCKETS.to_vec())
                .build(),
            time_to_first_chunk: seconds(
                m::TIME_TO_FIRST_CHUNK,
                "Time to receive the first chunk of a streamed response.",
                m::CHUNK_BUCKETS,
            ),
            time_per_output_chunk: seconds(
                m::TIME_PER_OUTPUT_CHUNK,
                "Time between consecutive output chunks of a streamed response.",
                m::CHUNK_BUCKETS,
            ),
            agent_duration: seconds(m::INVOKE_AGENT_DURATION, "Agent invocation duration.", m::DURATION_BUCKETS),
            tool_duration: seconds(m::EXECUTE_TOOL_DURATION, "Tool execution duration.", m::DURATION_BUCKETS),
            workflow_duration: seconds(m::WORKFLOW_DURATION, "Workflow duration.", m::DURATION_BUCKETS),
            cost: meter.f64_counter(m::COST).with_unit("{USD}").with_description("Cost of model calls.").build(),
            budget_exceeded: meter
                .u64_counter(m::BUDGET_EXCEEDED)
                .with_unit("{event}")
                .with_description("Budget limits crossed.")
                .build(),
            agent_requests: meter
                .u64_counter(m::AGENT_REQUESTS)
                .with_unit("{request}")
                .with_description("Total agent requests.")
                .build(),
            agent_errors: meter
                .u64_counter(m::AGENT_ERRORS)
                .with_unit("{request}")
                .with_description("Failed agent requests.")
                .build(),
            agent_request_duration: seconds(m::AGENT_DURATION, "Agent request duration.", m::DURATION_BUCKETS),
            agent_tokens: meter
                .u64_counter(m::AGENT_TOKENS)
                .with_unit("{token}")
                .with_description("Tokens consumed (input and output).")
                .build(),
            agent_cost: meter.f64_counter(m::AGENT_COST).with_unit("{USD}").with_description("Estimated cost.").build(),
            agent_tool_calls: meter
                .u64_counter(m::AGENT_TOOL_CALLS)
                .with_unit("{call}")
                .with_description("Tool invocations.")
                .build(),
            agent_tool_errors: meter
                .u64_counter(m::AGENT_TOOL_ERRORS)
                .with_unit("{call}")
                .with_description("Tool invocations that failed.")
                .build(),
            agent_active: meter
                .i64_up_down_counter(m::AGENT_ACTIVE)
                .with_unit("{request}")
                .with_description("Agent requests in progress.")
                .build(),
            function_calls: meter
                .u64_counter(m::FUNCTION_CALLS)
                .with_unit("{call}")
                .with_description("Calls of instrumented functions.")
                .build(),
            function_duration: seconds(
                m::FUNCTION_DURATION,
                "Duration of instrumented functions.",
                m::DURATION_BUCKETS,
            ),
        }
    }
}

/// Cost, budgets and the callback: the pipeline's accounting settings.
pub(crate) struct Accounting {
    pub instruments: Option<Instruments>,
    /// Where the GenAI metric records go to be recorded off the caller's thread.
    pub metrics: Option<MetricsQueue>,
    pub prices: CostTable,
    pub budget: Budget,
    pub window: Option<Window>,
    pub callback: Option<BudgetCallback>,
}

/// Running totals an agent or workflow span keeps of what ran beneath it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub llm_calls: u64,
    pub tool_calls: u64,
    pub any_usage: bool,
    pub any_cost: bool,
    pub budget_crossed: bool,
}

impl Totals {
    pub(crate) fn add(&mut self, c: &Contribution) {
        if c.is_llm {
            self.llm_calls += 1;
        }
        if c.is_tool {
            self.tool_calls += 1;
        }
        if let Some(u) = &c.usage {
            self.any_usage = true;
            self.input_tokens += u.input_tokens.unwrap_or(0);
            self.output_tokens += u.output_tokens.unwrap_or(0);
        }
        if let Some(cost) = c.cost {
            self.any_cost = true;
            self.cost_usd += cost;
        }
    }

    pub(crate) fn to_attributes(self) -> Vec<KeyValue> {
        let mut out = vec![
            KeyValue::new(sc::OBSERVRA_TOTAL_LLM_CALLS, self.llm_calls as i64),
            KeyValue::new(sc::OBSERVRA_TOTAL_TOOL_CALLS, self.tool_calls as i64),
        ];
        if self.any_usage {
            out.push(KeyValue::new(sc::OBSERVRA_TOTAL_INPUT_TOKENS, self.input_tokens as i64));
            out.push(KeyValue::new(sc::OBSERVRA_TOTAL_OUTPUT_TOKENS, self.output_tokens as i64));
        }
        if self.any_cost {
            out.push(KeyValue::new(sc::OBSERVRA_TOTAL_COST_USD, self.cost_usd));
        }
        out
    }
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

/// The attribute `key` of `attrs`, if present.
pub(crate) fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

/// The string attribute `key` of `attrs`, if present and a string.
pub(crate) fn find_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    as_str(find(attrs, key)?)
}

/// A value's string, if it is one.
pub(crate) fn as_str(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::I64(i) => u64::try_from(*i).ok(),
        Value::F64(f) if *f >= 0.0 => Some(*f as u64),
        Value::String(s) => s.as_str().parse().ok(),
        _ => None,
    }
}

/// The usage a span's `gen_ai.usage.*` attributes report (keys are unique).
fn usage_of(attrs: &[KeyValue]) -> Option<Usage> {
    let mut u = Usage::default();
    for kv in attrs {
        if let Some(field) = u.field_mut(kv.key.as_str()) {
            *field = as_u64(&kv.value);
        }
    }
    (u != Usage::default()).then_some(u)
}

/// Bounded metric attributes: copies of the listed span attributes, when present.
/// Up to [`Attrs::CAP`] metric attributes, on the stack: recording a metric
/// allocates nothing when the values are static or shared strings.
#[derive(Clone)]
struct Attrs {
    buf: [KeyValue; Attrs::CAP],
    len: usize,
}

impl Attrs {
    const CAP: usize = 8;
    fn new() -> Self {
        Attrs { buf: std::array::from_fn(|_| KeyValue::new(Key::from_static_str(""), false)), len: 0 }
    }
    fn push(&mut self, kv: KeyValue) {
        if self.len < Self::CAP {
            self.buf[self.len] = kv;
            self.len += 1;
        }
    }
    fn with(mut self, kv: KeyValue) -> Self {
        self.push(kv);
        self
    }
}

impl std::ops::Deref for Attrs {
    type Target = [KeyValue];
    fn deref(&self) -> &[KeyValue] {
        &self.buf[..self.len]
    }
}

fn metric_attrs(attrs: &[KeyValue], keys: &[&'static str]) -> Attrs {
    let mut out = Attrs::new();
    for k in keys {
        if let Some(v) = find(attrs, k) {
            out.push(KeyValue::new(Key::from_static_str(k), v.clone()));
        }
    }
    out
}

/// A string attribute's value, shared (cloning a static or shared string does not allocate).
fn string_value(attrs: &[KeyValue], key: &str) -> Option<opentelemetry::StringValue> {
    match find(attrs, key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

const LLM_METRIC_KEYS: &[&str] = &[
    sc::GEN_AI_OPERATION_NAME,
    sc::GEN_AI_PROVIDER_NAME,
    sc::GEN_AI_REQUEST_MODEL,
    sc::GEN_AI_RESPONSE_MODEL,
    sc::ERROR_TYPE,
    sc::SERVER_ADDRESS,
    sc::SERVER_PORT,
];

/// Accounts for a closing GenAI span: cost attribute, metrics, budget checks
/// of the call itself. `attrs` are the span's attributes, which this may
/// extend. Returns what the span adds to its ancestors' totals.
pub(crate) fn on_close(
    acc: &Accounting,
    attrs: &mut Vec<KeyValue>,
    close: &Closing<'_>,
    chunk_gaps: &[f64],
    deferred: &mut Deferred,
) -> Contribution {
    let (duration_s, trace_id) = (close.duration_s, close.trace_id);
    let operation: &'static str = match find_str(attrs, sc::GEN_AI_OPERATION_NAME) {
        Some(o) => {
            match op::LLM.iter().chain(&[op::EXECUTE_TOOL, op::INVOKE_AGENT, op::INVOKE_WORKFLOW]).find(|k| **k == o) {
                Some(known) => known,
                None => return Contribution::default(),
            }
        }
        None => return Contribution::default(),
    };
    let mut contribution = Contribution::default();
    match operation {
        o if op::LLM.contains(&o) => {
            contribution.is_llm = true;
            let usage = usage_of(attrs);
            let (model_value, cost) = llm_cost(
                acc,
                usage.as_ref(),
                string_value(attrs, sc::GEN_AI_RESPONSE_MODEL).as_ref(),
                string_value(attrs, sc::GEN_AI_REQUEST_MODEL).as_ref(),
                deferred,
            );
            let model = model_value.as_ref().map(|m| m.as_str());
            if let Some(c) = cost {
                attrs.push(KeyValue::new(sc::OBSERVRA_COST_USD, c));
            }
            if let Some(q) = &acc.metrics {
                let ttfc = match find(attrs, sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) {
                    Some(Value::F64(t)) => Some(*t),
                    _ => None,
                };
                q.send(MetricJob::llm(
                    operation,
                    attrs,
                    duration_s,
                    close.failed,
                    usage,
                    cost,
                    ttfc,
                    chunk_gaps.to_vec(),
                    close.agent.cloned(),
                    model_value.clone(),
                ));
            }
            llm_budgets(acc, usage.as_ref(), cost, model, trace_id, deferred);
            contribution.usage = usage;
            contribution.cost = cost;
            // Only budget events name the model; skip the copy otherwise.
            if acc.budget.agent_usd.is_some() || acc.budget.agent_tokens.is_some() {
                contribution.model = model.map(str::to_string);
            }
        }
        op::EXECUTE_TOOL => {
            contribution.is_tool = true;
            if let Some(q) = &acc.metrics {
                let a = metric_attrs(attrs, &[sc::GEN_AI_OPERATION_NAME, sc::GEN_AI_TOOL_NAME, sc::ERROR_TYPE]);
                q.send(MetricJob::simple(operation, close, a).with_tool(string_value(attrs, sc::GEN_AI_TOOL_NAME)));
            }
        }
        op::INVOKE_AGENT => {
            if let Some(q) = &acc.metrics {
                let a = metric_attrs(
                    attrs,
                    &[sc::GEN_AI_OPERATION_NAME, sc::GEN_AI_AGENT_NAME, sc::GEN_AI_PROVIDER_NAME, sc::ERROR_TYPE],
                );
                q.send(MetricJob::simple(operation, close, a));
            }
        }
        op::INVOKE_WORKFLOW => {
            if let Some(q) = &acc.metrics {
                let a = metric_attrs(attrs, &[sc::GEN_AI_OPERATION_NAME, sc::GEN_AI_WORKFLOW_NAME, sc::ERROR_TYPE]);
                q.send(MetricJob::simple(operation, close, a));
            }
        }
        _ => {}
    }
    contribution
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
                if acc.prices.price(model.as_str()).is_none() && crate::cost::first_miss(model.as_str()) {
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

/// The metric records of one closing GenAI span, queued by the caller and
/// recorded on the metrics thread.
pub(crate) struct MetricJob {
    op: &'static str,
    duration_s: f64,
    failed: bool,
    /// The metric attributes of the operation's duration histogram.
    attrs: Attrs,
    usage: Option<Usage>,
    cost: Option<f64>,
    ttfc: Option<f64>,
    gaps: Vec<f64>,
    agent: Option<opentelemetry::StringValue>,
    model: Option<opentelemetry::StringValue>,
    tool: Option<opentelemetry::StringValue>,
}

impl MetricJob {
    /// A model call's records; `attrs` are the span's attributes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn llm(
        op: &'static str,
        attrs: &[KeyValue],
        duration_s: f64,
        failed: bool,
        usage: Option<Usage>,
        cost: Option<f64>,
        ttfc: Option<f64>,
        gaps: Vec<f64>,
        agent: Option<opentelemetry::StringValue>,
        model: Option<opentelemetry::StringValue>,
    ) -> Self {
        MetricJob {
            op,
            duration_s,
            failed,
            attrs: metric_attrs(attrs, LLM_METRIC_KEYS),
            usage,
            cost,
            ttfc,
            gaps,
            agent,
            model,
            tool: None,
        }
    }

    fn simple(op: &'static str, close: &Closing<'_>, attrs: Attrs) -> Self {
        MetricJob {
            op,
            duration_s: close.duration_s,
            failed: close.failed,
            attrs,
            usage: None,
            cost: None,
            ttfc: None,
            gaps: Vec::new(),
            agent: close.agent.cloned(),
            model: None,
            tool: None,
        }
    }
    fn with_tool(mut self, tool: Option<opentelemetry::StringValue>) -> Self {
        self.tool = tool;
        self
    }

    /// Records everything the job stands for.
    pub(crate) fn record(&self, ins: &Instruments) {
        let d = self.duration_s;
        match self.op {
            o if op::LLM.contains(&o) => {
                let mattrs = &self.attrs;
                ins.operation_duration.record(d, mattrs);
                if let Some(u) = &self.usage {
                    for (kind, n) in [("input", u.input_tokens), ("output", u.output_tokens)] {
                        if let Some(n) = n {
                            let a = mattrs.clone().with(KeyValue::new(sc::GEN_AI_TOKEN_TYPE, kind));
                            ins.token_usage.record(n, &a);
                        }
                    }
                }
                if let Some(t) = self.ttfc {
                    ins.time_to_first_chunk.record(t, mattrs);
                }
                for gap in &self.gaps {
                    ins.time_per_output_chunk.record(*gap, mattrs);
                }
                if let Some(c) = self.cost {
                    let cattrs = metric_attrs(mattrs, &[sc::GEN_AI_PROVIDER_NAME, sc::GEN_AI_REQUEST_MODEL]);
                    ins.cost.add(c, &cattrs);
                }
                let labels = set_labels(self.agent.as_ref(), self.model.clone(), None);
                if let Some(u) = &self.usage {
                    ins.agent_tokens.add(u.input_tokens.unwrap_or(0) + u.output_tokens.unwrap_or(0), &labels);
                }
                if let Some(c) = self.cost {
                    ins.agent_cost.add(c, &labels);
                }
            }
            op::EXECUTE_TOOL => {
                ins.tool_duration.record(d, &self.attrs);
                let labels = set_labels(self.agent.as_ref(), None, self.tool.clone());
                ins.agent_tool_calls.add(1, &labels);
                if self.failed {
                    ins.agent_tool_errors.add(1, &labels);
                }
            }
            op::INVOKE_AGENT => {
                ins.agent_duration.record(d, &self.attrs);
                let labels = set_labels(self.agent.as_ref(), None, None);
                ins.agent_requests.add(1, &labels);
                ins.agent_request_duration.record(d, &labels);
                if self.failed {
                    ins.agent_errors.add(1, &labels);
                }
            }
            op::INVOKE_WORKFLOW => ins.workflow_duration.record(d, &self.attrs),
            _ => {}
        }
    }
}

enum Control {
    /// The queue holds a batch: drain it now.
    Wake,
    /// Reply once everything queued before is recorded.
    Flush(std::sync::mpsc::SyncSender<()>),
    Stop(std::sync::mpsc::SyncSender<()>),
}

/// Jobs dropped because the metrics queue was full, since the process started.
pub(crate) static METRIC_JOBS_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Queue of the `observra-metrics` thread. The thread sleeps on a timer and
/// on a control channel, never on the data: a caller wakes it only when a
/// batch has built up, so a call costs a slot write, not a futex wake.
pub(crate) struct MetricsQueue {
    /// The metric records of spans that closed on the `tracing` path.
    jobs: std::sync::mpsc::SyncSender<MetricJob>,
    /// Model calls of the dedicated path, to assemble into spans and metrics.
    /// A channel of its own: a frame is half a job's size, and every byte
    /// is copied on the caller's thread.
    spans: std::sync::mpsc::SyncSender<crate::fast::FastFrame>,
    control: std::sync::mpsc::SyncSender<Control>,
    depth: Arc<AtomicUsize>,
    wake_sent: Arc<AtomicBool>,
}

impl MetricsQueue {
    /// Bound of the queue.
    const CAPACITY: usize = 8192;
    /// Depth at which a caller wakes the thread.
    const WAKE_AT: usize = 512;
    /// How often the thread drains the queue when nobody wakes it.
    const TICK: std::time::Duration = std::time::Duration::from_millis(20);

    /// Starts the `observra-metrics` thread: it records GenAI metrics on
    /// `ins` (when a meter is installed) and assembles the dedicated path's
    /// model calls into spans for `pipeline`.
    pub(crate) fn start(
        ins: Option<Instruments>,
        pipeline: std::sync::Weak<crate::pipeline::Pipeline>,
    ) -> std::io::Result<Self> {
        let (jobs, jobs_rx) = std::sync::mpsc::sync_channel::<MetricJob>(Self::CAPACITY);
        let (spans, spans_rx) = std::sync::mpsc::sync_channel::<crate::fast::FastFrame>(Self::CAPACITY);
        let (control, control_rx) = std::sync::mpsc::sync_channel::<Control>(16);
        let depth = Arc::new(AtomicUsize::new(0));
        let wake_sent = Arc::new(AtomicBool::new(false));
        let (thread_depth, thread_wake) = (depth.clone(), wake_sent.clone());
        std::thread::Builder::new().name("observra-metrics".into()).spawn(move || {
            crate::layer::suppress_current_thread();
            let drain = || {
                let mut taken = 0;
                let mut took = || {
                    // The shared depth is updated in steps, not per item: callers write it too.
                    taken += 1;
                    if taken == 64 {
                        thread_depth.fetch_sub(taken, Ordering::AcqRel);
                        taken = 0;
                    }
                };
                // Once per drain, not per frame: the count is shared with every span.
                let p = pipeline.upgrade();
                // A panic in a metric reader or a backend's queue must not
                // stop the thread; what it loses is counted.
                let guarded = |f: &mut dyn FnMut()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
                loop {
                    let mut any = false;
                    while let Ok(job) = jobs_rx.try_recv() {
                        took();
                        any = true;
                        if let Some(ins) = &ins {
                            if !guarded(&mut || job.record(ins)) {
                                METRIC_JOBS_DROPPED.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    while let Ok(frame) = spans_rx.try_recv() {
                        took();
                        any = true;
                        match &p {
                            Some(p) => {
                                let mut frame = Some(frame);
                                let ok = guarded(&mut || {
                                    if let Some(frame) = frame.take() {
                                        crate::fast::assemble(frame, p, ins.as_ref())
                                    }
                                });
                                if !ok {
                                    crate::batch::ASSEMBLY_FAILED.fetch_add(1, Ordering::AcqRel);
                                    crate::diag::emit(
                                        crate::diag::DiagnosticLevel::Warn,
                                        "assembling a model call's span panicked: the span was dropped and counted",
                                    );
                                }
                            }
                            None => {
                                crate::batch::ORPHANED.fetch_add(1, Ordering::AcqRel);
                            }
                        }
                    }
                    if !any {
                        break;
                    }
                }
                thread_depth.fetch_sub(taken, Ordering::AcqRel);
            };
            loop {
                match control_rx.recv_timeout(Self::TICK) {
                    Ok(Control::Wake) => {
                        thread_wake.store(false, Ordering::Release);
                        drain();
                    }
                    Ok(Control::Flush(reply)) => {
                        drain();
                        let _ = reply.send(());
                    }
                    Ok(Control::Stop(reply)) => {
                        drain();
                        let _ = reply.send(());
                        return;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => drain(),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        drain();
                        return;
                    }
                }
            }
        })?;
        Ok(MetricsQueue { jobs, spans, control, depth, wake_sent })
    }

    /// Queues an item on `tx`; never blocks. False when the queue is full.
    #[inline]
    fn push<T>(&self, tx: &std::sync::mpsc::SyncSender<T>, item: T) -> bool {
        // Counted before it can be taken, so the depth never dips below zero.
        let depth = self.depth.fetch_add(1, Ordering::AcqRel) + 1;
        if tx.try_send(item).is_err() {
            self.depth.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        if depth >= Self::WAKE_AT
            && !self.wake_sent.load(Ordering::Relaxed)
            && !self.wake_sent.swap(true, Ordering::AcqRel)
            && self.control.try_send(Control::Wake).is_err()
        {
            self.wake_sent.store(false, Ordering::Release);
        }
        true
    }

    /// Items queued and not yet taken by the thread.
    pub(crate) fn depth(&self) -> u64 {
        self.depth.load(Ordering::Acquire) as u64
    }

    /// Queues a job; never blocks. A full queue drops it and counts it.
    fn send(&self, job: MetricJob) {
        if !self.push(&self.jobs, job) {
            METRIC_JOBS_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a model call of the dedicated path; never blocks. A full queue
    /// drops it: the span is counted dropped, its metrics as a dropped job.
    #[inline]
    pub(crate) fn send_span(&self, frame: crate::fast::FastFrame) {
        if !self.push(&self.spans, frame) {
            crate::batch::ORPHANED.fetch_add(1, Ordering::AcqRel);
            METRIC_JOBS_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn request(&self, make: fn(std::sync::mpsc::SyncSender<()>) -> Control, deadline: std::time::Duration) -> bool {
        let (reply, done) = std::sync::mpsc::sync_channel(1);
        let until = crate::batch::until(deadline);
        crate::batch::send_within(&self.control, make(reply), until).is_ok()
            && done.recv_timeout(until.saturating_duration_since(std::time::Instant::now())).is_ok()
    }

    /// Waits (at most `deadline`) until everything queued so far is recorded.
    pub(crate) fn flush(&self, deadline: std::time::Duration) -> bool {
        self.request(Control::Flush, deadline)
    }

    /// Records what is queued and stops the thread, waiting at most `deadline`.
    pub(crate) fn stop(&self, deadline: std::time::Duration) -> bool {
        self.request(Control::Stop, deadline)
    }
}

/// What the layer knows about a closing span besides its attributes.
pub(crate) struct Closing<'a> {
    pub duration_s: f64,
    pub trace_id: opentelemetry::trace::TraceId,
    /// The span's agent: its own name, or the nearest agent above it.
    pub agent: Option<&'a opentelemetry::StringValue>,
    pub failed: bool,
}

/// Labels of the agent metric set: agent, model and tool only.
fn set_labels(
    agent: Option<&opentelemetry::StringValue>,
    model: Option<opentelemetry::StringValue>,
    tool: Option<opentelemetry::StringValue>,
) -> Attrs {
    let mut out = Attrs::new();
    for (k, v) in [(m::LABEL_AGENT, agent.cloned()), (m::LABEL_MODEL, model), (m::LABEL_TOOL, tool)] {
        if let Some(v) = v {
            out.push(KeyValue::new(k, Value::String(v)));
        }
    }
    out
}

/// Records `#[traced(metrics)]`'s call counter and duration.
pub(crate) fn function_metrics(
    acc: &Accounting,
    function: &'static str,
    module: &'static str,
    failed: bool,
    duration_s: f64,
) {
    if let Some(ins) = &acc.instruments {
        let labels = [
            KeyValue::new(m::LABEL_FUNCTION, function),
            KeyValue::new(m::LABEL_MODULE, module),
            KeyValue::new(m::LABEL_RESULT, if failed { "error" } else { "ok" }),
        ];
        ins.function_calls.add(1, &labels);
        ins.function_duration.record(duration_s, &labels);
    }
}

/// `agent.requests.active` +1 when an agent starts (returns the label to take it back with).
pub(crate) fn agent_started(acc: &Accounting, agent: Option<&str>) -> Option<Vec<KeyValue>> {
    let ins = acc.instruments.as_ref()?;
    let labels = set_labels(agent.map(|a| opentelemetry::StringValue::from(a.to_string())).as_ref(), None, None);
    ins.agent_active.add(1, &labels);
    Some(labels.to_vec())
}

/// `agent.requests.active` -1 when it ends.
pub(crate) fn agent_ended(acc: &Accounting, labels: &[KeyValue]) {
    if let Some(ins) = &acc.instruments {
        ins.agent_active.add(-1, labels);
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
            deferred.budget_events.push(event("usd", limit, c));
        }
    }
    if let (Some(limit), Some(u)) = (acc.budget.call_tokens, usage) {
        let tokens = u.input_tokens.unwrap_or(0) + u.output_tokens.unwrap_or(0);
        if tokens > limit {
            deferred.budget_events.push(event("tokens", limit as f64, tokens as f64));
        }
    }
    if let (Some(window), Some(c)) = (&acc.window, cost) {
        if let Some(total) = window.add(c) {
            deferred.budget_events.push(BudgetEvent {
                kind: BudgetKind::Window,
                unit: "usd",
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
            crossed = Some(("usd", limit, totals.cost_usd));
        }
    }
    if let (None, Some(limit)) = (crossed, acc.budget.agent_tokens) {
        let tokens = totals.input_tokens + totals.output_tokens;
        if tokens > limit {
            crossed = Some(("tokens", limit as f64, tokens as f64));
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
            unit = event.unit,
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
pub(crate) fn is_total_keeper(operation: &str) -> bool {
    operation == op::INVOKE_AGENT || operation == op::INVOKE_WORKFLOW
}
