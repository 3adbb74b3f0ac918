//! The JSONL span exporter: one JSON object per finished span, one per line.
//!
//! This is the embedded default sink (standard output), the `jsonl` backend
//! (a file) and the target of [`crate::Builder::jsonl_writer`]. It runs only
//! on the export thread. The schema is documented in `docs/jsonl-schema.md`
//! and is what [`span_to_json`] produces.

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use serde_json::{Map, Value as Json, json};

use crate::base::clock::rfc3339;

/// Writes spans as JSON lines to any writer.
pub(crate) struct JsonlExporter {
    writer: Mutex<(Output, crate::export::audit::Sealer)>,
    resource: Json,
}

/// Set once standard output carries a protocol ([`keep_off_stdout`]).
static STDOUT_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Tells observra that this process's standard output carries a protocol
/// (an MCP server over stdio, a language server): from now on observra
/// never writes there. The `stdout` backend (the default when no other is
/// configured) writes its JSON lines to standard error instead, and says
/// so once there. The MCP integration's `TracedServer::stdio()` calls it;
/// call it yourself before serving any other protocol on stdout.
pub fn keep_off_stdout() {
    STDOUT_TAKEN.store(true, std::sync::atomic::Ordering::Release);
}

/// The `stdout` backend's stream: standard output, or standard error once
/// [`keep_off_stdout`] was called (chosen at a line's first write, so a
/// line is never split between the two).
#[derive(Default)]
pub(crate) struct Stdout {
    /// Standard error, for the writes until the next flush.
    to_stderr: Option<bool>,
    told: bool,
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let to_stderr = *self.to_stderr.get_or_insert_with(|| STDOUT_TAKEN.load(std::sync::atomic::Ordering::Acquire));
        if !to_stderr {
            return std::io::stdout().write(buf);
        }
        if !std::mem::replace(&mut self.told, true) {
            crate::diag::emit(
                crate::diag::DiagnosticLevel::Warn,
                "standard output carries a protocol here (keep_off_stdout, an MCP server over stdio): the stdout \
                 backend writes its span JSON lines to standard error instead",
            );
        }
        std::io::stderr().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.to_stderr.take() {
            Some(true) => std::io::stderr().flush(),
            _ => std::io::stdout().flush(),
        }
    }
}

/// Where the lines go: a stream, or a file that rotates by size.
pub(crate) enum Output {
    Stream(Box<dyn Write + Send>),
    File(RotatingFile),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Stream(w) => w.write(buf),
            Output::File(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Stream(w) => w.flush(),
            Output::File(f) => f.flush(),
        }
    }
}

/// A JSONL file that is rotated once it exceeds `max_bytes` (checked at
/// batch boundaries): `spans.jsonl` becomes `spans.jsonl.1`, `.2`, ... and
/// a new `spans.jsonl` is started. With a hash chain, a seal record closes
/// each rotated file and the chain continues in the next.
pub(crate) struct RotatingFile {
    path: std::path::PathBuf,
    file: std::fs::File,
    written: u64,
    max_bytes: Option<u64>,
    /// Sync each write to disk before it counts as written (`Jsonl::fsync`).
    sync: bool,
}

impl RotatingFile {
    /// Opens (or creates) the file for appending. A file whose last line was
    /// left unfinished (a crash while writing) gets a newline first, so the
    /// new records start on lines of their own.
    pub(crate) fn open(path: &std::path::Path, max_bytes: Option<u64>, sync: bool) -> std::io::Result<Self> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path)?;
        let mut written = file.metadata().map(|m| m.len()).unwrap_or(0);
        if written > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(written - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                written += 1;
            }
        }
        Ok(RotatingFile { path: path.to_path_buf(), file, written, max_bytes, sync })
    }

    /// Cuts the file back to `len` bytes: a batch that failed halfway leaves nothing behind.
    fn truncate_to(&mut self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)?;
        self.written = len;
        Ok(())
    }

    fn needs_rotation(&self) -> bool {
        self.max_bytes.is_some_and(|max| self.written >= max)
    }

    /// Renames the current file to the next free `<path>.<n>` and starts a new one.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        if self.sync {
            self.file.sync_data()?;
        }
        let mut n = 1u32;
        let rotated = loop {
            let mut candidate = self.path.as_os_str().to_owned();
            candidate.push(format!(".{n}"));
            let candidate = std::path::PathBuf::from(candidate);
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        std::fs::rename(&self.path, &rotated)?;
        *self = RotatingFile::open(&self.path.clone(), self.max_bytes, self.sync)?;
        if self.sync {
            crate::base::durable::sync_folder(&self.path)?;
        }
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl std::fmt::Debug for JsonlExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlExporter").finish_non_exhaustive()
    }
}

