//! Without the `audit` cargo feature: JSONL lines are written as they are
//! (no encryption, no hash chain). The configuration refuses the keys that
//! would ask for either, naming the feature.

use std::path::Path;

use serde_json::Value;

use crate::error::AuditError;

/// Writes records as they are.
pub(crate) struct Sealer;

/// Nothing to restore.
pub(crate) struct Mark;

impl Sealer {
    /// A sealer that seals nothing.
    pub(crate) fn new(
        _encryption: Option<[u8; 32]>,
        _audit: Option<[u8; 32]>,
        _path: Option<&Path>,
        _sync: bool,
    ) -> Result<Self, AuditError> {
        Ok(Sealer)
    }
    pub(crate) fn is_active(&self) -> bool {
        false
    }
    pub(crate) fn mark(&self) -> Mark {
        Mark
    }
    pub(crate) fn restore(&mut self, _mark: Mark) {}
    pub(crate) fn seal(&mut self, record: Value) -> Result<Vec<u8>, String> {
        serde_json::to_vec(&record).map_err(|e| e.to_string())
    }
    pub(crate) fn seal_record(&mut self) -> Option<Vec<u8>> {
        None
    }
    pub(crate) fn recovery_record(&mut self) -> Option<Vec<u8>> {
        None
    }
    pub(crate) fn write_head(&self) -> std::io::Result<()> {
        Ok(())
    }
}
