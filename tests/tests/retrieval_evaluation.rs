//! Retrieval spans (`#[retrieval]`), embeddings beside them, and
//! evaluation results landing on the call they grade (open or closed), in
//! the metrics and in the CLI's summary. Decoded from the in-process OTLP
//! receiver (spans, logs, metrics) and from the JSONL the same run wrote.

use observra::integrations::async_openai::instrument;
use observra::{Evaluation, LlmResponse, RetrievedDocument, Usage, agent, llm_call, retrieval};
use observra_test_support::fake_openai::FakeOpenAi;
use observra_test_support::{ReceivedSpan, Receiver, Val, otlp_env, resident_bytes, run_ok, serial, span};

#[retrieval(data_source = "orders-index", provider = "openai", top_k = k, query = question)]
async fn search(question: &str, k: usize) -> Result<Vec<RetrievedDocument>, std::io::Error> {
    Ok(vec![RetrievedDocument::new("doc_123", 0.95), RetrievedDocument::new("doc_456", 0.87)])
}

#[agent(name = "rag")]
async fn answer(client: &observra::integrations::async_openai::TracedClient<async_openai::config::OpenAIConfig>) {
    let req = async_openai::types::embeddings::CreateEmbeddingRequestArgs::default()
        .model("text-embedding-3-small")
        .input("where is order A-1001")
        .dimensions(16u32)
        .build()
        .unwrap();
    client.embeddings().create(req).await.expect("embeddings");
    let docs = search("where is order A-1001? key sk-TESTabcdefghijklmnopqrstuvwx0123", 5).await.unwrap();
    assert_eq!(docs.len(), 2);
}

fn run_rag(extra: &[(&str, &str)]) -> Vec<ReceivedSpan> {
    let _s = serial();
    let rx = Receiver::start();
    let mut env = otlp_env(&rx, "http/protobuf");
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let guard = observra::init().env_from(env).install().expect("install");
    let fake = FakeOpenAi::start().unwrap();
    let config = async_openai::config::OpenAIConfig::new().with_api_base(fake.api_base()).with_api_key("not-needed");
    let client = instrument(async_openai::Client::with_config(config));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(answer(&client));
    drop(guard);
    let spans = rx.spans();
    // The conventions' duration and token metrics for both operations.
    let ops: Vec<String> = rx
        .metric_streams("gen_ai.client.operation.duration")
        .into_iter()
        .flat_map(|m| m.histogram_points.into_iter())
        .filter_map(|p| p.attributes.get("gen_ai.operation.name").and_then(Val::as_str).map(str::to_string))
        .collect();
    assert!(ops.iter().any(|o| o == "retrieval") && ops.iter().any(|o| o == "embeddings"), "{ops:?}");
    let tokens = rx.metric_streams("gen_ai.client.token.usage");
    assert!(
        tokens.iter().flat_map(|m| m.histogram_points.iter()).any(|p| {
            p.attributes.get("gen_ai.operation.name") == Some(&Val::Str("embeddings".into()))
                && p.attributes.get("gen_ai.token.type") == Some(&Val::Str("input".into()))
        }),
        "{tokens:?}"
    );
    spans
}

#[test]
fn retrieval_and_embeddings_calls_export_their_conventional_spans_without_content_by_default() {
    let spans = run_rag(&[]);
    let agent = span(&spans, "invoke_agent rag");
    let r = span(&spans, "retrieval orders-index");
    assert_eq!(r.kind, 3, "CLIENT");
    assert_eq!(r.parent_span_id.as_deref(), Some(agent.span_id.as_str()));
    assert_eq!(r.str_attr("gen_ai.operation.name"), Some("retrieval"));
    assert_eq!(r.str_attr("gen_ai.data_source.id"), Some("orders-index"));
    assert_eq!(r.str_attr("gen_ai.provider.name"), Some("openai"));
    assert_eq!(r.attr("gen_ai.request.top_k"), Some(&Val::Double(5.0)), "a double, as the conventions say");
    for k in ["gen_ai.retrieval.query.text", "gen_ai.retrieval.documents"] {
        assert!(r.attr(k).is_none(), "{k} with capture off");
    }
    let e = span(&spans, "embeddings text-embedding-3-small");
    assert_eq!(e.parent_span_id.as_deref(), Some(agent.span_id.as_str()));
    assert_eq!(e.attr("gen_ai.embeddings.dimension.count"), Some(&Val::Int(16)));
    assert!(matches!(e.attr("gen_ai.usage.input_tokens"), Some(Val::Int(n)) if *n > 0));
}

