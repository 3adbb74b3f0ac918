//! W3C trace context across processes: an agent calls a tool service in a
//! second process over HTTP, and both processes' spans land in one trace,
//! decoded from OTLP. Plus inject/extract round trips.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use observra::{agent, traced};
use observra_test_support::{Receiver, install_http, serial, span};

#[traced(kind = client, name = "POST /tools/lookup_order")]
fn call_tool(addr: &str) -> std::io::Result<String> {
    let mut headers = http::HeaderMap::new();
    observra::propagation::inject(&mut headers);
    let mut stream = TcpStream::connect(addr)?;
    write!(stream, "POST /tools/lookup_order HTTP/1.1\r\nHost: {addr}\r\n")?;
    for (k, v) in &headers {
        write!(stream, "{}: {}\r\n", k, v.to_str().unwrap_or(""))?;
    }
    write!(stream, "Content-Length: 0\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

#[agent(name = "caller")]
fn run_agent(addr: &str) -> std::io::Result<String> {
    call_tool(addr)
}

#[test]
fn one_trace_spans_two_processes() {
    let _s = serial();
    let rx = Receiver::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tool-service"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.http_endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the tool service");
    let mut addr = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut addr).unwrap();
    let guard = install_http(&rx, &[]);
    let answer = run_agent(addr.trim()).expect("tool call");
    assert_eq!(answer, "order A-1001: shipped");
    drop(guard);
    assert!(child.wait().unwrap().success());

    let spans = rx.spans();
    assert_eq!(spans.len(), 4, "{:#?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    let service = |s: &observra_test_support::ReceivedSpan| {
        s.resource.get("service.name").and_then(|v| v.as_str()).unwrap_or("").to_string()
    };
    let agent = span(&spans, "invoke_agent caller");
    let client = spans.iter().find(|s| s.name == "POST /tools/lookup_order" && s.kind == 3).expect("client span");
    let server = spans.iter().find(|s| s.name == "POST /tools/lookup_order" && s.kind == 2).expect("server span");
    let tool = span(&spans, "execute_tool lookup_order");
    assert_eq!(service(agent), "observra-tests");
    assert_eq!(service(server), "tool-service", "the server span comes from the other process");
    assert_eq!(service(tool), "tool-service");
    for s in [client, server, tool] {
        assert_eq!(s.trace_id, agent.trace_id, "one trace: {}", s.name);
    }
    assert_eq!(client.parent_span_id.as_deref(), Some(agent.span_id.as_str()));
    assert_eq!(server.parent_span_id.as_deref(), Some(client.span_id.as_str()), "the remote caller is the parent");
    assert_eq!(tool.parent_span_id.as_deref(), Some(server.span_id.as_str()));
}

#[traced]
fn outgoing() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    observra::propagation::inject(&mut h);
    h
}

#[test]
fn inject_and_extract_round_trip_and_reject_garbage() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let headers = outgoing();
    let tp = headers.get("traceparent").and_then(|v| v.to_str().ok()).expect("traceparent").to_string();
    let remote = observra::propagation::extract(&headers).expect("valid");
    assert_eq!(tp, format!("00-{}-{}-01", remote.trace_id, remote.span_id));
    assert!(remote.sampled);
    drop(guard);
    assert_eq!(rx.spans()[0].span_id, remote.span_id, "the injected span is the exported one");

    let mut bad = http::HeaderMap::new();
    bad.insert("traceparent", http::HeaderValue::from_static("00-zzzz-1111-01"));
    assert!(observra::propagation::extract(&bad).is_none());
    assert!(observra::propagation::extract(&http::HeaderMap::new()).is_none());
    let mut no_span = http::HeaderMap::new();
    observra::propagation::inject(&mut no_span);
    assert!(no_span.is_empty(), "nothing to inject outside a span");
}

#[traced(kind = server)]
fn handler(headers: &http::HeaderMap) -> u8 {
    observra::propagation::set_remote_parent(observra::current_span(), headers);
    inner()
}

#[traced]
fn inner() -> u8 {
    1
}

