//! The Grafana dashboard (`dashboards/agents.json`) and the alert rules
//! (`dashboards/alerts.yml`) against a real Prometheus (Debian's package,
//! installed by scripts/test.sh): an agent workload that produces every
//! metric the dashboard plots (requests, failures, tokens, cost, tool
//! failures, a streamed call, budget crossings, HTTP requests through the
//! tower layer, evaluation scores, the pipeline's own figures), scraped every second; then
//! every panel's PromQL runs through Prometheus's HTTP API and must return
//! data ("no series" fails; an error rate of 0 is data). The rules pass `promtool check rules` and load into
//! the same Prometheus with health "ok". The panels' series over the run
//! are drawn as a picture of the dashboard (the README's, made with
//! `scripts/dashboard-picture.sh`).

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::Stream;
use observra::{Usage, agent, llm_call, tool_call};
use observra_test_support::dashboard_svg::{Panel, Series, legend, render};
use observra_test_support::prometheus::{Prometheus, which};
use observra_test_support::{http_get, serial};

#[llm_call(provider = "openai", model = "gpt-4o-mini")]
fn think() -> Usage {
    std::thread::sleep(Duration::from_millis(2));
    // A quality check on the call, for the evaluation panel.
    observra::evaluate(observra::current_span(), observra::Evaluation::new("relevance").score(0.8).label("relevant"));
    Usage::new(300, 40)
}

/// A stream whose chunks are ready at once.
struct Chunks(u32);

impl Stream for Chunks {
    type Item = String;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<String>> {
        if self.0 == 0 {
            return Poll::Ready(None);
        }
        self.0 -= 1;
        Poll::Ready(Some("token".into()))
    }
}

#[llm_call(provider = "openai", model = "gpt-4o-mini", stream)]
fn think_streaming() -> impl Stream<Item = String> {
    std::thread::sleep(Duration::from_millis(2));
    Chunks(3)
}

fn drain(mut s: impl Stream<Item = String> + Unpin) {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    while let Poll::Ready(Some(_)) = Pin::new(&mut s).poll_next(&mut cx) {}
}

#[tool_call(name = "lookup")]
fn lookup(fail: bool) -> Result<u8, std::io::Error> {
    if fail { Err(std::io::Error::other("not found")) } else { Ok(1) }
}

#[agent(name = "support")]
fn support(n: u64) -> Result<(), std::io::Error> {
    let _ = think();
    drain(Box::pin(think_streaming()));
    let _ = lookup(n % 4 == 0);
    if n % 5 == 0 { Err(std::io::Error::other("gave up")) } else { Ok(()) }
}

/// Every `expr` of every panel of the dashboard.
fn panel_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            out.push((p["title"].as_str().unwrap_or("?").to_string(), t["expr"].as_str().expect("expr").to_string()));
        }
    }
    out
}

/// Every panel's first query over the last `seconds`, as a panel to draw.
fn picture(dashboard: &serde_json::Value, server: &Prometheus, seconds: u64) -> Vec<Panel> {
    let mut panels = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        let expr = p["targets"][0]["expr"].as_str().expect("expr");
        let series = server
            .query_range(expr, seconds)
            .into_iter()
            .map(|(metric, points)| Series { label: legend(&metric), points })
            .collect();
        panels.push(Panel { title: p["title"].as_str().unwrap_or("?").to_string(), series });
    }
    panels
}

