//! Reading observra's JSONL span files (the schema of docs/jsonl-schema.md).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// One span as written by observra's JSONL exporter.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: String,
    pub start_ns: u64,
    pub end_ns: u64,
    pub status_code: String,
    pub status_message: String,
    pub attributes: Map<String, Value>,
    pub events: Vec<Value>,
    pub links: Vec<Value>,
    pub resource: Map<String, Value>,
    pub scope_name: String,
    pub scope_version: Option<String>,
}

impl Span {
    /// Parses one JSONL line.
    pub fn parse(line: &str) -> Result<Span, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let n = |k: &str| v.get(k).and_then(Value::as_u64);
        let obj = |k: &str| v.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        let arr = |k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(Span {
            trace_id: s("trace_id").ok_or("no trace_id")?,
            span_id: s("span_id").ok_or("no span_id")?,
            parent_span_id: s("parent_span_id"),
            name: s("name").ok_or("no name")?,
            kind: s("kind").unwrap_or_else(|| "internal".into()),
            start_ns: n("start_time_unix_nano").ok_or("no start_time_unix_nano")?,
            end_ns: n("end_time_unix_nano").ok_or("no end_time_unix_nano")?,
            status_code: v["status"]["code"].as_str().unwrap_or("unset").to_string(),
            status_message: v["status"]["message"].as_str().unwrap_or("").to_string(),
            attributes: obj("attributes"),
            events: arr("events"),
            links: arr("links"),
            resource: obj("resource"),
            scope_name: v["scope"]["name"].as_str().unwrap_or("observra").to_string(),
            scope_version: v["scope"]["version"].as_str().map(str::to_string),
        })
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e6
    }
    /// A string attribute.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }
    /// A numeric attribute.
    pub fn num_attr(&self, key: &str) -> Option<f64> {
        self.attributes.get(key).and_then(Value::as_f64)
    }
    /// Whether the span ended in error.
    pub fn failed(&self) -> bool {
        self.status_code == "error"
    }
}

/// A problem reading input files, naming the file and line.
#[derive(Debug)]
pub struct ReadError(pub String);

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Expands directories to the `*.jsonl` files in them.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| ReadError(format!("{}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
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
        spans.push(Span::parse(&line).map_err(|e| ReadError(format!("{}:{}: {e}", path.display(), i + 1)))?);
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
