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
//! `hmac`) and, as its last field, `hmac`: an HMAC-SHA256 under the audit
//! key of the exact bytes written before it (the line up to `,"hmac"`,
//! closed by `}`). [`verify`] checks those very bytes and never serialises
//! a parsed record again, so its verdict does not depend on the verifying
//! build's serde_json features (floats, key order). A chain has an
//! identity: its first record carries `chain`, 128 random bits, and its
//! first `prev` is derived from that id under the key, so no two chains
//! start alike. At shutdown (and at each rotation) a seal record
//! `{"seal": true, ...}` closes the chain, and after every write the head
//! anchor `<file>.head` holds the chain's id, the last `seq` and `hmac`,
//! and a MAC of its own, so nobody without the key can forge one.
//! [`verify`] detects modification, insertion, deletion in the middle,
//! deletion of the tail, reordering, truncation and a forged anchor, and
//! names the first bad sequence number and the kind of [`Breach`]. A trail
//! and its anchor rolled back together to an earlier authentic state can
//! only be told by a copy of a later head kept elsewhere
//! ([`verify_against`]). Appending is O(1): the writer keeps the chain
//! state and never re-reads the file. With both enabled, the chain covers
//! the encrypted records, so it can be verified without the encryption key.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::export::sign::{hex, hmac_hex};

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

/// `,"hmac":"`: what stands between a record's body and its MAC, which is
/// always the last field of a chained line.
const MAC_FIELD: &[u8] = b",\"hmac\":\"";
/// The bytes a chained line ends with after its body: `,"hmac":"<64 hex>"}`.
const MAC_TAIL_LEN: usize = MAC_FIELD.len() + 64 + 2;

/// Closes a record's body (a compact JSON object, exactly as it will be
/// written) with its MAC: the line is the body with `,"hmac":"<mac>"`
/// spliced in before its final `}`. The MAC covers those very bytes, so the
/// verifier recovers them from the line without parsing and serialising
/// anything again (a float written as `0.00019994999999999998` comes back
/// bit for bit whatever the verifying build's serde_json features).
fn close_line(key: &[u8; 32], mut body: Vec<u8>) -> (Vec<u8>, String) {
    let mac = hmac_hex(key, &body);
    body.pop(); // the closing brace
    body.reserve(MAC_TAIL_LEN);
    body.extend_from_slice(MAC_FIELD);
    body.extend_from_slice(mac.as_bytes());
    body.extend_from_slice(b"\"}");
    (body, mac)
}

/// A chained line split into the exact body bytes its MAC covers and the
/// MAC; `None` when the line does not end with one.
fn open_line(line: &[u8]) -> Option<(Vec<u8>, &str)> {
    let cut = line.len().checked_sub(MAC_TAIL_LEN)?;
    let (body, tail) = line.split_at(cut);
    let mac = tail.strip_prefix(MAC_FIELD)?.strip_suffix(b"\"}")?;
    if body.len() < 2 || body[0] != b'{' || !mac.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut exact = body.to_vec();
    exact.push(b'}');
    Some((exact, std::str::from_utf8(mac).ok()?))
}

/// The `prev` of a chain's first record: derived from the chain's random
/// id, so no two chains start alike and a record cannot be moved from one
/// chain's start to another's.
fn genesis(key: &[u8; 32], chain: &str) -> String {
    hmac_hex(key, format!("observra-audit-genesis\n{chain}").as_bytes())
}

/// A new chain's id: 128 random bits, hex.
fn new_chain_id() -> String {
    use aes_gcm::aead::rand_core::RngCore;
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    hex(&id)
}

/// Where a chain ends, as its head anchor (`<file>.head`) records it: the
/// chain's id, the last sequence number and that record's `hmac`, with a
/// MAC of its own under the audit key, so nobody without the key can write
/// one. Keep a copy somewhere the writer's host cannot change
/// (`observra verify --save-head`) to detect what the anchor alone cannot:
/// a trail and its anchor rolled back together ([`verify_against`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadAnchor {
    /// The chain's id (its first record's `chain`).
    pub chain: String,
    /// The last sequence number written.
    pub seq: u64,
    /// That record's `hmac`.
    pub hmac: String,
}

impl HeadAnchor {
    fn mac(&self, key: &[u8; 32]) -> String {
        hmac_hex(key, format!("observra-audit-head\n{}\n{}\n{}", self.chain, self.seq, self.hmac).as_bytes())
    }

