//! HTTP per the stable HTTP conventions, as a user would run it: an axum
//! agent service (`POST /ask`, `GET /health`, `GET /broken`) under
//! `observra::web::TraceContextLayer`, whose tool calls a second local axum
//! service (`GET /orders/{id}`, under the same layer) through reqwest with
//! `observra::web::TracingMiddleware`. Decoded from the in-process OTLP
//! receiver: one trace per request (server span, the agent's spans inside
//! it, the client span, the downstream server span beneath it) and both
//! duration histograms with the conventions' attributes.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use observra::web::{TraceContextLayer, TracingMiddleware};
use observra::{agent, tool_call};
use observra_test_support::{ReceivedSpan, Receiver, Val, install_http, serial};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

#[derive(Clone)]
struct Front {
    client: ClientWithMiddleware,
    orders: SocketAddr,
}

#[tool_call(name = "lookup_order")]
async fn lookup_order(front: &Front, id: &str) -> Result<String, reqwest_middleware::Error> {
    let url = format!("http://{}/orders/{id}?page=2&q=hidden-words&sig=k-123", front.orders);
    let response = front.client.get(url).send().await?;
    Ok(response.text().await?)
}

#[agent(name = "support")]
async fn support(front: &Front, question: String) -> Result<String, reqwest_middleware::Error> {
    let order = lookup_order(front, "A-1001").await?;
    Ok(format!("{question} -> {order}"))
}

async fn ask(State(front): State<Front>, question: String) -> Result<String, StatusCode> {
    support(&front, question).await.map_err(|_| StatusCode::BAD_GATEWAY)
}

async fn order(Path(id): Path<String>) -> String {
    format!("order {id} shipped")
}

/// Serves `app` on 127.0.0.1 from the runtime the caller is in.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn only<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "{name}: {:?}", spans.iter().map(|s| (&s.name, s.kind)).collect::<Vec<_>>());
    found[0]
}

fn s(v: &str) -> Val {
    Val::Str(v.into())
}

/// Starts both services under observra (with `extra` settings), makes the
/// three requests, and stops: the receiver and the two addresses.
fn run_service(extra: &[(&str, &str)]) -> (Receiver, SocketAddr, SocketAddr) {
    let rx = Receiver::start();
    let guard = install_http(&rx, extra);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (front_addr, orders_addr) = runtime.block_on(async {
        let orders = serve(Router::new().route("/orders/{id}", get(order)).layer(TraceContextLayer)).await;
        let client = ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware).build();
        let front = Router::new()
            .route("/ask", post(ask))
            .route("/health", get(|| async { "ok" }))
            .route("/broken", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
            .with_state(Front { client, orders })
            .layer(TraceContextLayer);
        (serve(front).await, orders)
    });
    // The user's own client: no trace context, so each request starts a trace.
    let plain = reqwest::Client::new();
    runtime.block_on(async {
        let answer = plain.post(format!("http://{front_addr}/ask")).body("where?").send().await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "where? -> order A-1001 shipped");
        assert_eq!(plain.get(format!("http://{front_addr}/health")).send().await.unwrap().status(), 200);
        assert_eq!(plain.get(format!("http://{front_addr}/broken")).send().await.unwrap().status(), 500);
    });
    // The servers' tasks end with the runtime, so every span they hold is
    // closed before the pipeline stops (no wait on a clock).
    drop(runtime);
    drop(guard);
    (rx, front_addr, orders_addr)
}

/// The count of `http.server.request.duration` points per route.
fn server_counts(rx: &Receiver) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = rx
        .metric_streams("http.server.request.duration")
        .into_iter()
        .flat_map(|m| m.histogram_points.into_iter())
        .map(|p| (p.attributes.get("http.route").and_then(Val::as_str).unwrap_or("").to_string(), p.count))
        .collect();
    out.sort();
    out
}