#[test]
fn the_callers_sampling_decision_and_tracestate_are_followed() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let mut unsampled = http::HeaderMap::new();
    unsampled.insert(
        "traceparent",
        http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
    );
    handler(&unsampled);
    let mut sampled = http::HeaderMap::new();
    sampled.insert(
        "traceparent",
        http::HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    );
    sampled.insert("tracestate", http::HeaderValue::from_static("vendor=abc"));
    sampled.insert("baggage", http::HeaderValue::from_static("tenant=acme"));
    assert_eq!(
        observra::propagation::extract(&sampled).map(|r| r.baggage),
        Some(vec![("tenant".to_string(), "acme".to_string())])
    );
    handler(&sampled);
    drop(guard);
    let spans = rx.spans();
    assert_eq!(spans.len(), 2, "the unsampled caller's spans are not exported: {spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id == "0af7651916cd43dd8448eb211c80319c"));
    let h = span(&spans, "handler");
    assert_eq!(h.parent_span_id.as_deref(), Some("b7ad6b7169203331"));
    // The caller's tracestate travels with the trace, into the child too.
    assert_eq!(h.trace_state, "vendor=abc", "{h:#?}");
    assert_eq!(span(&spans, "inner").trace_state, "vendor=abc");
}

#[traced(kind = server)]
fn forwarding_handler(headers: &http::HeaderMap) -> http::HeaderMap {
    observra::propagation::set_remote_parent(observra::current_span(), headers);
    outgoing()
}

fn remote(trace_id: &str, span_id: &str, flags: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("traceparent", http::HeaderValue::from_str(&format!("00-{trace_id}-{span_id}-{flags}")).unwrap());
    h
}

#[test]
fn always_off_records_nothing_under_a_sampled_remote_parent_and_forwards_unsampled() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[("OTEL_TRACES_SAMPLER", "always_off")]);
    let sampled = remote("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "01");
    assert_eq!(handler(&sampled), 1);
    let forwarded = forwarding_handler(&sampled);
    drop(guard);
    let spans = rx.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(spans.is_empty(), "always_off: the caller's sampled flag is not obeyed: {names:?}");
    let next = observra::propagation::extract(&forwarded).expect("the caller's trace is still propagated");
    assert_eq!(next.trace_id, "0af7651916cd43dd8448eb211c80319c");
    assert!(!next.sampled, "downstream is told this process did not sample");
}

/// A remote parent's trace id `i` of `n`, spread evenly over the 64 bits
/// the ratio draw reads.
fn spread_trace_id(i: u64, n: u64) -> String {
    format!("{:016x}{:016x}", i + 1, i * (u64::MAX / n))
}

#[test]
fn traceidratio_decides_by_trace_id_whatever_the_remote_parent_sampled() {
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.25")]);
    let n = 200;
    for i in 0..n {
        handler(&remote(&spread_trace_id(i, n), "b7ad6b7169203331", "01"));
    }
    drop(guard);
    let spans = rx.spans();
    let exported: std::collections::BTreeSet<&str> =
        spans.iter().filter(|s| s.name == "handler").map(|s| s.trace_id.as_str()).collect();
    // The SDK's own decision for the same sampler: the trace id decides, not the flag.
    let expected: std::collections::BTreeSet<String> = (0..n)
        .map(|i| spread_trace_id(i, n))
        .filter(|t| {
            let id = opentelemetry::trace::TraceId::from_hex(t).unwrap();
            let kind = opentelemetry::trace::SpanKind::Server;
            Sampler::TraceIdRatioBased(0.25).should_sample(None, id, "handler", &kind, &[], &[]).decision
                == SamplingDecision::RecordAndSample
        })
        .collect();
    assert!((40..=60).contains(&expected.len()), "a quarter of evenly spread ids: {}", expected.len());
    assert_eq!(exported.len(), expected.len(), "exported at the ratio (of {n}), not at 100 %");
    assert_eq!(exported, expected.iter().map(String::as_str).collect());
    // Each kept handler's child follows it, and nothing of a dropped one is exported.
    assert_eq!(spans.len(), 2 * expected.len());
}