impl JsonlExporter {
    pub(crate) fn new(output: Output, sealer: crate::export::audit::Sealer) -> Self {
        JsonlExporter { writer: Mutex::new((output, sealer)), resource: Json::Object(Map::new()) }
    }

    /// Writes the recovery record a restarted writer owes (see
    /// [`crate::export::audit::Sealer::recovery_record`]), if any, and the anchor.
    pub(crate) fn write_recovery(&self) -> std::io::Result<()> {
        self.write_chain_record(crate::export::audit::Sealer::recovery_record)
    }

    /// Writes one record the chain itself makes (`make`: a seal or a
    /// recovery record; none when not chaining), then updates the anchor.
    fn write_chain_record(
        &self,
        make: impl FnOnce(&mut crate::export::audit::Sealer) -> Option<Vec<u8>>,
    ) -> std::io::Result<()> {
        let mut guard = self.writer.lock().map_err(|_| std::io::Error::other("JSONL writer lock poisoned"))?;
        let (w, sealer) = &mut *guard;
        let mark = sealer.mark();
        let Some(mut line) = make(sealer) else { return Ok(()) };
        line.push(b'\n');
        append(w, sealer, mark, &line).and_then(|()| sealer.write_head())
    }

    /// Seals and writes one batch. Nothing of a batch that fails counts:
    /// the chain goes back to where it was and a partly written file is cut
    /// back, so a failed write (disk full, EIO) never verifies as tampering.
    fn write_records(&self, records: impl Iterator<Item = Json>) -> OTelSdkResult {
        let mut guard =
            self.writer.lock().map_err(|_| OTelSdkError::InternalFailure("JSONL writer lock poisoned".into()))?;
        let (w, sealer) = &mut *guard;
        let mark = sealer.mark();
        let mut buf = Vec::with_capacity(4096);
        for record in records {
            if sealer.is_active() {
                match sealer.seal(record) {
                    Ok(line) => buf.extend_from_slice(&line),
                    Err(e) => {
                        sealer.restore(mark);
                        return Err(OTelSdkError::InternalFailure(format!("sealing a JSONL record: {e}")));
                    }
                }
            } else {
                // Serialising a serde_json::Value into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut buf, &record);
            }
            buf.push(b'\n');
        }
        append(w, sealer, mark, &buf).map_err(|e| OTelSdkError::InternalFailure(format!("writing JSONL: {e}")))?;
        // The batch is written: what follows cannot un-write it. A lagging
        // anchor is recovered from the file; a rotation is tried again next batch.
        if let Err(e) = sealer.write_head().and_then(|()| rotate_if_needed(w, sealer)) {
            crate::diag::emit(
                crate::diag::DiagnosticLevel::Warn,
                &format!("jsonl: a batch was written, then updating the head anchor or rotating the file failed: {e}"),
            );
        }
        Ok(())
    }
}

/// Appends `bytes` (lines sealed since `mark`) and makes them durable as
/// the file's settings ask. On any failure the file is cut back to where it
/// was and the chain goes back to `mark`: a failed write leaves a state
/// that verifies, and the next write does not land on a partial line.
fn append(
    w: &mut Output,
    sealer: &mut crate::export::audit::Sealer,
    mark: crate::export::audit::Mark,
    bytes: &[u8],
) -> std::io::Result<()> {
    let before = match w {
        Output::File(f) => Some(f.written),
        Output::Stream(_) => None,
    };
    let written = w.write_all(bytes).and_then(|()| w.flush()).and_then(|()| match w {
        Output::File(f) if f.sync => f.file.sync_data(),
        _ => Ok(()),
    });
    if written.is_err() {
        sealer.restore(mark);
        if let (Output::File(f), Some(len)) = (&mut *w, before) {
            let _ = f.truncate_to(len);
        }
    }
    written
}

/// Rotates a full file: a seal record closes its part of the hash chain,
/// the anchor is updated to that seal, and only then is the file renamed,
/// so a crash at any point leaves a chain that verifies and a writer that
/// continues it without reusing a sequence number.
fn rotate_if_needed(out: &mut Output, sealer: &mut crate::export::audit::Sealer) -> std::io::Result<()> {
    let Output::File(file) = out else { return Ok(()) };
    if !file.needs_rotation() {
        return Ok(());
    }
    let mark = sealer.mark();
    if let Some(mut line) = sealer.seal_record() {
        line.push(b'\n');
        append(out, sealer, mark, &line)?;
        sealer.write_head()?;
    }
    let Output::File(file) = out else { return Ok(()) };
    file.rotate()
}

