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
