//! End to end with Arize Phoenix, a real GenAI observability backend: the
//! support-agent example (observra's macros), the rig-agent example
//! (rig 0.44's own spans) and the rag-agent example (embeddings, a
//! retrieval, a graded answer) export OTLP/HTTP to a Phoenix server, and what
//! Phoenix's own HTTP API returns is checked: the tree (workflow → agent →
//! llm/tool), span kinds as Phoenix classifies them (AGENT, LLM, TOOL),
//! models, token counts and status.
//!
//! Phoenix is installed into `target/phoenix-venv` by scripts/test.sh. It
//! runs in a private network namespace (`unshare -n`) where the machine
//! allows it, so its all-interfaces gRPC listener and any outbound call stay
//! inside; otherwise on 127.0.0.1 with a private gRPC port.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

#[test]
fn phoenix_shows_our_spans_as_agent_llm_and_tool_spans_with_tokens() {
    let phoenix = repo().join("target/phoenix-venv/bin/phoenix");
    if !phoenix.is_file() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: Arize Phoenix is not installed in target/phoenix-venv and scripts/test.sh could not \
             install it (python3 -m venv + pip install arize-phoenix). The Phoenix end-to-end test did not run. !!!!!!!!\n"
        );
        return;
    }
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("phoenix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let out = work.join("spans.json");
    let netns = Command::new("unshare").args(["-n", "true"]).status().is_ok_and(|s| s.success());
    let script = repo().join("tests/phoenix/run.sh");
    if !netns {
        eprintln!("note: `unshare -n` is not available here; running Phoenix on 127.0.0.1 with private ports");
    }
    // In a private network namespace the fixed ports cannot be taken by
    // anyone else. On 127.0.0.1 a port found free may be taken before
    // Phoenix binds it: then the run fails and is tried on fresh ports.
    let attempts = if netns { 1 } else { 3 };
    let mut status = None;
    for _ in 0..attempts {
        let (port, grpc) = if netns { (6006, 4317) } else { (free_port(), free_port()) };
        let mut cmd = if netns {
            let mut c = Command::new("unshare");
            c.args(["-n", "bash"]).arg(&script);
            c
        } else {
            let mut c = Command::new("bash");
            c.arg(&script);
            c
        };
        let s = cmd
            .env("PHOENIX_BIN", &phoenix)
            .env("PORT", port.to_string())
            .env("GRPC_PORT", grpc.to_string())
            .env("WORK", &work)
            .env("OUT", &out)
            .env("CARGO", env!("CARGO"))
            .env("REPO", repo())
            .env("EXPECTED", "23")
            .env("IN_NETNS", if netns { "1" } else { "0" })
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .status()
            .expect("run the Phoenix script");
        status = Some(s);
        if s.success() {
            break;
        }
    }
    let status = status.expect("ran");
    assert!(status.success(), "the Phoenix run failed ({status}); see {}", work.join("phoenix.log").display());

    let body: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).expect("Phoenix answered JSON");
    let all = body["data"].as_array().expect("data").clone();
    assert_eq!(all.len(), 23, "13 spans of the support agent, 5 of the rig agent, 5 of the RAG agent: {body:#}");
    let trace = |s: &Value| s["context"]["trace_id"].as_str().unwrap_or("").to_string();
    let trace_of = |root: &str| {
        let r = all.iter().find(|s| s["name"] == root).unwrap_or_else(|| panic!("no {root}: {body:#}"));
        let t = trace(r);
        all.iter().filter(|s| trace(s) == t).cloned().collect::<Vec<_>>()
    };
    check_rig(&trace_of("invoke_workflow rig-desk"));
    check_rag(&trace_of("invoke_agent order-rag"));
    let spans = trace_of("invoke_workflow support-desk");
    assert_eq!(spans.len(), 13, "one trace: {body:#}");
    let named = |n: &str| spans.iter().filter(|s| s["name"] == n).collect::<Vec<_>>();

    let workflow = named("invoke_workflow support-desk");
    assert_eq!(workflow.len(), 1);
    let agents = named("invoke_agent support");
    assert_eq!(agents.len(), 2);
    for a in &agents {
        assert_eq!(a["span_kind"], "AGENT", "{a:#}");
        assert_eq!(a["parent_id"].as_str(), Some(id(workflow[0]).as_str()));
    }
    let agent_ids: Vec<String> = agents.iter().map(|a| id(a)).collect();
    let llms = named("chat gpt-4o-mini");
    assert_eq!(llms.len(), 4);
    for l in &llms {
        assert_eq!(l["span_kind"], "LLM", "{l:#}");
        assert!(agent_ids.contains(&l["parent_id"].as_str().unwrap_or("").to_string()), "llm under an agent");
        let a = &l["attributes"];
        assert_eq!(a["llm.model_name"], "gpt-4o-mini", "Phoenix reads the model: {a:#}");
        let prompt = a["llm.token_count.prompt"].as_i64().expect("prompt tokens");
        let completion = a["llm.token_count.completion"].as_i64().expect("completion tokens");
        assert_eq!(Some(prompt), a["gen_ai.usage.input_tokens"].as_i64());
        assert_eq!(Some(completion), a["gen_ai.usage.output_tokens"].as_i64());
        assert!(prompt > 900 && completion > 100);
        assert_eq!(a["llm.token_count.total"].as_i64(), Some(prompt + completion));
        assert_eq!(l["status_code"], "UNSET");
    }
    let tools: Vec<_> =
        spans.iter().filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("execute_tool "))).collect();
    assert_eq!(tools.len(), 4);
    for t in &tools {
        assert_eq!(t["span_kind"], "TOOL", "{t:#}");
        assert!(agent_ids.contains(&t["parent_id"].as_str().unwrap_or("").to_string()), "tool under an agent");
    }
    let failed: Vec<_> = tools.iter().filter(|t| t["status_code"] == "ERROR").collect();
    assert_eq!(failed.len(), 1, "the unknown order fails, and Phoenix shows it");
    assert_eq!(failed[0]["name"], "execute_tool lookup_order");
    assert_eq!(failed[0]["status_message"], "no order with id Z-9");
    let _ = std::fs::remove_dir_all(&work);
}

