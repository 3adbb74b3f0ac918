//! The metrics of one assembled span, recorded with the conventions' exact
//! names, units and attributes: GenAI (duration, tokens, cost, time per
//! chunk), agent, HTTP, MCP and evaluation scores; and the labels they
//! carry, bounded and redacted.

use std::borrow::Cow;

use opentelemetry::trace::SpanKind;
use opentelemetry::{Key, KeyValue, StringValue, Value};

use crate::account::accounting::Instruments;
use crate::account::usage::Usage;
use crate::base::graded::Graded;
use observra_semconv::{self as sc, metrics as m, operation as op};

/// Up to [`Attrs::CAP`] metric attributes, on the stack: recording a metric
/// allocates nothing when the values are static or shared strings.
#[derive(Clone)]
pub(super) struct Attrs {
    buf: [KeyValue; Attrs::CAP],
    len: usize,
}

impl Attrs {
    const CAP: usize = 12;
    pub(super) fn new() -> Self {
        Attrs { buf: std::array::from_fn(|_| KeyValue::new(Key::from_static_str(""), false)), len: 0 }
    }
    pub(super) fn push(&mut self, kv: KeyValue) {
        if self.len < Self::CAP {
            self.buf[self.len] = kv;
            self.len += 1;
        }
    }
    pub(super) fn with(mut self, kv: KeyValue) -> Self {
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

/// Sets `kv` in `attrs`, replacing an attribute of the same key.
pub(super) fn upsert(attrs: &mut Vec<KeyValue>, kv: KeyValue) {
    match attrs.iter_mut().find(|a| a.key == kv.key) {
        Some(a) => a.value = kv.value,
        None => attrs.push(kv),
    }
}

/// The attribute `key` of `attrs`, if present.
pub(super) fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

/// Makes metric labels fit to leave: every label value through the
/// installed redactor, as the span's attributes are. Labels are copied from
/// the span's attributes (a model, tool or agent name set from a parameter)
/// before the span is redacted on its way out ([`SpanPolicy::apply`]), so
/// they are redacted here, on their own. Fails closed: a value whose
/// redaction panicked is withheld ([`crate::redact::WITHHELD`]). Nothing
/// changes with redaction off, and a value without a secret is kept as it
/// is (not copied).
#[derive(Clone, Copy)]
pub(super) struct Labels<'a>(pub(super) Option<&'a crate::redact::Redactor>);

impl Labels<'_> {
    /// `a` with its values redacted.
    pub(super) fn scrub(self, mut a: Attrs) -> Attrs {
        if let Some(r) = self.0 {
            for kv in a.buf[..a.len].iter_mut() {
                let redacted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    r.value(kv.key.as_str(), &mut kv.value);
                }));
                if redacted.is_err() {
                    kv.value = Value::from(crate::redact::WITHHELD);
                }
            }
        }
        a
    }

    /// `text` redacted, failing closed likewise.
    pub(super) fn text<'t>(self, text: &'t str) -> Cow<'t, str> {
        match self.0 {
            None => Cow::Borrowed(text),
            Some(r) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.redact(text)))
                .unwrap_or(Cow::Borrowed(crate::redact::WITHHELD)),
        }
    }

    /// Bounded metric attributes: copies of the listed span attributes,
    /// when present, redacted.
    pub(super) fn pick(self, attrs: &[KeyValue], keys: &[&'static str]) -> Attrs {
        self.scrub(metric_attrs(attrs, keys))
    }
}

