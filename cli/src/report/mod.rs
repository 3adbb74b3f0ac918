//! `observra report`: one self-contained HTML page from JSONL span files
//! (plaintext or encrypted, rotated parts and folders included): the runs,
//! a waterfall per trace with the selected span's attributes, events and
//! captured messages, and the totals. The page opens with no network: its
//! style, script and data are inline.
//!
//! Reading is lenient: a line or file that cannot be read is skipped and
//! reported (file:line) on standard error and on the page.

mod data;
pub mod model;
mod page;

use std::path::PathBuf;

use crate::spans::{self, Mode};

/// Spans embedded in full by default: a page of about 20 MB at most, which
/// a browser opens in a few seconds.
pub const DEFAULT_MAX_SPANS: usize = 20_000;
/// Runs listed by default.
pub const DEFAULT_MAX_RUNS: usize = 20_000;

/// What to read and where to write the page.
pub struct Options {
    /// JSONL files or folders of them.
    pub files: Vec<PathBuf>,
    /// Keys to decrypt encrypted files with.
    pub keys: Vec<[u8; 32]>,
    /// Which traces, and how much of them.
    pub selection: model::Selection,
    /// The page to write.
    pub output: PathBuf,
}

/// What was written.
pub struct Written {
    /// Traces selected, listed, and embedded in full or in part.
    pub traces: usize,
    /// See `traces`.
    pub listed: usize,
    /// See `traces`.
    pub embedded: usize,
    /// Spans selected.
    pub spans: usize,
    /// The page's size in bytes.
    pub bytes: usize,
    /// Problems with the input, one line each (also on the page).
    pub warnings: Vec<String>,
}

/// Why no page was written.
#[derive(Debug)]
pub enum ReportError {
    /// A file or folder could not be read at all.
    Input(spans::ReadError),
    /// `--trace` named a trace the files do not hold.
    NoSuchTrace(String),
    /// The page could not be written.
    Output(PathBuf, std::io::Error),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Input(e) => e.fmt(f),
            Self::NoSuchTrace(id) => write!(f, "--trace {id}: no such trace in the files given (and period)"),
            Self::Output(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

/// Reads the files, builds the page and writes it.
pub fn write(options: &Options, now_ns: u64) -> Result<Written, ReportError> {
    let input = spans::read_input(&options.files, &options.keys, Mode::Lenient).map_err(ReportError::Input)?;
    let model = model::build(input.spans, &options.selection);
    if let (Some(id), true) = (&options.selection.trace, model.runs.is_empty()) {
        return Err(ReportError::NoSuchTrace(id.clone()));
    }
    let mut warnings: Vec<String> = input.notes.iter().map(|n| format!("{n} ({})", n.problem.consequence())).collect();
    warnings.extend(model.cycles.iter().map(|(trace, span, name)| {
        format!("trace {trace}: the parent links of span {span} ({name}) form a cycle (shown as a root)")
    }));
    let origin = data::Origin {
        sources: &options.files,
        generated_ns: now_ns,
        selection: &options.selection,
        warnings: &warnings,
    };
    let html = page::render(&data::page_data(&model, &origin));
    std::fs::write(&options.output, &html).map_err(|e| ReportError::Output(options.output.clone(), e))?;
    Ok(Written {
        traces: model.traces_total,
        listed: model.runs.len(),
        embedded: model.runs.iter().filter(|r| r.tree.is_some()).count(),
        spans: model.spans.len(),
        bytes: html.len(),
        warnings,
    })
}