fn id(s: &Value) -> String {
    s["context"]["span_id"].as_str().unwrap_or("").to_string()
}

/// The rig agent's trace as Phoenix shows it: rig's own spans, made GenAI
/// spans by observra, classified AGENT, LLM (with model and tokens) and TOOL.
fn check_rig(spans: &[Value]) {
    assert_eq!(spans.len(), 5, "workflow, agent, 2 model calls, 1 tool call: {spans:#?}");
    let named = |n: &str| spans.iter().filter(|s| s["name"] == n).collect::<Vec<_>>();
    let workflow = named("invoke_workflow rig-desk");
    let agents = named("invoke_agent support");
    assert_eq!(agents.len(), 1, "{spans:#?}");
    let agent = agents[0];
    assert_eq!(agent["span_kind"], "AGENT", "{agent:#}");
    assert_eq!(agent["parent_id"].as_str(), Some(id(workflow[0]).as_str()), "rig's agent under the user's workflow");
    let llms = named("chat gpt-4o-mini");
    assert_eq!(llms.len(), 2, "one LLM span per model call: {spans:#?}");
    for l in &llms {
        assert_eq!(l["span_kind"], "LLM", "{l:#}");
        assert_eq!(l["parent_id"].as_str(), Some(id(agent).as_str()));
        let a = &l["attributes"];
        assert_eq!(a["llm.model_name"], "gpt-4o-mini", "Phoenix reads the model: {a:#}");
        let prompt = a["llm.token_count.prompt"].as_i64().expect("prompt tokens");
        assert_eq!(Some(prompt), a["gen_ai.usage.input_tokens"].as_i64());
        assert!(prompt > 900);
        assert!(a["llm.token_count.completion"].as_i64().is_some_and(|c| c > 0));
    }
    let tools = named("execute_tool lookup_order");
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["span_kind"], "TOOL", "{:#}", tools[0]);
    assert_eq!(tools[0]["parent_id"].as_str(), Some(id(agent).as_str()));
}

/// The RAG agent's trace: EMBEDDING, RETRIEVER and LLM spans under the
/// AGENT, and the judge's evaluation of the answer beside it. Phoenix reads
/// evaluations as annotations only through its own API, not from OTLP: the
/// evaluation arrives as a span in the trace (child of the graded LLM span)
/// carrying the `gen_ai.evaluation.result` event.
fn check_rag(spans: &[Value]) {
    assert_eq!(spans.len(), 5, "agent, embeddings, retrieval, chat, evaluation: {spans:#?}");
    let one = |n: &str| {
        let found: Vec<_> = spans.iter().filter(|s| s["name"] == n).collect();
        assert_eq!(found.len(), 1, "{n}: {spans:#?}");
        found[0]
    };
    let agent = one("invoke_agent order-rag");
    assert_eq!(agent["span_kind"], "AGENT");
    let retriever = one("retrieval orders-index");
    assert_eq!(retriever["span_kind"], "RETRIEVER", "{retriever:#}");
    assert_eq!(retriever["parent_id"].as_str(), Some(id(agent).as_str()));
    let embedding = one("embeddings text-embedding-3-small");
    assert_eq!(embedding["span_kind"], "EMBEDDING", "{embedding:#}");
    let llm = one("chat gpt-4o-mini");
    assert_eq!(llm["span_kind"], "LLM");
    let evaluation = one("evaluation relevance");
    assert_eq!(evaluation["parent_id"].as_str(), Some(id(llm).as_str()), "the evaluation hangs on the graded call");
    let events = evaluation["events"].as_array().cloned().unwrap_or_default();
    assert!(events.iter().any(|e| e["name"] == "gen_ai.evaluation.result"), "{evaluation:#}");
}