    /// The anchor as written to a `.head` file: one JSON object with its MAC.
    pub fn to_json(&self, key: &[u8; 32]) -> String {
        json!({"chain": self.chain, "seq": self.seq, "hmac": self.hmac, "mac": self.mac(key)}).to_string()
    }

    /// Reads an anchor (a `.head` file's text) and checks its MAC under `key`.
    pub fn parse(text: &str, key: &[u8; 32]) -> Result<HeadAnchor, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON ({e})"))?;
        let (Some(chain), Some(seq), Some(hmac)) = (v["chain"].as_str(), v["seq"].as_u64(), v["hmac"].as_str()) else {
            return Err("no chain, seq and hmac (an anchor written by an older observra, or not an anchor)".into());
        };
        let anchor = HeadAnchor { chain: chain.into(), seq, hmac: hmac.into() };
        let mac = v["mac"].as_str().unwrap_or_default();
        let bytes = format!("observra-audit-head\n{}\n{}\n{}", anchor.chain, anchor.seq, anchor.hmac);
        if !crate::export::sign::hmac_matches(key, bytes.as_bytes(), mac) {
            return Err("its MAC does not verify with this audit key (forged, edited, or another key)".into());
        }
        Ok(anchor)
    }

    /// Reads and checks the anchor in the file at `path`; `Ok(None)` when there is none.
    pub fn read(path: &Path, key: &[u8; 32]) -> Result<Option<HeadAnchor>, AuditError> {
        match std::fs::read_to_string(path) {
            Ok(text) => HeadAnchor::parse(&text, key).map(Some).map_err(|reason| AuditError::Line {
                path: path.into(),
                line: 1,
                reason: format!("head anchor: {reason}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(AuditError::Io { path: path.into(), source }),
        }
    }
}

/// Turns plaintext records into the lines written to disk.
pub(crate) struct Sealer {
    cipher: Option<(String, Aes256Gcm)>,
    chain: Option<Chain>,
    /// The record a restarted writer owes first: it attests the unfinished
    /// line a crash left at the end of the file.
    pending_recovery: Option<Map<String, Value>>,
    /// Sync the head anchor to disk when it is rewritten.
    sync: bool,
}

struct Chain {
    key: [u8; 32],
    id: String,
    seq: u64,
    prev: String,
    /// The head anchor, for a file sink (a stream has none).
    head: Option<PathBuf>,
}

/// A chain position saved before a write, restored when the write fails.
pub(crate) struct Mark(Option<(u64, String)>);

impl Sealer {
    /// A sealer for a stream, or for the file at `path`: then an existing
    /// chain is continued from where it really ends ([`recover`]), and an
    /// unreadable, forged or corrupt anchor, or a last record that does not
    /// verify with `audit`, is an error rather than a silent restart.
    /// `sync`: the head anchor is synced to disk each time it is rewritten.
    pub(crate) fn new(
        encryption: Option<[u8; 32]>,
        audit: Option<[u8; 32]>,
        path: Option<&Path>,
        sync: bool,
    ) -> Result<Self, AuditError> {
        let cipher = encryption.map(|k| (key_id(&k), Aes256Gcm::new(&k.into())));
        let mut pending_recovery = None;
        let chain = match audit {
            None => None,
            Some(key) => {
                let r = match path {
                    Some(p) => recover(p, &key)?,
                    None => Recovered::fresh(&key),
                };
                pending_recovery = r.fragment.map(|(bytes, sha)| {
                    let mut m = Map::new();
                    m.insert("recovery".into(), json!(true));
                    m.insert("fragment_bytes".into(), json!(bytes));
                    m.insert("fragment_sha256".into(), json!(sha));
                    m.insert("time".into(), json!(rfc3339(std::time::SystemTime::now())));
                    m
                });
                Some(Chain { key, id: r.chain, seq: r.seq, prev: r.prev, head: path.map(head_path) })
            }
        };
        Ok(Sealer { cipher, chain, pending_recovery, sync })
    }

    pub(crate) fn is_active(&self) -> bool {
        self.cipher.is_some() || self.chain.is_some()
    }

    /// The chain position now, to [`Sealer::restore`] if the write fails.
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

    /// One record (the span's JSON object) as the line to write, without
    /// its newline; an error (nothing chained) when it cannot be encrypted.
    pub(crate) fn seal(&mut self, record: Value) -> Result<Vec<u8>, String> {
        let out = match &self.cipher {
            Some((kid, cipher)) => {
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                let plaintext = serde_json::to_vec(&record).map_err(|e| format!("encoding the record: {e}"))?;
                let ct = cipher.encrypt(&nonce, plaintext.as_slice()).map_err(|_| "encryption failed".to_string())?;
                json!({"kid": kid, "nonce": B64.encode(nonce), "ct": B64.encode(ct)})
            }
            None => record,
        };
        match (self.chain.as_mut(), out) {
            (Some(chain), Value::Object(obj)) => Ok(chain.link(obj)),
            (_, out) => serde_json::to_vec(&out).map_err(|e| format!("encoding the record: {e}")),
        }
    }

    /// The seal record closing the chain (at shutdown and rotation), if chaining.
    pub(crate) fn seal_record(&mut self) -> Option<Vec<u8>> {
        let chain = self.chain.as_mut()?;
        let mut obj = Map::new();
        obj.insert("seal".into(), json!(true));
        obj.insert("time".into(), json!(rfc3339(std::time::SystemTime::now())));
        Some(chain.link(obj))
    }

    /// The recovery record a restarted writer owes, chained, if any (once).
    pub(crate) fn recovery_record(&mut self) -> Option<Vec<u8>> {
        let chain = self.chain.as_mut()?;
        Some(chain.link(self.pending_recovery.take()?))
    }

    /// Rewrites the head anchor after a write (atomically: temp file, rename;
    /// synced when the sealer was made with `sync`).
    pub(crate) fn write_head(&self) -> std::io::Result<()> {
        let Some((chain, head)) = self.chain.as_ref().and_then(|c| c.head.as_ref().map(|h| (c, h))) else {
            return Ok(());
        };
        let anchor = HeadAnchor { chain: chain.id.clone(), seq: chain.seq, hmac: chain.prev.clone() };
        crate::base::durable::replace_file(head, &anchor.to_json(&chain.key), self.sync)
    }
}

impl Chain {
    /// `obj` as the next line of the chain: its `seq`, the `prev` link (and
    /// on the first record the chain's id), then its `hmac` over the exact
    /// bytes before it ([`close_line`]).
    fn link(&mut self, mut obj: Map<String, Value>) -> Vec<u8> {
        self.seq += 1;
        obj.remove("hmac");
        if self.seq == 1 {
            obj.insert("chain".into(), json!(self.id));
        }
        obj.insert("seq".into(), json!(self.seq));
        obj.insert("prev".into(), json!(self.prev));
        // Serialising a map of JSON values cannot fail.
        let body = serde_json::to_vec(&Value::Object(obj)).unwrap_or_else(|_| b"{}".to_vec());
        let (line, mac) = close_line(&self.key, body);
        self.prev = mac;
        line
    }
}

/// Where a writer continues an existing chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// The chain's id.
    pub chain: String,
    /// The last sequence number written.
    pub seq: u64,
    /// Its hmac (the chain's genesis when nothing was written).
    pub prev: String,
    /// An unfinished last line a crash left (its length and SHA-256), to attest.
    pub fragment: Option<(u64, String)>,
}

impl Recovered {
    /// A new chain with a new id.
    fn fresh(key: &[u8; 32]) -> Self {
        let chain = new_chain_id();
        Recovered { prev: genesis(key, &chain), chain, seq: 0, fragment: None }
    }
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

/// What the last line of a file says about the chain.
enum LastRecord {
    /// Not a chained record (a plain JSONL file): a chain may start after it.
    Plain,
    /// A chained record whose MAC verifies: its `seq` and `hmac`.
    Authentic(u64, String),
    /// A chained record that does not verify under this key, or one in
    /// another chain format: never continued silently.
    Foreign(String),
}

/// Reads a chained line: its `seq` and `hmac` if its MAC verifies under `key`.
fn checked_record(line: &[u8], key: &[u8; 32]) -> LastRecord {
    let Some((body, mac)) = open_line(line) else {
        let looks_chained = serde_json::from_slice::<Value>(line)
            .ok()
            .is_some_and(|v| v.get("seq").is_some() && v.get("hmac").is_some());
        return if looks_chained {
            LastRecord::Foreign(
                "the last record is chained in another format (written by an older observra): verify it with that \
                 version, then move the file aside"
                    .into(),
            )
        } else {
            LastRecord::Plain
        };
    };
    let seq = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("seq").and_then(Value::as_u64));
    match seq {
        Some(seq) if crate::export::sign::hmac_matches(key, &body, mac) => LastRecord::Authentic(seq, mac.to_string()),
        Some(seq) => LastRecord::Foreign(format!(
            "the last record (sequence {seq}) does not verify with this audit key: it was written with another \
             key, or edited; use the key it was written with, or move the file aside"
        )),
        None => LastRecord::Plain,
    }
}

/// The id of the chain whose oldest file is `first`: its first record's `chain`.
fn chain_id_of(first: &Path) -> Option<String> {
    use std::io::BufRead as _;
    let mut line = Vec::new();
    std::io::BufReader::new(std::fs::File::open(first).ok()?).read_until(b'\n', &mut line).ok()?;
    let (body, _) = open_line(line.strip_suffix(b"\n").unwrap_or(&line))?;
    serde_json::from_slice::<Value>(&body).ok()?.get("chain")?.as_str().map(str::to_string)
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
/// continues it: the head anchor, or the last record written when the
/// anchor lags (a crash between writing and updating the anchor, in the
/// current file or, right after a rotation, in the newest rotated part) or
/// is missing; an unfinished last line (a crash while writing) is returned
/// as a fragment to attest. Errors: an anchor that cannot be read or whose
/// MAC does not verify, and a last record that does not verify under `key`.
pub(crate) fn recover(path: &Path, key: &[u8; 32]) -> Result<Recovered, AuditError> {
    let head_file = head_path(path);
    let head = HeadAnchor::read(&head_file, key).map_err(|e| match e {
        AuditError::Line { path, line, reason } => {
            AuditError::Line { path, line, reason: format!("{reason}: restore it, or move the chain aside") }
        }
        other => other,
    })?;
    let parts = rotated_parts(path);
    let mut lines = tail_lines(path)?;
    let mut fragment = None;
    if let Some(last) = lines.last() {
        if serde_json::from_slice::<Value>(last).is_err() {
            use sha2::Digest;
            fragment = Some((last.len() as u64, hex(&Sha256::digest(last))));
            lines.pop();
        }
    }
    if lines.is_empty() {
        // A fresh current file after a rotation: the newest part holds the end.
        if let Some(part) = parts.last() {
            lines = tail_lines(part)?;
        }
    }
    let last = match lines.last().map(|l| checked_record(l, key)) {
        Some(LastRecord::Authentic(seq, mac)) => Some((seq, mac)),
        Some(LastRecord::Foreign(reason)) => return Err(AuditError::Line { path: path.into(), line: 0, reason }),
        Some(LastRecord::Plain) | None => None,
    };
    let chain = match (&head, &last) {
        (Some(h), _) => Some(h.chain.clone()),
        (None, Some(_)) => chain_id_of(parts.first().map(PathBuf::as_path).unwrap_or(path)),
        (None, None) => None,
    };
    let Some(chain) = chain else {
        if last.is_some() {
            return Err(AuditError::Line {
                path: path.into(),
                line: 1,
                reason: "the chain's first record (with its chain id) is missing and so is the head anchor: move \
                         the chain aside"
                    .into(),
            });
        }
        return Ok(Recovered { fragment, ..Recovered::fresh(key) });
    };
    let (seq, prev) = match (head, last) {
        // The anchor lags: the write reached the file, the anchor not yet updated.
        (Some(h), Some(l)) if l.0 > h.seq => l,
        // Otherwise the anchor is authoritative: a deleted or edited tail stays detectable.
        (Some(h), _) => (h.seq, h.hmac),
        (None, Some(l)) => l,
        (None, None) => (0, genesis(key, &chain)),
    };
    Ok(Recovered { chain, seq, prev, fragment })
}

pub use crate::base::clock::rfc3339;

/// `spans.jsonl` → `spans.jsonl.head`.
pub fn head_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
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
    /// What kind of tampering the first problem is.
    pub breach: Option<Breach>,
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
    /// The chain's id (its first record's `chain`).
    pub chain_id: Option<String>,
    /// The head anchor, authenticated (what `observra verify --save-head` keeps).
    pub head: Option<HeadAnchor>,
}

/// What kind of tampering [`verify`] found first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Breach {
    /// A record's content does not match its MAC.
    Modified,
    /// Records missing, inserted or reordered (sequence numbers or links broken).
    Reordered,
    /// A line that is not a record of this chain's format.
    Malformed,
    /// The trail ends before its head anchor: records were deleted at the tail.
    Cut,
    /// The trail ends before a head saved elsewhere: the trail and its anchor were rolled back together.
    RolledBack,
    /// The head anchor is missing.
    MissingAnchor,
    /// The head anchor's MAC does not verify: it was forged or edited.
    ForgedAnchor,
    /// The anchor (or a saved head) belongs to another chain.
    OtherChain,
}

