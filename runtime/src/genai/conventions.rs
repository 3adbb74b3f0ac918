//! Which release of the GenAI semantic conventions observra emits: v1.41
//! by default, the newest it follows behind
//! `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`
//! ([`crate::GenAiConventions`]); and the few values whose name or type
//! differs between the two. Every other name is the same in both.

use std::sync::atomic::Ordering;

use opentelemetry::Value;

use crate::base::state::GENAI_LATEST;
use observra_semconv as sc;

/// Whether the newest conventions are emitted.
pub(crate) fn latest() -> bool {
    GENAI_LATEST.load(Ordering::Relaxed)
}

/// `gen_ai.request.top_k`: a double in v1.41, an integer in the newest.
pub(crate) fn request_top_k(k: f64) -> Value {
    if latest() { Value::I64(k.round() as i64) } else { Value::F64(k) }
}

/// A retrieval's `k`: `gen_ai.request.top_k` (a double) in v1.41, its own
/// `gen_ai.retrieval.top_k` (an integer) in the newest.
pub(crate) fn retrieval_top_k(k: f64) -> (&'static str, Value) {
    let key = if latest() { sc::GEN_AI_RETRIEVAL_TOP_K } else { sc::GEN_AI_REQUEST_TOP_K };
    (key, request_top_k(k))
}

/// A number as recorded by a macro argument, as `f64`.
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::I64(i) => Some(*i as f64),
        Value::F64(f) => Some(*f),
        _ => None,
    }
}