#[test]
fn parent_based_samplers_follow_the_remote_flag_both_ways() {
    for (sampler, arg) in [("parentbased_always_off", None), ("parentbased_traceidratio", Some("0"))] {
        let _s = serial();
        let rx = Receiver::start();
        let mut env = vec![("OTEL_TRACES_SAMPLER", sampler)];
        env.extend(arg.map(|a| ("OTEL_TRACES_SAMPLER_ARG", a)));
        let guard = install_http(&rx, &env);
        handler(&remote("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "00"));
        handler(&remote("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", "01"));
        // A root of this process: the root sampler (never, here) decides.
        inner();
        drop(guard);
        let spans = rx.spans();
        assert_eq!(spans.len(), 2, "{sampler}: the sampled caller's handler and its child only: {spans:#?}");
        assert!(spans.iter().all(|s| s.trace_id == "0af7651916cd43dd8448eb211c80319c"), "{sampler}");
    }
}

/// A hand-written tower service: `/fail` answers 503, anything else runs a tool and answers 200.
#[derive(Clone)]
struct ToolService;

impl tower_service::Service<http::Request<()>> for ToolService {
    type Response = http::Response<()>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<http::Response<()>, std::convert::Infallible>>;
    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: http::Request<()>) -> Self::Future {
        let status = if req.uri().path() == "/fail" {
            503
        } else {
            let _ = lookup();
            200
        };
        std::future::ready(Ok(http::Response::builder().status(status).body(()).unwrap()))
    }
}

#[observra::tool_call(name = "lookup_order")]
fn lookup() -> u8 {
    7
}

#[traced(kind = client, name = "client call")]
fn client_call(path: &str) -> u16 {
    use tower_layer::Layer;
    use tower_service::Service;
    let mut headers = http::HeaderMap::new();
    observra::propagation::inject(&mut headers);
    let mut request = http::Request::builder().method("POST").uri(path).body(()).unwrap();
    *request.headers_mut() = headers;
    // The server side runs on another thread, as a framework would: only the
    // headers connect it to this span.
    std::thread::spawn(move || {
        let mut service = observra::web::TraceContextLayer.layer(ToolService);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(service.call(request)).map(|r| r.status().as_u16()).unwrap_or(0)
    })
    .join()
    .unwrap()
}

#[test]
fn the_tower_layer_continues_the_callers_trace_and_records_the_status() {
    let _s = serial();
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    assert_eq!(client_call("/tools/lookup"), 200);
    assert_eq!(client_call("/fail"), 503);
    drop(guard);
    let spans = rx.spans();
    let clients: Vec<_> = spans.iter().filter(|s| s.name == "client call").collect();
    let servers: Vec<_> = spans.iter().filter(|s| s.name == "POST" && s.kind == 2).collect();
    assert_eq!((clients.len(), servers.len()), (2, 2), "{spans:#?}");
    for server in &servers {
        let client = clients.iter().find(|c| Some(&c.span_id) == server.parent_span_id.as_ref()).expect("parent");
        assert_eq!(client.trace_id, server.trace_id);
        assert_eq!(server.str_attr("http.request.method"), Some("POST"));
    }
    let ok = servers.iter().find(|s| s.str_attr("url.path") == Some("/tools/lookup")).unwrap();
    assert_eq!(ok.attr("http.response.status_code"), Some(&observra_test_support::Val::Int(200)));
    assert_eq!(ok.status_code, 0);
    let tool = span(&spans, "execute_tool lookup_order");
    assert_eq!(tool.parent_span_id.as_deref(), Some(ok.span_id.as_str()), "the handler's work is in the trace");
    let failed = servers.iter().find(|s| s.str_attr("url.path") == Some("/fail")).unwrap();
    assert_eq!(failed.attr("http.response.status_code"), Some(&observra_test_support::Val::Int(503)));
    assert_eq!(failed.status_code, 2, "5xx is an error on the server span");
}

#[traced(kind = client, name = "reqwest call")]
async fn reqwest_call(url: String) -> u16 {
    use observra::propagation::WithTraceContext;
    reqwest::Client::new().get(url).with_trace_context().send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

#[test]
fn outgoing_reqwest_requests_carry_the_trace_context() {
    let _s = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut traceparent = None;
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 && !line.trim().is_empty() {
            if let Some(v) = line.strip_prefix("traceparent:") {
                traceparent = Some(v.trim().to_string());
            }
            line.clear();
        }
        let mut stream = stream;
        let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        traceparent
    });
    let rx = Receiver::start();
    let guard = install_http(&rx, &[]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(rt.block_on(reqwest_call(url)), 204);
    drop(guard);
    let traceparent = server.join().unwrap().expect("traceparent header sent");
    let s = span(&rx.spans(), "reqwest call").clone();
    assert_eq!(traceparent, format!("00-{}-{}-01", s.trace_id, s.span_id));
}
