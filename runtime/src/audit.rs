//! Encrypted and tamper-evident JSONL: the writer side used by the JSONL
//! exporter, and [`decrypt`] / [`verify`] to read the files back.
//!
//! **Encryption at rest** (`Builder::jsonl_encryption_key` or
//! `OBSERVRA_JSONL_KEY`, 32 bytes as base64 or hex): every line becomes
//! `{"kid": .., "nonce": .., "ct": ..}`: AES-256-GCM with a random 96-bit
//! nonce, and `kid`, the first 8 bytes of the key's SHA-256 in hex, so keys
//! can rotate and [`decrypt`] picks the right one. A tampered line or a
//! wrong key is an error naming the line, never garbage.
//!
//! **Hash chain** (`Builder::jsonl_audit_key` or `OBSERVRA_AUDIT_KEY`):
//! every record gets `seq` (1, 2, ...), `prev` (the previous record's
//! `hmac`, 64 zeros for the first) and `hmac`, an HMAC-SHA256 under the
//! audit key of the record without its `hmac`. At shutdown a seal record
//! `{"seal": true, ...}` closes the chain, and after every write the head
//! anchor `<file>.head` holds the last `seq` and `hmac`. [`verify`] detects
//! modification, insertion, deletion in the middle, deletion of the tail,
//! reordering and truncation, and reports the first bad sequence number.
//! Appending is O(1): the writer keeps the chain state and never re-reads
//! the file. With both enabled, the chain covers the encrypted records, so
//! it can be verified without the encryption key.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::sign::{hex, hmac_hex};

pub use crate::error::AuditError;

/// Parses a 32-byte key given as base64 or hex.
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let t = text.trim();
    let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| e.to_string())?
    } else {
        B64.decode(t).map_err(|_| "not valid base64 or 64 hex digits".to_string())?
    };
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("the key is {} bytes; AES-256 and the audit chain need exactly 32", bytes.len()))
}

/// The key id written with each encrypted line.
pub fn key_id(key: &[u8; 32]) -> String {
    hex(&Sha256::digest(key)[..8])
}

fn mac_of(key: &[u8; 32], record: &Map<String, Value>) -> String {
    let mut bytes = Vec::with_capacity(512);
    canonical_map(record, &mut bytes);
    hmac_hex(key, &bytes)
}

/// A record's canonical bytes: compact JSON with every object's keys in
/// sorted order at every depth. Sorted explicitly: serde_json's maps keep
/// insertion order instead when any crate in the program turns on its
/// `preserve_order` feature (genai does), and the writer and the verifier
/// must agree on the bytes whatever the features of either program.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => canonical_map(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        leaf => {
            let _ = serde_json::to_writer(&mut *out, leaf);
        }
    }
}