impl Breach {
    /// A few words for a person.
    pub fn as_str(self) -> &'static str {
        match self {
            Breach::Modified => "modified",
            Breach::Reordered => "records missing, inserted or reordered",
            Breach::Malformed => "malformed record",
            Breach::Cut => "tail cut",
            Breach::RolledBack => "rolled back",
            Breach::MissingAnchor => "head anchor missing",
            Breach::ForgedAnchor => "head anchor forged",
            Breach::OtherChain => "another chain",
        }
    }
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
    /// A record was modified, inserted, deleted or reordered, the tail was
    /// cut, the anchor forged, or the trail rolled back (see [`VerifyReport::breach`]).
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
    fn new() -> Self {
        VerifyReport {
            records: 0,
            last_seq: 0,
            seals: 0,
            first_bad: None,
            breach: None,
            first_bad_file: None,
            sealed: false,
            recoveries: 0,
            unanchored: 0,
            unsealed_tail: None,
            chain_id: None,
            head: None,
        }
    }

    fn fail(&mut self, seq: u64, breach: Breach, why: String, file: Option<&Path>) {
        self.first_bad = Some((seq, why));
        self.breach = Some(breach);
        self.first_bad_file = file.map(Path::to_path_buf);
    }

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
                let kind = self.breach.map(|b| format!(" ({})", b.as_str())).unwrap_or_default();
                format!("TAMPERED{kind} at sequence {seq}{file}: {why}")
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
                if let Some(id) = &self.chain_id {
                    s.push_str(&format!(", chain {id}"));
                }
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
            let r = verify_chain(&c.files, &head_path(&c.base), key, None)?;
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
    verify_chain(paths, &chain_head_file(paths), key, None)
}

