//! `observra report`'s page in a real browser. Chromium (Debian's
//! `chromium`, headless) opens the page made of what the support-agent and
//! rig examples wrote, with the network blocked (every host name resolves
//! to nothing, no proxy) and a net log kept, and the tests read what the
//! page drew (the DOM after its script ran): a row per trace, the
//! waterfall's bars nested as the JSONL's parent ids say (and inside their
//! parent's bar on screen), the failing tool in red, the cost total equal
//! to the sum of the JSONL's costs, the chosen span's attributes, events and
//! captured messages; and from the net log, that no request left the page
//! (a page that sends one is caught: `a_page_that_fetches_is_caught`).
//!
//! `scripts/test.sh` installs Chromium (Debian's package); without it each
//! test says SKIPPED. `OBSERVRA_CHROMIUM` names another binary.
//! `OBSERVRA_UPDATE_SCREENSHOT=1` writes the README's `docs/report.png`.
//! `measure_a_100000_span_folder` (ignored; run it with `--release`) gives
//! the figures of BENCHMARKS.md.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use observra_test_support::{example, run_ok};
use serde_json::Value;

/// The Chromium binary, or `None` (the test then says SKIPPED).
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OBSERVRA_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

macro_rules! chromium_or_skip {
    () => {
        match chromium() {
            Some(c) => c,
            None => {
                eprintln!(
                    "\n!!!!!!!! SKIPPED: Chromium is not installed and scripts/test.sh could not install it (Debian \
                     package `chromium`; or set OBSERVRA_CHROMIUM). The report page was not opened. !!!!!!!!\n"
                );
                return;
            }
        }
    };
}

fn tmp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// JSONL written by an example (`env` added to its environment), once per test binary and example.
fn example_jsonl(bin: &'static str, env: &[(&str, &str)]) -> PathBuf {
    static FILES: OnceLock<std::sync::Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let key = format!("{bin}{env:?}");
    let mut files = FILES.get_or_init(Default::default).lock().unwrap();
    files
        .entry(key)
        .or_insert_with(|| {
            let path = tmp(bin).join("run.jsonl");
            let mut cmd = example(bin);
            cmd.env("OBSERVRA_BACKEND", "jsonl").env("OBSERVRA_JSONL_PATH", &path);
            for (k, v) in env {
                cmd.env(k, v);
            }
            run_ok(&mut cmd);
            path
        })
        .clone()
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `observra report <input> -o <dir>/report.html`, run in the input's
/// folder (so the page names the file as a user would): the page's path.
fn report(input: &Path) -> PathBuf {
    let page = tmp("page").join("report.html");
    let (dir, name) = (input.parent().unwrap(), input.file_name().unwrap());
    let out =
        run_ok(Command::cargo_bin("observra").unwrap().current_dir(dir).arg("report").arg(name).arg("-o").arg(&page));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("wrote "), "{}", String::from_utf8_lossy(&out.stderr));
    page
}

