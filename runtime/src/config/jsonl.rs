//! JSONL settings: the [`Jsonl`] builder and its resolution against the
//! `OBSERVRA_JSONL_*` and `OBSERVRA_AUDIT_KEY` variables.

use std::io::Write;
use std::path::PathBuf;

use super::env::{EnvSource, parse_flag, pick};
use crate::error::{Error, Result, Setting};

/// Where the `jsonl` backend writes and how: set in code with
/// [`crate::Builder::jsonl`]; what is not set here comes from the
/// `OBSERVRA_JSONL_*` variables, then the defaults.
///
/// ```no_run
/// let _telemetry = observra::init()
///     .backend(observra::Backend::Jsonl)
///     .jsonl(observra::Jsonl::new().path("logs/spans.jsonl").max_bytes(64 << 20))
///     .install();
/// ```
#[derive(Default)]
pub struct Jsonl {
    path: Option<PathBuf>,
    writer: Option<Box<dyn Write + Send>>,
    encryption_key: Option<[u8; 32]>,
    audit_key: Option<[u8; 32]>,
    max_bytes: Option<u64>,
    fsync: Option<bool>,
}

impl std::fmt::Debug for Jsonl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jsonl")
            .field("path", &self.path)
            .field("writer", &self.writer.is_some())
            .field("encrypted", &self.encryption_key.is_some())
            .field("chained", &self.audit_key.is_some())
            .field("max_bytes", &self.max_bytes)
            .field("fsync", &self.fsync)
            .finish()
    }
}

/// The resolved JSONL settings.
pub(crate) struct JsonlSettings {
    pub path: Option<PathBuf>,
    pub writer: Option<Box<dyn Write + Send>>,
    pub encryption_key: Option<[u8; 32]>,
    pub audit_key: Option<[u8; 32]>,
    /// Rotate the file past this size (none when 0).
    pub max_bytes: Option<u64>,
    /// Sync every batch (and the head anchor) to disk before it counts as written.
    pub fsync: bool,
}

fn parse_bytes(v: &str) -> std::result::Result<u64, &'static str> {
    v.parse().map_err(|_| "expected a number of bytes")
}

impl Jsonl {
    /// Nothing set: every value from the environment or the defaults.
    pub fn new() -> Self {
        Jsonl::default()
    }
    /// The file the `jsonl` backend writes (`OBSERVRA_JSONL_PATH`).
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }
    /// Writes JSON lines to `writer` instead of a file or standard output.
    pub fn writer(mut self, writer: impl Write + Send + 'static) -> Self {
        self.writer = Some(Box::new(writer));
        self
    }
    /// Encrypts every line with AES-256-GCM under `key` (`OBSERVRA_JSONL_KEY`).
    pub fn encryption_key(mut self, key: [u8; 32]) -> Self {
        self.encryption_key = Some(key);
        self
    }
    /// Chains and seals every line with HMAC-SHA-256 under `key` (`OBSERVRA_AUDIT_KEY`).
    pub fn audit_key(mut self, key: [u8; 32]) -> Self {
        self.audit_key = Some(key);
        self
    }
    /// Rotates the file past this many bytes (`OBSERVRA_JSONL_MAX_BYTES`; 0: never).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Syncs every batch written to the file to disk (`fsync`), then the
    /// head anchor, before the batch counts as written
    /// (`OBSERVRA_JSONL_FSYNC`, `true`/`false`). The default is `true` for
    /// a hash-chained file (`audit_key`): without it, a power loss can
    /// leave an anchor that names records the disk never got, and an
    /// honest trail then verifies as cut; `false` otherwise. Costs one
    /// sync per batch (every 5 s or 512 spans by default), never on the
    /// instrumented program's threads.
    pub fn fsync(mut self, sync: bool) -> Self {
        self.fsync = Some(sync);
        self
    }

    /// Code, then the environment, then the defaults.
    pub(crate) fn resolve(self, env: &EnvSource) -> Result<JsonlSettings> {
        let key = |code: Option<[u8; 32]>, var: &'static str| -> Result<Option<[u8; 32]>> {
            #[cfg(not(feature = "audit"))]
            if code.is_some() || env.get(var).is_some() {
                let setting = if code.is_some() { Setting::Builder("jsonl key") } else { Setting::Env(var) };
                return Err(Error::invalid(
                    setting,
                    "<redacted key>",
                    "encrypted and hash-chained JSONL need observra's `audit` cargo feature",
                ));
            }
            match code {
                Some(k) => Ok(Some(k)),
                // A bad key is named, never shown.
                #[cfg(feature = "audit")]
                None => env
                    .get(var)
                    .map(|v| {
                        crate::export::audit::parse_key(&v)
                            .map_err(|reason| Error::invalid(Setting::Env(var), "<redacted key>", reason))
                    })
                    .transpose(),
                #[cfg(not(feature = "audit"))]
                None => Ok(None),
            }
        };
        let audit_key = key(self.audit_key, "OBSERVRA_AUDIT_KEY")?;
        Ok(JsonlSettings {
            path: self.path.or_else(|| env.get("OBSERVRA_JSONL_PATH").map(PathBuf::from)),
            writer: self.writer,
            encryption_key: key(self.encryption_key, "OBSERVRA_JSONL_KEY")?,
            fsync: pick(self.fsync, env, "OBSERVRA_JSONL_FSYNC", parse_flag)?.unwrap_or(audit_key.is_some()),
            audit_key,
            max_bytes: pick(self.max_bytes, env, "OBSERVRA_JSONL_MAX_BYTES", parse_bytes)?.filter(|b| *b > 0),
        })
    }
}