fn canonical_map(map: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    out.push(b'{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, k);
        out.push(b':');
        canonical(&map[k], out);
    }
    out.push(b'}');
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Turns plaintext records into the lines written to disk.
pub(crate) struct Sealer {
    cipher: Option<(String, Aes256Gcm)>,
    chain: Option<Chain>,
    /// The record a restarted writer owes first: it attests the unfinished
    /// line a crash left at the end of the file.
    pending_recovery: Option<Map<String, Value>>,
}

struct Chain {
    key: [u8; 32],
    seq: u64,
    prev: String,
    /// The head anchor, for a file sink (a stream has none).
    head: Option<PathBuf>,
}

/// A chain position saved before a batch, restored when the batch is not written.
pub(crate) struct Mark(Option<(u64, String)>);

impl Sealer {
    /// A sealer for a stream, or for the file at `path`: then an existing
    /// chain is continued from where it really ends ([`recover`]), and an
    /// unreadable or corrupt anchor, or a last record that does not verify
    /// with `audit`, is an error rather than a silent restart at genesis.
    pub(crate) fn new(
        encryption: Option<[u8; 32]>,
        audit: Option<[u8; 32]>,
        path: Option<&Path>,
    ) -> Result<Self, AuditError> {
        let cipher = encryption.map(|k| (key_id(&k), Aes256Gcm::new(&k.into())));
        let mut pending_recovery = None;
        let chain = match audit {
            None => None,
            Some(key) => {
                let (seq, prev) = match path {
                    Some(p) => {
                        let r = recover(p, &key)?;
                        pending_recovery = r.fragment.map(|(bytes, sha)| {
                            let mut m = Map::new();
                            m.insert("recovery".into(), json!(true));
                            m.insert("fragment_bytes".into(), json!(bytes));
                            m.insert("fragment_sha256".into(), json!(sha));
                            m.insert("time".into(), json!(rfc3339(std::time::SystemTime::now())));
                            m
                        });
                        (r.seq, r.prev)
                    }
                    None => (0, GENESIS.to_string()),
                };
                Some(Chain { key, seq, prev, head: path.map(head_path) })
            }
        };
        Ok(Sealer { cipher, chain, pending_recovery })
    }

    pub(crate) fn is_active(&self) -> bool {
        self.cipher.is_some() || self.chain.is_some()
    }

    /// The chain position now, to [`Sealer::restore`] if the batch is not written.
    pub(crate) fn mark(&self) -> Mark {
        Mark(self.chain.as_ref().map(|c| (c.seq, c.prev.clone())))
    }

    /// Goes back to `mark`: the records sealed since were never written.
    pub(crate) fn restore(&mut self, mark: Mark) {
        if let (Some(c), Some((seq, prev))) = (self.chain.as_mut(), mark.0) {
            c.seq = seq;
            c.prev = prev;
        }
    }

    /// One record (the span's JSON object) as the line to write; an error
    /// (nothing chained) when it cannot be encrypted.
    pub(crate) fn seal(&mut self, record: Value) -> Result<Value, String> {
        let mut out = match &self.cipher {
            Some((kid, cipher)) => {
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                let plaintext = serde_json::to_vec(&record).map_err(|e| format!("encoding the record: {e}"))?;
                let ct = cipher.encrypt(&nonce, plaintext.as_slice()).map_err(|_| "encryption failed".to_string())?;
                json!({"kid": kid, "nonce": B64.encode(nonce), "ct": B64.encode(ct)})
            }
            None => record,
        };
        if let (Some(chain), Some(obj)) = (self.chain.as_mut(), out.as_object_mut()) {
            chain.link(obj);
        }
        Ok(out)
    }

    /// The seal record closing the chain (at shutdown), if chaining.
    pub(crate) fn seal_record(&mut self) -> Option<Value> {
        let chain = self.chain.as_mut()?;
        let mut obj = Map::new();
        obj.insert("seal".into(), json!(true));
        obj.insert("time".into(), json!(rfc3339(std::time::SystemTime::now())));
        chain.link(&mut obj);
        Some(Value::Object(obj))
    }

    /// The recovery record a restarted writer owes, chained, if any (once).
    pub(crate) fn recovery_record(&mut self) -> Option<Value> {
        let mut obj = self.pending_recovery.take()?;
        self.chain.as_mut()?.link(&mut obj);
        Some(Value::Object(obj))
    }

    /// Rewrites the head anchor after a write (atomically: temp file, rename).
    pub(crate) fn write_head(&self) -> std::io::Result<()> {
        let Some((chain, head)) = self.chain.as_ref().and_then(|c| c.head.as_ref().map(|h| (c, h))) else {
            return Ok(());
        };
        let tmp = head.with_extension("head.tmp");
        std::fs::write(&tmp, json!({"seq": chain.seq, "hmac": chain.prev}).to_string())?;
        std::fs::rename(&tmp, head)
    }
}

impl Chain {
    /// Gives `obj` the next `seq`, the `prev` link and its `hmac`.
    fn link(&mut self, obj: &mut Map<String, Value>) {
        self.seq += 1;
        obj.insert("seq".into(), json!(self.seq));
        obj.insert("prev".into(), json!(self.prev));
        let mac = mac_of(&self.key, obj);
        obj.insert("hmac".into(), json!(mac));
        self.prev = mac;
    }
}

/// Where a writer continues an existing chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// The last sequence number written.
    pub seq: u64,
    /// Its hmac.
    pub prev: String,
    /// An unfinished last line a crash left (its length and SHA-256), to attest.
    pub fragment: Option<(u64, String)>,
}

/// How much of a file's end is read to find its last record.
const TAIL_WINDOW: u64 = 16 << 20;

