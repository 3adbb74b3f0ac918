//! The collector: one thread, off every caller, that turns closed
//! [`Frame`]s into `SpanData` and the GenAI, agent and function metrics.
//!
//! Callers queue frames on a bounded queue ([`crate::base::queue`]). Here,
//! once per span: the cost of a model call (unless the caller already
//! worked it out for a budget), the conventions' metrics with their exact
//! names, units and buckets, the totals an agent or workflow carries, the
//! details event, and the span itself, handed to every backend at once
//! ([`FanOut`]).

pub(crate) mod tail;

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use opentelemetry::trace::{Event, SpanContext, SpanKind, Status, TraceFlags};
use opentelemetry::{Key, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use crate::account::accounting::{self, Deferred, Instruments};
use crate::account::usage::Usage;
use crate::base::clock::Anchor;
use crate::base::frame::{Frame, More, StatusCode};
use crate::base::graded::Graded;
use crate::base::loss::Loss;
use crate::base::queue::{Control, FrameQueue, Note, QueueEnd};
use crate::base::state::{Installed, suppress_current_thread};
use crate::export::batch::FanOut;
use crate::policy::span::SpanPolicy;
use observra_semconv::{self as sc, metrics as m, operation as op};
use tail::KeepInteresting;
use tail::Tail;

/// Starts the `observra-collector` thread on the receiving end of a queue:
/// it assembles frames for `installed` (held weakly: the install owns the
/// queue), hands the spans to `legs` and records metrics on `ins`.
pub(crate) fn start(
    end: QueueEnd,
    ins: Option<Instruments>,
    legs: Arc<FanOut>,
    policy: SpanPolicy,
    tail: Option<KeepInteresting>,
    installed: Weak<Installed>,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("observra-collector".into()).spawn(move || {
        suppress_current_thread();
        let out = Out {
            legs: &legs,
            policy: &policy,
            tail: std::cell::RefCell::new(tail.map(Tail::new)),
            agents_seen: Default::default(),
            linted: Default::default(),
            responses: Default::default(),
            pending: Default::default(),
            qualified: Default::default(),
        };
        let drain = || drain(&end, &installed, &out, ins.as_ref());
        loop {
            match end.control.recv_timeout(FrameQueue::TICK) {
                Ok(Control::Wake) => {
                    end.wake_sent.store(false, Ordering::Release);
                    drain();
                }
                Ok(Control::Flush(reply)) => {
                    drain();
                    let _ = reply.send(());
                }
                Ok(Control::Stop(reply)) => {
                    drain();
                    if let Some(p) = installed.upgrade() {
                        out.land_evaluations(&p, ins.as_ref(), true);
                    }
                    out.decide_held();
                    let _ = reply.send(());
                    return;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => drain(),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    drain();
                    out.decide_held();
                    return;
                }
            }
        }
    })?;
    Ok(())
}

/// Takes every queued frame and assembles it.
/// Where assembled spans go: once made fit to leave, to every backend.
struct Out<'a> {
    legs: &'a FanOut,
    policy: &'a SpanPolicy,
    /// The tail sampler, when `keep_interesting` is on.
    tail: std::cell::RefCell<Option<Tail>>,
    /// Agents whose error counter has been started at 0 (bounded).
    agents_seen: std::cell::RefCell<std::collections::HashSet<Option<StringValue>>>,
    /// Span names already warned about a missing required GenAI attribute (bounded).
    linted: std::cell::RefCell<std::collections::HashSet<String>>,
    /// Recent model calls by response id, for evaluations that come after
    /// them ([`crate::evaluate`]); bounded.
    responses: std::cell::RefCell<Responses>,
    /// Evaluations whose call has not been seen yet (bounded).
    pending: std::cell::RefCell<Pending>,
    /// `module::function` of each `#[traced(metrics)]` function, made once.
    qualified: std::cell::RefCell<std::collections::HashMap<(&'static str, &'static str), StringValue>>,
}

/// At most this many agent names get error counters started at 0.
const MAX_AGENTS_SEEN: usize = 1024;