#[test]
fn with_capture_on_the_query_and_the_documents_are_captured_redacted() {
    let spans = run_rag(&[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")]);
    let r = span(&spans, "retrieval orders-index");
    assert_eq!(
        r.str_attr("gen_ai.retrieval.query.text"),
        Some("where is order A-1001? key [REDACTED:openai_key]"),
        "the query, redacted"
    );
    let docs: serde_json::Value = serde_json::from_str(r.str_attr("gen_ai.retrieval.documents").unwrap()).unwrap();
    assert_eq!(docs, serde_json::json!([{"id": "doc_123", "score": 0.95}, {"id": "doc_456", "score": 0.87}]));
}

struct Reply(&'static str);

impl LlmResponse for Reply {
    fn usage(&self) -> Option<Usage> {
        Some(Usage::new(300, 40))
    }
    fn response_id(&self) -> Option<&str> {
        Some(self.0)
    }
}

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
fn chat(id: &'static str) -> Reply {
    // A check made while the call is open lands on its span.
    observra::evaluate(observra::current_span(), Evaluation::new("format").score(1.0).label("pass"));
    Reply(id)
}

#[agent(name = "support")]
fn support() -> Reply {
    chat("chatcmpl-graded")
}

#[test]
fn evaluations_land_on_the_call_they_grade_open_or_closed_in_metrics_logs_and_the_summary() {
    let _s = serial();
    let rx = Receiver::start();
    let dir = std::env::temp_dir().join(format!("observra-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jsonl = dir.join("eval.jsonl");
    let mut env = otlp_env(&rx, "http/protobuf");
    env.push(("OBSERVRA_BACKEND".into(), "otlp,otel_log,jsonl".into()));
    env.push(("OBSERVRA_JSONL_PATH".into(), jsonl.display().to_string()));
    let guard = observra::init().env_from(env).install().expect("install");
    let reply = support();
    // A judge grades the answer after the call ended, by its response id.
    assert!(observra::evaluate(
        reply.0,
        Evaluation::new("relevance").score(0.8).label("relevant").explanation("It names the order.")
    ));
    // One whose call is not known lands on a span of its own.
    assert!(observra::evaluate("chatcmpl-unknown", Evaluation::new("groundedness").score(0.2).label("fail")));
    drop(guard);

    let spans = rx.spans();
    let call = span(&spans, "chat gpt-4o-mini");
    let open: Vec<_> = call.events.iter().filter(|e| e.name == "gen_ai.evaluation.result").collect();
    assert_eq!(open.len(), 1, "the open-span evaluation is an event of the call's span");
    assert_eq!(open[0].attributes.get("gen_ai.evaluation.name"), Some(&Val::Str("format".into())));
    assert_eq!(open[0].attributes.get("gen_ai.evaluation.score.value"), Some(&Val::Double(1.0)));
    assert_eq!(open[0].attributes.get("gen_ai.evaluation.score.label"), Some(&Val::Str("pass".into())));

    let late = span(&spans, "evaluation relevance");
    assert_eq!(late.trace_id, call.trace_id, "in the graded call's trace");
    assert_eq!(late.parent_span_id.as_deref(), Some(call.span_id.as_str()), "a child of the graded call");
    let e = late.events.iter().find(|e| e.name == "gen_ai.evaluation.result").expect("the event");
    assert_eq!(e.attributes.get("gen_ai.response.id"), Some(&Val::Str("chatcmpl-graded".into())));
    assert_eq!(e.attributes.get("gen_ai.evaluation.score.value"), Some(&Val::Double(0.8)));
    assert_eq!(e.attributes.get("gen_ai.evaluation.explanation"), Some(&Val::Str("It names the order.".into())));
    assert_eq!(late.str_attr("gen_ai.request.model"), Some("gpt-4o-mini"));
    assert_eq!(late.str_attr("gen_ai.agent.name"), Some("support"));
    let orphan = span(&spans, "evaluation groundedness");
    assert_eq!(orphan.parent_span_id, None, "no call to hang it on: a root with the response id");

    // Through the logs backend, the late evaluation's record has the graded call's context.
    let logs = rx.logs();
    let record = logs
        .iter()
        .find(|l| {
            l.event_name == "gen_ai.evaluation.result"
                && l.attributes.get("gen_ai.evaluation.name") == Some(&Val::Str("relevance".into()))
        })
        .unwrap_or_else(|| panic!("{logs:#?}"));
    assert_eq!(record.trace_id, call.trace_id);
    assert_eq!(record.span_id, call.span_id);

    // The histogram, by evaluation name and label.
    let points: Vec<_> = rx
        .metric_streams("observra.evaluation.score")
        .into_iter()
        .flat_map(|m| m.histogram_points.into_iter())
        .collect();
    let of =
        |name: &str| points.iter().find(|p| p.attributes.get("gen_ai.evaluation.name") == Some(&Val::Str(name.into())));
    let relevance = of("relevance").unwrap_or_else(|| panic!("{points:?}"));
    assert_eq!((relevance.count, relevance.sum), (1, 0.8));
    assert_eq!(relevance.attributes.get("gen_ai.evaluation.score.label"), Some(&Val::Str("relevant".into())));
    assert_eq!(relevance.attributes.get("gen_ai.request.model"), Some(&Val::Str("gpt-4o-mini".into())));
    assert!(of("format").is_some() && of("groundedness").is_some());

    // The CLI's summary, from the JSONL the same run wrote.
    let out = run_ok(
        std::process::Command::new(env!("CARGO"))
            .args(["run", "--quiet", "-p", "observra-cli", "--", "summary", "--format", "json"])
            .arg(&jsonl)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let evals = summary["evaluations"].as_array().expect("evaluations");
    let row = |name: &str| evals.iter().find(|e| e["evaluation"] == name).unwrap_or_else(|| panic!("{summary:#}"));
    assert_eq!(row("relevance")["agent"], "support");
    assert_eq!(row("relevance")["model"], "gpt-4o-mini");
    assert_eq!(row("relevance")["mean_score"], 0.8);
    assert_eq!(row("relevance")["labels"]["relevant"], 1);
    assert_eq!(row("format")["agent"], "support", "the call's agent, found above it");
    assert_eq!(row("format")["model"], "gpt-4o-mini");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Catches: evaluations of calls not seen yet kept in a list with no bound
/// (each waits up to 10 s for its call): a judge grading many calls the
/// process never saw grew it without limit.
#[test]
fn evaluations_waiting_for_their_call_are_bounded_and_the_overflow_is_counted() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = observra::init().env_from(otlp_env(&rx, "http/protobuf")).install().expect("install");
    let explanation = "The answer cites the order and the refund policy. ".repeat(20);
    let resident = resident_bytes();
    let mut most_pending = 0;
    for i in 0..100_000 {
        let evaluation = || Evaluation::new("judge").score(0.5).label("pass").explanation(explanation.as_str());
        // A full queue refuses it (counted as queue_full): told again once the collector took some.
        while !observra::evaluate(format!("chatcmpl-never-{i}"), evaluation()) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if i % 10_000 == 9_999 {
            observra::flush().expect("flush");
            most_pending = most_pending.max(observra::health().evaluations_pending);
        }
    }
    let grown = resident_bytes().saturating_sub(resident);
    drop(guard);
    assert!(most_pending <= 16_384, "{most_pending} evaluations waiting");
    // 100,000 of about 1.2 KB: 120 MB waiting without the bound, 16 MiB at most with it.
    assert!(grown < 64 << 20, "the process grew by {} MB", grown >> 20);
    // Every evaluation either landed (at shutdown, or after its wait) or was dropped, counted by reason.
    let landed: u64 = rx
        .metric_streams("observra.evaluation.score")
        .last()
        .map(|m| {
            m.histogram_points
                .iter()
                .filter(|p| p.attributes.get("gen_ai.evaluation.name") == Some(&Val::Str("judge".into())))
                .map(|p| p.count)
                .sum()
        })
        .unwrap_or(0);
    let dropped = |reason: &str| -> f64 {
        rx.metric_streams("observra.pipeline.evaluations.dropped")
            .last()
            .map(|m| {
                m.points
                    .iter()
                    .filter(|(a, _)| a.get("observra.reason") == Some(&Val::Str(reason.into())))
                    .map(|(_, v)| *v)
                    .sum()
            })
            .unwrap_or(0.0)
    };
    assert_eq!(landed + dropped("pending_full") as u64, 100_000, "landed {landed}");
}