/// Runs Chromium headless with the network blocked and a net log; `what`
/// is `--dump-dom` or `--screenshot=...`. Returns its stdout and the URLs
/// the page itself requested.
fn chromium_run(bin: &Path, url: &str, what: &str, window: &str) -> (String, Vec<String>) {
    let dir = tmp("chromium");
    let netlog = dir.join("netlog.json");
    let mut child = Command::new(bin)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"])
        .args(["--no-first-run", "--no-default-browser-check", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--disable-extensions"])
        .args(["--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg(format!("--window-size={window}"))
        .arg(what)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (reader.join().unwrap(), page_requests(&netlog))
}

/// The URLs the page requested, from Chromium's net log: every URL request
/// made for a file:// document (the browser's own background requests, in
/// no page's name, are left out), file: and data: URLs aside.
fn page_requests(netlog: &Path) -> Vec<String> {
    let log: Value = serde_json::from_str(&std::fs::read_to_string(netlog).expect("a net log")).expect("JSON");
    let types = &log["constants"]["logEventTypes"];
    let start_job = types["URL_REQUEST_START_JOB"].as_u64().expect("the event type");
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .map(|e| &e["params"])
        .filter(|p| {
            let key = p["network_isolation_key"].as_str().unwrap_or("");
            key.contains("file://") || p["initiator"] == "null"
        })
        .filter_map(|p| p["url"].as_str())
        .filter(|u| !u.starts_with("file:") && !u.starts_with("data:"))
        .map(str::to_string)
        .collect()
}

fn file_url(page: &Path, fragment: &str) -> String {
    format!("file://{}{fragment}", page.canonicalize().unwrap().display())
}

/// The DOM after the page's script ran, checked to have finished and to
/// have sent nothing.
fn open(bin: &Path, page: &Path, fragment: &str) -> String {
    let (dom, requests) = chromium_run(bin, &file_url(page, fragment), "--dump-dom", "1280,900");
    assert!(dom.contains(r#"data-ready="true""#), "the page's script did not finish: {}", &dom[..dom.len().min(2000)]);
    assert_eq!(requests, Vec::<String>::new(), "the page sent requests");
    dom
}

/// The attributes of every element whose opening tag starts with `open`
/// (such as `<div class="span-row`), with where each starts in `dom`.
fn elements(dom: &str, open: &str) -> Vec<(usize, HashMap<String, String>)> {
    dom.match_indices(open).map(|(at, _)| (at, attributes(&dom[at..]))).collect()
}

/// The attributes of the tag at the start of `tag` (values unescaped).
fn attributes(tag: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = &tag[tag.find(' ').unwrap_or(tag.len())..];
    loop {
        rest = rest.trim_start();
        if rest.is_empty() || rest.starts_with('>') || rest.starts_with("/>") {
            return out;
        }
        let name_end = rest.find(['=', ' ', '>']).unwrap_or(rest.len());
        let name = rest[..name_end].to_string();
        rest = &rest[name_end..];
        let value = if let Some(quoted) = rest.strip_prefix("=\"") {
            let end = quoted.find('"').expect("a closing quote");
            rest = &quoted[end + 1..];
            unescape(&quoted[..end])
        } else {
            String::new()
        };
        out.insert(name, value);
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Where the opening tag of the element with id `id` starts.
fn find_id(dom: &str, id: &str) -> usize {
    let at = dom.find(&format!(r#" id="{id}""#)).unwrap_or_else(|| panic!("no #{id}"));
    dom[..at].rfind('<').unwrap()
}

/// The text of the element with id `id` (tags removed, entities unescaped).
fn text_of(dom: &str, id: &str) -> String {
    let start = find_id(dom, id);
    let from = start + dom[start..].find('>').unwrap() + 1;
    let mut depth = 1;
    let mut text = String::new();
    let mut rest = &dom[from..];
    while let Some(lt) = rest.find('<') {
        text.push_str(&rest[..lt]);
        let gt = rest[lt..].find('>').unwrap() + lt;
        let tag = &rest[lt..=gt];
        if tag.starts_with("</") {
            depth -= 1;
        } else if !tag.ends_with("/>") && !["<br", "<img", "<input", "<meta"].iter().any(|v| tag.starts_with(v)) {
            depth += 1;
        }
        if depth == 0 {
            break;
        }
        text.push(' ');
        rest = &rest[gt + 1..];
    }
    unescape(&text)
}

/// Each span's depth in its trace, from the JSONL's parent ids.
fn depths(spans: &[Value]) -> HashMap<String, usize> {
    let parent: HashMap<&str, Option<&str>> =
        spans.iter().map(|s| (s["span_id"].as_str().unwrap(), s["parent_span_id"].as_str())).collect();
    parent
        .keys()
        .map(|&id| {
            let (mut d, mut cur) = (0, id);
            while let Some(Some(p)) = parent.get(cur) {
                d += 1;
                cur = p;
            }
            (id.to_string(), d)
        })
        .collect()
}

/// What a person sees of a report of `jsonl`: the runs, the waterfall
/// nested as the JSONL says, errors red and only errors, the cost total.
fn check_page(bin: &Path, jsonl: &Path) -> (PathBuf, Vec<Value>) {
    let spans = records(jsonl);
    let page = report(jsonl);
    let dom = open(bin, &page, "");

    let rows = elements(&dom, r#"<tr class="run"#);
    let mut traces: Vec<&str> = spans.iter().map(|s| s["trace_id"].as_str().unwrap()).collect();
    traces.sort();
    traces.dedup();
    let mut shown: Vec<&str> = rows.iter().map(|(_, a)| a["data-trace-id"].as_str()).collect();
    shown.sort();
    assert_eq!(shown, traces, "a row per trace");
    let root = spans.iter().find(|s| s["parent_span_id"].is_null()).unwrap();
    assert!(text_of(&dom, "runs-body").contains(root["name"].as_str().unwrap()), "the root's name in its row");

    let bars = elements(&dom, r#"<div class="span-row"#);
    assert_eq!(bars.len(), spans.len(), "a bar per span");
    let depth = depths(&spans);
    let position: HashMap<&str, usize> =
        bars.iter().enumerate().map(|(i, (_, a))| (a["data-span-id"].as_str(), i)).collect();
    for s in &spans {
        let id = s["span_id"].as_str().unwrap();
        let (at, row) = &bars[position[id]];
        let parent = s["parent_span_id"].as_str().unwrap_or("");
        assert_eq!(row["data-parent-id"], parent, "{id}: nested under its parent");
        assert_eq!(row["data-depth"], depth[id].to_string(), "{id}: depth");
        if !parent.is_empty() {
            assert!(position[parent] < position[id], "{id} is drawn below its parent");
        }
        let bar = &elements(&dom[*at..], r#"<div class="bar "#)[0].1["class"];
        let failed = s["status"]["code"] == "error";
        assert_eq!(bar.split(' ').any(|c| c == "status-error"), failed, "{id}: red if and only if it failed: {bar}");
        assert_eq!(row["class"].split(' ').any(|c| c == "error"), failed, "{id}: row marked if and only if it failed");
        assert!(bar.contains(&format!("kind-{}", s["kind"].as_str().unwrap())), "{id}: its kind is shown: {bar}");
    }

    let cost: f64 = spans.iter().filter_map(|s| s["attributes"]["observra.cost.usd"].as_f64()).sum();
    let shown: f64 = attributes(&dom[find_id(&dom, "total-cost")..])["data-cost-usd"].parse().unwrap();
    assert!(cost > 0.0 && (shown - cost).abs() <= cost * 1e-12, "cost total {shown} = the JSONL's sum {cost}");
    assert!(text_of(&dom, "cards").contains(&format!("${cost:.6}")), "{}", text_of(&dom, "cards"));
    (page, spans)
}

/// The colour and box of each bar as Chromium drew them: the page with a
/// probe script added that writes them into the DOM, and also tries the
/// runs table's filters (checked against `spans`).
fn drawn_bars(bin: &Path, page: &Path, spans: &[Value]) -> HashMap<String, (String, f64, f64)> {
    let probe = r##"<script>document.body.setAttribute("data-probe", JSON.stringify(
        Array.prototype.map.call(document.querySelectorAll("#waterfall .span-row"), function (r) {
          var b = r.querySelector(".bar"), box = b.getBoundingClientRect();
          return [r.getAttribute("data-span-id"), getComputedStyle(b).backgroundColor, box.left, box.right];
        })));
        var more = document.querySelector("#waterfall .more");
        document.body.setAttribute("data-more-shown", String(more.getBoundingClientRect().height > 0));
        var rowsWith = function (id, value) {
          var select = document.getElementById(id);
          select.value = value;
          select.dispatchEvent(new Event("change"));
          var n = document.querySelectorAll("#runs-body tr").length;
          select.value = "";
          select.dispatchEvent(new Event("change"));
          return n;
        };
        var agent = document.querySelector("#filter-agent option:nth-child(2)").value;
        var model = document.querySelector("#filter-model option:nth-child(2)").value;
        document.body.setAttribute("data-filtered", JSON.stringify([rowsWith("filter-status", "ok"),
          rowsWith("filter-status", "error"), agent, rowsWith("filter-agent", agent), model,
          rowsWith("filter-model", model)]));
        </script></body>"##;
    let html = std::fs::read_to_string(page).unwrap().replace("</body>", probe);
    let probed = page.with_file_name("probed.html");
    std::fs::write(&probed, html).unwrap();
    let dom = open(bin, &probed, "");
    let body = &elements(&dom, "<body")[0].1;
    assert_eq!(body["data-more-shown"], "false", "every span is drawn: no button to draw more");
    check_filters(&serde_json::from_str(&body["data-filtered"]).unwrap(), spans);
    let probe: Value = serde_json::from_str(&body["data-probe"]).unwrap();
    probe
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b[0].as_str().unwrap().to_string(),
                (b[1].as_str().unwrap().to_string(), b[2].as_f64().unwrap(), b[3].as_f64().unwrap()),
            )
        })
        .collect()
}

/// The runs table filtered by status, and by the first agent and model
/// listed: as many rows as the JSONL has traces of each.
fn check_filters(filtered: &Value, spans: &[Value]) {
    let traces = |keep: &dyn Fn(&Value) -> bool| {
        let mut ids: Vec<&str> = spans.iter().filter(|s| keep(s)).map(|s| s["trace_id"].as_str().unwrap()).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    };
    let all = traces(&|_| true);
    let failed = traces(&|s| s["status"]["code"] == "error");
    let agent = filtered[2].as_str().expect("an agent to filter by");
    let with_agent = traces(&|s| {
        s["attributes"]["gen_ai.operation.name"] == "invoke_agent" && s["attributes"]["gen_ai.agent.name"] == agent
    });
    let model = filtered[4].as_str().expect("a model to filter by");
    let with_model = traces(&|s| s["kind"] == "client" && s["attributes"]["gen_ai.request.model"] == model);
    assert_eq!(filtered[0], all - failed, "status ok: {filtered}");
    assert_eq!(filtered[1], failed, "status error: {filtered}");
    assert_eq!(filtered[3], with_agent, "agent {agent}: {filtered}");
    assert_eq!(filtered[5], with_model, "model {model}: {filtered}");
}

/// Failed spans' bars are red, the others not, each bar lies within its
/// parent's, and all are drawn at once.
fn check_drawn(bin: &Path, page: &Path, spans: &[Value]) {
    const RED: &str = "rgb(220, 38, 38)";
    let drawn = drawn_bars(bin, page, spans);
    for s in spans {
        let id = s["span_id"].as_str().unwrap();
        let (colour, left, right) = &drawn[id];
        assert_eq!(colour == RED, s["status"]["code"] == "error", "{id} ({}): {colour}", s["name"]);
        if let Some(p) = s["parent_span_id"].as_str() {
            let (_, pl, pr) = &drawn[p];
            assert!(left + 1.0 >= *pl && right - 1.0 <= *pr, "{id} [{left}, {right}] inside its parent [{pl}, {pr}]");
        }
    }
}

#[test]
fn the_support_agents_run_reads_in_chromium_as_in_its_jsonl() {
    let bin = chromium_or_skip!();
    let jsonl = example_jsonl("support-agent", &[]);
    let (page, spans) = check_page(&bin, &jsonl);
    check_drawn(&bin, &page, &spans);
    assert_eq!(spans.iter().filter(|s| s["status"]["code"] == "error").count(), 1, "one failing tool to show");

    // The failing tool, chosen: its status, message and exception event beside the waterfall.
    let failed = spans.iter().find(|s| s["status"]["code"] == "error").unwrap();
    let fragment =
        format!("#trace={}&span={}", failed["trace_id"].as_str().unwrap(), failed["span_id"].as_str().unwrap());
    let dom = open(&bin, &page, &fragment);
    let detail = text_of(&dom, "detail");
    assert!(detail.contains("execute_tool lookup_order"), "{detail}");
    assert!(detail.contains("error: no order with id Z-9"), "{detail}");
    assert!(detail.contains("exception") && detail.contains("exception.message"), "{detail}");

    let (_, requests) = chromium_run(
        &bin,
        &file_url(&page, &fragment),
        &format!("--screenshot={}", page.with_extension("png").display()),
        "1280,860",
    );
    assert!(requests.is_empty(), "{requests:?}");
    let png = std::fs::read(page.with_extension("png")).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a screenshot with something on it");
    if std::env::var_os("OBSERVRA_UPDATE_SCREENSHOT").is_some() {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report.png"), &png).unwrap();
    }
}

#[test]
fn the_rig_agents_run_reads_in_chromium_with_its_captured_messages_redacted() {
    let bin = chromium_or_skip!();
    let capture = [("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_AND_EVENT")];
    let jsonl = example_jsonl("rig-agent", &capture);
    let (page, spans) = check_page(&bin, &jsonl);
    check_drawn(&bin, &page, &spans);

    let chat = spans.iter().find(|s| s["attributes"]["gen_ai.input.messages"].is_string()).expect("captured messages");
    let fragment = format!("#trace={}&span={}", chat["trace_id"].as_str().unwrap(), chat["span_id"].as_str().unwrap());
    let dom = open(&bin, &page, &fragment);
    let detail = text_of(&dom, "detail");
    assert!(detail.contains("Captured messages") && detail.contains("gen_ai.input.messages"), "{detail}");
    assert!(detail.contains("Where is my order A-1001?") && detail.contains("[REDACTED:openai_key]"), "{detail}");
    assert!(!dom.contains("sk-TEST"), "the page shows what the JSONL holds, redacted");
}

#[test]
fn a_page_of_several_runs_lists_each_and_filters_them() {
    let bin = chromium_or_skip!();
    let dir = tmp("several");
    let mut spans = Vec::new();
    for bin in ["support-agent", "rig-agent", "rag-agent"] {
        let jsonl = example_jsonl(bin, &[]);
        std::fs::copy(&jsonl, dir.join(format!("{bin}.jsonl"))).unwrap();
        spans.extend(records(&jsonl));
    }
    let page = tmp("several-page").join("report.html");
    run_ok(Command::cargo_bin("observra").unwrap().arg("report").arg(&dir).arg("-o").arg(&page));
    let dom = open(&bin, &page, "");
    assert_eq!(elements(&dom, r#"<tr class="run"#).len(), 3, "a row per trace");
    let options = text_of(&dom, "filter-agent");
    assert!(options.contains("order-rag") && options.contains("support"), "{options}");
    let drawn = drawn_bars(&bin, &page, &spans);
    assert!(!drawn.is_empty(), "the newest trace is drawn");
}

#[test]
fn a_page_that_fetches_is_caught() {
    let bin = chromium_or_skip!();
    let page = tmp("fetching").join("fetching.html");
    std::fs::write(
        &page,
        r#"<!DOCTYPE html><body><img src="http://observra.invalid/pixel.png"><script>
        fetch("https://192.0.2.1/beacon").catch(function () {});
        document.body.setAttribute("data-ready", "true");</script></body>"#,
    )
    .unwrap();
    let (_, requests) = chromium_run(&bin, &file_url(&page, ""), "--dump-dom", "800,600");
    assert!(requests.iter().any(|u| u.starts_with("http://observra.invalid/")), "{requests:?}");
    assert!(requests.iter().any(|u| u.starts_with("https://192.0.2.1/")), "{requests:?}");
}

/// Writes `copies` runs of the support agent (the spans of `template`, with
/// new ids and times) into `dir`, rotated into parts of 10,000 lines.
fn synthetic_folder(template: &[Value], copies: usize, dir: &Path) -> usize {
    let mut lines = Vec::with_capacity(template.len() * copies);
    for k in 0..copies {
        let shift = k as u64 * 1_000_000_000;
        for s in template {
            let mut s = s.clone();
            s["trace_id"] = format!("{k:032x}").into();
            let id = |v: &Value| v.as_str().map(|id| format!("{k:08x}{}", &id[8..]));
            s["span_id"] = id(&s["span_id"]).into();
            s["parent_span_id"] = id(&s["parent_span_id"]).into();
            for t in ["start_time_unix_nano", "end_time_unix_nano"] {
                s[t] = (s[t].as_u64().unwrap() + shift).into();
            }
            lines.push(s.to_string());
        }
    }
    write_parts(&lines, dir);
    lines.len()
}

/// `lines` as `spans.jsonl` and its rotated parts (`spans.jsonl.N`, the
/// highest N oldest) of 10,000 lines each.
fn write_parts(lines: &[String], dir: &Path) {
    let parts: Vec<&[String]> = lines.chunks(10_000).collect();
    for (i, part) in parts.iter().enumerate() {
        let n = parts.len() - 1 - i;
        let name = if n == 0 { "spans.jsonl".to_string() } else { format!("spans.jsonl.{n}") };
        std::fs::write(dir.join(name), part.join("\n") + "\n").unwrap();
    }
}

fn timed(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    run_ok(cmd);
    t.elapsed().as_secs_f64()
}

/// Chromium opening `page`: the page's own time from the start of loading
/// to its script's end, and the wall time of a whole Chromium run (start,
/// load, draw, exit) that takes a screenshot of it.
fn opening(bin: &Path, page: &Path) -> (f64, f64) {
    let dom = open(bin, page, "");
    let ready: f64 = elements(&dom, "<body")[0].1["data-ready-ms"].parse().unwrap();
    let shot = page.with_extension("png");
    let t = Instant::now();
    let (_, requests) = chromium_run(bin, &file_url(page, ""), &format!("--screenshot={}", shot.display()), "1280,900");
    let wall = t.elapsed().as_secs_f64();
    assert!(requests.is_empty() && shot.exists());
    (ready / 1000.0, wall)
}

/// One trace of `spans` spans: a root, groups of 100 below it, the rest
/// below the groups, a tenth of them failed tool calls; rotated into parts
/// of 10,000 lines.
fn one_trace_folder(template: &[Value], spans: usize, dir: &Path) -> usize {
    let tool = template.iter().find(|s| s["status"]["code"] == "error").expect("the failed tool call");
    let start = tool["start_time_unix_nano"].as_u64().unwrap();
    let lines: Vec<Value> = (0..spans)
        .map(|i| {
            let mut s = tool.clone();
            s["trace_id"] = "ab".repeat(16).into();
            s["span_id"] = format!("{:016x}", i + 1).into();
            s["parent_span_id"] = match i {
                0 => Value::Null,
                1..=100 => "0000000000000001".into(),
                _ => format!("{:016x}", 2 + i % 100).into(),
            };
            s["start_time_unix_nano"] = (start + i as u64 * 1_000).into();
            s["end_time_unix_nano"] = (start + i as u64 * 1_000 + if i == 0 { 1_000_000_000 } else { 500 }).into();
            if i % 10 != 0 {
                s["status"] = serde_json::json!({"code": "unset", "message": ""});
            }
            s
        })
        .collect();
    write_parts(&lines.iter().map(Value::to_string).collect::<Vec<_>>(), dir);
    spans
}

/// The figures of one folder: report generation against summary on the
/// same files, the page's size, and Chromium opening it against the small
/// page's `baseline` screenshot run.
fn measure(bin: &Path, dir: &Path, what: &str, baseline: f64) {
    let bytes: u64 = std::fs::read_dir(dir).unwrap().map(|f| f.unwrap().metadata().unwrap().len()).sum();
    let observra = || Command::cargo_bin("observra").unwrap();
    let summary = timed(observra().arg("summary").arg(dir).args(["--format", "json"]).stdout(Stdio::null()));
    let page = dir.with_extension("html");
    let generation = timed(observra().arg("report").arg(dir).arg("-o").arg(&page));
    let size = std::fs::metadata(&page).unwrap().len();
    let (ready, wall) = opening(bin, &page);
    let dom = open(bin, &page, "");
    assert!(text_of(&dom, "notice").contains("not embedded"), "the page says what it left out");
    println!(
        "report: {what}: {:.1} MB of JSONL in {} files",
        bytes as f64 / 1e6,
        std::fs::read_dir(dir).unwrap().count()
    );
    println!("report:   observra summary (baseline)  {summary:5.2} s");
    println!("report:   observra report              {generation:5.2} s ({:.2}x summary)", generation / summary);
    println!("report:   page                         {:5.1} MB", size as f64 / 1e6);
    println!(
        "report:   chromium: ready after {ready:.2} s; screenshot run {wall:.2} s ({:.2}x the small page's)",
        wall / baseline
    );
}

#[test]
#[ignore = "a measurement: cargo test --release -p observra-cli --test report_browser -- --ignored --nocapture"]
fn measure_a_100000_span_folder() {
    let bin = chromium_or_skip!();
    let small = example_jsonl("support-agent", &[]);
    let template = records(&small);
    let (small_ready, small_wall) = opening(&bin, &report(&small));
    println!(
        "report: the support-agent page (13 spans): ready after {small_ready:.2} s; screenshot run {small_wall:.2} s"
    );
    let runs = tmp("runs");
    let spans = synthetic_folder(&template, 100_000usize.div_ceil(template.len()), &runs);
    measure(&bin, &runs, &format!("{spans} spans, {} runs of the support agent", spans / template.len()), small_wall);
    let dom = open(&bin, &runs.with_extension("html"), "");
    assert_eq!(elements(&dom, r#"<tr class="run"#).len(), 100, "the first page of rows");
    let one = tmp("one-trace");
    let spans = one_trace_folder(&template, 100_000, &one);
    measure(&bin, &one, &format!("{spans} spans in one trace"), small_wall);
}