#[test]
fn every_dashboard_panel_returns_data_and_the_alert_rules_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("dashboards/agents.json")).unwrap()).unwrap();
    let queries = panel_queries(&dashboard);
    assert!(queries.len() >= 15, "{} panels", queries.len());
    let rules = root.join("dashboards/alerts.yml");

    match which("promtool") {
        Some(promtool) => {
            let out = std::process::Command::new(promtool).arg("check").arg("rules").arg(&rules).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && text.contains("SUCCESS: 4 rules found"), "{text}");
        }
        None => eprintln!(
            "\n!!!!!!!! SKIPPED `promtool check rules`: promtool is not installed (Debian package `prometheus`) !!!!!!!!\n"
        ),
    }
    if which("prometheus").is_none() {
        eprintln!(
            "\n!!!!!!!! SKIPPED: the `prometheus` binary is not installed and scripts/test.sh could not install it \
             (Debian package `prometheus`). The dashboard test did not run. !!!!!!!!\n"
        );
        return;
    }

    let _s = serial();
    let guard = observra::init()
        .env_from([("OBSERVRA_PROMETHEUS_ADDR", "127.0.0.1:0"), ("OTEL_SERVICE_NAME", "dashboard-test")])
        .jsonl_writer(std::io::sink())
        // Every priced call crosses it: the budget panel has data.
        .budget(observra::Budget::new().per_call_usd(1e-9))
        .install()
        .expect("install");
    let target = observra::prometheus_addr().expect("endpoint").to_string();
    // An HTTP service in front of the agent, for the per-route panels.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let service = runtime.block_on(async {
        let app = axum::Router::new()
            .route("/ask", axum::routing::post(|| async { "ok" }))
            .route("/health", axum::routing::get(|| async { "ok" }))
            .layer(observra::web::TraceContextLayer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let http = reqwest::Client::new();
    let handle = runtime.handle().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let workload = std::thread::spawn(move || {
        let mut n = 0;
        while !flag.load(Ordering::Relaxed) {
            n += 1;
            let _ = support(n);
            let path = if n % 3 == 0 { "health" } else { "ask" };
            let request = if path == "ask" {
                http.post(format!("http://{service}/ask"))
            } else {
                http.get(format!("http://{service}/health"))
            };
            let _ = handle.block_on(request.send());
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("prometheus-dashboard-{}", std::process::id()));
    let server = Prometheus::start(&target, &dir, &[rules.as_path()]).expect("prometheus is installed");

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut empty: Vec<(String, String)> = queries.clone();
    while Instant::now() < deadline && !empty.is_empty() {
        empty.retain(|(_, q)| server.query(q).is_empty());
        std::thread::sleep(Duration::from_millis(500));
    }
    // The picture of the dashboard (README): `scripts/dashboard-picture.sh`
    // sets OBSERVRA_DASHBOARD_PICTURE and lets the workload run longer, so
    // the lines have some length.
    let picture_to = std::env::var_os("OBSERVRA_DASHBOARD_PICTURE");
    let started = Instant::now();
    if picture_to.is_some() {
        std::thread::sleep(Duration::from_secs(90));
    }
    let window = (started.elapsed().as_secs() + 130).min(600);
    // Every panel has data by now; the range query is asked again (up to
    // 30 s) in case a series appeared between two of its steps.
    let drawn_by = Instant::now() + Duration::from_secs(30);
    let mut panels = picture(&dashboard, &server, window);
    while Instant::now() < drawn_by && panels.iter().any(|p| p.series.iter().all(|s| s.points.is_empty())) {
        std::thread::sleep(Duration::from_millis(500));
        panels = picture(&dashboard, &server, window);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = workload.join();
    drop(runtime);
    drop(guard);
    assert!(empty.is_empty(), "panels with no series after two minutes of scrapes: {empty:#?}");
    let svg = render("observra: agents", &panels, 3);
    for p in &panels {
        assert!(!p.series.is_empty() && p.series.iter().any(|s| !s.points.is_empty()), "{}: nothing to draw", p.title);
        assert!(
            svg.contains(&format!(">{}</text>", p.title.replace('&', "&amp;"))),
            "{} missing from the picture",
            p.title
        );
    }
    let drawn = Path::new(env!("CARGO_TARGET_TMPDIR")).join("agents-dashboard.svg");
    std::fs::write(&drawn, &svg).unwrap();
    if let Some(to) = picture_to {
        std::fs::write(&to, &svg).unwrap();
        eprintln!("the dashboard's picture: {}", Path::new(&to).display());
    }

    // The error rate is a number (0 is data, NaN would be a broken query).
    let error_rate = queries.iter().find(|(t, _)| t == "Error rate").map(|(_, q)| server.query(q)).unwrap();
    let rate = observra_test_support::prometheus::value(&error_rate[0]);
    assert!(rate.is_finite() && (0.0..=1.0).contains(&rate), "{error_rate:?}");

    // The alert rules loaded into the same Prometheus and evaluate cleanly.
    let (status, body) = http_get(&server.addr, "/api/v1/rules").unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rules: Vec<&serde_json::Value> =
        v["data"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap().iter()).collect();
    assert_eq!(rules.len(), 4, "{body}");
    for r in rules {
        assert_ne!(r["health"], "err", "rule {} fails to evaluate: {}", r["name"], r["lastError"]);
    }
}