/// The last lines of `path` (at most [`TAIL_WINDOW`] of them, by bytes), if it exists.
fn tail_lines(path: &Path) -> Result<Vec<Vec<u8>>, AuditError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| AuditError::Io { path: path.into(), source };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let len = f.metadata().map_err(io)?.len();
    let from = len.saturating_sub(TAIL_WINDOW);
    f.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(io)?;
    let mut lines: Vec<Vec<u8>> = buf.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    if from > 0 && !lines.is_empty() {
        lines.remove(0); // starts mid-line
    }
    lines.retain(|l| !l.iter().all(u8::is_ascii_whitespace));
    Ok(lines)
}

/// A chained record: its `seq` and `hmac`, if its hmac verifies under `key`.
fn checked_record(line: &[u8], key: &[u8; 32]) -> Option<Result<(u64, String), u64>> {
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(line) else { return None };
    let Some(Value::String(mac)) = obj.remove("hmac") else { return None };
    let seq = obj.get("seq").and_then(Value::as_u64)?;
    Some(if mac_of(key, &obj) == mac { Ok((seq, mac)) } else { Err(seq) })
}

/// `spans.jsonl.3` → `spans.jsonl`, if the name ends in a rotation number.
fn rotation_base(path: &Path) -> Option<(PathBuf, u32)> {
    let name = path.file_name()?.to_str()?;
    let (stem, n) = name.rsplit_once('.')?;
    let n: u32 = n.parse().ok()?;
    (!stem.is_empty()).then(|| (path.with_file_name(stem), n))
}

/// The rotated parts of the chain whose current file is `path`, oldest first.
fn rotated_parts(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return Vec::new() };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut parts: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter_map(|p| rotation_base(&p).filter(|(b, _)| b.file_name() == Some(name)).map(|(_, n)| (n, p)))
                .collect()
        })
        .unwrap_or_default();
    parts.sort();
    parts.into_iter().map(|(_, p)| p).collect()
}

/// Where the chain of the file at `path` really ends, for a writer that
/// continues it: the head anchor, or the file's last record when the anchor
/// lags (a crash between writing a batch and updating the anchor) or is
/// missing; an unfinished last line (a crash while writing) is returned as
/// a fragment to attest. Errors: an anchor that exists but cannot be read
/// or parsed, and a last record that does not verify under `key`.
pub(crate) fn recover(path: &Path, key: &[u8; 32]) -> Result<Recovered, AuditError> {
    let head_file = head_path(path);
    let head = match std::fs::read_to_string(&head_file) {
        Ok(text) => {
            let v: Value = serde_json::from_str(&text).map_err(|e| AuditError::Line {
                path: head_file.clone(),
                line: 1,
                reason: format!("the head anchor is not valid JSON ({e}): restore it, or move the chain aside"),
            })?;
            match (v["seq"].as_u64(), v["hmac"].as_str()) {
                (Some(seq), Some(mac)) => Some((seq, mac.to_string())),
                _ => {
                    return Err(AuditError::Line {
                        path: head_file,
                        line: 1,
                        reason: "the head anchor has no seq and hmac: restore it, or move the chain aside".into(),
                    });
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(AuditError::Io { path: head_file, source }),
    };
    let mut lines = tail_lines(path)?;
    if lines.is_empty() && head.is_none() {
        // A fresh current file after rotation, anchor lost: the newest part holds the end.
        if let Some(part) = rotated_parts(path).pop() {
            lines = tail_lines(&part)?;
        }
    }
    let mut fragment = None;
    if let Some(last) = lines.last() {
        if serde_json::from_slice::<Value>(last).is_err() {
            use sha2::Digest;
            fragment = Some((last.len() as u64, hex(&Sha256::digest(last))));
            lines.pop();
        }
    }
    let last = match lines.last().map(|l| checked_record(l, key)) {
        Some(Some(Ok(r))) => Some(r),
        Some(Some(Err(seq))) => {
            return Err(AuditError::Line {
                path: path.into(),
                line: 0,
                reason: format!(
                    "the last record (sequence {seq}) does not verify with this audit key: it was written with \
                     another key, or edited; use the key it was written with, or move the file aside"
                ),
            });
        }
        // Not chained (a plain file): a chain starts here.
        Some(None) | None => None,
    };
    let (seq, prev) = match (head, last) {
        // The anchor lags: the batch was written, the anchor not yet updated.
        (Some(h), Some(l)) if l.0 > h.0 => l,
        // Otherwise the anchor is authoritative: a deleted or edited tail stays detectable.
        (Some(h), _) => h,
        (None, Some(l)) => l,
        (None, None) => (0, GENESIS.to_string()),
    };
    Ok(Recovered { seq, prev, fragment })
}

pub use crate::base::clock::rfc3339;

/// `spans.jsonl` → `spans.jsonl.head`.
pub fn head_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
}

fn read_head(head: &Path) -> Option<(u64, String)> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(head).ok()?).ok()?;
    Some((v["seq"].as_u64()?, v["hmac"].as_str()?.to_string()))
}