/// [`verify`], and also against a head saved elsewhere earlier
/// (`observra verify --save-head`): the trail must still reach it, with the
/// same record at its sequence. Only such a copy, kept where the writer's
/// host cannot change it, shows that a trail and its anchor were rolled
/// back together to an earlier authentic state ([`Breach::RolledBack`]).
pub fn verify_against(paths: &[PathBuf], key: &[u8; 32], saved: &HeadAnchor) -> Result<VerifyReport, AuditError> {
    verify_chain(paths, &chain_head_file(paths), key, Some(saved))
}

/// The head anchor file of the chain made of `paths`.
fn chain_head_file(paths: &[PathBuf]) -> PathBuf {
    let base =
        paths.last().map(|p| rotation_base(p).map(|(b, _)| b).filter(|b| paths.contains(b)).unwrap_or(p.clone()));
    base.as_deref().map(head_path).unwrap_or_default()
}

/// One pass over a chain's lines.
struct Walk<'a> {
    key: &'a [u8; 32],
    report: VerifyReport,
    /// The `prev` the next record must carry (known once the first record names its chain).
    prev: String,
    /// Sequence numbers whose `hmac` an anchor names, and the `hmac` found there.
    wanted: std::collections::BTreeMap<u64, Option<String>>,
}

impl Walk<'_> {
    /// Checks one line; false when the walk stops (tampering, or the unsealed end).
    fn step(&mut self, line: &[u8], next: Option<&Vec<u8>>, is_last: bool, path: &Path) -> bool {
        let expected = self.report.last_seq + 1;
        let Some((body, mac)) = open_line(line) else {
            if serde_json::from_slice::<Value>(line).is_ok() {
                let why = "the record does not end with its hmac (edited, or not a record of this chain's format)";
                self.report.fail(expected, Breach::Malformed, why.into(), Some(path));
            } else if next.is_some_and(|next| attests(next, line)) {
                // A crash left this; the restarted writer attested it.
                self.report.recoveries += 1;
                return true;
            } else if is_last {
                self.report.unsealed_tail = Some(UnsealedTail { file: path.into(), bytes: line.len() as u64 });
            } else {
                let why = "the record is not a JSON object (truncated or edited)";
                self.report.fail(expected, Breach::Malformed, why.into(), Some(path));
            }
            return false;
        };
        match self.check(&body, mac, expected) {
            Ok(sealed) => {
                if let Some(found) = self.wanted.get_mut(&expected) {
                    *found = Some(mac.to_string());
                }
                self.report.records += 1;
                self.report.last_seq = expected;
                self.report.sealed = sealed;
                self.report.seals += u64::from(sealed);
                self.prev = mac.to_string();
                true
            }
            Err((breach, why)) => {
                self.report.fail(expected, breach, why, Some(path));
                false
            }
        }
    }

    /// The record with these exact body bytes and MAC at sequence
    /// `expected`: whether it is a seal, or what is wrong with it.
    fn check(&mut self, body: &[u8], mac: &str, expected: u64) -> Result<bool, (Breach, String)> {
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
            return Err((Breach::Malformed, "the record is not a JSON object (edited)".into()));
        };
        let seq = obj.get("seq").and_then(Value::as_u64);
        if seq != Some(expected) {
            let why = format!("expected sequence {expected}, found {seq:?} (records missing, inserted or reordered)");
            return Err((Breach::Reordered, why));
        }
        if !crate::export::sign::hmac_matches(self.key, body, mac) {
            return Err((
                Breach::Modified,
                "its hmac does not match its content (modified, or the key is wrong)".into(),
            ));
        }
        if expected == 1 {
            let Some(id) = obj.get("chain").and_then(Value::as_str) else {
                return Err((Breach::Malformed, "the chain's first record has no chain id".into()));
            };
            self.prev = genesis(self.key, id);
            self.report.chain_id = Some(id.to_string());
        }
        if obj.get("prev").and_then(Value::as_str) != Some(self.prev.as_str()) {
            let why = "its prev does not match the previous record's hmac (a record was removed or replaced)";
            return Err((Breach::Reordered, why.into()));
        }
        Ok(obj.get("seal") == Some(&json!(true)))
    }

    /// Whether the record at `anchor.seq` is the one `anchor` names.
    fn matches(&self, anchor: &HeadAnchor) -> bool {
        if anchor.seq == 0 {
            return anchor.hmac == genesis(self.key, &anchor.chain);
        }
        self.wanted.get(&anchor.seq).is_some_and(|found| found.as_deref() == Some(anchor.hmac.as_str()))
    }

    /// Whether the trail is the chain `anchor` names (a trail with no record could be any).
    fn same_chain(&self, anchor: &HeadAnchor) -> bool {
        self.report.records == 0 || self.report.chain_id.as_deref() == Some(anchor.chain.as_str())
    }

    /// Checks the trail's end against its head anchor.
    fn check_head(&mut self, head: Result<Option<HeadAnchor>, String>, head_file: &Path, file: Option<&Path>) {
        let last = self.report.last_seq;
        let (breach, seq, why) = match head {
            Err(why) => (Breach::ForgedAnchor, last + 1, format!("the head anchor {}: {why}", head_file.display())),
            Ok(None) => {
                (Breach::MissingAnchor, last + 1, format!("the head anchor {} is missing", head_file.display()))
            }
            Ok(Some(h)) if !self.same_chain(&h) => {
                (Breach::OtherChain, last + 1, format!("the head anchor names another chain ({})", h.chain))
            }
            Ok(Some(h)) if h.seq > last => (
                Breach::Cut,
                last + 1,
                format!(
                    "the head anchor says the chain reaches {}, the files stop at {last}: the tail was deleted",
                    h.seq
                ),
            ),
            Ok(Some(h)) if !self.matches(&h) => {
                (Breach::Modified, h.seq, "the head anchor does not match the record at its sequence".into())
            }
            Ok(Some(h)) => {
                self.report.unanchored = last - h.seq;
                self.report.head = Some(h);
                return;
            }
        };
        self.report.fail(seq, breach, why, file);
    }

    /// Checks the trail against a head saved elsewhere earlier.
    fn check_saved(&mut self, saved: &HeadAnchor, file: Option<&Path>) {
        let last = self.report.last_seq;
        let (breach, seq, why) = if !self.same_chain(saved) || self.report.records == 0 && saved.seq > 0 {
            let found = self.report.chain_id.as_deref().unwrap_or("none");
            (
                Breach::OtherChain,
                last + 1,
                format!("the saved head names chain {}; this trail is chain {found}", saved.chain),
            )
        } else if saved.seq > last {
            let why = format!(
                "the saved head says the chain reached sequence {}; the trail and its anchor stop at {last}: they \
                 were rolled back together (or the tail was cut and an older anchor put back)",
                saved.seq
            );
            (Breach::RolledBack, last + 1, why)
        } else if !self.matches(saved) {
            let why = "the record at the saved head's sequence is not the one saved: the history was rewritten";
            (Breach::Modified, saved.seq, why.into())
        } else {
            return;
        };
        self.report.fail(seq, breach, why, file);
    }
}