/// Bounded metric attributes: copies of the listed span attributes, when
/// present, as they are (see [`Labels::pick`]).
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
fn string_value(attrs: &[KeyValue], key: &str) -> Option<StringValue> {
    match find(attrs, key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Labels of the agent metric set: agent, model and tool only, redacted.
pub(super) fn set_labels(
    labels: Labels<'_>,
    agent: Option<&StringValue>,
    model: Option<StringValue>,
    tool: Option<StringValue>,
) -> Attrs {
    let mut out = Attrs::new();
    for (k, v) in [(m::LABEL_AGENT, agent.cloned()), (m::LABEL_MODEL, model), (m::LABEL_TOOL, tool)] {
        if let Some(v) = v {
            out.push(KeyValue::new(k, Value::String(v)));
        }
    }
    labels.scrub(out)
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

/// What the conventions' OpenAI refinements add to the duration and token
/// usage metrics (and to no other).
const OPENAI_METRIC_KEYS: &[&str] = &[sc::OPENAI_RESPONSE_SERVICE_TIER, sc::OPENAI_RESPONSE_SYSTEM_FINGERPRINT];

/// What the metrics of one span are recorded from.
pub(super) struct CallFacts<'a> {
    pub(super) operation: &'static str,
    pub(super) attrs: &'a [KeyValue],
    pub(super) duration_s: f64,
    pub(super) failed: bool,
    pub(super) usage: Option<Usage>,
    pub(super) cost: Option<f64>,
    pub(super) gaps: &'a [f64],
    pub(super) agent: Option<&'a StringValue>,
    /// The model the call is priced by.
    pub(super) model: Option<StringValue>,
    /// How labels are made fit to leave.
    pub(super) labels: Labels<'a>,
    /// An agent's own model and tool calls in this invocation.
    pub(super) own_calls: Option<(u64, u64)>,
}

/// The attributes of the agent, tool and workflow duration metrics: as
/// observra has emitted them, and as the newest conventions list them
/// (without `gen_ai.operation.name`, which the metric's name says).
const AGENT_KEYS: &[&str] =
    &[sc::GEN_AI_OPERATION_NAME, sc::GEN_AI_AGENT_NAME, sc::GEN_AI_PROVIDER_NAME, sc::ERROR_TYPE];
const AGENT_KEYS_LATEST: &[&str] = &[sc::GEN_AI_AGENT_NAME, sc::GEN_AI_REQUEST_MODEL, sc::ERROR_TYPE];
const TOOL_KEYS: &[&str] = &[sc::GEN_AI_OPERATION_NAME, sc::GEN_AI_TOOL_NAME, sc::ERROR_TYPE];
const TOOL_KEYS_LATEST: &[&str] = &[sc::GEN_AI_TOOL_NAME, sc::GEN_AI_TOOL_TYPE, sc::GEN_AI_AGENT_NAME, sc::ERROR_TYPE];
const WORKFLOW_KEYS: &[&str] = &[sc::GEN_AI_OPERATION_NAME, sc::GEN_AI_WORKFLOW_NAME, sc::ERROR_TYPE];
const WORKFLOW_KEYS_LATEST: &[&str] = &[sc::GEN_AI_WORKFLOW_NAME, sc::ERROR_TYPE];

/// Records the conventions' metrics of one GenAI span.
pub(super) fn record_metrics(ins: &Instruments, f: &CallFacts<'_>) {
    let d = f.duration_s;
    let latest = crate::genai::conventions::latest();
    match f.operation {
        o if op::LLM.contains(&o) => {
            let mattrs = f.labels.pick(f.attrs, LLM_METRIC_KEYS);
            let mut refined = mattrs.clone();
            for kv in f.labels.pick(f.attrs, OPENAI_METRIC_KEYS).iter() {
                refined.push(kv.clone());
            }
            ins.operation_duration.record(d, &refined);
            if let Some(u) = &f.usage {
                for (kind, n) in [("input", u.input_tokens), ("output", u.output_tokens)] {
                    if let Some(n) = n {
                        let a = refined.clone().with(KeyValue::new(sc::GEN_AI_TOKEN_TYPE, kind));
                        ins.token_usage.record(n, &a);
                    }
                }
            }
            if let Some(Value::F64(t)) = find(f.attrs, sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK) {
                ins.time_to_first_chunk.record(*t, &mattrs);
            }
            for gap in f.gaps {
                ins.time_per_output_chunk.record(*gap, &mattrs);
            }
            if let Some(c) = f.cost {
                // From `mattrs`, redacted already.
                let cattrs = metric_attrs(&mattrs, &[sc::GEN_AI_PROVIDER_NAME, sc::GEN_AI_REQUEST_MODEL]);
                ins.cost.add(c, &cattrs);
            }
            let labels = set_labels(f.labels, f.agent, f.model.clone(), None);
            if let Some(u) = &f.usage {
                ins.agent_tokens.add(u.total_tokens(), &labels);
            }
            if let Some(c) = f.cost {
                ins.agent_cost.add(c, &labels);
            }
        }
        op::EXECUTE_TOOL => {
            let a = f.labels.pick(f.attrs, if latest { TOOL_KEYS_LATEST } else { TOOL_KEYS });
            ins.tool_duration.record(d, &a);
            let labels = set_labels(f.labels, f.agent, None, string_value(f.attrs, sc::GEN_AI_TOOL_NAME));
            ins.agent_tool_calls.add(1, &labels);
            if f.failed {
                ins.agent_tool_errors.add(1, &labels);
            }
        }
        op::INVOKE_AGENT => {
            let a = f.labels.pick(f.attrs, if latest { AGENT_KEYS_LATEST } else { AGENT_KEYS });
            ins.agent_duration.record(d, &a);
            if let (true, Some(own)) = (latest, f.own_calls) {
                let name = f.labels.pick(f.attrs, &[sc::GEN_AI_AGENT_NAME]);
                ins.agent_inference_calls.record(own.0, &name);
                ins.agent_own_tool_calls.record(own.1, &name);
            }
            let labels = set_labels(f.labels, f.agent, None, None);
            ins.agent_requests.add(1, &labels);
            ins.agent_request_duration.record(d, &labels);
            if f.failed {
                ins.agent_errors.add(1, &labels);
            }
        }
        op::INVOKE_WORKFLOW => {
            let a = f.labels.pick(f.attrs, if latest { WORKFLOW_KEYS_LATEST } else { WORKFLOW_KEYS });
            ins.workflow_duration.record(d, &a);
        }
        op::RETRIEVAL => {
            ins.operation_duration.record(d, &f.labels.pick(f.attrs, LLM_METRIC_KEYS));
        }
        _ => {}
    }
}

/// The HTTP conventions' attributes of `http.server.request.duration`.
const HTTP_SERVER_METRIC_KEYS: &[&str] = &[
    sc::HTTP_REQUEST_METHOD,
    sc::URL_SCHEME,
    sc::HTTP_ROUTE,
    sc::HTTP_RESPONSE_STATUS_CODE,
    sc::ERROR_TYPE,
    sc::NETWORK_PROTOCOL_VERSION,
];

/// The HTTP conventions' attributes of `http.client.request.duration`.
const HTTP_CLIENT_METRIC_KEYS: &[&str] = &[
    sc::HTTP_REQUEST_METHOD,
    sc::SERVER_ADDRESS,
    sc::SERVER_PORT,
    sc::HTTP_RESPONSE_STATUS_CODE,
    sc::ERROR_TYPE,
    sc::NETWORK_PROTOCOL_VERSION,
];

/// Records the HTTP duration metric of a SERVER or CLIENT span that has
/// `http.request.method` (spans of other kinds are not HTTP requests).
pub(super) fn record_http(
    ins: &Instruments,
    labels: Labels<'_>,
    kind: Option<&SpanKind>,
    attrs: &[KeyValue],
    duration_s: f64,
) {
    match kind {
        Some(SpanKind::Server) => {
            ins.http_server_duration.record(duration_s, &labels.pick(attrs, HTTP_SERVER_METRIC_KEYS));
        }
        Some(SpanKind::Client) => {
            ins.http_client_duration.record(duration_s, &labels.pick(attrs, HTTP_CLIENT_METRIC_KEYS));
        }
        _ => {}
    }
}

/// The MCP conventions' attributes of the MCP duration metrics.
const MCP_METRIC_KEYS: &[&str] = &[
    sc::MCP_METHOD_NAME,
    sc::GEN_AI_TOOL_NAME,
    sc::GEN_AI_PROMPT_NAME,
    sc::GEN_AI_OPERATION_NAME,
    sc::ERROR_TYPE,
    sc::RPC_RESPONSE_STATUS_CODE,
    sc::MCP_PROTOCOL_VERSION,
    sc::NETWORK_TRANSPORT,
    sc::SERVER_ADDRESS,
    sc::SERVER_PORT,
];

/// The value the metrics give a tool or prompt name a client asked an MCP
/// server for that the server does not declare.
const OTHER: &str = "_OTHER";

/// `attrs` with the tool and prompt names replaced by [`OTHER`]: the
/// metric attributes of a span whose name was not declared (the names a
/// remote client sends are unbounded).
pub(super) fn undeclared_as_other(attrs: &[KeyValue]) -> Vec<KeyValue> {
    attrs
        .iter()
        .map(|kv| match kv.key.as_str() {
            sc::GEN_AI_TOOL_NAME | sc::GEN_AI_PROMPT_NAME => KeyValue::new(kv.key.clone(), OTHER),
            _ => kv.clone(),
        })
        .collect()
}

/// Records the MCP duration metric of a span with `mcp.method.name`: the
/// server's for a SERVER span, else the client's (a CLIENT span, or the
/// `#[tool_call]` the MCP call was recorded on).
pub(super) fn record_mcp(
    ins: &Instruments,
    labels: Labels<'_>,
    kind: Option<&SpanKind>,
    attrs: &[KeyValue],
    duration_s: f64,
) {
    let a = labels.pick(attrs, MCP_METRIC_KEYS);
    match kind {
        Some(SpanKind::Server) => ins.mcp_server_duration.record(duration_s, &a),
        _ => ins.mcp_client_duration.record(duration_s, &a),
    }
}

/// `observra.evaluation.score`, by evaluation name and label (and the
/// graded call's agent and model when known).
pub(super) fn record_evaluation(
    ins: Option<&Instruments>,
    labels: Labels<'_>,
    g: &Graded,
    agent: Option<&StringValue>,
    model: Option<&StringValue>,
) {
    let (Some(ins), Some(score)) = (ins, g.evaluation.score) else { return };
    let mut a = Attrs::new();
    a.push(KeyValue::new(sc::GEN_AI_EVALUATION_NAME, g.evaluation.name.clone()));
    if let Some(l) = &g.evaluation.label {
        a.push(KeyValue::new(sc::GEN_AI_EVALUATION_SCORE_LABEL, l.clone()));
    }
    if let Some(agent) = agent {
        a.push(KeyValue::new(sc::GEN_AI_AGENT_NAME, Value::String(agent.clone())));
    }
    if let Some(model) = model {
        a.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, Value::String(model.clone())));
    }
    ins.evaluation_score.record(score, &labels.scrub(a));
}
