//! Tail sampling in process (`Sampler::keep_interesting`), decoded from the
//! in-process OTLP receiver: failed and over-budget traces survive a 5 %
//! sampler whole, about 5 % of the rest is kept, the metrics count every
//! call, memory stays bounded with drops counted by reason, and a trace
//! whose root never ends is decided when it times out.

use std::collections::BTreeMap;
use std::time::Duration;

use observra::{Budget, Sampler, Usage, agent, llm_call, tool_call};
use observra_test_support::{ReceivedSpan, Receiver, Val, otlp_env, resident_bytes, serial};

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
fn think(input_tokens: u64) -> Usage {
    Usage::new(input_tokens, 40)
}

#[tool_call(name = "lookup")]
fn lookup(fail: bool) -> Result<u8, std::io::Error> {
    if fail { Err(std::io::Error::other("no such order")) } else { Ok(1) }
}

/// One agent run: a model call (a million input tokens when `big`: over
/// the per-call budget) and a tool call; fails when `fail`.
#[agent(name = "support")]
fn run(n: u64, fail: bool, big: bool) -> Result<u64, std::io::Error> {
    observra::current_span().set_attribute("run", &(n as i64));
    let _ = think(if big { 1_000_000 } else { 300 });
    let _ = lookup(false);
    if fail { Err(std::io::Error::other("gave up")) } else { Ok(n) }
}

fn install(rx: &Receiver, sampler: observra::KeepInteresting, budget: Option<Budget>) -> observra::Guard {
    install_with(rx, sampler, budget, &[])
}

