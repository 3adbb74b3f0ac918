//! Encrypted and tamper-evident JSONL written by a real pipeline: decrypt
//! with the right key, refuse a wrong key or a modified line, and verify a
//! hash chain that detects modification, insertion, deletion in the middle,
//! deletion of the tail, reordering and truncation, naming the first bad
//! sequence number.

use std::path::{Path, PathBuf};

use observra::audit::{self, VerifyReport};
use observra::traced;
use observra_test_support::serial;

const AUDIT_KEY: [u8; 32] = [7; 32];
const ENC_KEY: [u8; 32] = [42; 32];

#[traced(attrs(secret_note = "kept private"))]
fn step(i: u32) -> u32 {
    i * 2
}

fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("audit-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `n` spans in one session into `path`.
fn session(path: &Path, n: u32, encrypt: bool) {
    let mut b = observra::init().jsonl_path(path).jsonl_audit_key(AUDIT_KEY).max_export_batch_size(3);
    if encrypt {
        b = b.jsonl_encryption_key(ENC_KEY);
    }
    let guard = b.install().expect("install");
    for i in 0..n {
        step(i);
    }
    drop(guard);
}

fn verify(path: &Path) -> VerifyReport {
    audit::verify(&[path.to_path_buf()], &AUDIT_KEY).expect("readable")
}

fn tampered(original: &Path, name: &str, edit: impl FnOnce(&mut Vec<String>)) -> PathBuf {
    let mut lines: Vec<String> = std::fs::read_to_string(original).unwrap().lines().map(String::from).collect();
    edit(&mut lines);
    let path = original.with_file_name(format!("{name}.jsonl"));
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    std::fs::copy(audit::head_path(original), audit::head_path(&path)).unwrap();
    path
}

#[test]
fn encrypted_lines_decrypt_only_with_the_right_key_and_unmodified() {
    let _s = serial();
    let path = dir().join("encrypted.jsonl");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(audit::head_path(&path));
    session(&path, 5, true);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("kept private") && !text.contains("\"step\""), "nothing readable at rest");
    let records = audit::decrypt(&path, &[[1; 32], ENC_KEY]).expect("decrypts with a key ring");
    assert_eq!(records.len(), 5);
    assert!(records.iter().all(|r| r["name"] == "step" && r["attributes"]["secret_note"] == "kept private"));
    assert!(verify(&path).is_intact(), "the chain covers the ciphertext, verifiable without the encryption key");

    let err = audit::decrypt(&path, &[[1; 32]]).unwrap_err().to_string();
    assert!(err.contains(":1:") && err.contains("no key given has that id"), "{err}");
    let flipped = tampered(&path, "flipped", |lines| {
        let mut v: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
        let ct = v["ct"].as_str().unwrap().to_string();
        let first = if ct.starts_with('A') { "B" } else { "A" };
        v["ct"] = serde_json::json!(format!("{first}{}", &ct[1..]));
        lines[2] = v.to_string();
    });
    let err = audit::decrypt(&flipped, &[ENC_KEY]).unwrap_err().to_string();
    assert!(err.contains(":3:") && err.contains("authentication failed"), "{err}");
}

#[test]
fn the_hash_chain_detects_every_kind_of_tampering() {
    let _s = serial();
    let path = dir().join("chained.jsonl");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(audit::head_path(&path));
    session(&path, 6, false);
    session(&path, 4, false); // a second session continues the same chain
    let report = verify(&path);
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.records, report.last_seq, report.seals), (12, 12, 2), "10 spans and a seal per session");

    let first_bad = |p: PathBuf| verify(&p).first_bad.expect("tampering detected");
    let (seq, why) = first_bad(tampered(&path, "modified", |l| l[3] = l[3].replacen("\"step\"", "\"stop\"", 1)));
    assert_eq!(seq, 4, "{why}");
    let (seq, why) = first_bad(tampered(&path, "inserted", |l| {
        let copy = l[2].clone();
        l.insert(5, copy);
    }));
    assert_eq!(seq, 6, "{why}");
    let (seq, why) = first_bad(tampered(&path, "deleted-middle", |l| {
        l.remove(4);
    }));
    assert_eq!(seq, 5, "{why}");
    let (seq, why) = first_bad(tampered(&path, "deleted-tail", |l| l.truncate(9)));
    assert_eq!(seq, 10, "{why}");
    assert!(why.contains("tail was deleted"), "{why}");
    let (seq, why) = first_bad(tampered(&path, "reordered", |l| l.swap(6, 7)));
    assert_eq!(seq, 7, "{why}");
    let (seq, why) = first_bad(tampered(&path, "truncated", |l| {
        let last = l.len() - 1;
        l[last].truncate(20);
    }));
    assert_eq!(seq, 12, "{why}");
    let wrong_key = audit::verify(std::slice::from_ref(&path), &[8; 32]).unwrap();
    assert_eq!(wrong_key.first_bad.map(|b| b.0), Some(1));
}