fn read_lines(path: &Path) -> Result<Vec<String>, AuditError> {
    let file = std::fs::File::open(path).map_err(|source| AuditError::Io { path: path.into(), source })?;
    std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|source| AuditError::Io { path: path.into(), source })
}

/// Decrypts an encrypted JSONL file with any of `keys`; returns the
/// plaintext records (chain fields removed). Seal records are skipped.
pub fn decrypt(path: &Path, keys: &[[u8; 32]]) -> Result<Vec<Value>, AuditError> {
    let ciphers: Vec<(String, Aes256Gcm)> = keys.iter().map(|k| (key_id(k), Aes256Gcm::new(&(*k).into()))).collect();
    let mut out = Vec::new();
    for (i, line) in read_lines(path)?.iter().enumerate() {
        let bad = |reason: String| AuditError::Line { path: path.into(), line: i + 1, reason };
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        if v["seal"] == json!(true) {
            continue;
        }
        let (Some(kid), Some(nonce), Some(ct)) = (v["kid"].as_str(), v["nonce"].as_str(), v["ct"].as_str()) else {
            return Err(bad("not an encrypted record (no kid, nonce and ct)".into()));
        };
        let Some((_, cipher)) = ciphers.iter().find(|(id, _)| id == kid) else {
            return Err(bad(format!("encrypted with key id {kid}, and no key given has that id")));
        };
        let nonce = B64.decode(nonce).ok().filter(|n| n.len() == 12).ok_or_else(|| bad("malformed nonce".into()))?;
        let ct = B64.decode(ct).map_err(|_| bad("malformed ciphertext".into()))?;
        let plain = cipher
            .decrypt(Nonce::from_slice(&nonce), ct.as_slice())
            .map_err(|_| bad("authentication failed: the line was modified or the key is wrong".into()))?;
        out.push(serde_json::from_slice(&plain).map_err(|e| bad(format!("decrypted record is not JSON: {e}")))?);
    }
    Ok(out)
}

/// The outcome of [`verify`] for one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records checked (seals and recovery records included).
    pub records: u64,
    /// The last sequence number found.
    pub last_seq: u64,
    /// Seal records found.
    pub seals: u64,
    /// The first problem: the sequence number where the chain breaks, and why.
    pub first_bad: Option<(u64, String)>,
    /// The file holding the first problem.
    pub first_bad_file: Option<PathBuf>,
    /// Whether the chain ends with a seal (its writer shut down cleanly).
    pub sealed: bool,
    /// Unfinished lines a crash left, each attested by the restarted writer's recovery record.
    pub recoveries: u64,
    /// Authentic records after the head anchor's: written just before a
    /// crash, before the anchor was updated.
    pub unanchored: u64,
    /// An unfinished last line: the writer was killed while writing it.
    pub unsealed_tail: Option<UnsealedTail>,
}

/// The unfinished end a crash left on a chain (see [`VerifyReport::unsealed_tail`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsealedTail {
    /// The file it is in.
    pub file: PathBuf,
    /// Its length.
    pub bytes: u64,
}

/// What [`verify`] concludes about a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every record verifies, up to the anchor or beyond it.
    Intact,
    /// Intact up to an unfinished last line a crash left: not tampering.
    UnsealedTail,
    /// A record was modified, inserted, deleted or reordered, or the tail was cut.
    Tampered,
}

impl Verdict {
    /// `intact`, `unsealed_tail` or `tampered`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Intact => "intact",
            Verdict::UnsealedTail => "unsealed_tail",
            Verdict::Tampered => "tampered",
        }
    }
}

impl VerifyReport {
    /// The conclusion.
    pub fn verdict(&self) -> Verdict {
        if self.first_bad.is_some() {
            Verdict::Tampered
        } else if self.unsealed_tail.is_some() {
            Verdict::UnsealedTail
        } else {
            Verdict::Intact
        }
    }