impl Out<'_> {
    /// The fully qualified name (`module::function`) of a function, shared.
    fn qualified(&self, (function, module): (&'static str, &'static str)) -> StringValue {
        let mut names = self.qualified.borrow_mut();
        if let Some(name) = names.get(&(function, module)) {
            return name.clone();
        }
        let name = StringValue::from(std::sync::Arc::<str>::from(format!("{module}::{function}")));
        // Function names are static: the map is bounded by the program's call sites.
        names.insert((function, module), name.clone());
        name
    }

    /// Metric labels as they may leave ([`Labels`]).
    fn labels(&self) -> Labels<'_> {
        Labels(self.policy.redactor.as_deref())
    }

    /// Warns once per span name when a span declares a model operation but
    /// lacks an attribute the GenAI conventions require of it, naming what
    /// is missing (a hand-made `chat` span is otherwise silently invalid).
    /// `name` is the span's name before redaction (a name made at run time
    /// can carry a secret): the line names it as it is exported.
    fn lint(&self, name: &str, operation: &str, attrs: &[KeyValue]) {
        let missing: Vec<&str> = [sc::GEN_AI_PROVIDER_NAME, sc::GEN_AI_REQUEST_MODEL]
            .into_iter()
            .filter(|k| find(attrs, k).is_none())
            .collect();
        if missing.is_empty() {
            return;
        }
        let mut seen = self.linted.borrow_mut();
        if seen.len() >= MAX_AGENTS_SEEN || !seen.insert(name.to_string()) {
            return;
        }
        let name = self.labels().text(name);
        crate::diag::emit(
            crate::diag::DiagnosticLevel::Warn,
            &format!(
                "span `{name}` declares gen_ai.operation.name = {operation} but has no {}, which the GenAI \
                 conventions require of it: use #[llm_call(provider = ..., model = ...)] or set the attribute \
                 (warned once per span name)",
                missing.join(" and ")
            ),
        );
    }

    /// Takes an evaluation told through the queue: it lands now when it
    /// can (its call is known, or it was given on an open span), else it
    /// waits for its call in [`Out::pending`], up to [`MAX_PENDING`]
    /// evaluations and [`MAX_PENDING_BYTES`] bytes. One that does not fit
    /// is dropped, counted (`pending_full`): the list never grows with
    /// traffic past its bound.
    fn evaluation(&self, g: Box<Graded>, p: Option<&Installed>, ins: Option<&Instruments>) {
        if p.is_some_and(|p| self.land(p, ins, &g, false)) {
            return;
        }
        let size = g.size();
        let mut pending = self.pending.borrow_mut();
        if pending.items.len() >= MAX_PENDING || pending.bytes.saturating_add(size) > MAX_PENDING_BYTES {
            drop(pending);
            crate::base::graded::lost(crate::base::graded::Lost::PendingFull);
            static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
            if !TOLD.swap(true, Ordering::Relaxed) {
                crate::diag::emit(
                    crate::diag::DiagnosticLevel::Warn,
                    "too many evaluations are waiting for calls not seen yet (by response id): an evaluation \
                     was dropped, counted in health().evaluations_dropped and \
                     observra.pipeline.evaluations.dropped (said once)",
                );
            }
            return;
        }
        pending.bytes += size;
        pending.items.push((g, std::time::Instant::now(), size));
        crate::base::graded::PENDING.store(pending.items.len() as u64, Ordering::Relaxed);
    }

    /// Lands the evaluations waiting for their call: those whose call is
    /// now known, and those that waited [`EVALUATION_WAIT`] (or all, when
    /// `all`), on a root span of their own.
    fn land_evaluations(&self, p: &Installed, ins: Option<&Instruments>, all: bool) {
        let mut pending = std::mem::take(&mut *self.pending.borrow_mut());
        if pending.items.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        pending.items.retain(|(g, since, size)| {
            let waited = all || now.saturating_duration_since(*since) >= EVALUATION_WAIT;
            let landed = self.land(p, ins, g, waited);
            if landed {
                pending.bytes -= size;
            }
            !landed
        });
        crate::base::graded::PENDING.store(pending.items.len() as u64, Ordering::Relaxed);
        *self.pending.borrow_mut() = pending;
    }

    /// Lands one evaluation if it can: the score in the histogram, and
    /// (for one given by response id) a span in the graded call's trace,
    /// or on a root span of its own once it `waited` for its call. False
    /// when it is to wait on.
    fn land(&self, p: &Installed, ins: Option<&Instruments>, g: &Graded, waited: bool) -> bool {
        let call = g.response_id.as_deref().and_then(|id| self.responses.borrow().get(id).cloned());
        match (&g.response_id, call) {
            (None, _) => {
                record_evaluation(ins, self.labels(), g, g.agent.as_ref(), g.model.as_ref());
                true
            }
            (Some(_), Some(call)) => {
                record_evaluation(ins, self.labels(), g, call.agent.as_ref(), call.model.as_ref());
                if call.sampled {
                    self.offer(evaluation_span(p, g, Some(&call)), not_a_root());
                }
                true
            }
            (Some(_), None) if waited => {
                record_evaluation(ins, self.labels(), g, None, None);
                self.offer(evaluation_span(p, g, None), not_a_root());
                true
            }
            (Some(_), None) => false,
        }
    }

    /// Makes a finished span fit to leave (the content policy, redaction
    /// and the span limits, once), then hands it to the tail sampler when
    /// there is one (it submits what it keeps), else to every backend. The
    /// sampler so holds spans as they will leave, cut to the limits, never
    /// a megabyte of captured prompt. A span whose redaction failed is
    /// dropped and counted, never exported (the sampler still learns what
    /// it tells of its trace).
    fn offer(&self, mut span: SpanData, facts: tail::Facts) {
        let fit = self.policy.apply(&mut span);
        let mut tail = self.tail.borrow_mut();
        match (tail.as_mut(), fit) {
            (Some(t), true) => t.offer(span, facts, &mut |s| self.legs.submit(s)),
            (Some(t), false) => {
                t.lost(span.span_context.trace_id(), facts, &mut |s| self.legs.submit(s));
                redaction_failed();
            }
            (None, true) => {
                drop(tail);
                self.legs.submit(span);
            }
            (None, false) => redaction_failed(),
        }
    }

    /// Decides the held traces whose root has not ended in time.
    fn expire_held(&self) {
        if let Some(t) = self.tail.borrow_mut().as_mut() {
            t.expire(std::time::Instant::now(), &mut |s| self.legs.submit(s));
        }
    }

    /// Decides every held trace (the pipeline is stopping).
    fn decide_held(&self) {
        if let Some(t) = self.tail.borrow_mut().as_mut() {
            t.decide_all(&mut |s| self.legs.submit(s));
        }
    }
}

