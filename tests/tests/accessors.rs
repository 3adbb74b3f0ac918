//! The current trace and span ids, as a newcomer looks for them:
//! `observra::current_span().trace_id()` / `.span_id()` and the same on
//! `current_llm_call()`, on the frame path and through the `tracing` layer,
//! equal to what the exported span carries, and `None` outside any span.

use observra::{LlmResponse, Usage, current_llm_call, current_span, llm_call, traced};
use observra_test_support::{SharedBuf, serial};

#[derive(Debug)]
struct Reply;

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(10, 2))
    }
}

type Ids = (Option<String>, Option<String>);

#[traced]
fn handle() -> Ids {
    let s = current_span();
    (s.trace_id().map(|t| t.to_string()), s.span_id().map(|s| s.to_string()))
}

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
fn ask(ids: &mut Ids) -> Result<Reply, std::io::Error> {
    let call = current_llm_call();
    *ids = (call.trace_id().map(|t| t.to_string()), call.span_id().map(|s| s.to_string()));
    Ok(Reply)
}

fn run(fast_path: bool) {
    let out = SharedBuf::default();
    let guard = observra::init().fast_path(fast_path).jsonl_writer(out.clone()).install().expect("install");
    assert_eq!(current_span().trace_id(), None, "outside any span");
    assert_eq!(current_llm_call().span_id(), None, "outside any call");
    let traced = handle();
    let mut asked = (None, None);
    ask(&mut asked).expect("ask");
    drop(guard);
    let lines = out.lines();
    for (name, (trace, span)) in [("handle", traced), ("chat gpt-4o-mini", asked)] {
        let line = lines.iter().find(|l| l["name"] == name).unwrap_or_else(|| panic!("{name} exported: {lines:?}"));
        assert_eq!(trace.as_deref(), line["trace_id"].as_str(), "fast_path={fast_path}: {name}'s trace id");
        assert_eq!(span.as_deref(), line["span_id"].as_str(), "fast_path={fast_path}: {name}'s span id");
        assert_eq!(trace.map(|t| t.len()), Some(32), "32 hex digits");
    }
}

#[test]
fn the_current_trace_and_span_ids_are_the_exported_ones_on_both_paths() {
    let _s = serial();
    run(true);
    run(false);
}
