//! Audit verdicts tried as a user would: real example processes write
//! hash-chained JSONL files (separate runs in one folder, a service
//! restarted onto its file, a service killed with SIGKILL, rotation), and
//! `observra verify` / `observra export --format audit` judge them. An
//! untouched trail is intact whatever happened to the process; tampering in
//! any one file is reported naming that file; an unfinished line a crash
//! left is an unsealed tail (exit 3), never tampering.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use observra_test_support::run_ok;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn example(bin: &str) -> Command {
    let mut c = observra_test_support::example(bin);
    c.env("OBSERVRA_AUDIT_KEY", KEY);
    c
}

fn observra() -> Command {
    let mut c = Command::cargo_bin("observra").expect("the observra binary");
    c.env_remove("OBSERVRA_AUDIT_KEY");
    c
}

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("chains-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn verify(paths: &[&Path]) -> (i32, String) {
    let out = observra().arg("verify").args(paths).args(["--key", KEY]).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn run_agent(path: &Path) {
    run_ok(example("support-agent").env("OBSERVRA_JSONL_PATH", path));
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

/// Starts the graceful-shutdown service writing `path`; returns it once it serves.
fn start_service(path: &Path) -> (std::process::Child, i32) {
    let mut child = example("graceful-shutdown")
        .env("OBSERVRA_JSONL_PATH", path)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo run");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let pid: i32 = loop {
        let line = lines.next().expect("the service starts").expect("stderr");
        if let Some(rest) = line.strip_prefix("serving as pid ") {
            break rest.split(';').next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, pid)
}

/// Waits until `path` holds at least `n` lines (the service is writing batches).
fn wait_for_lines(path: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0) < n {
        assert!(Instant::now() < deadline, "the service wrote fewer than {n} lines to {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[test]
fn separate_runs_in_one_folder_are_each_intact_and_tampering_names_its_file() {
    let logs = dir("runs");
    let runs: Vec<PathBuf> = (1..=4).map(|i| logs.join(format!("run-{i}.jsonl"))).collect();
    for r in &runs {
        run_agent(r);
    }
    // Each file alone, and the folder as four chains.
    for r in &runs {
        let (code, text) = verify(&[r]);
        assert_eq!(code, 0, "{text}");
    }
    let (code, text) = verify(&[&logs]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains(": intact: 14 records")).count(), 4, "{text}");

    // The audit package over the folder: intact, and it verifies.
    let package = logs.join("report.json");
    run_ok(
        observra()
            .args(["export", "--format", "audit", "--from"])
            .arg(&logs)
            .arg("-o")
            .arg(&package)
            .args(["--key", KEY]),
    );
    let p: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&package).unwrap()).unwrap();
    let v = &p["integrity"]["verification"];
    assert_eq!(v["status"], "intact", "{v:#}");
    assert_eq!(v["chains"], 4);
    assert_eq!(p["totals"]["spans"], 52, "the spans of all four runs");
    run_ok(observra().args(["verify", "--from-export"]).arg(&package).args(["--key", KEY]));

    // Tamper: modify a record in run-2, delete a middle record in run-3, cut run-4's tail.
    let mut l2 = lines(&runs[1]);
    let model_line = l2.iter().position(|l| l.contains("gpt-4o-mini")).expect("run-2 records a model call");
    l2[model_line] = l2[model_line].replacen("gpt-4o-mini", "gpt-4o-max", 1);
    write_lines(&runs[1], &l2);
    let mut l3 = lines(&runs[2]);
    l3.remove(5);
    write_lines(&runs[2], &l3);
    let mut l4 = lines(&runs[3]);
    l4.truncate(l4.len() - 3);
    write_lines(&runs[3], &l4);
    let (code, text) = verify(&[&logs]);
    assert_eq!(code, 1, "{text}");
    let line_of = |f: &Path| text.lines().find(|l| l.starts_with(&f.display().to_string())).unwrap_or("").to_string();
    assert!(line_of(&runs[0]).contains("intact"), "{text}");
    for (f, what) in
        [(&runs[1], "hmac does not match"), (&runs[2], "expected sequence 6"), (&runs[3], "tail was deleted")]
    {
        let l = line_of(f);
        assert!(
            l.contains("TAMPERED") && l.contains(&format!("in {}", f.display())) && l.contains(what),
            "{what}: {text}"
        );
    }
    // The package made before the tampering no longer verifies, naming the files.
    let out = observra().args(["verify", "--from-export"]).arg(&package).args(["--key", KEY]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for f in &runs[1..] {
        assert!(err.contains(&f.display().to_string()), "{err}");
    }
    let _ = std::fs::remove_dir_all(&logs);
}

#[test]
fn a_restarted_service_continues_its_chain() {
    let d = dir("restart");
    let path = d.join("service.jsonl");
    for round in 1..=2 {
        let (mut child, pid) = start_service(&path);
        wait_for_lines(&path, 10 * round);
        signal(pid, libc::SIGTERM);
        assert!(child.wait().unwrap().success());
    }
    let (code, text) = verify(&[&path]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("2 seal(s)") && !text.contains("not sealed"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_killed_service_leaves_an_intact_trail_and_a_restart_continues_it() {
    let d = dir("kill");
    let path = d.join("service.jsonl");
    for kill in 1..=3 {
        let (mut child, pid) = start_service(&path);
        wait_for_lines(&path, 8 * kill);
        signal(pid, libc::SIGKILL);
        let _ = child.wait();
        let (code, text) = verify(&[&path]);
        // A kill between batches: intact (maybe with records past the anchor).
        // A kill in the middle of a write: an unsealed tail, exit 3. Never tampering.
        assert!(code == 0 || code == 3, "kill {kill}: {text}");
        assert!(!text.contains("TAMPERED"), "kill {kill}: {text}");
    }
    // A clean run onto the same file seals the whole trail.
    let (mut child, pid) = start_service(&path);
    wait_for_lines(&path, 30);
    signal(pid, libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    let (code, text) = verify(&[&path]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("1 seal(s)"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_half_written_line_is_an_unsealed_tail_and_a_restart_attests_it() {
    let d = dir("fragment");
    let path = d.join("agent.jsonl");
    run_agent(&path);
    // What a kill in the middle of a write leaves: the start of a record, no newline.
    let text = std::fs::read_to_string(&path).unwrap();
    let last = text.lines().last().unwrap().to_string();
    let cut = &last[..last.len() / 2];
    std::fs::write(&path, format!("{text}{cut}")).unwrap();
    let (code, out) = verify(&[&path]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("unsealed tail") && out.contains("not tampering") && !out.contains("TAMPERED"), "{out}");
    // The writer restarts on it: the fragment is attested, the chain goes on, all intact.
    run_agent(&path);
    let (code, out) = verify(&[&path]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 crash recovery point"), "{out}");
    // The same fragment without its recovery record, in the middle: tampering.
    let mut l = lines(&path);
    let rec = l.iter().position(|x| x.contains("\"recovery\":true")).unwrap();
    l.remove(rec);
    write_lines(&path, &l);
    let (code, out) = verify(&[&path]);
    assert_eq!(code, 1, "{out}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn records_past_a_lagging_anchor_are_authentic_and_a_restart_continues_after_them() {
    let d = dir("anchor");
    let path = d.join("agent.jsonl");
    run_agent(&path);
    let head = observra::audit::head_path(&path);
    let early = std::fs::read_to_string(&head).unwrap();
    run_agent(&path);
    // A crash between writing the batch and renaming the anchor: the anchor is a batch behind.
    let later = std::fs::read_to_string(&head).unwrap();
    std::fs::write(&head, &early).unwrap();
    let (code, out) = verify(&[&path]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("14 record(s) after the head anchor"), "{out}");
    // Restarting continues from the file's last record, not from the stale anchor.
    run_agent(&path);
    let (code, out) = verify(&[&path]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: 42 records"), "{out}");
    // An anchor edited to point past the end, or at a record that is not there: tampering.
    std::fs::write(&head, later.replace("\"seq\":28", "\"seq\":99")).unwrap();
    assert_eq!(verify(&[&path]).0, 1);
    // A corrupt anchor stops the writer at install, naming the file: never a silent new chain.
    std::fs::write(&head, "{not json").unwrap();
    let out = example("support-agent").env("OBSERVRA_JSONL_PATH", &path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("audit chain") && err.contains(&head.display().to_string()), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn rotated_parts_verify_as_one_chain() {
    let d = dir("rotate");
    let path = d.join("agent.jsonl");
    for _ in 0..3 {
        run_ok(example("support-agent").env("OBSERVRA_JSONL_PATH", &path).env("OBSERVRA_JSONL_MAX_BYTES", "2000"));
    }
    let parts = std::fs::read_dir(&d)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".jsonl."))
        .count();
    assert!(parts >= 2, "rotation happened: {parts} parts");
    let (code, out) = verify(&[&d]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 1, "one chain: {out}");
    // Deleting a middle part is caught.
    std::fs::remove_file(d.join("agent.jsonl.1")).unwrap();
    let (code, out) = verify(&[&d]);
    assert_eq!(code, 1, "{out}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_missing_anchor_beside_a_chained_file_continues_from_its_last_record() {
    let d = dir("noanchor");
    let path = d.join("agent.jsonl");
    run_agent(&path);
    std::fs::remove_file(observra::audit::head_path(&path)).unwrap();
    // Not a silent restart at genesis: the chain goes on from record 14.
    run_agent(&path);
    let (code, out) = verify(&[&path]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: 28 records, sequence 1..28"), "{out}");
    let _ = std::fs::remove_dir_all(&d);
}
