//! Reading observra's JSONL span files (the schema of docs/jsonl-schema.md):
//! plaintext or encrypted (with the key), files or folders with their
//! rotated parts. What is wrong with the input is a [`Note`] naming the file
//! and line; a strict reader stops at the first line it cannot read, a
//! lenient one skips it and reads on.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One span as written by observra's JSONL exporter.
pub use observra::analytics::RecordedSpan as Span;

/// The top-level fields of a span record, and those a hash chain adds.
const KNOWN_FIELDS: &[&str] = &[
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_time",
    "end_time",
    "start_time_unix_nano",
    "end_time_unix_nano",
    "duration_ns",
    "status",
    "attributes",
    "dropped_attributes_count",
    "events",
    "dropped_events_count",
    "links",
    "resource",
    "scope",
    "chain",
    "seq",
    "prev",
    "hmac",
    "recovery",
];

/// Problems listed per file before the rest are only counted.
const LISTED_PER_FILE: usize = 20;

/// What is wrong with a line (or a whole file) of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not a span record (not JSON, not UTF-8, a required field missing, a
    /// truncated line): the line is skipped.
    NotASpan(String),
    /// An encrypted record with no key given: the file is skipped.
    NoKey,
    /// The file did not decrypt (a wrong key, a modified or truncated
    /// line): its records are skipped, as decryption reads a file whole.
    Undecryptable(String),
    /// The file does not begin with a JSON object: not a JSONL span file,
    /// skipped.
    NotJsonl,
    /// A field the schema does not have: the span is read without it
    /// (reported once per file and field).
    UnknownField(String),
    /// A span whose parent id is its own: read as a root.
    OwnParent,
    /// More problems in the file than are listed.
    More(usize),
}

impl Problem {
    /// Whether the problem lost data (a line or a file not read), as opposed
    /// to a span read with a remark.
    pub fn lost_data(&self) -> bool {
        matches!(self, Self::NotASpan(_) | Self::NoKey | Self::Undecryptable(_) | Self::NotJsonl | Self::More(_))
    }
    /// What became of the data: the line or file skipped, the field ignored.
    pub fn consequence(&self) -> &'static str {
        match self {
            Self::NotASpan(_) => "line skipped",
            Self::NoKey | Self::NotJsonl => "file skipped",
            Self::Undecryptable(_) => "the file's records skipped (a file is decrypted whole)",
            Self::UnknownField(_) => "field ignored",
            Self::OwnParent => "shown as a root",
            Self::More(_) => "skipped or read as above",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotASpan(why) | Self::Undecryptable(why) => f.write_str(why),
            Self::NoKey => f.write_str(
                "the record is encrypted: run `observra decrypt` first, or give `observra report` its key (--key or \
                 OBSERVRA_JSONL_KEY)",
            ),
            Self::NotJsonl => f.write_str("not a JSONL span file (it does not begin with a JSON object)"),
            Self::UnknownField(name) => write!(f, "unknown field {name:?} (reported once per file)"),
            Self::OwnParent => f.write_str("the span names itself as its parent"),
            Self::More(n) => write!(f, "{n} more problem(s) in this file, not listed"),
        }
    }
}

/// A problem at a place in the input: a file, and the 1-based line when it
/// concerns one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The file.
    pub file: PathBuf,
    /// The line, 1-based; `None` for the whole file.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: Problem,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.problem),
            None => write!(f, "{}: {}", self.file.display(), self.problem),
        }
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

/// What a reader does with a line it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stop: the first lost line is the error.
    Strict,
    /// Note it and read on.
    Lenient,
}

/// Spans read, and the notes on what was wrong with the input.
#[derive(Debug, Default)]
pub struct Input {
    /// Every span read, file by file, in file order.
    pub spans: Vec<Span>,
    /// What was skipped or read with a remark, in input order.
    pub notes: Vec<Note>,
}

/// A time range of `--since` and `--until`, ns since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    /// At or after this.
    pub since: Option<u64>,
    /// Before this.
    pub until: Option<u64>,
}

impl Period {
    /// Whether `ns` falls in the period.
    pub fn contains(&self, ns: u64) -> bool {
        self.since.is_none_or(|t| ns >= t) && self.until.is_none_or(|t| ns < t)
    }
}

/// What one record is.
enum Record {
    Span(Box<Span>),
    Seal,
    Encrypted,
}

/// Parses one JSONL line: `Ok(None)` for a hash-chain seal record, an error
/// for an encrypted record or anything that is not a span.
pub fn parse_line(line: &str) -> Result<Option<Span>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    match record(&v)? {
        Record::Span(s) => Ok(Some(*s)),
        Record::Seal => Ok(None),
        Record::Encrypted => Err(Problem::NoKey.to_string()),
    }
}

fn record(v: &Value) -> Result<Record, String> {
    if v.get("seal") == Some(&Value::Bool(true)) {
        return Ok(Record::Seal);
    }
    if v.get("ct").is_some() && v.get("kid").is_some() {
        return Ok(Record::Encrypted);
    }
    Span::from_json(v).map(|s| Record::Span(Box::new(s)))
}

