//! One closed frame becomes one `SpanData` and its metrics: the attributes
//! (the site's literals, what the call set, usage, models, cost), what the
//! context above gave (conversation id, agent totals), the metrics, the
//! events, and the span handed on to the tail sampler or the backends.

use std::borrow::Cow;

use opentelemetry::trace::{Event, SpanContext, SpanKind, Status, TraceFlags};
use opentelemetry::{InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::evaluations::GradedCall;
use super::metrics::{CallFacts, find, record_http, record_mcp, record_metrics, undeclared_as_other, upsert};
use super::{Collector, tail};
use crate::account::accounting::{self, Accounting, Deferred, Instruments};
use crate::account::usage::Usage;
use crate::base::clock::Anchor;
use crate::base::frame::{Frame, More, StatusCode};
use crate::base::state::Installed;
use observra_semconv::{self as sc, metrics as m, operation as op};

/// The attributes of a call's `gen_ai.client.inference.operation.details`
/// event, as the conventions list them: the operation's own attributes
/// (operation, provider, models, parameters, usage, response id, finish
/// reasons, server, error) and then the captured messages.
fn details_attributes(span: &[KeyValue], captured: Vec<KeyValue>) -> Vec<KeyValue> {
    let operation = |k: &str| {
        (k.starts_with("gen_ai.") || k.starts_with("server.") || k.starts_with("openai.") || k == sc::ERROR_TYPE)
            && !crate::policy::content::is_content_attribute(k)
    };
    let mut out: Vec<KeyValue> = span.iter().filter(|kv| operation(kv.key.as_str())).cloned().collect();
    out.extend(captured);
    out
}

/// `{operation} {model, agent, tool or workflow}` for a span named by its
/// bare operation, when the attribute is there.
fn conventional_name(name: Cow<'static, str>, operation: &str, attrs: &[KeyValue]) -> Cow<'static, str> {
    let key = match operation {
        op::INVOKE_AGENT => sc::GEN_AI_AGENT_NAME,
        op::EXECUTE_TOOL => sc::GEN_AI_TOOL_NAME,
        op::INVOKE_WORKFLOW => sc::GEN_AI_WORKFLOW_NAME,
        op::RETRIEVAL => sc::GEN_AI_DATA_SOURCE_ID,
        _ => sc::GEN_AI_REQUEST_MODEL,
    };
    match find(attrs, key) {
        Some(Value::String(v)) if !v.as_str().is_empty() => Cow::Owned(format!("{operation} {}", v.as_str())),
        _ => name,
    }
}

/// The exported name of a span.
fn span_name(frame: &Frame, more: &More, request: Option<&StringValue>) -> Cow<'static, str> {
    let (base, with_model) = match (&more.name, frame.site) {
        (Some(name), _) => (name.clone(), more.name_with_model),
        (None, Some(site)) => (Cow::Borrowed(site.name), site.name_with_model),
        (None, None) => (Cow::Borrowed(frame.operation.unwrap_or("span")), false),
    };
    match (with_model, request) {
        (true, Some(m)) => Cow::Owned(format!("{base} {}", m.as_str())),
        _ => base,
    }
}

/// Builds the span of a closed frame and records its metrics (on the
/// collector thread).
pub(super) fn assemble(
    mut frame: Frame,
    p: &Installed,
    out: &Collector<'_>,
    ins: Option<&Instruments>,
    anchor: &Anchor,
) {
    let mut more = frame.more.take().map(crate::base::frame::recycled::unbox_more).unwrap_or_default();
    let request = match frame.site.and_then(|s| s.model) {
        Some(m) => Some(StringValue::from(m)),
        None => more.model.clone(),
    };
    let name = frame.ctx.sampled.then(|| span_name(&frame, &more, request.as_ref()));
    let mut attrs = attributes(&frame, std::mem::take(&mut more.attrs), request.as_ref());
    // Copied out: the string goes back to the callers' stock.
    if let Some(id) = frame.response_id.take() {
        crate::base::recycle::give_back(id);
    }
    let priced = price(&mut frame, &p.accounting, request.as_ref(), &mut attrs);
    inherit(&mut frame, &more, anchor, &mut attrs);
    let duration_s = anchor.seconds(frame.start, frame.end);
    if let Some(ins) = ins {
        record_call_metrics(ins, out, &frame, &more, &attrs, duration_s, priced.model);
    }
    remember_response(out, &frame, &attrs, request);
    if !frame.ctx.sampled {
        return;
    }
    let is_llm = frame.operation.is_some_and(|o| op::LLM.contains(&o));
    // A library's span named by its bare operation (rig's `chat`,
    // `invoke_agent`, `execute_tool`) gets the conventions' name.
    let name = match (name, frame.site, frame.operation) {
        (Some(n), None, Some(o)) if n == o => conventional_name(n, o, &attrs),
        (n, _, _) => n.unwrap_or_default(),
    };
    if let (true, Some(operation)) = (is_llm, frame.operation) {
        out.lint(&name, operation, &attrs);
    }
    let unknown_model = more.unknown_model.take().or(priced.unknown_model);
    let (span, facts) = span_data(frame, more, name, attrs, unknown_model, anchor, &p.scope);
    out.offer(span, facts);
}

/// The span's attributes: the site's operation and literals, the request
/// model, what the call set (replacing a literal of the same key), usage
/// and the response model.
fn attributes(frame: &Frame, set: Vec<KeyValue>, request: Option<&StringValue>) -> Vec<KeyValue> {
    let site_attrs = frame.site.map_or(0, |s| s.attrs.len() + 1);
    let mut attrs = Vec::with_capacity(8 + site_attrs + set.len());
    if let Some(site) = frame.site {
        if let Some(operation) = site.operation {
            attrs.push(KeyValue::new(sc::GEN_AI_OPERATION_NAME, operation));
        }
        attrs.extend(site.attrs.iter().map(|(k, v)| KeyValue::new(Key::from_static_str(k), v.value())));
    }
    if let Some(m) = request {
        attrs.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, Value::String(m.clone())));
    }
    if site_attrs == 0 {
        attrs.extend(set);
    } else {
        // What the call set replaces a literal of its site.
        for kv in set {
            upsert(&mut attrs, kv);
        }
    }
    for (key, n) in frame.usage().iter().flat_map(Usage::attributes) {
        attrs.push(KeyValue::new(key, i64::try_from(n).unwrap_or(i64::MAX)));
    }
    if let Some(m) = &frame.response_model {
        attrs.push(KeyValue::new(sc::GEN_AI_RESPONSE_MODEL, Value::String(m.clone())));
    }
    if let Some(id) = &frame.response_id {
        attrs.push(KeyValue::new(sc::GEN_AI_RESPONSE_ID, Value::String(id.clone().into())));
    }
    if !frame.finish.is_empty() {
        let reasons = frame.finish.iter().map(StringValue::from).collect();
        attrs.push(KeyValue::new(
            sc::GEN_AI_RESPONSE_FINISH_REASONS,
            Value::Array(opentelemetry::Array::String(reasons)),
        ));
    }
    attrs
}

