//! Evaluation results (LLM-as-judge scores, graders, human labels) as the
//! conventions' `gen_ai.evaluation.result` event, landed on the call they
//! grade, and the `observra.evaluation.score` histogram.
//!
//! [`evaluate`] takes the graded call two ways:
//!
//! - **while its span is open** ([`crate::current_span`] inside the
//!   `#[llm_call]`, or any [`SpanRef`]): the event is added to that span;
//! - **after it closed, by its response id** (`gen_ai.response.id`, what
//!   the provider answered: `chatcmpl-...`): the collector finds the call
//!   among the recent ones it assembled (the last 16,384 with a response
//!   id) and exports an INTERNAL span `evaluation {name}` in the call's
//!   trace, a child of the call's span, carrying the event. With the
//!   `otel_log` backend that event is a log record whose context is the
//!   graded call's trace and span ids. An evaluation whose call is not
//!   found within 10 s (evaluated before the call ended, or the call is
//!   older than those kept) is exported as a root span with the response
//!   id only.
//!
//! Either way the score is recorded in `observra.evaluation.score` by
//! evaluation name and label (with the graded call's agent and model when
//! known), and the event carries `gen_ai.evaluation.name`,
//! `gen_ai.evaluation.score.value`, `gen_ai.evaluation.score.label`,
//! `gen_ai.evaluation.explanation` (content: redacted like every string),
//! `gen_ai.response.id` and `error.type` (the evaluator failed).

use std::time::SystemTime;

use opentelemetry::trace::Event;

pub use crate::base::graded::Evaluation;
use crate::base::graded::Graded;
use crate::base::queue::Note;
use crate::record::span_ref::SpanRef;
use observra_semconv as sc;

/// The call an evaluation grades: an open span, or a response id.
#[derive(Debug, Clone)]
pub enum Evaluated {
    /// A span still open (`observra::current_span()` inside the call).
    Span(SpanRef),
    /// The call's `gen_ai.response.id`, after it closed.
    ResponseId(String),
}

impl From<SpanRef> for Evaluated {
    fn from(s: SpanRef) -> Self {
        Evaluated::Span(s)
    }
}
impl From<&SpanRef> for Evaluated {
    fn from(s: &SpanRef) -> Self {
        Evaluated::Span(s.clone())
    }
}
impl From<&str> for Evaluated {
    fn from(id: &str) -> Self {
        Evaluated::ResponseId(id.to_string())
    }
}
impl From<String> for Evaluated {
    fn from(id: String) -> Self {
        Evaluated::ResponseId(id)
    }
}
impl From<&String> for Evaluated {
    fn from(id: &String) -> Self {
        Evaluated::ResponseId(id.clone())
    }
}

/// Records `evaluation` of `call`: on its span while it is open, or on a
/// span of its own in the call's trace once it closed (see the module
/// docs). False when nothing is installed, the span is not open, or the
/// collector's queue is full (the evaluation is then dropped).
pub fn evaluate(call: impl Into<Evaluated>, evaluation: Evaluation) -> bool {
    let at = SystemTime::now();
    match call.into() {
        Evaluated::Span(span) => {
            let mut found = None;
            crate::record::target::with_sink(&span, |f| {
                let response = f.response_id.clone();
                let event = Event::new(sc::GEN_AI_EVALUATION_EVENT, at, evaluation.attributes(response.as_deref()), 0);
                f.add_event(event);
                found = Some((f.ctx.agent.clone(), f.request_model()));
            });
            let Some((agent, model)) = found else { return false };
            note(Graded { evaluation, response_id: None, agent, model, at })
        }
        Evaluated::ResponseId(id) => note(Graded { evaluation, response_id: Some(id), agent: None, model: None, at }),
    }
}

fn note(graded: Graded) -> bool {
    crate::base::state::with_installed(|_, p| {
        let told = p.queue.note(Note::Evaluation(Box::new(graded)));
        if !told {
            crate::base::graded::lost(crate::base::graded::Lost::QueueFull);
        }
        told
    })
    .unwrap_or(false)
}