/// Expands directories to the JSONL files in them (`*.jsonl` and their
/// rotated parts `*.jsonl.N`).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    observra::audit::expand(paths)
        .map_err(|e| ReadError(format!("{}: {e}", paths.first().map(|p| p.display().to_string()).unwrap_or_default())))
}

/// Reads every span of `path`; a malformed line is an error naming it.
pub fn read_file(path: &Path) -> Result<Vec<Span>, ReadError> {
    let mut input = Input::default();
    FileReader::new(path, &[], Mode::Strict, &mut input).read()?;
    Ok(input.spans)
}

/// Reads every span of every file; a malformed line is an error naming it.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Span>, ReadError> {
    Ok(read_input(paths, &[], Mode::Strict)?.spans)
}

/// Reads every span of every file (directories expanded), decrypting
/// encrypted files with any of `keys`. In [`Mode::Lenient`] only a file that
/// cannot be opened is an error; what is wrong inside files is noted.
pub fn read_input(paths: &[PathBuf], keys: &[[u8; 32]], mode: Mode) -> Result<Input, ReadError> {
    let mut input = Input::default();
    for p in expand(paths)? {
        FileReader::new(&p, keys, mode, &mut input).read()?;
    }
    Ok(input)
}

/// Reads one file into an [`Input`].
struct FileReader<'a> {
    path: &'a Path,
    keys: &'a [[u8; 32]],
    mode: Mode,
    input: &'a mut Input,
    /// Problems met in this file, listed or not.
    problems: usize,
    unknown_fields: HashSet<String>,
}

impl<'a> FileReader<'a> {
    fn new(path: &'a Path, keys: &'a [[u8; 32]], mode: Mode, input: &'a mut Input) -> Self {
        FileReader { path, keys, mode, input, problems: 0, unknown_fields: HashSet::new() }
    }

    fn io_error(&self, e: impl std::fmt::Display) -> ReadError {
        ReadError(format!("{}: {e}", self.path.display()))
    }

    /// Notes a problem; in strict mode a lost line is the error.
    fn note(&mut self, line: Option<usize>, problem: Problem) -> Result<(), ReadError> {
        let note = Note { file: self.path.to_path_buf(), line, problem };
        if self.mode == Mode::Strict {
            return if note.problem.lost_data() { Err(ReadError(note.to_string())) } else { Ok(()) };
        }
        self.problems += 1;
        if self.problems <= LISTED_PER_FILE {
            self.input.notes.push(note);
        }
        Ok(())
    }

    fn read(mut self) -> Result<(), ReadError> {
        let file = std::fs::File::open(self.path).map_err(|e| self.io_error(e))?;
        let mut reader = std::io::BufReader::new(file);
        let mut bytes = Vec::new();
        let (mut n, mut first) = (0, true);
        loop {
            bytes.clear();
            if reader.read_until(b'\n', &mut bytes).map_err(|e| self.io_error(e))? == 0 {
                break;
            }
            n += 1;
            let Ok(line) = std::str::from_utf8(&bytes) else {
                if first {
                    return self.not_jsonl();
                }
                self.note(Some(n), Problem::NotASpan("not UTF-8 text".into()))?;
                continue;
            };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if std::mem::take(&mut first) && !line.starts_with('{') {
                return self.not_jsonl();
            }
            if !self.line(n, line)? {
                return self.decrypt(n);
            }
        }
        self.finish();
        Ok(())
    }

    /// Reads one line; `false` when it is encrypted (the file is then
    /// decrypted whole).
    fn line(&mut self, n: usize, line: &str) -> Result<bool, ReadError> {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => match record(&v) {
                Ok(Record::Encrypted) => Ok(false),
                Ok(r) => self.keep(n, &v, r).map(|()| true),
                Err(why) => self.note(Some(n), Problem::NotASpan(why)).map(|()| true),
            },
            Err(e) => self.note(Some(n), Problem::NotASpan(format!("not JSON: {e}"))).map(|()| true),
        }
    }

    /// Keeps a span record, noting its unknown fields and a parent that is itself.
    fn keep(&mut self, n: usize, v: &Value, record: Record) -> Result<(), ReadError> {
        let Record::Span(span) = record else { return Ok(()) };
        for field in v.as_object().into_iter().flat_map(|o| o.keys()) {
            if !KNOWN_FIELDS.contains(&field.as_str()) && self.unknown_fields.insert(field.clone()) {
                self.note(Some(n), Problem::UnknownField(field.clone()))?;
            }
        }
        if span.parent_span_id.as_deref() == Some(span.span_id.as_str()) {
            self.note(Some(n), Problem::OwnParent)?;
        }
        self.input.spans.push(*span);
        Ok(())
    }

    fn not_jsonl(mut self) -> Result<(), ReadError> {
        self.note(None, Problem::NotJsonl)
    }

    /// An encrypted file, first met at line `n`: decrypted whole with the
    /// keys given (`observra::audit::decrypt`), its records read as spans.
    fn decrypt(mut self, n: usize) -> Result<(), ReadError> {
        if self.keys.is_empty() {
            return self.note(Some(n), Problem::NoKey);
        }
        match observra::audit::decrypt(self.path, self.keys) {
            Ok(records) => {
                let lines = record_lines(self.path).map_err(|e| self.io_error(e))?;
                for (i, v) in records.iter().enumerate() {
                    let line = lines.get(i).copied().unwrap_or(0);
                    match record(v) {
                        Ok(r) => self.keep(line, v, r)?,
                        Err(why) => self.note(Some(line), Problem::NotASpan(why))?,
                    }
                }
            }
            Err(observra::audit::AuditError::Line { line, reason, .. }) => {
                self.note(Some(line), Problem::Undecryptable(reason))?;
            }
            Err(e) => return Err(ReadError(e.to_string())),
        }
        self.finish();
        Ok(())
    }

    fn finish(self) {
        if self.problems > LISTED_PER_FILE {
            let more = Problem::More(self.problems - LISTED_PER_FILE);
            self.input.notes.push(Note { file: self.path.to_path_buf(), line: None, problem: more });
        }
    }
}