#[test]
fn sampled_out_requests_are_still_counted_in_the_http_metrics() {
    let _s = serial();
    let (rx, _, _) = run_service(&[("OTEL_TRACES_SAMPLER", "always_off")]);
    assert!(rx.spans().is_empty(), "nothing sampled");
    let routes = ["/ask", "/broken", "/health", "/orders/{id}"];
    assert_eq!(server_counts(&rx), routes.iter().map(|r| (r.to_string(), 1)).collect::<Vec<_>>());
    let client: u64 = rx
        .metric_streams("http.client.request.duration")
        .iter()
        .flat_map(|m| m.histogram_points.iter())
        .map(|p| p.count)
        .sum();
    assert_eq!(client, 1);
}

#[test]
fn an_axum_service_and_its_reqwest_calls_export_http_spans_and_metrics_per_the_conventions() {
    let _s = serial();
    let (rx, front_addr, orders_addr) = run_service(&[]);
    let spans = rx.spans();

    // POST /ask: one trace from the server span down to the downstream server.
    let ask = only(&spans, "POST /ask");
    assert_eq!(ask.kind, 2, "SERVER");
    assert_eq!(ask.parent_span_id, None);
    assert_eq!(ask.str_attr("http.request.method"), Some("POST"));
    assert_eq!(ask.str_attr("http.route"), Some("/ask"));
    assert_eq!(ask.str_attr("url.path"), Some("/ask"));
    assert_eq!(ask.str_attr("url.scheme"), Some("http"));
    assert_eq!(ask.str_attr("server.address"), Some("127.0.0.1"));
    assert_eq!(ask.attr("server.port"), Some(&Val::Int(i64::from(front_addr.port()))));
    assert_eq!(ask.str_attr("network.protocol.version"), Some("1.1"));
    assert_eq!(ask.attr("http.response.status_code"), Some(&Val::Int(200)));
    assert!(ask.attr("error.type").is_none());
    let agent = only(&spans, "invoke_agent support");
    assert_eq!(agent.parent_span_id.as_deref(), Some(ask.span_id.as_str()), "the agent inside the request");
    let tool = only(&spans, "execute_tool lookup_order");
    assert_eq!(tool.parent_span_id.as_deref(), Some(agent.span_id.as_str()));
    let client = only(&spans, "GET");
    assert_eq!(client.kind, 3, "CLIENT");
    assert_eq!(client.parent_span_id.as_deref(), Some(tool.span_id.as_str()), "the call inside the tool");
    assert_eq!(client.str_attr("http.request.method"), Some("GET"));
    let full = format!("http://{orders_addr}/orders/A-1001?page=REDACTED&q=REDACTED&sig=REDACTED");
    assert_eq!(client.str_attr("url.full"), Some(full.as_str()), "query values redacted");
    assert_eq!(ask.attr("url.query"), None, "no query, no url.query");
    assert_eq!(client.str_attr("server.address"), Some("127.0.0.1"));
    assert_eq!(client.attr("server.port"), Some(&Val::Int(i64::from(orders_addr.port()))));
    assert_eq!(client.attr("http.response.status_code"), Some(&Val::Int(200)));
    assert_eq!(client.str_attr("network.protocol.version"), Some("1.1"));
    let downstream = only(&spans, "GET /orders/{id}");
    assert_eq!(downstream.kind, 2);
    // The query the server received, its values redacted as in `url.full`.
    assert_eq!(downstream.str_attr("url.query"), Some("page=REDACTED&q=REDACTED&sig=REDACTED"));
    assert_eq!(downstream.parent_span_id.as_deref(), Some(client.span_id.as_str()), "the server under the client");
    assert_eq!(downstream.str_attr("http.route"), Some("/orders/{id}"));
    assert_eq!(downstream.str_attr("url.path"), Some("/orders/A-1001"));
    for sp in [agent, tool, client, downstream] {
        assert_eq!(sp.trace_id, ask.trace_id, "{} in the request's trace", sp.name);
    }
    assert!(!format!("{spans:?}").contains("hidden-words"), "the query value is nowhere");

    // GET /health, and a 5xx.
    let health = only(&spans, "GET /health");
    assert_eq!(health.attr("http.response.status_code"), Some(&Val::Int(200)));
    assert_ne!(health.trace_id, ask.trace_id, "one trace per request");
    let broken = only(&spans, "GET /broken");
    assert_eq!(broken.attr("http.response.status_code"), Some(&Val::Int(500)));
    assert_eq!(broken.str_attr("error.type"), Some("500"));
    assert_eq!(broken.status_code, 2, "a 5xx is an error on the server span");

    // Both histograms, with the conventions' attributes and buckets.
    let server = rx.metric_streams("http.server.request.duration");
    assert!(!server.is_empty(), "no http.server.request.duration");
    assert!(server.iter().all(|m| m.unit == "s"));
    let points: Vec<_> = server.iter().flat_map(|m| m.histogram_points.iter()).collect();
    let route = |r: &str| {
        points
            .iter()
            .find(|p| p.attributes.get("http.route") == Some(&s(r)))
            .unwrap_or_else(|| panic!("{r}: {points:?}"))
    };
    let p = route("/ask");
    assert_eq!(p.count, 1);
    assert_eq!(p.attributes.get("http.request.method"), Some(&s("POST")));
    assert_eq!(p.attributes.get("url.scheme"), Some(&s("http")));
    assert_eq!(p.attributes.get("http.response.status_code"), Some(&Val::Int(200)));
    assert_eq!(p.attributes.get("network.protocol.version"), Some(&s("1.1")));
    assert!(!p.attributes.contains_key("url.path") && !p.attributes.contains_key("server.port"), "bounded labels");
    assert_eq!(route("/broken").attributes.get("error.type"), Some(&s("500")));
    assert_eq!(route("/orders/{id}").count, 1);
    assert_eq!(route("/health").count, 1);
    assert_eq!(
        p.bounds,
        vec![0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0],
        "the conventions' buckets"
    );
    let client_points: Vec<_> = rx
        .metric_streams("http.client.request.duration")
        .into_iter()
        .flat_map(|m| m.histogram_points.into_iter())
        .collect();
    assert_eq!(client_points.len(), 1, "{client_points:?}");
    let c = &client_points[0];
    assert_eq!(c.count, 1);
    assert_eq!(c.attributes.get("http.request.method"), Some(&s("GET")));
    assert_eq!(c.attributes.get("server.address"), Some(&s("127.0.0.1")));
    assert_eq!(c.attributes.get("server.port"), Some(&Val::Int(i64::from(orders_addr.port()))));
    assert_eq!(c.attributes.get("http.response.status_code"), Some(&Val::Int(200)));
    assert!(!c.attributes.contains_key("url.full"));
}

