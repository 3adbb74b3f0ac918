//! What an evaluation is ([`Evaluation`]) and what the collector is told
//! of one ([`Graded`]): plain data, below the queue that carries it
//! ([`crate::evaluate`] makes them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use opentelemetry::KeyValue;

use observra_semconv as sc;

/// The name of the spans late evaluations land on (`evaluation {name}`);
/// the `otel_log` backend gives their events the graded call's context.
pub(crate) const EVALUATION_SPAN: &str = "evaluation";

/// One evaluation of a GenAI call.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub(crate) name: String,
    pub(crate) score: Option<f64>,
    pub(crate) label: Option<String>,
    pub(crate) explanation: Option<String>,
    pub(crate) error_type: Option<String>,
}

impl Evaluation {
    /// An evaluation named `name` (`relevance`, `groundedness`, ...).
    pub fn new(name: impl Into<String>) -> Self {
        Evaluation { name: name.into(), score: None, label: None, explanation: None, error_type: None }
    }
    /// The score the evaluator gave.
    pub fn score(mut self, score: f64) -> Self {
        self.score = Some(score);
        self
    }
    /// Its low-cardinality label (`relevant`, `pass`, `fail`).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
    /// The evaluator's free-form explanation.
    pub fn explanation(mut self, explanation: impl Into<String>) -> Self {
        self.explanation = Some(explanation.into());
        self
    }
    /// The evaluator failed, with this error type.
    pub fn failed(mut self, error_type: impl Into<String>) -> Self {
        self.error_type = Some(error_type.into());
        self
    }

    /// The event's attributes (the response id added when known).
    pub(crate) fn attributes(&self, response_id: Option<&str>) -> Vec<KeyValue> {
        let mut a = vec![KeyValue::new(sc::GEN_AI_EVALUATION_NAME, self.name.clone())];
        if let Some(s) = self.score {
            a.push(KeyValue::new(sc::GEN_AI_EVALUATION_SCORE_VALUE, s));
        }
        if let Some(l) = &self.label {
            a.push(KeyValue::new(sc::GEN_AI_EVALUATION_SCORE_LABEL, l.clone()));
        }
        if let Some(e) = &self.explanation {
            a.push(KeyValue::new(sc::GEN_AI_EVALUATION_EXPLANATION, e.clone()));
        }
        if let Some(id) = response_id {
            a.push(KeyValue::new(sc::GEN_AI_RESPONSE_ID, id.to_string()));
        }
        if let Some(t) = &self.error_type {
            a.push(KeyValue::new(sc::ERROR_TYPE, t.clone()));
        }
        a
    }
}

/// What the collector is told of an evaluation.
#[derive(Debug)]
pub(crate) struct Graded {
    pub evaluation: Evaluation,
    /// Set when the call is to be found by its response id.
    pub response_id: Option<String>,
    /// The graded span's agent and model, when the span was open.
    pub agent: Option<opentelemetry::StringValue>,
    pub model: Option<opentelemetry::StringValue>,
    pub at: SystemTime,
}

impl Graded {
    /// About how many bytes it takes while it waits for its call.
    pub(crate) fn size(&self) -> usize {
        let e = &self.evaluation;
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let shared = |s: &Option<opentelemetry::StringValue>| s.as_ref().map_or(0, |s| s.as_str().len());
        std::mem::size_of::<Graded>()
            + e.name.len()
            + text(&e.label)
            + text(&e.explanation)
            + text(&e.error_type)
            + text(&self.response_id)
            + shared(&self.agent)
            + shared(&self.model)
    }
}

/// Why an evaluation was lost before it landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// The collector's queue was full when it was told (`evaluate` returned false).
    QueueFull = 0,
    /// Too many evaluations (or bytes of them) were waiting for their call already.
    PendingFull = 1,
}

impl Lost {
    /// Every reason, with its name in `observra.reason`.
    pub(crate) const ALL: [(Lost, &'static str); 2] =
        [(Lost::QueueFull, "queue_full"), (Lost::PendingFull, "pending_full")];
}

/// Evaluations lost, by [`Lost`] reason, since the process started.
pub(crate) static LOST: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Evaluations waiting in the collector for the call they grade, now.
pub(crate) static PENDING: AtomicU64 = AtomicU64::new(0);

/// Counts an evaluation lost for `reason`.
pub(crate) fn lost(reason: Lost) {
    LOST[reason as usize].fetch_add(1, Ordering::Relaxed);
}