/// The 1-based line numbers of an encrypted file's records, in the order
/// `observra::audit::decrypt` returns them (blank lines and seals left out).
fn record_lines(path: &Path) -> std::io::Result<Vec<usize>> {
    let file = std::fs::File::open(path)?;
    let mut lines = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        let seal = || serde_json::from_str::<Value>(&line).is_ok_and(|v| v.get("seal") == Some(&Value::Bool(true)));
        if !line.trim().is_empty() && !seal() {
            lines.push(i + 1);
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: &str = r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","name":"s","start_time_unix_nano":1,"end_time_unix_nano":2}"#;

    fn file(name: &str, text: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("observra-spans-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn problems(input: &Input) -> Vec<(Option<usize>, Problem)> {
        input.notes.iter().map(|n| (n.line, n.problem.clone())).collect()
    }

    #[test]
    fn a_lenient_read_skips_bad_lines_and_names_them() {
        let own = SPAN.replace(r#""name""#, r#""parent_span_id":"00f067aa0ba902b7","name""#);
        let extra = SPAN.replace(r#""name""#, r#""colour":"red","name""#);
        let text = format!("{SPAN}\n{{\"trace_id\":\"4bf9\n\n{own}\n{extra}\n{extra}\n{}\n", &SPAN[..40]);
        let path = file("mixed.jsonl", text.as_bytes());
        let input = read_input(std::slice::from_ref(&path), &[], Mode::Lenient).unwrap();
        assert_eq!(input.spans.len(), 4);
        let found = problems(&input);
        assert!(matches!(&found[0], (Some(2), Problem::NotASpan(why)) if why.starts_with("not JSON")), "{found:?}");
        assert_eq!(found[1], (Some(4), Problem::OwnParent));
        assert_eq!(found[2], (Some(5), Problem::UnknownField("colour".into())), "once per file: {found:?}");
        assert!(matches!(&found[3], (Some(7), Problem::NotASpan(_))), "{found:?}");
        assert_eq!(found.len(), 4);
        assert!(input.notes[0].to_string().starts_with(&format!("{}:2: not JSON", path.display())));

        let strict = read_file(&path).unwrap_err();
        assert!(strict.0.starts_with(&format!("{}:2: not JSON", path.display())), "{strict}");
    }

    #[test]
    fn a_file_that_is_not_jsonl_is_one_note() {
        let path = file("notes.md", b"# a heading\n{\"not\": \"read\"}\n");
        let input = read_input(std::slice::from_ref(&path), &[], Mode::Lenient).unwrap();
        assert_eq!(problems(&input), vec![(None, Problem::NotJsonl)]);
        let binary = file("binary.jsonl", &[0xff, 0xfe, 0x00, 0x01, b'\n', b'{']);
        let input = read_input(std::slice::from_ref(&binary), &[], Mode::Lenient).unwrap();
        assert_eq!(problems(&input), vec![(None, Problem::NotJsonl)]);
        assert!(read_file(&binary).is_err());
    }

    #[test]
    fn problems_past_the_listed_ones_are_counted() {
        let text = format!("{SPAN}\n{}", "{oops\n".repeat(LISTED_PER_FILE + 5));
        let path = file("many.jsonl", text.as_bytes());
        let input = read_input(std::slice::from_ref(&path), &[], Mode::Lenient).unwrap();
        assert_eq!(input.notes.len(), LISTED_PER_FILE + 1);
        assert_eq!(input.notes.last().unwrap().problem, Problem::More(5));
    }

    #[test]
    fn periods_include_since_and_exclude_until() {
        let p = Period { since: Some(10), until: Some(20) };
        assert!(!p.contains(9) && p.contains(10) && p.contains(19) && !p.contains(20));
        assert!(Period::default().contains(0));
    }
}