fn verify_chain(
    paths: &[PathBuf],
    head_file: &Path,
    key: &[u8; 32],
    saved: Option<&HeadAnchor>,
) -> Result<VerifyReport, AuditError> {
    let head = match HeadAnchor::read(head_file, key) {
        Ok(h) => Ok(h),
        Err(AuditError::Line { reason, .. }) => Err(reason),
        Err(e) => return Err(e),
    };
    let wanted = head.iter().flatten().chain(saved).map(|a| (a.seq, None)).collect();
    let mut walk = Walk { key, report: VerifyReport::new(), prev: String::new(), wanted };
    'files: for (fi, path) in paths.iter().enumerate() {
        let lines = read_raw_lines(path)?;
        for (i, line) in lines.iter().enumerate() {
            let is_last = fi + 1 == paths.len() && i + 1 == lines.len();
            if !walk.step(line, lines.get(i + 1), is_last, path) {
                break 'files;
            }
        }
    }
    let last_file = paths.last().map(PathBuf::as_path);
    if walk.report.first_bad.is_none() && !paths.is_empty() {
        walk.check_head(head, head_file, last_file);
    }
    if let (None, Some(saved)) = (&walk.report.first_bad, saved) {
        walk.check_saved(saved, last_file);
    }
    Ok(walk.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [3; 32];

    /// Catches: a verifier that parses a record and serialises it again.
    /// These bytes are an honest writer's, with floats in forms serde_json
    /// does not write back the same (a non-shortest decimal, an exponent):
    /// they verify because the MAC covers the bytes, whatever parsing does.
    #[test]
    fn a_record_verifies_from_its_exact_bytes() {
        let dir = std::env::temp_dir().join(format!("observra-audit-unit-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("exact.jsonl");
        let chain = "00112233445566778899aabbccddeeff";
        let body = format!(
            r#"{{"chain":"{chain}","cost":0.1000000000000000055511151231257827,"big":1E3,"prev":"{}","seq":1}}"#,
            genesis(&KEY, chain)
        );
        let (line, mac) = close_line(&KEY, body.into_bytes());
        std::fs::write(&path, [line.as_slice(), b"\n"].concat()).unwrap();
        let anchor = HeadAnchor { chain: chain.into(), seq: 1, hmac: mac };
        std::fs::write(head_path(&path), anchor.to_json(&KEY)).unwrap();
        let r = verify(std::slice::from_ref(&path), &KEY).unwrap();
        assert!(r.is_intact(), "{}", r.summary());
        // One byte changed anywhere in the body is a modification.
        let text = std::fs::read_to_string(&path).unwrap().replace("1E3", "1E4");
        std::fs::write(&path, text).unwrap();
        let r = verify(std::slice::from_ref(&path), &KEY).unwrap();
        assert_eq!(r.breach, Some(Breach::Modified), "{}", r.summary());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_line_opens_into_the_bytes_its_mac_covers() {
        let (line, mac) = close_line(&KEY, br#"{"a":1}"#.to_vec());
        assert_eq!(line, format!(r#"{{"a":1,"hmac":"{mac}"}}"#).into_bytes());
        let (body, found) = open_line(&line).expect("a chained line");
        assert_eq!((body.as_slice(), found), (br#"{"a":1}"#.as_slice(), mac.as_str()));
        assert!(open_line(br#"{"a":1}"#).is_none());
        assert!(open_line(br#"{"a":1,"hmac":"zz"}"#).is_none());
    }
}
