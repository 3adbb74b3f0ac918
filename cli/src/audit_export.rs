//! `observra export --format audit`: one JSON evidence package of what the
//! agents did over a period, and `observra verify --from-export`, which
//! re-checks it against the source files. The package's shape is
//! `docs/audit-export.schema.json`; what each part is for is in
//! `docs/audit-export.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::spans::Span;

/// The package's format identifier.
pub const SCHEMA: &str = "observra.audit-export/1";

const CONTENT_KINDS: [(&str, &str); 6] = [
    ("gen_ai.input.messages", "prompts"),
    ("gen_ai.output.messages", "completions"),
    ("gen_ai.system_instructions", "system_instructions"),
    ("gen_ai.tool.definitions", "tool_definitions"),
    ("gen_ai.tool.call.arguments", "tool_arguments"),
    ("gen_ai.tool.call.result", "tool_results"),
];

fn rfc3339(ns: u64) -> String {
    observra::audit::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What the hash chain of one file says about itself.
fn chain_meta(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut first, mut last, mut records, mut seals) = (None, None, 0u64, Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        let Some(seq) = v.get("seq").and_then(Value::as_u64) else { continue };
        first.get_or_insert(seq);
        last = Some(seq);
        records += 1;
        if v.get("seal") == Some(&Value::Bool(true)) {
            seals.push(json!({"seq": seq, "hmac": v["hmac"], "time": v["time"]}));
        }
    }
    Ok(json!({
        "path": path.display().to_string(),
        "sha256": sha256_hex(text.as_bytes()),
        "chained": first.is_some(),
        "first_seq": first,
        "last_seq": last,
        "chained_records": records,
        "seals": seals,
    }))
}

/// Every `[REDACTED:<kind>]` marker in a value, counted by kind.
fn count_redactions(v: &Value, into: &mut BTreeMap<String, u64>) {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(i) = rest.find("[REDACTED:") {
                rest = &rest[i + 10..];
                if let Some(end) = rest.find(']') {
                    *into.entry(rest[..end].to_string()).or_default() += 1;
                    rest = &rest[end..];
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| count_redactions(x, into)),
        Value::Object(o) => o.values().for_each(|x| count_redactions(x, into)),
        _ => {}
    }
}

/// Options of one export.
pub struct Options<'a> {
    /// The source files, in chain order.
    pub files: &'a [PathBuf],
    /// Period bounds, ns since the epoch.
    pub since: Option<u64>,
    /// See `since`.
    pub until: Option<u64>,
    /// The audit key, to verify the chain.
    pub key: Option<[u8; 32]>,
}