/// Catches: SERVER spans of requests with a query string lacking
/// `url.query` (conditionally required when one was received), and no way
/// to keep the values of keys that are not sensitive. With
/// `OBSERVRA_HTTP_QUERY_VALUES=non_sensitive` the values stay, except a
/// sensitive key's (`sig`, on the conventions' list), on the client's `url.full` and the
/// server's `url.query` alike.
#[test]
fn query_values_of_keys_that_are_not_sensitive_are_kept_when_asked() {
    let _s = serial();
    let (rx, _, orders_addr) = run_service(&[("OBSERVRA_HTTP_QUERY_VALUES", "non_sensitive")]);
    let spans = rx.spans();
    let client = only(&spans, "GET");
    let full = format!("http://{orders_addr}/orders/A-1001?page=2&q=hidden-words&sig=REDACTED");
    assert_eq!(client.str_attr("url.full"), Some(full.as_str()));
    let downstream = only(&spans, "GET /orders/{id}");
    assert_eq!(downstream.str_attr("url.query"), Some("page=2&q=hidden-words&sig=REDACTED"));
    let err = observra::init()
        .env_from([("OBSERVRA_HTTP_QUERY_VALUES", "all")])
        .jsonl_writer(std::io::sink())
        .install()
        .expect_err("an unknown value is refused");
    assert!(err.to_string().contains("OBSERVRA_HTTP_QUERY_VALUES"), "{err}");
}
