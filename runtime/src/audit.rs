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
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Problems reading an encrypted or chained file back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line could not be decrypted or parsed.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key id written with each encrypted line.
pub fn key_id(key: &[u8; 32]) -> String {
    hex(&Sha256::digest(key)[..8])
}

fn mac_of(key: &[u8; 32], record: &Map<String, Value>) -> String {
    // serde_json maps are ordered by key, so the bytes are canonical.
    hmac_hex(key, &serde_json::to_vec(record).unwrap_or_default())
}

/// HMAC-SHA256 of `bytes` under `key`, lower-case hex.
pub(crate) fn hmac_hex(key: &[u8], bytes: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(key) else { return String::new() };
    mac.update(bytes);
    hex(&mac.finalize().into_bytes())
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Turns plaintext records into the lines written to disk.
pub(crate) struct Sealer {
    cipher: Option<(String, Aes256Gcm)>,
    chain: Option<Chain>,
}

struct Chain {
    key: [u8; 32],
    seq: u64,
    prev: String,
    /// The head anchor, for a file sink (a stream has none).
    head: Option<PathBuf>,
}

impl Sealer {
    pub(crate) fn new(encryption: Option<[u8; 32]>, audit: Option<[u8; 32]>, path: Option<&Path>) -> Self {
        let cipher = encryption.map(|k| (key_id(&k), Aes256Gcm::new(&k.into())));
        let chain = audit.map(|key| {
            let head = path.map(head_path);
            // Continue an existing chain: the anchor holds its last state.
            let (seq, prev) = head.as_deref().and_then(read_head).unwrap_or((0, GENESIS.to_string()));
            Chain { key, seq, prev, head }
        });
        Sealer { cipher, chain }
    }

    pub(crate) fn is_active(&self) -> bool {
        self.cipher.is_some() || self.chain.is_some()
    }

    /// One record (the span's JSON object) as the line to write.
    pub(crate) fn seal(&mut self, record: Value) -> Value {
        let mut out = match &self.cipher {
            Some((kid, cipher)) => {
                let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
                let plaintext = serde_json::to_vec(&record).unwrap_or_default();
                match cipher.encrypt(&nonce, plaintext.as_slice()) {
                    Ok(ct) => json!({"kid": kid, "nonce": B64.encode(nonce), "ct": B64.encode(ct)}),
                    Err(_) => json!({"kid": kid, "error": "encryption failed"}),
                }
            }
            None => record,
        };
        if let (Some(chain), Some(obj)) = (self.chain.as_mut(), out.as_object_mut()) {
            chain.seq += 1;
            obj.insert("seq".into(), json!(chain.seq));
            obj.insert("prev".into(), json!(chain.prev));
            let mac = mac_of(&chain.key, obj);
            obj.insert("hmac".into(), json!(mac));
            chain.prev = mac;
        }
        out
    }

    /// The seal record closing the chain (at shutdown), if chaining.
    pub(crate) fn seal_record(&mut self) -> Option<Value> {
        let chain = self.chain.as_mut()?;
        chain.seq += 1;
        let mut obj = Map::new();
        obj.insert("seal".into(), json!(true));
        obj.insert("seq".into(), json!(chain.seq));
        obj.insert("prev".into(), json!(chain.prev));
        obj.insert("time".into(), json!(crate::jsonl::rfc3339(std::time::SystemTime::now())));
        let mac = mac_of(&chain.key, &obj);
        obj.insert("hmac".into(), json!(mac));
        chain.prev = mac;
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

/// A time as RFC 3339 UTC with nanoseconds, as JSONL records write it.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    crate::jsonl::rfc3339(t)
}

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

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records checked (seals included).
    pub records: u64,
    /// The last sequence number found.
    pub last_seq: u64,
    /// Seal records found.
    pub seals: u64,
    /// The first problem: the sequence number where the chain breaks, and why.
    pub first_bad: Option<(u64, String)>,
}

impl VerifyReport {
    /// Whether the whole chain is intact.
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Verifies the hash chain of `paths` (in order) with the audit key,
/// against the head anchor beside the last file.
pub fn verify(paths: &[PathBuf], key: &[u8; 32]) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport { records: 0, last_seq: 0, seals: 0, first_bad: None };
    let mut prev = GENESIS.to_string();
    'files: for path in paths {
        for line in read_lines(path)? {
            if line.trim().is_empty() {
                continue;
            }
            let expected = report.last_seq + 1;
            let fail = |why: String| Some((expected, why));
            let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(&line) else {
                report.first_bad = fail("the record is not a JSON object (truncated or edited)".into());
                break 'files;
            };
            let Some(Value::String(mac)) = obj.remove("hmac") else {
                report.first_bad = fail("the record has no hmac".into());
                break 'files;
            };
            let seq = obj.get("seq").and_then(Value::as_u64);
            if seq != Some(expected) {
                report.first_bad = fail(format!(
                    "expected sequence {expected}, found {seq:?} (records missing, inserted or reordered)"
                ));
                break 'files;
            }
            if obj.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
                report.first_bad = fail(
                    "its prev does not match the previous record's hmac (a record was removed or replaced)".into(),
                );
                break 'files;
            }
            if mac_of(key, &obj) != mac {
                report.first_bad = fail("its hmac does not match its content (modified, or the key is wrong)".into());
                break 'files;
            }
            report.records += 1;
            report.last_seq = expected;
            report.seals += u64::from(obj.get("seal") == Some(&json!(true)));
            prev = mac;
        }
    }
    if report.first_bad.is_none() {
        if let Some(last) = paths.last() {
            match read_head(&head_path(last)) {
                Some((seq, mac)) if seq == report.last_seq && mac == prev => {}
                Some((seq, _)) if seq > report.last_seq => {
                    report.first_bad = Some((
                        report.last_seq + 1,
                        format!(
                            "the head anchor says the chain reaches {seq}, the files stop at {}: the tail was deleted",
                            report.last_seq
                        ),
                    ));
                }
                Some(_) => {
                    report.first_bad = Some((report.last_seq, "the head anchor does not match the last record".into()));
                }
                None => {
                    report.first_bad = Some((report.last_seq + 1, "the head anchor is missing".into()));
                }
            }
        }
    }
    Ok(report)
}