/// Counts a span dropped because its redaction failed (a redaction rule
/// panicked), and says so once.
fn redaction_failed() {
    Loss::RedactionFailed.span();
    static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !TOLD.swap(true, Ordering::AcqRel) {
        crate::diag::emit(
            crate::diag::DiagnosticLevel::Warn,
            "redaction failed (a redaction rule panicked): the span was dropped rather than exported \
             unredacted; later failures are counted in health().spans_redaction_failed",
        );
    }
}

fn drain(end: &QueueEnd, installed: &Weak<Installed>, out: &Out<'_>, ins: Option<&Instruments>) {
    let mut taken = 0;
    // Once per drain, not per frame: the count is shared with every span.
    let p = installed.upgrade();
    // Stamps become wall-clock times against an anchor taken now.
    let anchor = Anchor::now();
    // Agents whose closing frame the queue dropped: taken before the notes,
    // so each one's start is counted by the end of them.
    let ended = end.take_ended();
    // Notes first: an agent's start is told before its frame closes.
    while let Ok(note) = end.notes.try_recv() {
        match note {
            Note::Evaluation(graded) => out.evaluation(graded, p.as_deref(), ins),
            Note::AgentStarted(agent) => {
                if let Some(ins) = ins {
                    let labels = set_labels(out.labels(), agent.as_ref(), None, None);
                    ins.agent_active.add(1, &labels);
                    // A new agent's error counter starts at 0, so its error
                    // rate reads 0 rather than "no data" before its first failure.
                    let mut seen = out.agents_seen.borrow_mut();
                    if seen.len() < MAX_AGENTS_SEEN && seen.insert(agent) {
                        ins.agent_errors.add(0, &labels);
                    }
                }
            }
        }
    }
    for (agent, n) in ended {
        agent_ended(out, ins, agent.as_ref(), n);
    }
    while let Ok(mut frame) = end.frames.try_recv() {
        // The shared depth is updated in steps, not per item: callers write it too.
        taken += 1;
        if taken == 64 {
            end.depth.fetch_sub(taken, Ordering::AcqRel);
            taken = 0;
        }
        let Some(p) = &p else {
            if frame.ctx.sampled {
                Loss::Stopped.span();
            }
            continue;
        };
        let sampled = frame.ctx.sampled;
        // An agent counted in `agent.requests.active` is taken back here,
        // whatever becomes of its frame.
        let agent = frame.more.as_mut().and_then(|m| m.active_agent.take());
        // A panic in a metric reader or a backend's queue must not stop
        // the thread; what it loses is counted.
        let ok =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| assemble(frame, p, out, ins, &anchor))).is_ok();
        if let Some(agent) = agent {
            agent_ended(out, ins, agent.as_ref(), 1);
        }
        if !ok {
            Loss::AssemblyFailed.metric_job();
            if sampled {
                Loss::AssemblyFailed.span();
            }
            crate::diag::emit(
                crate::diag::DiagnosticLevel::Warn,
                "assembling a span panicked: the span was dropped and counted",
            );
        }
    }
    end.depth.fetch_sub(taken, Ordering::AcqRel);
    if let Some(p) = &p {
        out.land_evaluations(p, ins, false);
    }
    out.expire_held();
}