/// How a model call was priced.
#[derive(Default)]
struct Priced {
    /// The model the call is priced by.
    model: Option<StringValue>,
    /// A model with no price, for the warning event.
    unknown_model: Option<String>,
}

/// Prices a model call (unless the caller already did, for a budget) and
/// adds `observra.cost.usd`; other spans are not priced.
fn price(frame: &mut Frame, acc: &Accounting, request: Option<&StringValue>, attrs: &mut Vec<KeyValue>) -> Priced {
    if !frame.operation.is_some_and(|o| op::LLM.contains(&o)) {
        return Priced::default();
    }
    let mut deferred = Deferred::default();
    // A cost the caller worked out is kept; the model is looked up all the same.
    let usage = if frame.cost.is_some() { None } else { frame.usage() };
    let (model, cost) =
        accounting::llm_cost(acc, usage.as_ref(), frame.response_model.as_ref(), request, &mut deferred);
    let cost = frame.cost.unwrap_or(cost);
    frame.cost = Some(cost);
    if let Some(c) = cost {
        attrs.push(KeyValue::new(sc::OBSERVRA_COST_USD, c));
    }
    Priced { model, unknown_model: deferred.unknown_model }
}

/// What the context above gives: a conversation id set above reaches the
/// GenAI spans beneath it, an agent or workflow carries its totals, a
/// stream its time to first chunk.
fn inherit(frame: &mut Frame, more: &More, anchor: &Anchor, attrs: &mut Vec<KeyValue>) {
    let genai = frame.site.is_some_and(|s| s.operation.is_some()) || more.genai;
    if let (true, Some(cid)) = (genai, frame.ctx.conversation_id.take()) {
        if find(attrs, sc::GEN_AI_CONVERSATION_ID).is_none() {
            attrs.push(KeyValue::new(sc::GEN_AI_CONVERSATION_ID, cid));
        }
    }
    if let (true, Some(run_totals)) = (frame.keeps_totals, &frame.ctx.run_totals) {
        for kv in run_totals.totals().to_attributes() {
            upsert(attrs, kv);
        }
    }
    if let Some(first) = more.first_chunk {
        upsert(attrs, KeyValue::new(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, anchor.seconds(frame.start, first)));
    }
}