impl SpanExporter for JsonlExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.write_records(batch.iter().map(|span| span_to_json(span, &self.resource)))
    }

    fn force_flush(&self) -> OTelSdkResult {
        match self.writer.lock() {
            Ok(mut w) => w.0.flush().map_err(|e| OTelSdkError::InternalFailure(e.to_string())),
            Err(_) => Err(OTelSdkError::InternalFailure("JSONL writer lock poisoned".into())),
        }
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        // Close the hash chain with a signed seal record.
        self.write_chain_record(crate::export::audit::Sealer::seal_record)
            .map_err(|e| OTelSdkError::InternalFailure(format!("writing the seal: {e}")))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource_to_json(resource);
    }
}

impl crate::export::batch::BackendExporter for JsonlExporter {}

/// Resource attributes as the JSON object every record carries.
pub(crate) fn resource_to_json(resource: &Resource) -> Json {
    let mut m = Map::new();
    for (k, v) in resource.iter() {
        m.insert(k.as_str().to_string(), value_to_json(v));
    }
    Json::Object(m)
}

/// Converts one span to the documented JSONL object.
pub(crate) fn span_to_json(span: &SpanData, resource: &Json) -> Json {
    let start = nanos(span.start_time);
    let end = nanos(span.end_time);
    let parent =
        if span.parent_span_id == SpanId::INVALID { Json::Null } else { Json::String(span.parent_span_id.to_string()) };
    let (code, message) = match &span.status {
        Status::Unset => ("unset", ""),
        Status::Ok => ("ok", ""),
        Status::Error { description } => ("error", description.as_ref()),
    };
    let events: Vec<Json> = span
        .events
        .iter()
        .map(|e| {
            json!({
                "name": e.name.as_ref(),
                "time_unix_nano": nanos(e.timestamp),
                "time": rfc3339(e.timestamp),
                "attributes": attrs_to_json(&e.attributes),
            })
        })
        .collect();
    let links: Vec<Json> = span
        .links
        .iter()
        .map(|l| {
            json!({
                "trace_id": l.span_context.trace_id().to_string(),
                "span_id": l.span_context.span_id().to_string(),
                "attributes": attrs_to_json(&l.attributes),
            })
        })
        .collect();
    json!({
        "trace_id": span.span_context.trace_id().to_string(),
        "span_id": span.span_context.span_id().to_string(),
        "parent_span_id": parent,
        "name": span.name.as_ref(),
        "kind": kind_name(&span.span_kind),
        "start_time": rfc3339(span.start_time),
        "end_time": rfc3339(span.end_time),
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "duration_ns": end.saturating_sub(start),
        "status": { "code": code, "message": message },
        "attributes": attrs_to_json(&span.attributes),
        "dropped_attributes_count": span.dropped_attributes_count,
        "events": events,
        "dropped_events_count": span.events.dropped_count,
        "links": links,
        "resource": resource,
        "scope": {
            "name": span.instrumentation_scope.name(),
            "version": span.instrumentation_scope.version(),
        },
    })
}

pub(crate) fn kind_name(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    }
}

fn attrs_to_json(attrs: &[KeyValue]) -> Json {
    let mut m = Map::with_capacity(attrs.len());
    for kv in attrs {
        m.insert(kv.key.as_str().to_string(), value_to_json(&kv.value));
    }
    Json::Object(m)
}

/// Typed values stay typed: integers and floats as JSON numbers, booleans as
/// booleans, arrays as arrays. Non-finite floats become strings ("NaN").
fn value_to_json(v: &Value) -> Json {
    fn float(f: f64) -> Json {
        serde_json::Number::from_f64(f).map(Json::Number).unwrap_or_else(|| Json::String(f.to_string()))
    }
    match v {
        Value::Bool(b) => Json::Bool(*b),
        Value::I64(i) => json!(i),
        Value::F64(f) => float(*f),
        Value::String(s) => Json::String(s.as_str().to_string()),
        Value::Array(Array::Bool(a)) => json!(a),
        Value::Array(Array::I64(a)) => json!(a),
        Value::Array(Array::F64(a)) => Json::Array(a.iter().map(|f| float(*f)).collect()),
        Value::Array(Array::String(a)) => Json::Array(a.iter().map(|s| Json::String(s.as_str().to_string())).collect()),
        other => Json::String(other.to_string()),
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_709_210_096, 5); // 2024-02-29T12:34:56
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.000000005Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799); // 2099-12-31T23:59:59
        assert_eq!(rfc3339(t), "2099-12-31T23:59:59.000000000Z");
    }
}
