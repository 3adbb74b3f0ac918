//! `observra export --format audit`: one JSON evidence package of what the
//! agents did over a period, and `observra verify --from-export`, which
//! authenticates it and re-checks it against the source files. The
//! package's shape is `docs/audit-export.schema.json`; what each part is
//! for, and the exact bytes its `package_hmac` covers, is in
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

/// The package's last member, written by [`render`] after the body's bytes
/// (everything before `MAC_OPEN`) as exactly `MAC_OPEN`, 64 lower-case hex
/// digits and `MAC_CLOSE`, then a newline.
const MAC_OPEN: &str = ",\n  \"package_hmac\": \"";
const MAC_CLOSE: &str = "\"\n}";
/// Precedes the body in the HMAC's input, so that no other HMAC made
/// under the audit key (a chain record's, a seal's) is ever a valid
/// package HMAC, or the reverse.
const MAC_CONTEXT: &[u8] = b"observra.audit-export/1 package_hmac\n";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn rfc3339(ns: u64) -> String {
    crate::summary::format_time(ns)
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
    /// The audit key, to verify the chain (and, in [`render`], to
    /// authenticate the package).
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
            cost = crate::summary::add_amount(cost, s, "observra.cost.usd");
            tokens_in = crate::summary::add_amount(tokens_in, s, "gen_ai.usage.input_tokens");
            tokens_out = crate::summary::add_amount(tokens_out, s, "gen_ai.usage.output_tokens");
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

/// The HMAC of a package body (the bytes before `MAC_OPEN`) under `key`.
fn package_mac(key: &[u8; 32], body: &[u8]) -> HmacSha256 {
    use hmac::Mac;
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(MAC_CONTEXT);
    mac.update(body);
    mac
}

/// The package as written: pretty JSON and a newline. With the audit key,
/// the object's closing brace gives way to one more member,
/// `"package_hmac"`: the HMAC-SHA256 under the key of `MAC_CONTEXT`
/// followed by every byte written before that member. The HMAC is thus
/// computed over the exact bytes written, and [`authenticate`] finds them
/// verbatim at the start of the file, never re-serialising parsed JSON.
pub fn render(package: &Value, key: Option<&[u8; 32]>) -> Result<String, String> {
    use hmac::Mac;
    let text = serde_json::to_string_pretty(package).map_err(|e| format!("the package does not serialise: {e}"))?;
    let Some(key) = key else { return Ok(text + "\n") };
    let body = text.strip_suffix("\n}").ok_or("an empty package cannot be authenticated")?;
    let mac: String =
        package_mac(key, body.as_bytes()).finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{body}{MAC_OPEN}{mac}{MAC_CLOSE}\n"))
}

/// What a package's `package_hmac` says about the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authenticity {
    /// The HMAC matches the bytes before it under the key.
    Authentic,
    /// It does not: the package was edited after export, or another key made it.
    Mismatch,
    /// There is no `package_hmac`: the package was exported without the key.
    Missing,
    /// A `package_hmac` member, but not as [`render`] writes it (the last
    /// member, on its own line, 64 lower-case hex digits): the file was
    /// re-serialised or edited around it, so the bytes it covers are lost.
    Misplaced,
}