#[test]
fn bad_keys_are_typed_errors_that_do_not_echo_the_key() {
    let err = observra::init().env_from([("OBSERVRA_JSONL_KEY", "c2hvcnQ=")]).install().unwrap_err();
    assert_eq!(err.setting(), Some(&observra::Setting::Env("OBSERVRA_JSONL_KEY")));
    let text = err.to_string();
    assert!(text.contains("5 bytes") && !text.contains("c2hvcnQ="), "{text}");
    let err = observra::init().env_from([("OBSERVRA_AUDIT_KEY", "not a key!")]).install().unwrap_err();
    assert_eq!(err.setting(), Some(&observra::Setting::Env("OBSERVRA_AUDIT_KEY")));
    assert_eq!(audit::parse_key(&"ab".repeat(32)), Ok([0xab; 32]), "hex works too");
}

#[test]
fn files_rotate_by_size_and_the_chain_continues_across_them() {
    let _s = serial();
    let d = dir().join("rotation");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("spans.jsonl");
    let guard = observra::init()
        .jsonl_path(&path)
        .jsonl_audit_key(AUDIT_KEY)
        .max_export_batch_size(2)
        .jsonl_max_bytes(3000)
        .install()
        .expect("install");
    for i in 0..30 {
        step(i);
        if i % 2 == 1 {
            observra::flush().unwrap();
        }
    }
    drop(guard);
    // Rotated files in order, then the live one.
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let n = p.extension()?.to_str()?.parse::<u32>().ok()?;
            Some((n, p))
        })
        .collect();
    rotated.sort();
    assert!(rotated.len() >= 3, "rotated {} times", rotated.len());
    for (_, p) in &rotated {
        let last = std::fs::read_to_string(p).unwrap().lines().last().unwrap().to_string();
        assert!(last.contains("\"seal\":true"), "each rotated file ends with a seal: {}", p.display());
    }
    let mut files: Vec<PathBuf> = rotated.iter().map(|(_, p)| p.clone()).collect();
    files.push(path.clone());
    let report = audit::verify(&files, &AUDIT_KEY).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.seals, rotated.len() as u64 + 1, "a seal per rotation and one at shutdown");
    assert_eq!(report.records - report.seals, 30, "no span lost across rotations");
    // Losing a whole middle file breaks the chain.
    let mut missing = files.clone();
    missing.remove(1);
    assert!(!audit::verify(&missing, &AUDIT_KEY).unwrap().is_intact());
    let _ = std::fs::remove_dir_all(&d);
}

/// A fresh chain of `n` spans at `name` in its own folder; returns its path.
fn fresh_chain(name: &str, n: u32) -> PathBuf {
    let d = dir().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("spans.jsonl");
    session(&path, n, false);
    path
}

fn read_head(path: &Path) -> audit::HeadAnchor {
    audit::HeadAnchor::read(&audit::head_path(path), &AUDIT_KEY).expect("readable").expect("present")
}

