//! Evaluations ([`crate::record::evaluate`]) on the collector: each lands
//! as a score and, given by response id, as a span in the graded call's
//! trace; one whose call has not been seen yet waits for it, bounded.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use opentelemetry::trace::{Event, SpanContext, SpanKind, Status, TraceFlags};
use opentelemetry::{KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{IdGenerator, SpanData, SpanEvents, SpanLinks};

use super::metrics::record_evaluation;
use super::{Collector, tail};
use crate::account::accounting::Instruments;
use crate::base::graded::Graded;
use crate::base::state::Installed;
use observra_semconv as sc;

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
pub(super) struct Pending {
    items: Vec<(Box<Graded>, std::time::Instant, usize)>,
    bytes: usize,
}

/// A model call an evaluation may grade later.
#[derive(Clone)]
pub(super) struct GradedCall {
    pub(super) trace_id: opentelemetry::trace::TraceId,
    pub(super) span_id: opentelemetry::trace::SpanId,
    pub(super) sampled: bool,
    pub(super) agent: Option<StringValue>,
    pub(super) model: Option<StringValue>,
}

/// The last [`MAX_RESPONSES`] model calls with a response id.
#[derive(Default)]
pub(super) struct Responses {
    by_id: std::collections::HashMap<String, GradedCall>,
    order: std::collections::VecDeque<String>,
}

impl Responses {
    pub(super) fn insert(&mut self, id: String, call: GradedCall) {
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

/// The tail sampler's facts for a span that is never a trace's root.
fn not_a_root() -> tail::Facts {
    tail::Facts { failed: false, over_budget: false, root: false, duration: std::time::Duration::ZERO }
}

/// The span a late evaluation lands on: `evaluation {name}`, a child of
/// the graded call in its trace (a root of its own when the call is not
/// known), carrying the `gen_ai.evaluation.result` event.
fn evaluation_span(p: &Installed, g: &Graded, call: Option<&GradedCall>) -> SpanData {
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

impl Collector<'_> {
    /// Takes an evaluation told through the queue: it lands now when it
    /// can (its call is known, or it was given on an open span), else it
    /// waits for its call in [`Collector::pending`], up to [`MAX_PENDING`]
    /// evaluations and [`MAX_PENDING_BYTES`] bytes. One that does not fit
    /// is dropped, counted (`pending_full`): the list never grows with
    /// traffic past its bound.
    pub(super) fn evaluation(&self, g: Box<Graded>, p: Option<&Installed>, ins: Option<&Instruments>) {
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
    pub(super) fn land_evaluations(&self, p: &Installed, ins: Option<&Instruments>, all: bool) {
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
}
