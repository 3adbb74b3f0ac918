//! Reading observra's JSONL span files (the schema of docs/jsonl-schema.md).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One span as written by observra's JSONL exporter.
pub use observra::analytics::RecordedSpan as Span;

/// Parses one JSONL line: `Ok(None)` for a hash-chain seal record, an error
/// for an encrypted record or anything that is not a span.
pub fn parse_line(line: &str) -> Result<Option<Span>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("seal") == Some(&Value::Bool(true)) {
        return Ok(None);
    }
    if v.get("ct").is_some() && v.get("kid").is_some() {
        return Err("the record is encrypted: run `observra decrypt` first".into());
    }
    Span::from_json(&v).map(Some)
}

/// A problem reading input files, naming the file and line.
#[derive(Debug)]
pub struct ReadError(pub String);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Expands directories to the JSONL files in them (`*.jsonl` and their
/// rotated parts `*.jsonl.N`).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    observra::audit::expand(paths)
        .map_err(|e| ReadError(format!("{}: {e}", paths.first().map(|p| p.display().to_string()).unwrap_or_default())))
}

/// Reads every span of `path`; a malformed line is an error naming it.
pub fn read_file(path: &Path) -> Result<Vec<Span>, ReadError> {
    let file = std::fs::File::open(path).map_err(|e| ReadError(format!("{}: {e}", path.display())))?;
    let mut spans = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| ReadError(format!("{}:{}: {e}", path.display(), i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        if let Some(span) = parse_line(&line).map_err(|e| ReadError(format!("{}:{}: {e}", path.display(), i + 1)))? {
            spans.push(span);
        }
    }
    Ok(spans)
}

/// Reads every span of every file.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Span>, ReadError> {
    let mut all = Vec::new();
    for p in expand(paths)? {
        all.extend(read_file(&p)?);
    }
    Ok(all)
}