/// Checks the `package_hmac` of the package file `bytes` (as read, not
/// re-serialised), which parse as `package`, under `key`.
pub fn authenticate(bytes: &[u8], package: &Value, key: &[u8; 32]) -> Authenticity {
    use hmac::Mac;
    let split = || -> Option<(&[u8], [u8; 32])> {
        let rest = bytes.strip_suffix(b"\n").unwrap_or(bytes).strip_suffix(MAC_CLOSE.as_bytes())?;
        let (rest, hex) = rest.split_at(rest.len().checked_sub(64)?);
        let body = rest.strip_suffix(MAC_OPEN.as_bytes())?;
        let mut tag = [0u8; 32];
        for (t, pair) in tag.iter_mut().zip(hex.chunks(2)) {
            let digit = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            *t = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some((body, tag))
    };
    match split() {
        Some((body, tag)) if package_mac(key, body).verify_slice(&tag).is_ok() => Authenticity::Authentic,
        Some(_) => Authenticity::Mismatch,
        None if package.get("package_hmac").is_some() => Authenticity::Misplaced,
        None => Authenticity::Missing,
    }
}

/// `verify --from-export`: authenticates the package file `bytes` (which
/// parse as `package`) with `key`, then re-checks it against its source
/// files as [`verify_export`] does; both are done, and every problem
/// reported. Returns a summary, or the message of a failure.
pub fn verify_package(bytes: &[u8], package: &Value, key: &[u8; 32]) -> Result<String, String> {
    let authenticity = match authenticate(bytes, package, key) {
        Authenticity::Authentic => Ok(()),
        Authenticity::Mismatch => Err("package_hmac does not match the package's bytes under this key: the package \
            was edited after it was exported (its totals, counts, runs or any other part), or it was exported with \
            another audit key"
            .to_string()),
        Authenticity::Missing => Err("the package has no package_hmac, so nothing shows that its contents (totals, \
            counts, runs) are what export wrote: it was exported without the audit key. Export it again with the key \
            to make an authenticated package: observra export --format audit --key <audit key> (or set \
            OBSERVRA_AUDIT_KEY) --from ... -o ..."
            .to_string()),
        Authenticity::Misplaced => Err("package_hmac is not the package's last line as export writes it: the file \
            was reformatted or edited (by a JSON formatter, jq, an editor), so the exact bytes the HMAC covers are \
            lost. Verify the file export wrote, or export again"
            .to_string()),
    };
    match (authenticity, verify_export(package, key)) {
        (Ok(()), Ok(summary)) => Ok(format!("{summary}; package_hmac matches the package's bytes")),
        (Ok(()), Err(problems)) => Err(sources_message(&problems)),
        (Err(auth), Ok(_)) => Err(format!(
            "EXPORT IS NOT AUTHENTIC: {auth}\n(re-checked anyway: the source files match the package's integrity records)"
        )),
        (Err(auth), Err(problems)) => Err(format!("EXPORT IS NOT AUTHENTIC: {auth}\n{}", sources_message(&problems))),
    }
}

fn sources_message(problems: &[String]) -> String {
    format!("EXPORT DOES NOT MATCH ITS SOURCES:\n  {}", problems.join("\n  "))
}

/// Re-checks a package against its source files: each file's SHA-256 and
/// chain metadata must match, and the chain must verify with `key`.
/// Returns a summary, or every difference found.
fn verify_export(package: &Value, key: &[u8; 32]) -> Result<String, Vec<String>> {
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Authenticity, MAC_CONTEXT, authenticate, render};

    const KEY: [u8; 32] = [7; 32];

    fn package() -> Value {
        json!({"schema": super::SCHEMA, "totals": {"spans": 3, "cost_usd": 0.1 + 0.2}, "runs": [{"a": 1e-7}]})
    }

    fn check(text: &str, key: &[u8; 32]) -> Authenticity {
        let parsed: Value = serde_json::from_str(text).expect("the package stays JSON");
        authenticate(text.as_bytes(), &parsed, key)
    }

    #[test]
    fn a_rendered_package_authenticates_and_any_edit_does_not() {
        let text = render(&package(), Some(&KEY)).unwrap();
        assert_eq!(check(&text, &KEY), Authenticity::Authentic);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["totals"], package()["totals"], "the body is the package, one member added");
        assert!(text.ends_with("\"\n}\n") && text.contains(",\n  \"package_hmac\": \""), "{text}");
        assert_eq!(check(text.trim_end(), &KEY), Authenticity::Authentic, "a lost final newline is harmless");

        assert_eq!(check(&text.replacen("\"spans\": 3", "\"spans\": 2", 1), &KEY), Authenticity::Mismatch);
        assert_eq!(check(&text.replacen("\"spans\": 3", "\"spans\":  3", 1), &KEY), Authenticity::Mismatch);
        assert_eq!(check(&text, &[8; 32]), Authenticity::Mismatch, "another key");
        let flipped_mac = {
            let at = text.rfind('"').unwrap() - 1;
            let c = if text.as_bytes()[at] == b'0' { "1" } else { "0" };
            format!("{}{c}{}", &text[..at], &text[at + 1..])
        };
        assert_eq!(check(&flipped_mac, &KEY), Authenticity::Mismatch);

        let compact = serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
        assert_eq!(check(&compact, &KEY), Authenticity::Misplaced);
        let hex_at = text.rfind('"').unwrap() - 64;
        let upper = format!("{}{}{}", &text[..hex_at], text[hex_at..hex_at + 64].to_uppercase(), &text[hex_at + 64..]);
        assert_eq!(check(&upper, &KEY), Authenticity::Misplaced, "not as export writes it");

        let plain = render(&package(), None).unwrap();
        assert_eq!(plain, serde_json::to_string_pretty(&package()).unwrap() + "\n", "no key: the package as before");
        assert_eq!(check(&plain, &KEY), Authenticity::Missing);
    }

    #[test]
    fn the_mac_is_the_documented_hmac_of_the_bytes_before_it() {
        use hmac::Mac;
        let text = render(&package(), Some(&KEY)).unwrap();
        let at = text.rfind(",\n  \"package_hmac\": \"").unwrap();
        let (body, tail) = text.split_at(at);
        assert!(text.starts_with(&serde_json::to_string_pretty(&package()).unwrap()[..at]), "the body verbatim");
        let mut mac = <super::HmacSha256 as Mac>::new_from_slice(&KEY).unwrap();
        mac.update(b"observra.audit-export/1 package_hmac\n");
        assert_eq!(MAC_CONTEXT, b"observra.audit-export/1 package_hmac\n");
        mac.update(body.as_bytes());
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(tail, format!(",\n  \"package_hmac\": \"{hex}\"\n}}\n"));
    }
}