/// Catches: a head anchor anyone could write (sequence and hmac copied from
/// a record, or sequence 0 and the all-zero genesis), so a trail cut to its
/// first records verified intact.
#[test]
fn a_forged_head_anchor_is_named_as_such() {
    let _s = serial();
    let path = fresh_chain("forged", 20); // 20 spans and a seal: 21 records
    assert_eq!(verify(&path).records, 21);
    let lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(String::from).collect();
    std::fs::write(&path, lines[..5].join("\n") + "\n").unwrap();
    let head = audit::head_path(&path);
    let zeros = "0".repeat(64);
    std::fs::write(&head, format!(r#"{{"seq":0,"hmac":"{zeros}"}}"#)).unwrap();
    let r = verify(&path);
    assert_eq!(r.breach, Some(audit::Breach::ForgedAnchor), "{}", r.summary());
    let fifth: serde_json::Value = serde_json::from_str(&lines[4]).unwrap();
    let copied = serde_json::json!({"chain": read_chain_id(&lines[0]), "seq": 5, "hmac": fifth["hmac"]});
    std::fs::write(&head, copied.to_string()).unwrap();
    let r = verify(&path);
    assert_eq!(r.breach, Some(audit::Breach::ForgedAnchor), "{}", r.summary());
    assert!(r.summary().contains("TAMPERED (head anchor forged)"), "{}", r.summary());
}

fn read_chain_id(first_line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(first_line).unwrap();
    v["chain"].as_str().expect("the first record names its chain").to_string()
}

/// Catches: every chain starting from one constant genesis, so one run's
/// trail verified under another's anchor; and a trail and its anchor rolled
/// back together verifying without a word.
#[test]
fn chains_have_identities_and_a_saved_head_detects_a_roll_back() {
    let _s = serial();
    let a = fresh_chain("identity-a", 4);
    let b = fresh_chain("identity-b", 4);
    let (ida, idb) = (verify(&a).chain_id.expect("id"), verify(&b).chain_id.expect("id"));
    assert_ne!(ida, idb, "two chains, two ids");
    let first = |p: &Path| std::fs::read_to_string(p).unwrap().lines().next().unwrap().to_string();
    let prev = |l: String| serde_json::from_str::<serde_json::Value>(&l).unwrap()["prev"].clone();
    assert_ne!(prev(first(&a)), prev(first(&b)), "and two geneses");
    // B's records under A's anchor: another chain.
    std::fs::copy(audit::head_path(&a), audit::head_path(&b)).unwrap();
    assert_eq!(verify(&b).breach, Some(audit::Breach::OtherChain), "{}", verify(&b).summary());

    // A copy of the trail and its anchor taken after 4 spans...
    let path = fresh_chain("rollback", 4);
    let copy = path.with_file_name("copy.jsonl");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::copy(audit::head_path(&path), audit::head_path(&copy)).unwrap();
    session(&path, 6, false); // ...then the chain goes on,
    let later = read_head(&path); // and a head is saved elsewhere.
    assert!(audit::verify_against(std::slice::from_ref(&path), &AUDIT_KEY, &later).unwrap().is_intact());
    // Restoring the old copy over the trail: authentic, so the trail alone cannot tell...
    std::fs::copy(&copy, &path).unwrap();
    std::fs::copy(audit::head_path(&copy), audit::head_path(&path)).unwrap();
    assert!(verify(&path).is_intact(), "{}", verify(&path).summary());
    // ...but the saved head does.
    let r = audit::verify_against(std::slice::from_ref(&path), &AUDIT_KEY, &later).unwrap();
    assert_eq!(r.breach, Some(audit::Breach::RolledBack), "{}", r.summary());
    assert!(r.summary().contains("rolled back"), "{}", r.summary());
    // The anchor as text round-trips through its own MAC.
    assert_eq!(audit::HeadAnchor::parse(&later.to_json(&AUDIT_KEY), &AUDIT_KEY), Ok(later.clone()));
    assert!(audit::HeadAnchor::parse(&later.to_json(&AUDIT_KEY), &[9; 32]).is_err(), "another key");
}

/// Catches: a crash between renaming a full file and updating the anchor
/// made the restarted writer trust the stale anchor and reuse sequence
/// numbers that the rotated part already holds.
#[test]
fn a_crash_right_after_a_rotation_resumes_without_reusing_a_sequence_number() {
    let _s = serial();
    let d = dir().join("rotation-crash");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("spans.jsonl");
    let head = audit::head_path(&path);
    session(&path, 5, false); // 5 spans and a seal
    let stale = std::fs::read_to_string(&head).unwrap();
    session(&path, 3, false); // the anchor now names this session's seal
    // The state such a crash leaves: the file renamed to its rotated part,
    // no current file yet, the anchor from before the last batch.
    std::fs::rename(&path, d.join("spans.jsonl.1")).unwrap();
    std::fs::write(&head, stale).unwrap();
    session(&path, 2, false);
    let files = vec![d.join("spans.jsonl.1"), path.clone()];
    let r = audit::verify(&files, &AUDIT_KEY).unwrap();
    assert_eq!(r.first_bad, None, "{}", r.summary());
    assert_eq!(r.records, 6 + 4 + 3, "every record once, in sequence");
}

/// An honest trail full of floats verifies. (The verifier once parsed each
/// record and serialised it again, so in a build without serde_json's
/// `float_roundtrip`, such as the `observra` command built on its own, about
/// one float in eight failed; this test binary's build has the feature, so
/// the unit test `a_record_verifies_from_its_exact_bytes` in `audit.rs` and
/// the suite's step that verifies with the command built alone catch that.)
#[test]
fn a_chain_of_floats_verifies_from_the_bytes_written() {
    let _s = serial();
    let path = dir().join("floats").join("spans.jsonl");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let guard = observra::init().jsonl_path(&path).jsonl_audit_key(AUDIT_KEY).install().expect("install");
    let mut x = 0.000_199_949_999_999_999_98_f64;
    for i in 0..200 {
        floaty(x, 0.107_974_800_000_000_01 * f64::from(i));
        x = x * 1.000_000_7 + 1e-9;
    }
    drop(guard);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("0.00019994999999999998"), "the float is written as it is");
    let r = verify(&path);
    assert!(r.is_intact(), "{}", r.summary());
    assert_eq!(r.records, 201);
}

#[traced]
fn floaty(cost: f64, other: f64) -> f64 {
    observra::current_span().set_attribute("observra.test.cost", &cost);
    observra::current_span().set_attribute("observra.test.other", &other);
    cost + other
}

/// Catches: a rotation whose seal could not be written (disk full) left the
/// chain advanced past the lost seal and its partial line in the file, so
/// the next batch landed on that partial line and an honest trail verified
/// as tampered. The child process below fills its "disk" (RLIMIT_FSIZE)
/// exactly when a batch brings the file to its rotation size, so the batch
/// fits and the seal after it does not; then the disk has room again.
#[test]
fn a_rotation_whose_seal_cannot_be_written_leaves_a_trail_that_verifies() {
    const CHILD: &str = "OBSERVRA_TEST_FULL_DISK_DIR";
    if let Ok(d) = std::env::var(CHILD) {
        return write_until_the_disk_is_full_at_rotation(Path::new(&d));
    }
    let _s = serial();
    let d = dir().join("seal-fails");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_rotation_whose_seal_cannot_be_written_leaves_a_trail_that_verifies", "--nocapture"])
        .env(CHILD, &d)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("rotating the file failed"), "the seal did fail once: {stderr}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x.to_str().is_some_and(|x| x.parse::<u32>().is_ok())))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the file rotated once the disk had room");
    files.push(d.join("spans.jsonl"));
    let r = audit::verify(&files, &AUDIT_KEY).unwrap();
    assert!(r.is_intact(), "{}", r.summary());
    assert_eq!(r.records - r.seals, 12, "every span written once");
}