/// Builds the package from the spans of the period (`opts.since` and
/// `opts.until` only label it).
pub fn build(spans: &[Span], opts: &Options<'_>) -> Result<Value, String> {
    let runs = observra::analytics::runs(spans);

    let mut agents: BTreeMap<String, u64> = BTreeMap::new();
    let mut models: BTreeMap<String, u64> = BTreeMap::new();
    let mut providers: BTreeMap<String, u64> = BTreeMap::new();
    let mut tools: BTreeMap<String, u64> = BTreeMap::new();
    let mut redactions: BTreeMap<String, u64> = BTreeMap::new();
    let mut content: BTreeMap<&str, u64> = BTreeMap::new();
    // Traces in which some span captured message content.
    let mut captured_traces: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let (mut oversight, mut errors) = (Vec::new(), Vec::new());
    let (mut cost, mut tokens_in, mut tokens_out, mut llm_calls, mut tool_calls) = (0.0, 0.0, 0.0, 0u64, 0u64);
    for s in spans {
        if s.is_agent() {
            *agents.entry(s.str_attr("gen_ai.agent.name").unwrap_or(&s.name).to_string()).or_default() += 1;
        }
        if s.is_llm_call() {
            llm_calls += 1;
            let model = s.str_attr("gen_ai.response.model").or(s.str_attr("gen_ai.request.model"));
            *models.entry(model.unwrap_or("unknown").to_string()).or_default() += 1;
            *providers.entry(s.str_attr("gen_ai.provider.name").unwrap_or("unknown").to_string()).or_default() += 1;
            cost += s.num_attr("observra.cost.usd").unwrap_or(0.0);
            tokens_in += s.num_attr("gen_ai.usage.input_tokens").unwrap_or(0.0);
            tokens_out += s.num_attr("gen_ai.usage.output_tokens").unwrap_or(0.0);
        }
        if s.is_tool_call() {
            tool_calls += 1;
            *tools.entry(s.str_attr("gen_ai.tool.name").unwrap_or(&s.name).to_string()).or_default() += 1;
        }
        for (attr, kind) in CONTENT_KINDS {
            let in_events = s.events.iter().any(|e| e["attributes"].get(attr).is_some());
            if s.attributes.contains_key(attr) || in_events {
                *content.entry(kind).or_default() += 1;
                captured_traces.insert(s.trace_id.as_str());
            }
        }
        count_redactions(&Value::Object(s.attributes.clone()), &mut redactions);
        for e in &s.events {
            count_redactions(e, &mut redactions);
        }
        let oversight_of = |attrs: &serde_json::Map<String, Value>, time: Value, event: Option<&str>| {
            attrs.get("observra.human_oversight").map(|d| {
                json!({
                    "trace_id": s.trace_id, "span_id": s.span_id, "span": s.name, "event": event,
                    "time": time, "decision": d,
                    "actor": attrs.get("observra.human_oversight.actor"),
                    "reason": attrs.get("observra.human_oversight.reason"),
                })
            })
        };
        oversight.extend(oversight_of(&s.attributes, json!(rfc3339(s.start_ns)), None));
        for e in &s.events {
            if let Some(attrs) = e["attributes"].as_object() {
                oversight.extend(oversight_of(attrs, e["time"].clone(), e["name"].as_str()));
            }
        }
        if s.failed() {
            errors.push(json!({
                "trace_id": s.trace_id, "span_id": s.span_id, "span": s.name, "time": rfc3339(s.start_ns),
                "error_type": s.str_attr("error.type"), "message": s.status_message,
            }));
        }
    }
    let captured = |run: &observra::analytics::RunMetrics| captured_traces.contains(run.trace_id.as_str());
    let run_rows: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "run_id": r.run_id, "trace_id": r.trace_id, "agent": r.agent, "start": rfc3339(r.start_ns),
                "duration_s": r.duration_s, "llm_calls": r.llm_calls, "tool_calls": r.tool_calls,
                "error_rate": r.error_rate, "retry_rate": r.retry_rate, "cost_usd": r.cost_usd,
                "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                "content_captured": captured(r),
            })
        })
        .collect();

    let files: Vec<Value> = opts.files.iter().map(|p| chain_meta(p)).collect::<Result<_, _>>()?;
    let chained: Vec<PathBuf> =
        opts.files.iter().zip(&files).filter(|(_, m)| m["chained"] == json!(true)).map(|(p, _)| p.clone()).collect();
    let verification = verify_chains(&chained, opts.key.as_ref());
    let first = spans.iter().map(|s| s.start_ns).min();
    let last = spans.iter().map(|s| s.end_ns).max();
    Ok(json!({
        "schema": SCHEMA,
        "generated_at": rfc3339(crate::now_ns()),
        "generator": concat!("observra ", env!("CARGO_PKG_VERSION")),
        "period": {
            "since": opts.since.map(rfc3339),
            "until": opts.until.map(rfc3339),
            "first_span": first.map(rfc3339),
            "last_span": last.map(rfc3339),
        },
        "inventory": {"agents": agents, "models": models, "providers": providers, "tools": tools},
        "runs": run_rows,
        "data_categories": {
            "content_captured_runs": runs.iter().filter(|r| captured(r)).map(|r| r.run_id.clone()).collect::<Vec<_>>(),
            "content_kinds": content,
            "redactions": redactions,
        },
        "human_oversight": oversight,
        "errors": errors,
        "totals": {
            "spans": spans.len(), "runs": runs.len(), "llm_calls": llm_calls, "tool_calls": tool_calls,
            "errors": spans.iter().filter(|s| s.failed()).count(),
            "cost_usd": cost, "input_tokens": tokens_in, "output_tokens": tokens_out,
        },
        "integrity": {"files": files, "verification": verification},
    }))
}

