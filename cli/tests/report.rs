//! `observra report` on files the support-agent example wrote: encrypted
//! and rotated into parts in a folder (read with the key, from `--key` or
//! `OBSERVRA_JSONL_KEY`), selected by `--trace` and `--since`, written to
//! `report.html` by default. What the page shows in a browser is
//! `report_browser.rs`'s part; here the page's embedded data is checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;
use observra_test_support::{example, run_ok};
use serde_json::Value;

const KEY: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn observra() -> Command {
    let mut c = Command::cargo_bin("observra").expect("the observra binary");
    c.env_remove("OBSERVRA_JSONL_KEY");
    c
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JSON data a report page embeds.
fn page_data(page: &Path) -> Value {
    let html = std::fs::read_to_string(page).unwrap();
    let start = html.find(r#"<script type="application/json" id="report-data">"#).expect("the data block");
    let body = &html[start..];
    let body = &body[body.find('>').unwrap() + 1..body.find("</script>").unwrap()];
    serde_json::from_str(body).expect("the data block is JSON")
}

/// Two runs of the support agent, encrypted, rotated into several parts.
fn encrypted_folder() -> PathBuf {
    let dir = fresh_dir("report-encrypted");
    for _ in 0..2 {
        run_ok(
            example("support-agent")
                .env("OBSERVRA_BACKEND", "jsonl")
                .env("OBSERVRA_JSONL_PATH", dir.join("spans.jsonl"))
                .env("OBSERVRA_JSONL_KEY", KEY)
                .env("OBSERVRA_JSONL_MAX_BYTES", "8000"),
        );
    }
    dir
}

#[test]
fn an_encrypted_rotated_folder_is_read_whole_with_the_key() {
    let dir = encrypted_folder();
    let parts = std::fs::read_dir(&dir).unwrap().count();
    assert!(parts >= 3, "the writer rotated the file into parts: {parts}");
    let page = dir.join("page.html");

    let out = observra().arg("report").arg(&dir).arg("-o").arg(&page).args(["--key", KEY]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).starts_with(&format!("wrote {}: 2 trace(s), 26 span(s)", page.display())), "{}", stderr(&out));
    let data = page_data(&page);
    assert_eq!(data["runs"].as_array().unwrap().len(), 2);
    assert_eq!(data["warnings"], serde_json::json!([]));
    assert!(data["runs"].as_array().unwrap().iter().all(|r| r["spans"] == 13 && r["detail"] == "full"));

    // The key from the environment, as `decrypt` takes it.
    let out = observra().arg("report").arg(&dir).arg("-o").arg(&page).env("OBSERVRA_JSONL_KEY", KEY).output().unwrap();
    assert!(stderr(&out).contains("2 trace(s), 26 span(s)"), "{}", stderr(&out));

    // Without the key, or with another: each file is named and skipped.
    let out = observra().arg("report").arg(&dir).arg("-o").arg(&page).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains(":1: the record is encrypted"), "{}", stderr(&out));
    let written =
        std::fs::read_dir(&dir).unwrap().filter(|f| f.as_ref().unwrap().metadata().unwrap().len() > 0).count();
    assert_eq!(stderr(&out).matches("observra: warning:").count(), written - 1, "one per file, the page aside");
    let other = "33".repeat(32);
    let out = observra().arg("report").arg(&dir).arg("-o").arg(&page).args(["--key", &other]).output().unwrap();
    assert!(stderr(&out).contains("no key given has that id"), "{}", stderr(&out));
    assert!(stderr(&out).contains("0 trace(s)"), "{}", stderr(&out));
}

#[test]
fn trace_and_since_select_whole_traces_and_the_page_goes_to_report_html() {
    let dir = fresh_dir("report-select");
    let file = dir.join("spans.jsonl");
    for _ in 0..2 {
        run_ok(example("support-agent").env("OBSERVRA_BACKEND", "jsonl").env("OBSERVRA_JSONL_PATH", &file));
    }
    let out = observra().current_dir(&dir).arg("report").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("wrote report.html: 2 trace(s)"), "{}", stderr(&out));
    let data = page_data(&dir.join("report.html"));
    let runs = data["runs"].as_array().unwrap();
    assert!(runs[0]["start_ms"].as_f64() > runs[1]["start_ms"].as_f64(), "newest first");

    let older = runs[1]["trace_id"].as_str().unwrap();
    let page = dir.join("one.html");
    let out = observra().arg("report").arg(&file).args(["--trace", older, "-o"]).arg(&page).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let data = page_data(&page);
    assert_eq!(data["runs"].as_array().unwrap().len(), 1);
    assert_eq!(data["runs"][0]["trace_id"], older);
    assert_eq!(data["totals"]["spans"], 13, "the totals are the selected trace's");
    assert_eq!(data["selection"]["trace"], older);

    let out = observra().arg("report").arg(&file).args(["--trace", &"0".repeat(32), "-o"]).arg(&page).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no such trace"), "{}", stderr(&out));

    let out = observra().arg("report").arg(&file).args(["--since", "2999-01-01T00:00:00Z", "-o"]).arg(&page).output();
    assert!(stderr(&out.unwrap()).contains("0 trace(s)"));
    let out = observra().arg("report").arg(&file).args(["--since", "last week"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--since"), "{}", stderr(&out));
}