/// The child: one span per batch; the file rotates past 2,000 bytes.
fn write_until_the_disk_is_full_at_rotation(d: &Path) {
    let path = d.join("spans.jsonl");
    let e = [("OTEL_BSP_SCHEDULE_DELAY".to_string(), "60000".to_string())];
    let guard = observra::init()
        .env_from(e)
        .jsonl_path(&path)
        .jsonl_audit_key(AUDIT_KEY)
        .max_export_batch_size(1)
        .jsonl_max_bytes(2000)
        .install()
        .expect("install");
    // SAFETY: ignoring SIGXFSZ makes a write past the limit fail with EFBIG instead of killing the process.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let set_limit = |bytes: libc::rlim_t| {
        let lim = libc::rlimit { rlim_cur: bytes, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: a plain setrlimit call with a valid struct.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) }, 0);
    };
    let (mut size, mut line, mut filled) = (0u64, 0u64, false);
    for i in 0..12 {
        step(i);
        if !filled && line > 0 && size + line >= 2000 {
            // This batch reaches the rotation size: room for it, not for the seal after it.
            set_limit(size + line + 16);
            filled = true;
            observra::flush().expect("the batch itself fits");
            set_limit(libc::RLIM_INFINITY);
        } else {
            observra::flush().expect("written");
        }
        let now = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        line = now.saturating_sub(size).max(line);
        size = now;
    }
    assert!(filled, "the rotation size was reached");
    drop(guard);
}