/// Every metric of one span: the conventions' GenAI, agent, HTTP and MCP
/// metrics, and a `#[traced(metrics)]` function's calls and duration.
fn record_call_metrics(
    ins: &Instruments,
    out: &Collector<'_>,
    frame: &Frame,
    more: &More,
    attrs: &[KeyValue],
    duration_s: f64,
    priced_by: Option<StringValue>,
) {
    let failed = more.status == StatusCode::Error;
    // A tool or prompt a client asked an MCP server for without the server declaring it is `_OTHER` here.
    let metric_view: Cow<'_, [KeyValue]> =
        if more.undeclared { Cow::Owned(undeclared_as_other(attrs)) } else { Cow::Borrowed(attrs) };
    if let Some(operation) = frame.operation {
        let facts = CallFacts {
            operation,
            attrs: &metric_view,
            duration_s,
            failed,
            usage: frame.usage(),
            cost: frame.cost.flatten(),
            gaps: &more.chunk_gaps,
            agent: frame.ctx.agent.as_ref(),
            model: priced_by,
            labels: out.labels(),
            own_calls: frame.ctx.run_totals.as_ref().filter(|_| frame.keeps_totals).map(|t| {
                let t = t.totals();
                (t.own_llm_calls, t.own_tool_calls)
            }),
        };
        record_metrics(ins, &facts);
    }
    if more.http {
        record_http(ins, out.labels(), more.kind.as_ref(), attrs, duration_s);
    }
    if more.mcp {
        record_mcp(ins, out.labels(), more.kind.as_ref(), &metric_view, duration_s);
    }
    if let Some(site) = more.function_metrics {
        let labels = [
            KeyValue::new(m::LABEL_FUNCTION, out.qualified(site)),
            KeyValue::new(m::LABEL_RESULT, if failed { "error" } else { "ok" }),
        ];
        ins.function_calls.add(1, &labels);
        ins.function_duration.record(duration_s, &labels);
    }
}

/// Remembers a model call by its response id, for evaluations that come later.
fn remember_response(out: &Collector<'_>, frame: &Frame, attrs: &[KeyValue], request: Option<StringValue>) {
    if !frame.operation.is_some_and(|o| op::LLM.contains(&o)) {
        return;
    }
    if let Some(Value::String(id)) = find(attrs, sc::GEN_AI_RESPONSE_ID) {
        let call = GradedCall {
            trace_id: frame.ctx.trace_id,
            span_id: frame.ctx.span_id,
            sampled: frame.ctx.sampled,
            agent: frame.ctx.agent.clone(),
            model: request,
        };
        out.responses.borrow_mut().insert(id.as_str().to_string(), call);
    }
}

/// The span itself (name, kind, status, events, links), and what the tail
/// sampler learns from it.
fn span_data(
    frame: Frame,
    more: More,
    name: Cow<'static, str>,
    attrs: Vec<KeyValue>,
    unknown_model: Option<String>,
    anchor: &Anchor,
    scope: &InstrumentationScope,
) -> (SpanData, tail::Facts) {
    let is_llm = frame.operation.is_some_and(|o| op::LLM.contains(&o));
    let end_time = anchor.time(frame.end);
    let mut events = SpanEvents::default();
    events.events = more.events;
    events.dropped_count = more.dropped_events;
    if let Some(model) = unknown_model {
        let attributes = vec![
            KeyValue::new(sc::OBSERVRA_COST_MODEL, model),
            KeyValue::new(sc::EVENT_LEVEL, "WARN"),
            KeyValue::new(sc::EVENT_TARGET, "observra::cost"),
        ];
        events.events.push(Event::new(accounting::UNKNOWN_MODEL_WARNING, end_time, attributes, 0));
    }
    if !more.captured.is_empty() || (is_llm && crate::policy::content::on_event()) {
        let details = details_attributes(&attrs, more.captured);
        events.events.push(Event::new(sc::GEN_AI_DETAILS_EVENT, end_time, details, 0));
    }
    let kind = match (more.kind, frame.site) {
        (Some(kind), _) => kind,
        (None, Some(site)) => site.kind.clone(),
        // A model call made by a library that did not say: the conventions' CLIENT.
        (None, None) if is_llm => SpanKind::Client,
        (None, None) => SpanKind::Internal,
    };
    let failed = more.status == StatusCode::Error;
    let status = match more.status {
        StatusCode::Unset => Status::Unset,
        StatusCode::Ok => Status::Ok,
        StatusCode::Error => Status::error(more.status_message.unwrap_or_default()),
    };
    let mut links = SpanLinks::default();
    links.links = more.links;
    let facts = tail::Facts {
        failed,
        over_budget: more.over_budget,
        root: frame.parent_span_id == opentelemetry::trace::SpanId::INVALID || more.parent_is_remote,
        duration: std::time::Duration::from_secs_f64(anchor.seconds(frame.start, frame.end).max(0.0)),
    };
    let ctx = frame.ctx;
    let span = SpanData {
        span_context: SpanContext::new(ctx.trace_id, ctx.span_id, TraceFlags::SAMPLED, false, ctx.trace_state),
        parent_span_id: frame.parent_span_id,
        parent_span_is_remote: more.parent_is_remote,
        span_kind: kind,
        name,
        start_time: anchor.time(frame.start),
        end_time,
        attributes: attrs,
        dropped_attributes_count: more.dropped_attributes,
        events,
        links,
        status,
        instrumentation_scope: scope.clone(),
    };
    (span, facts)
}