    /// Whether the whole chain is intact (no tampering, no unfinished tail).
    pub fn is_intact(&self) -> bool {
        self.verdict() == Verdict::Intact
    }

    /// One line for a person: the verdict, counts and, when broken, where.
    pub fn summary(&self) -> String {
        match (&self.first_bad, &self.unsealed_tail) {
            (Some((seq, why)), _) => {
                let file = self.first_bad_file.as_ref().map(|f| format!(" in {}", f.display())).unwrap_or_default();
                format!("TAMPERED at sequence {seq}{file}: {why}")
            }
            (None, Some(t)) => format!(
                "intact up to sequence {} ({} records), then an unsealed tail of {} bytes in {}: the writer was \
                 killed while writing (a crash, not tampering)",
                self.last_seq,
                self.records,
                t.bytes,
                t.file.display()
            ),
            (None, None) => {
                let mut s =
                    format!("intact: {} records, sequence 1..{}, {} seal(s)", self.records, self.last_seq, self.seals);
                if !self.sealed && self.records > 0 {
                    s.push_str("; not sealed (the writer did not shut down cleanly)");
                }
                if self.unanchored > 0 {
                    s.push_str(&format!(
                        "; {} record(s) after the head anchor (written just before a crash)",
                        self.unanchored
                    ));
                }
                if self.recoveries > 0 {
                    s.push_str(&format!("; {} crash recovery point(s)", self.recoveries));
                }
                s
            }
        }
    }
}

/// One hash chain among files: a file and its rotated parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFiles {
    /// The chain's current file (its head anchor is `<base>.head`).
    pub base: PathBuf,
    /// Its files in chain order: rotated parts oldest first, then the base.
    pub files: Vec<PathBuf>,
}

/// Expands directories to the JSONL files in them (`*.jsonl` and their
/// rotated parts `*.jsonl.N`); files are kept as given.
pub fn expand(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    let jsonl = |f: &Path| f.extension().is_some_and(|x| x == "jsonl");
                    f.is_file() && (jsonl(f) || rotation_base(f).is_some_and(|(b, _)| jsonl(&b)))
                })
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Groups files into chains: `spans.jsonl` and `spans.jsonl.1`, `.2`, ...
/// are one chain (rotated parts first, in rotation order, then the current
/// file); any other file is a chain of its own. Chains are ordered by base.
pub fn chains(files: &[PathBuf]) -> Vec<ChainFiles> {
    let mut by_base: std::collections::BTreeMap<PathBuf, Vec<(u32, PathBuf)>> = Default::default();
    for f in files {
        let (base, n) = match rotation_base(f) {
            Some((b, n)) if files.contains(&b) || b.extension().is_some_and(|x| x == "jsonl") => (b, n),
            _ => (f.clone(), u32::MAX),
        };
        let parts = by_base.entry(base).or_default();
        if !parts.iter().any(|(_, p)| p == f) {
            parts.push((n, f.clone()));
        }
    }
    by_base
        .into_iter()
        .map(|(base, mut parts)| {
            parts.sort();
            ChainFiles { base, files: parts.into_iter().map(|(_, p)| p).collect() }
        })
        .collect()
}

/// Verifies every chain among `paths` (files or directories), each on its own.
pub fn verify_all(paths: &[PathBuf], key: &[u8; 32]) -> Result<Vec<(ChainFiles, VerifyReport)>, AuditError> {
    let files =
        expand(paths).map_err(|source| AuditError::Io { path: paths.first().cloned().unwrap_or_default(), source })?;
    chains(&files)
        .into_iter()
        .map(|c| {
            let r = verify_chain(&c.files, &head_path(&c.base), key)?;
            Ok((c, r))
        })
        .collect()
}

fn read_raw_lines(path: &Path) -> Result<Vec<Vec<u8>>, AuditError> {
    let bytes = std::fs::read(path).map_err(|source| AuditError::Io { path: path.into(), source })?;
    Ok(bytes.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).map(<[u8]>::to_vec).collect())
}

/// Whether `next` is the recovery record attesting `fragment`.
fn attests(next: &[u8], fragment: &[u8]) -> bool {
    use sha2::Digest;
    let Ok(v) = serde_json::from_slice::<Value>(next) else { return false };
    v["recovery"] == json!(true)
        && v["fragment_bytes"].as_u64() == Some(fragment.len() as u64)
        && v["fragment_sha256"].as_str() == Some(hex(&Sha256::digest(fragment)).as_str())
}