/// `agent.requests.active` -n for `agent`: its runs ended (or their frames
/// were lost; the start was counted all the same).
fn agent_ended(out: &Out<'_>, ins: Option<&Instruments>, agent: Option<&StringValue>, n: u64) {
    // A panic in a metric reader must not stop the thread.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some(ins) = ins {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            ins.agent_active.add(-n, &set_labels(out.labels(), agent, None, None));
        }
    }));
}

/// Up to [`Attrs::CAP`] metric attributes, on the stack: recording a metric
/// allocates nothing when the values are static or shared strings.
#[derive(Clone)]
struct Attrs {
    buf: [KeyValue; Attrs::CAP],
    len: usize,
}

impl Attrs {
    const CAP: usize = 12;
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

/// Sets `kv` in `attrs`, replacing an attribute of the same key.
fn upsert(attrs: &mut Vec<KeyValue>, kv: KeyValue) {
    match attrs.iter_mut().find(|a| a.key == kv.key) {
        Some(a) => a.value = kv.value,
        None => attrs.push(kv),
    }
}

/// The attribute `key` of `attrs`, if present.
fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
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
struct Labels<'a>(Option<&'a crate::redact::Redactor>);

impl Labels<'_> {
    /// `a` with its values redacted.
    fn scrub(self, mut a: Attrs) -> Attrs {
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
    fn text<'t>(self, text: &'t str) -> Cow<'t, str> {
        match self.0 {
            None => Cow::Borrowed(text),
            Some(r) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.redact(text)))
                .unwrap_or(Cow::Borrowed(crate::redact::WITHHELD)),
        }
    }

    /// Bounded metric attributes: copies of the listed span attributes,
    /// when present, redacted.
    fn pick(self, attrs: &[KeyValue], keys: &[&'static str]) -> Attrs {
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
fn set_labels(
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
struct Facts<'a> {
    operation: &'static str,
    attrs: &'a [KeyValue],
    duration_s: f64,
    failed: bool,
    usage: Option<Usage>,
    cost: Option<f64>,
    gaps: &'a [f64],
    agent: Option<&'a StringValue>,
    /// The model the call is priced by.
    model: Option<StringValue>,
    /// How labels are made fit to leave.
    labels: Labels<'a>,
}

/// Records the conventions' metrics of one GenAI span.
fn record_metrics(ins: &Instruments, f: &Facts<'_>) {
    let d = f.duration_s;
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
            let a = f.labels.pick(f.attrs, &[sc::GEN_AI_OPERATION_NAME, sc::GEN_AI_TOOL_NAME, sc::ERROR_TYPE]);
            ins.tool_duration.record(d, &a);
            let labels = set_labels(f.labels, f.agent, None, string_value(f.attrs, sc::GEN_AI_TOOL_NAME));
            ins.agent_tool_calls.add(1, &labels);
            if f.failed {
                ins.agent_tool_errors.add(1, &labels);
            }
        }
        op::INVOKE_AGENT => {
            let a = f.labels.pick(
                f.attrs,
                &[sc::GEN_AI_OPERATION_NAME, sc::GEN_AI_AGENT_NAME, sc::GEN_AI_PROVIDER_NAME, sc::ERROR_TYPE],
            );
            ins.agent_duration.record(d, &a);
            let labels = set_labels(f.labels, f.agent, None, None);
            ins.agent_requests.add(1, &labels);
            ins.agent_request_duration.record(d, &labels);
            if f.failed {
                ins.agent_errors.add(1, &labels);
            }
        }
        op::INVOKE_WORKFLOW => {
            let a = f.labels.pick(f.attrs, &[sc::GEN_AI_OPERATION_NAME, sc::GEN_AI_WORKFLOW_NAME, sc::ERROR_TYPE]);
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
fn record_http(ins: &Instruments, labels: Labels<'_>, kind: Option<&SpanKind>, attrs: &[KeyValue], duration_s: f64) {
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
fn undeclared_as_other(attrs: &[KeyValue]) -> Vec<KeyValue> {
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
fn record_mcp(ins: &Instruments, labels: Labels<'_>, kind: Option<&SpanKind>, attrs: &[KeyValue], duration_s: f64) {
    let a = labels.pick(attrs, MCP_METRIC_KEYS);
    match kind {
        Some(SpanKind::Server) => ins.mcp_server_duration.record(duration_s, &a),
        _ => ins.mcp_client_duration.record(duration_s, &a),
    }
}

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
fn assemble(mut frame: Frame, p: &Installed, out: &Out<'_>, ins: Option<&Instruments>, anchor: &Anchor) {
    let acc = &p.accounting;
    let more = frame.more.take().map(|m| *m).unwrap_or_default();
    let usage = frame.usage();
    let request = match frame.site.and_then(|s| s.model) {
        Some(m) => Some(StringValue::from(m)),
        None => more.model.clone(),
    };
    let name = frame.ctx.sampled.then(|| span_name(&frame, &more, request.as_ref()));
    let site_attrs = frame.site.map_or(0, |s| s.attrs.len() + 1);
    let mut attrs = Vec::with_capacity(8 + site_attrs + more.attrs.len());
    if let Some(site) = frame.site {
        if let Some(operation) = site.operation {
            attrs.push(KeyValue::new(sc::GEN_AI_OPERATION_NAME, operation));
        }
        attrs.extend(site.attrs.iter().map(|(k, v)| KeyValue::new(Key::from_static_str(k), v.value())));
    }
    if let Some(m) = &request {
        attrs.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, Value::String(m.clone())));
    }
    if site_attrs == 0 {
        attrs.extend(more.attrs);
    } else {
        // What the call set replaces a literal of its site.
        for kv in more.attrs {
            upsert(&mut attrs, kv);
        }
    }
    for (key, n) in frame.usage.attributes() {
        attrs.push(KeyValue::new(key, i64::try_from(n).unwrap_or(i64::MAX)));
    }
    if let Some(m) = &frame.response_model {
        attrs.push(KeyValue::new(sc::GEN_AI_RESPONSE_MODEL, Value::String(m.clone())));
    }
    let failed = more.status == StatusCode::Error;
    let genai = frame.site.is_some_and(|s| s.operation.is_some()) || more.genai;
    let mut unknown_model = more.unknown_model;
    let mut priced_by = None;
    if frame.operation.is_some_and(|o| op::LLM.contains(&o)) {
        let mut deferred = Deferred::default();
        let cost = match frame.cost {
            Some(cost) => {
                priced_by =
                    accounting::llm_cost(acc, None, frame.response_model.as_ref(), request.as_ref(), &mut deferred).0;
                cost
            }
            None => {
                let (model, cost) = accounting::llm_cost(
                    acc,
                    usage.as_ref(),
                    frame.response_model.as_ref(),
                    request.as_ref(),
                    &mut deferred,
                );
                priced_by = model;
                cost
            }
        };
        frame.cost = Some(cost);
        if let Some(c) = cost {
            attrs.push(KeyValue::new(sc::OBSERVRA_COST_USD, c));
        }
        unknown_model = unknown_model.or(deferred.unknown_model);
    }
    // A conversation id set above reaches the GenAI spans beneath it.
    if let (true, Some(cid)) = (genai, frame.ctx.conversation_id.take()) {
        if find(&attrs, sc::GEN_AI_CONVERSATION_ID).is_none() {
            attrs.push(KeyValue::new(sc::GEN_AI_CONVERSATION_ID, cid));
        }
    }
    if let (true, Some(keeper)) = (more.keeps_totals, &frame.ctx.keeper) {
        for kv in keeper.totals().to_attributes() {
            upsert(&mut attrs, kv);
        }
    }
    if let Some(first) = more.first_chunk {
        let ttfc = KeyValue::new(sc::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, anchor.seconds(frame.start, first));
        upsert(&mut attrs, ttfc);
    }
    let duration_s = anchor.seconds(frame.start, frame.end);
    let (start_time, end_time) = (anchor.time(frame.start), anchor.time(frame.end));
    if let Some(ins) = ins {
        // A tool or prompt a client asked an MCP server for without the server declaring it is `_OTHER` here.
        let metric_view: Cow<'_, [KeyValue]> =
            if more.undeclared { Cow::Owned(undeclared_as_other(&attrs)) } else { Cow::Borrowed(&attrs) };
        if let Some(operation) = frame.operation {
            let facts = Facts {
                operation,
                attrs: &metric_view,
                duration_s,
                failed,
                usage,
                cost: frame.cost.flatten(),
                gaps: &more.chunk_gaps,
                agent: frame.ctx.agent.as_ref(),
                model: priced_by,
                labels: out.labels(),
            };
            record_metrics(ins, &facts);
        }
        if more.http {
            record_http(ins, out.labels(), more.kind.as_ref(), &attrs, duration_s);
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
    if frame.operation.is_some_and(|o| op::LLM.contains(&o)) {
        if let Some(Value::String(id)) = find(&attrs, sc::GEN_AI_RESPONSE_ID) {
            let call = GradedCall {
                trace_id: frame.ctx.trace_id,
                span_id: frame.ctx.span_id,
                sampled: frame.ctx.sampled,
                agent: frame.ctx.agent.clone(),
                model: request.clone(),
            };
            out.responses.borrow_mut().insert(id.as_str().to_string(), call);
        }
    }
    if !frame.ctx.sampled {
        return;
    }
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
    let is_llm = frame.operation.is_some_and(|o| op::LLM.contains(&o));
    // A library's span named by its bare operation (rig's `chat`,
    // `invoke_agent`, `execute_tool`) gets the conventions' name.
    let name = match (name, frame.site, frame.operation) {
        (Some(n), None, Some(o)) if n == o => Some(conventional_name(n, o, &attrs)),
        (n, _, _) => n,
    };
    if let (true, Some(operation)) = (is_llm, frame.operation) {
        out.lint(name.as_deref().unwrap_or_default(), operation, &attrs);
    }
    if !more.captured.is_empty() || (is_llm && crate::policy::content::on_event()) {
        events.events.push(Event::new(
            sc::GEN_AI_DETAILS_EVENT,
            end_time,
            details_attributes(&attrs, more.captured),
            0,
        ));
    }
    let kind = match (more.kind, frame.site) {
        (Some(kind), _) => kind,
        (None, Some(site)) => site.kind.clone(),
        // A model call made by a library that did not say: the conventions' CLIENT.
        (None, None) if is_llm => SpanKind::Client,
        (None, None) => SpanKind::Internal,
    };
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
        duration: std::time::Duration::from_secs_f64(duration_s.max(0.0)),
    };
    out.offer(
        SpanData {
            span_context: SpanContext::new(
                frame.ctx.trace_id,
                frame.ctx.span_id,
                TraceFlags::SAMPLED,
                false,
                frame.ctx.trace_state,
            ),
            parent_span_id: frame.parent_span_id,
            parent_span_is_remote: more.parent_is_remote,
            span_kind: kind,
            name: name.unwrap_or_default(),
            start_time,
            end_time,
            attributes: attrs,
            dropped_attributes_count: more.dropped_attributes,
            events,
            links,
            status,
            instrumentation_scope: p.scope.clone(),
        },
        facts,
    );
}

/// How long an evaluation given by response id waits for its call.
const EVALUATION_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Model calls remembered by response id, for late evaluations.
const MAX_RESPONSES: usize = 16_384;

/// Evaluations that wait for their call at most, by count ...
const MAX_PENDING: usize = 16_384;
/// ... and by bytes ([`Graded::size`]: an explanation can be long).
const MAX_PENDING_BYTES: usize = 16 << 20;

/// Evaluations waiting for their call, each with when it came and its
/// size, and their total size.
#[derive(Default)]
struct Pending {
    items: Vec<(Box<Graded>, std::time::Instant, usize)>,
    bytes: usize,
}

/// A model call an evaluation may grade later.
#[derive(Clone)]
struct GradedCall {
    trace_id: opentelemetry::trace::TraceId,
    span_id: opentelemetry::trace::SpanId,
    sampled: bool,
    agent: Option<StringValue>,
    model: Option<StringValue>,
}

/// The last [`MAX_RESPONSES`] model calls with a response id.
#[derive(Default)]
struct Responses {
    by_id: std::collections::HashMap<String, GradedCall>,
    order: std::collections::VecDeque<String>,
}

impl Responses {
    fn insert(&mut self, id: String, call: GradedCall) {
        if self.by_id.insert(id.clone(), call).is_none() {
            self.order.push_back(id);
            if self.order.len() > MAX_RESPONSES {
                if let Some(old) = self.order.pop_front() {
                    self.by_id.remove(&old);
                }
            }
        }
    }
    fn get(&self, id: &str) -> Option<&GradedCall> {
        self.by_id.get(id)
    }
}

/// `observra.evaluation.score`, by evaluation name and label (and the
/// graded call's agent and model when known).
fn record_evaluation(
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

/// The tail sampler's facts for a span that is never a trace's root.
fn not_a_root() -> tail::Facts {
    tail::Facts { failed: false, over_budget: false, root: false, duration: std::time::Duration::ZERO }
}

/// The span a late evaluation lands on: `evaluation {name}`, a child of
/// the graded call in its trace (a root of its own when the call is not
/// known), carrying the `gen_ai.evaluation.result` event.
fn evaluation_span(p: &Installed, g: &Graded, call: Option<&GradedCall>) -> SpanData {
    use opentelemetry_sdk::trace::IdGenerator;
    let id = g.response_id.as_deref();
    let mut attributes = vec![KeyValue::new(sc::GEN_AI_EVALUATION_NAME, g.evaluation.name.clone())];
    if let Some(id) = id {
        attributes.push(KeyValue::new(sc::GEN_AI_RESPONSE_ID, id.to_string()));
    }
    if let Some(agent) = call.and_then(|c| c.agent.clone()) {
        attributes.push(KeyValue::new(sc::GEN_AI_AGENT_NAME, Value::String(agent)));
    }
    if let Some(model) = call.and_then(|c| c.model.clone()) {
        attributes.push(KeyValue::new(sc::GEN_AI_REQUEST_MODEL, Value::String(model)));
    }
    let mut events = SpanEvents::default();
    events.events.push(Event::new(sc::GEN_AI_EVALUATION_EVENT, g.at, g.evaluation.attributes(id), 0));
    let (trace_id, parent) = match call {
        Some(c) => (c.trace_id, c.span_id),
        None => (p.ids.new_trace_id(), opentelemetry::trace::SpanId::INVALID),
    };
    SpanData {
        span_context: SpanContext::new(trace_id, p.ids.new_span_id(), TraceFlags::SAMPLED, false, Default::default()),
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(format!("{} {}", crate::base::graded::EVALUATION_SPAN, g.evaluation.name)),
        start_time: g.at,
        end_time: g.at,
        attributes,
        dropped_attributes_count: 0,
        events,
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: p.scope.clone(),
    }
}