/// Verifies each chain among `chained` on its own (a file and its rotated
/// parts are one chain; separate runs' files are separate chains). The
/// overall status is the worst chain's: tampered, then unsealed_tail, then
/// intact.
fn verify_chains(chained: &[PathBuf], key: Option<&[u8; 32]>) -> Value {
    if chained.is_empty() {
        return json!({"status": "not_chained", "detail": "no source file carries a hash chain"});
    }
    let Some(key) = key else {
        return json!({"status": "not_verified", "detail": "no audit key given (--key or OBSERVRA_AUDIT_KEY)"});
    };
    let mut chains = Vec::new();
    let mut worst = observra::audit::Verdict::Intact;
    for c in observra::audit::chains(chained) {
        let files: Vec<String> = c.files.iter().map(|f| f.display().to_string()).collect();
        match observra::audit::verify(&c.files, key) {
            Ok(r) => {
                let v = r.verdict();
                worst = match (worst, v) {
                    (_, observra::audit::Verdict::Tampered) | (observra::audit::Verdict::Tampered, _) => {
                        observra::audit::Verdict::Tampered
                    }
                    (_, observra::audit::Verdict::UnsealedTail) | (observra::audit::Verdict::UnsealedTail, _) => {
                        observra::audit::Verdict::UnsealedTail
                    }
                    _ => observra::audit::Verdict::Intact,
                };
                chains.push(json!({
                    "base": c.base.display().to_string(), "files": files, "status": v.as_str(),
                    "records": r.records, "last_seq": r.last_seq, "seals": r.seals, "sealed": r.sealed,
                    "first_bad_seq": r.first_bad.as_ref().map(|b| b.0),
                    "first_bad_file": r.first_bad_file.as_ref().map(|f| f.display().to_string()),
                    "detail": r.summary(),
                }));
            }
            Err(e) => {
                worst = observra::audit::Verdict::Tampered;
                chains.push(json!({"base": c.base.display().to_string(), "files": files, "status": "error", "detail": e.to_string()}));
            }
        }
    }
    let detail = chains
        .iter()
        .map(|c| format!("{}: {}", c["base"].as_str().unwrap_or(""), c["detail"].as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("; ");
    let status = if chains.iter().any(|c| c["status"] == "error") { "error" } else { worst.as_str() };
    json!({"status": status, "chains": chains.len(), "per_chain": chains, "detail": detail})
}

/// Re-checks a package against its source files: each file's SHA-256 and
/// chain metadata must match, and the chain must verify with `key`.
/// Returns a summary, or every difference found.
pub fn verify_export(package: &Value, key: &[u8; 32]) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    if package["schema"] != json!(SCHEMA) {
        return Err(vec![format!("not an observra audit export (schema {})", package["schema"])]);
    }
    let recorded = package["integrity"]["files"].as_array().cloned().unwrap_or_default();
    let mut chained = Vec::new();
    for f in &recorded {
        let path = PathBuf::from(f["path"].as_str().unwrap_or_default());
        match chain_meta(&path) {
            Err(e) => problems.push(e),
            Ok(now) => {
                for field in ["sha256", "first_seq", "last_seq", "chained_records", "seals"] {
                    if now[field] != f[field] {
                        problems.push(format!(
                            "{}: {field} was {} at export, is {} now",
                            path.display(),
                            f[field],
                            now[field]
                        ));
                    }
                }
                if now["chained"] == json!(true) {
                    chained.push(path);
                }
            }
        }
    }
    let check = verify_chains(&chained, Some(key));
    for c in check["per_chain"].as_array().into_iter().flatten() {
        if c["status"] != json!("intact") {
            problems.push(format!("hash chain {}: {}: {}", c["base"], c["status"], c["detail"]));
        }
    }
    let was = &package["integrity"]["verification"]["status"];
    if was != &json!("intact") && was != &json!("not_verified") && was != &json!("not_chained") {
        problems.push(format!("the chain was already {was} when the package was made"));
    }
    if problems.is_empty() {
        Ok(format!(
            "export verified: {} source file(s) unchanged since the export; {}",
            recorded.len(),
            check["detail"].as_str().unwrap_or("")
        ))
    } else {
        Err(problems)
    }
}