/// Verifies the hash chain of `paths` (one chain, in order) with the audit
/// key, against the head anchor of the chain's current file. For a folder,
/// or files of several chains, use [`verify_all`].
pub fn verify(paths: &[PathBuf], key: &[u8; 32]) -> Result<VerifyReport, AuditError> {
    let base =
        paths.last().map(|p| rotation_base(p).map(|(b, _)| b).filter(|b| paths.contains(b)).unwrap_or(p.clone()));
    let head = base.as_deref().map(head_path).unwrap_or_default();
    verify_chain(paths, &head, key)
}

fn verify_chain(paths: &[PathBuf], head_file: &Path, key: &[u8; 32]) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        records: 0,
        last_seq: 0,
        seals: 0,
        first_bad: None,
        first_bad_file: None,
        sealed: false,
        recoveries: 0,
        unanchored: 0,
        unsealed_tail: None,
    };
    let head = read_head(head_file);
    let mut head_matched = false;
    let mut prev = GENESIS.to_string();
    'files: for (fi, path) in paths.iter().enumerate() {
        let lines = read_raw_lines(path)?;
        let mut i = 0;
        while i < lines.len() {
            let line = &lines[i];
            let expected = report.last_seq + 1;
            let mut fail = |why: String| {
                report.first_bad = Some((expected, why));
                report.first_bad_file = Some(path.clone());
            };
            let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(line) else {
                if lines.get(i + 1).is_some_and(|next| attests(next, line)) {
                    // A crash left this; the restarted writer attested it.
                    report.recoveries += 1;
                    i += 1;
                    continue;
                }
                if fi + 1 == paths.len() && i + 1 == lines.len() {
                    report.unsealed_tail = Some(UnsealedTail { file: path.clone(), bytes: line.len() as u64 });
                    break 'files;
                }
                fail("the record is not a JSON object (truncated or edited)".into());
                break 'files;
            };
            let Some(Value::String(mac)) = obj.remove("hmac") else {
                fail("the record has no hmac".into());
                break 'files;
            };
            let seq = obj.get("seq").and_then(Value::as_u64);
            if seq != Some(expected) {
                fail(format!("expected sequence {expected}, found {seq:?} (records missing, inserted or reordered)"));
                break 'files;
            }
            if obj.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
                fail("its prev does not match the previous record's hmac (a record was removed or replaced)".into());
                break 'files;
            }
            if mac_of(key, &obj) != mac {
                fail("its hmac does not match its content (modified, or the key is wrong)".into());
                break 'files;
            }
            if head.as_ref().is_some_and(|(s, m)| *s == expected && *m == mac) {
                head_matched = true;
            }
            report.records += 1;
            report.last_seq = expected;
            report.sealed = obj.get("seal") == Some(&json!(true));
            report.seals += u64::from(report.sealed);
            prev = mac;
            i += 1;
        }
    }
    if report.first_bad.is_none() && !paths.is_empty() {
        let last_file = paths.last().cloned();
        let mut fail = |seq: u64, why: String| {
            report.first_bad = Some((seq, why));
            report.first_bad_file = last_file.clone();
        };
        match head {
            None => fail(report.last_seq + 1, format!("the head anchor {} is missing", head_file.display())),
            Some((seq, _)) if seq > report.last_seq => fail(
                report.last_seq + 1,
                format!(
                    "the head anchor says the chain reaches {seq}, the files stop at {}: the tail was deleted",
                    report.last_seq
                ),
            ),
            Some((0, ref m)) if m == GENESIS => report.unanchored = report.last_seq,
            Some((seq, _)) if !head_matched => {
                fail(seq, "the head anchor does not match the record at its sequence".into())
            }
            Some((seq, _)) => report.unanchored = report.last_seq - seq,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod canonical_tests {
    use super::*;

    #[test]
    fn canonical_bytes_sort_keys_at_every_depth_whatever_the_map_order() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": true, "x": null}], "c": "s\"q"}});
        let mut out = Vec::new();
        canonical(&v, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":{"c":"s\"q","z":[1,{"x":null,"y":true}]},"b":1}"#);
    }
}