fn install_with(
    rx: &Receiver,
    sampler: observra::KeepInteresting,
    budget: Option<Budget>,
    extra: &[(&str, &str)],
) -> observra::Guard {
    let mut env: Vec<(String, String)> =
        otlp_env(rx, "http/protobuf").into_iter().filter(|(k, _)| k != "OTEL_BSP_SCHEDULE_DELAY").collect();
    // Every kept span reaches the receiver (the export queue is not what is
    // tested), and soon after it is decided.
    env.push(("OTEL_BSP_MAX_QUEUE_SIZE".into(), "100000".into()));
    env.push(("OTEL_BSP_SCHEDULE_DELAY".into(), "50".into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut b = observra::init().env_from(env).sampler(sampler);
    if let Some(budget) = budget {
        b = b.budget(budget);
    }
    b.install().expect("install")
}

fn traces(spans: &[ReceivedSpan]) -> BTreeMap<&str, Vec<&ReceivedSpan>> {
    let mut by: BTreeMap<&str, Vec<&ReceivedSpan>> = BTreeMap::new();
    for s in spans {
        by.entry(s.trace_id.as_str()).or_default().push(s);
    }
    by
}

/// The sum over a cumulative metric's points, as of its last export.
fn metric_sum(rx: &Receiver, name: &str) -> f64 {
    rx.metric_streams(name).last().map_or(0.0, |m| m.points.iter().map(|(_, v)| *v).sum())
}

/// The count of a cumulative histogram, as of its last export.
fn histogram_count(rx: &Receiver, name: &str) -> u64 {
    rx.metric_streams(name).last().map_or(0, |m| m.histogram_points.iter().map(|p| p.count).sum())
}

/// The latest value of the sampler's dropped counter for `reason`.
fn sampler_dropped(rx: &Receiver, reason: &str) -> f64 {
    rx.metric_streams("observra.pipeline.sampler.dropped")
        .iter()
        .flat_map(|m| m.points.iter())
        .filter(|(a, _)| a.get("observra.reason") == Some(&Val::Str(reason.into())))
        .map(|(_, v)| *v)
        .fold(0.0, f64::max)
}

#[test]
fn failed_and_over_budget_traces_survive_a_five_percent_sampler_whole_and_metrics_count_every_run() {
    let _s = serial();
    let rx = Receiver::start();
    let before = observra::health().spans_sampled_out;
    let guard = install(&rx, Sampler::keep_interesting().ratio(0.05), Some(Budget::new().per_call_usd(0.01)));
    // Runs 0..20 fail, 20..30 cross the budget, the other 970 are dull.
    for n in 0..1000 {
        let _ = run(n, n < 20, (20..30).contains(&n));
    }
    observra::flush().expect("flush");
    let sampled_out = observra::health().spans_sampled_out - before;
    drop(guard);
    let spans = rx.spans();
    let by_trace = traces(&spans);
    let mut failed = 0;
    let mut over_budget = 0;
    let mut dull = 0;
    for (trace, spans) in &by_trace {
        assert_eq!(spans.len(), 3, "trace {trace} exported whole (agent, model call, tool call): {spans:#?}");
        let agent = spans.iter().find(|s| s.name == "invoke_agent support").expect("the agent");
        let n = match agent.attr("run") {
            Some(Val::Int(n)) => *n,
            other => panic!("run: {other:?}"),
        };
        match n {
            0..20 => {
                assert_eq!(agent.status_code, 2);
                failed += 1;
            }
            20..30 => {
                let chat = spans.iter().find(|s| s.name == "chat gpt-4o-mini").unwrap();
                assert_eq!(chat.attr("gen_ai.usage.input_tokens"), Some(&Val::Int(1_000_000)));
                over_budget += 1;
            }
            _ => dull += 1,
        }
    }
    assert_eq!(failed, 20, "every failed run is kept");
    assert_eq!(over_budget, 10, "every run over budget is kept");
    // 970 dull runs at 5 %: 48.5 expected, sd 6.8; 15..=100 is five sd each way.
    assert!((15..=100).contains(&dull), "about 5 % of the dull runs: {dull}");
    assert_eq!(sampled_out, 3 * (970 - dull) as u64, "every span of every dropped trace counted");
    // The self-metric counts since the process started (other tests here add to it).
    assert!(sampler_dropped(&rx, "not_selected") >= (3 * (970 - dull)) as f64);
    // The metrics count all 1,000 runs, sampled or not.
    assert_eq!(metric_sum(&rx, "observra.agent.requests"), 1000.0);
    assert_eq!(metric_sum(&rx, "observra.agent.errors"), 20.0);
    assert_eq!(histogram_count(&rx, "gen_ai.client.operation.duration"), 1000);
    assert_eq!(histogram_count(&rx, "gen_ai.execute_tool.duration"), 1000);
    assert_eq!(metric_sum(&rx, "observra.budget.exceeded"), 10.0);
}

#[observra::traced(kind = server)]
fn remote_handler(headers: &http::HeaderMap) -> Result<(), std::io::Error> {
    observra::propagation::set_remote_parent(observra::current_span(), headers);
    lookup(true).map(|_| ())
}

#[test]
fn a_trace_whose_root_never_ends_is_decided_at_the_timeout_and_a_remote_rooted_trace_here() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install(&rx, Sampler::keep_interesting().ratio(0.0).timeout(Duration::from_millis(100)), None);
    // A long-running root (still open) with a failed tool call beneath it.
    let root = tracing::info_span!("long_running_agent");
    let entered = root.enter();
    let _ = lookup(true);
    // Held until the root ends, or the timeout: 100 ms, waited for up to 10 s.
    let early = rx.wait_for_spans(1, Duration::from_secs(10));
    assert_eq!(early.len(), 1, "the failed call is exported while its root is still open");
    assert_eq!(early[0].name, "execute_tool lookup");
    drop(entered);
    drop(root);
    // A request from another process: its remote-parented span is the local root.
    let mut headers = http::HeaderMap::new();
    headers.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00".parse().unwrap());
    let _ = remote_handler(&headers);
    // A dull long-running trace times out and is dropped, counted: its root
    // ends only once the sampler has dropped its child (waited for up to 10 s).
    let before = observra::health().spans_sampled_out;
    let dull = tracing::info_span!("dull_long_running");
    let e = dull.enter();
    let _ = lookup(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while observra::health().spans_sampled_out == before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(observra::health().spans_sampled_out > before, "the dull trace timed out and was dropped");
    drop(e);
    drop(dull);
    drop(guard);
    let spans = rx.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let root = spans.iter().find(|s| s.name == "long_running_agent").unwrap_or_else(|| panic!("{names:?}"));
    assert_eq!(root.trace_id, early[0].trace_id, "the root, ending later, follows its trace's decision");
    let remote = spans.iter().find(|s| s.name == "remote_handler").unwrap_or_else(|| panic!("{names:?}"));
    assert_eq!(remote.trace_id, "0af7651916cd43dd8448eb211c80319c", "decided here, in the caller's trace");
    assert_eq!(spans.iter().filter(|s| s.trace_id == remote.trace_id).count(), 2, "handler and its failed call");
    assert!(!names.contains(&"dull_long_running"), "{names:?}");
    assert_eq!(spans.len(), 4, "{names:?}");
    assert!(sampler_dropped(&rx, "not_selected") >= 1.0);
    assert!(sampler_dropped(&rx, "late") >= 1.0, "the dull root came after its trace was dropped");
    // Drops the sampler could not hear of are exported, as health() has them.
    let untold: Vec<f64> = rx
        .metric_streams("observra.pipeline.sampler.untold")
        .iter()
        .flat_map(|m| m.points.iter().map(|(_, v)| *v))
        .collect();
    assert_eq!(untold.last().copied(), Some(observra::health().spans_untold as f64), "{untold:?}");
}

#[test]
fn a_dropped_trace_whose_root_is_still_open_stays_dropped_however_many_traces_are_decided_meanwhile() {
    let _s = serial();
    let rx = Receiver::start();
    // The root outlives the timeout, so it is "slow" when it ends: were the
    // drop forgotten, its late spans would be kept as a trace of their own.
    let wait = Duration::from_millis(100);
    let sampler = Sampler::keep_interesting().ratio(0.0).timeout(wait).slower_than(wait).max_traces(64);
    let guard = install(&rx, sampler, None);
    let dull = tracing::info_span!("dull_outliving_root");
    let trace_id = {
        let _e = dull.enter();
        let _ = lookup(false);
        let mut h = http::HeaderMap::new();
        observra::propagation::inject(&mut h);
        observra::propagation::extract(&h).expect("the root's context").trace_id
    };
    // Dropped at the timeout, its root still open (waited for up to 10 s).
    let before = observra::health().spans_sampled_out;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while observra::health().spans_sampled_out == before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(observra::health().spans_sampled_out, before + 1, "the dull trace's child was dropped");
    // Many more traces than the sampler holds (and than 1,024) are decided meanwhile.
    for _ in 0..1100 {
        let _ = lookup(false);
    }
    observra::flush().expect("flush");
    let dropped_before_late = observra::health().spans_sampled_out;
    // Then the open trace makes a late child, and its root ends.
    dull.in_scope(|| lookup(false)).expect("late child");
    drop(dull);
    observra::flush().expect("flush");
    let late = observra::health().spans_sampled_out - dropped_before_late;
    drop(guard);
    let spans = rx.spans();
    let leaked: Vec<&str> = spans.iter().filter(|s| s.trace_id == trace_id).map(|s| s.name.as_str()).collect();
    assert!(leaked.is_empty(), "the dropped trace stays dropped, late child and root included: {leaked:?}");
    assert_eq!(late, 2, "the late child and the root are counted as dropped");
    assert!(sampler_dropped(&rx, "late") >= 2.0, "counted as late");
}

#[agent(name = "busy")]
fn busy() -> Result<(), std::io::Error> {
    for i in 0..20 {
        let _ = lookup(i == 19);
    }
    Ok(())
}

#[test]
fn spans_past_the_per_trace_cap_are_dropped_and_counted_by_reason() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install(&rx, Sampler::keep_interesting().ratio(0.0).max_spans_per_trace(5), None);
    let before = observra::health().spans_sampled_out;
    let _ = busy();
    observra::flush().expect("flush");
    let dropped = observra::health().spans_sampled_out - before;
    drop(guard);
    let spans = rx.spans();
    assert_eq!(spans.len(), 6, "five held spans and the root");
    assert!(spans.iter().any(|s| s.name == "invoke_agent busy"));
    assert_eq!(dropped, 15);
    assert_eq!(sampler_dropped(&rx, "trace_too_large"), 15.0);
    // The failed call came after the cap: its own span is gone, yet the
    // trace was kept for it (the failure is a fact about the trace).
}

#[test]
fn a_bad_tail_sampler_setting_is_a_typed_error_naming_it() {
    let _s = serial();
    for (var, value) in [
        ("OBSERVRA_TRACES_SAMPLER", "keep_everything"),
        ("OBSERVRA_TRACES_SAMPLER_ARG", "1.5"),
        ("OBSERVRA_TAIL_MAX_TRACES", "0"),
        ("OBSERVRA_TAIL_TIMEOUT_MS", "soon"),
    ] {
        let mut env = vec![("OBSERVRA_TRACES_SAMPLER", "keep_interesting")];
        env.retain(|(k, _)| *k != var);
        env.push((var, value));
        let err = observra::init().env_from(env).install().expect_err(var).to_string();
        assert!(err.contains(var) && err.contains(value), "{var}={value}: {err}");
    }
    let err = observra::init()
        .env_from(Vec::<(String, String)>::new())
        .sampler(Sampler::keep_interesting().ratio(2.0))
        .install()
        .expect_err("ratio")
        .to_string();
    assert!(err.contains("sampler") && err.contains('2'), "{err}");
}

/// About 1 MB of captured input: a long conversation.
fn long_conversation() -> String {
    let message = format!("[{{\"role\":\"user\",\"content\":\"{}\"}}]", "long context ".repeat(81_000));
    assert!(message.len() > 1 << 20);
    message
}

/// One model call capturing `message` as its input.
fn chat_with(message: &str) {
    tracing::info_span!("chat", gen_ai.operation.name = "chat", gen_ai.input.messages = %message).in_scope(|| {});
}

/// Catches: the sampler holding spans as they were assembled, before the
/// span limits cut them, and bounded only by counts: one open root with
/// 3,000 calls of about 1 MB of captured input each took a process from
/// 18 MB to 1,051 MB (1,024 spans of about 1 MB held).
#[test]
fn held_spans_are_cut_to_the_span_limits_before_they_are_held() {
    let _s = serial();
    let rx = Receiver::start();
    let capture = [("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")];
    let guard = install_with(&rx, Sampler::keep_interesting().ratio(1.0), None, &capture);
    let message = long_conversation();
    let resident = resident_bytes();
    let root = tracing::info_span!("long_running_agent");
    let mut most_held_bytes = 0;
    root.in_scope(|| {
        for i in 0..300 {
            chat_with(&message);
            if i % 10 == 9 {
                // The collector catches up (a bound on what waits in its queue, not a timing).
                observra::flush().expect("flush");
                most_held_bytes = most_held_bytes.max(observra::health().spans_held_bytes);
            }
        }
    });
    let held = observra::health();
    let grown = resident_bytes().saturating_sub(resident);
    drop(root);
    drop(guard);
    assert_eq!(held.spans_held, 300, "every call held while its root is open: {held:#?}");
    // Each held span is cut to the 64 KiB content limit: about 20 MB in all, not 300 MB.
    assert!(most_held_bytes <= 300 * (66 << 10), "held {most_held_bytes} bytes");
    assert!(most_held_bytes <= 64 << 20, "within the default byte budget: {most_held_bytes}");
    assert!(grown < 150 << 20, "the process grew by {} MB holding 300 calls of 1 MB each", grown >> 20);
    let spans = rx.spans();
    assert_eq!(spans.len(), 301, "the root and its 300 calls, kept whole");
    for s in spans.iter().filter(|s| s.name == "chat") {
        let m = s.str_attr("gen_ai.input.messages").expect("captured");
        assert!(m.len() <= 64 << 10 && message.starts_with(m), "cut to the 64 KiB default");
        assert_eq!(s.attr("observra.truncated"), Some(&Val::Array(vec![Val::Str("gen_ai.input.messages".into())])));
    }
}

/// Catches: nothing bounding the bytes held, only the counts.
#[test]
fn the_byte_budget_decides_the_oldest_trace_early_and_its_later_spans_follow() {
    let _s = serial();
    let rx = Receiver::start();
    let capture = [("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")];
    // Room for about 15 calls of 64 KiB: the open trace is decided early (kept: ratio 1), and the calls
    // after that follow its decision at once.
    let guard = install_with(&rx, Sampler::keep_interesting().ratio(1.0).max_bytes(1 << 20), None, &capture);
    let message = long_conversation();
    let root = tracing::info_span!("long_running_agent");
    let mut most_held_bytes = 0;
    root.in_scope(|| {
        for _ in 0..64 {
            chat_with(&message);
            observra::flush().expect("flush");
            most_held_bytes = most_held_bytes.max(observra::health().spans_held_bytes);
        }
    });
    drop(root);
    drop(guard);
    assert!(most_held_bytes > 0 && most_held_bytes <= 1 << 20, "held {most_held_bytes} bytes");
    let spans = rx.spans();
    assert_eq!(spans.len(), 65, "decided early and kept: every call and the root arrive");
    assert_eq!(traces(&spans).len(), 1);
}

#[test]
fn the_byte_budget_is_a_setting_of_its_own() {
    let _s = serial();
    let err = observra::init()
        .env_from([("OBSERVRA_TRACES_SAMPLER", "keep_interesting"), ("OBSERVRA_TAIL_MAX_BYTES", "0")])
        .install()
        .expect_err("zero bytes")
        .to_string();
    assert!(err.contains("OBSERVRA_TAIL_MAX_BYTES"), "{err}");
    let err = observra::init()
        .env_from(Vec::<(String, String)>::new())
        .sampler(Sampler::keep_interesting().max_bytes(0))
        .install()
        .expect_err("zero bytes")
        .to_string();
    assert!(err.contains("max_bytes"), "{err}");
}
