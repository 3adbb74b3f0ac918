//! `observra tail`: each trace as an indented tree, with the GenAI facts that
//! matter (tokens, cost, errors), coloured on a terminal.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Seek, Write};
use std::path::Path;
use std::time::Duration;

use crate::spans::{ReadError, Span};

/// ANSI styling, or none.
#[derive(Clone, Copy)]
pub struct Style(bool);

impl Style {
    pub fn new(color: &str) -> Style {
        Style(match color {
            "always" => true,
            "never" => false,
            _ => std::io::stdout().is_terminal(),
        })
    }
    fn paint(self, code: &str, text: &str) -> String {
        if self.0 { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

fn details(s: &Span, style: Style) -> String {
    let ms = s.duration_ms();
    let mut parts = vec![if ms >= 1.0 { format!("{ms:.1} ms") } else { format!("{:.0} µs", ms * 1000.0) }];
    if let (Some(i), Some(o)) = (s.num_attr("gen_ai.usage.input_tokens"), s.num_attr("gen_ai.usage.output_tokens")) {
        parts.push(format!("tokens {i}/{o}"));
    }
    if let Some(c) = s.num_attr("observra.cost.usd") {
        parts.push(format!("${c:.6}"));
    }
    if let (Some(calls), Some(c)) = (s.num_attr("observra.total.llm_calls"), s.num_attr("observra.total.cost.usd")) {
        parts.push(format!("{calls} model calls, total ${c:.6}"));
    }
    let mut line = parts.join("  ");
    if s.failed() {
        let why = if s.status_message.is_empty() { "ERROR".to_string() } else { format!("ERROR {}", s.status_message) };
        line.push_str("  ");
        line.push_str(&style.paint("31", &why));
    }
    style.paint("2", &line)
}

/// Renders one trace (all its spans) as a tree.
pub fn render_trace(spans: &[Span], style: Style) -> String {
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&Span>> = HashMap::new();
    let mut roots: Vec<&Span> = Vec::new();
    for s in spans {
        match s.parent_span_id.as_deref().filter(|p| ids.contains(p)) {
            Some(p) => children.entry(p).or_default().push(s),
            None => roots.push(s),
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_ns);
    }
    roots.sort_by_key(|s| s.start_ns);
    let service = spans.first().and_then(|s| s.resource.get("service.name")).and_then(|v| v.as_str()).unwrap_or("");
    let mut out = format!("{} {}  {}\n", style.paint("1", "trace"), spans[0].trace_id, style.paint("36", service));
    fn walk(out: &mut String, s: &Span, prefix: &str, last: bool, children: &HashMap<&str, Vec<&Span>>, style: Style) {
        let branch = if last { "└─ " } else { "├─ " };
        out.push_str(&format!("{prefix}{branch}{}  {}\n", style.paint("1", &s.name), details(s, style)));
        let next = format!("{prefix}{}", if last { "   " } else { "│  " });
        if let Some(kids) = children.get(s.span_id.as_str()) {
            for (i, k) in kids.iter().enumerate() {
                walk(out, k, &next, i + 1 == kids.len(), children, style);
            }
        }
    }
    for (i, r) in roots.iter().enumerate() {
        walk(&mut out, r, "", i + 1 == roots.len(), &children, style);
    }
    out
}

/// Prints every trace of the file, in order of first appearance.
pub fn print_file(path: &Path, style: Style, out: &mut impl Write) -> Result<(), ReadError> {
    let spans = crate::spans::read_file(path)?;
    let mut order: Vec<String> = Vec::new();
    let mut by_trace: HashMap<String, Vec<Span>> = HashMap::new();
    for s in spans {
        if !by_trace.contains_key(&s.trace_id) {
            order.push(s.trace_id.clone());
        }
        by_trace.entry(s.trace_id.clone()).or_default().push(s);
    }
    for t in order {
        let _ = writeln!(out, "{}", render_trace(&by_trace[&t], style));
    }
    Ok(())
}

/// Follows a growing file: prints each trace once its root span arrives
/// (spans are written as they end, so the root comes last).
pub fn follow(path: &Path, style: Style, out: &mut impl Write) -> Result<(), ReadError> {
    let file = std::fs::File::open(path).map_err(|e| ReadError(format!("{}: {e}", path.display())))?;
    let mut reader = std::io::BufReader::new(file);
    let mut pending: HashMap<String, Vec<Span>> = HashMap::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|e| ReadError(format!("{}: {e}", path.display())))?;
        if n == 0 || !line.ends_with('\n') {
            // At the end (or mid-line): wait for more, re-reading a partial line.
            if n > 0 {
                let pos = reader.stream_position().unwrap_or(0).saturating_sub(n as u64);
                let _ = reader.seek(std::io::SeekFrom::Start(pos));
            }
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        let Ok(Some(span)) = crate::spans::parse_line(line.trim()) else { continue };
        let is_root = span.parent_span_id.is_none();
        let trace = span.trace_id.clone();
        pending.entry(trace.clone()).or_default().push(span);
        if is_root {
            if let Some(spans) = pending.remove(&trace) {
                let _ = writeln!(out, "{}", render_trace(&spans, style));
                let _ = out.flush();
            }
        }
        // Bounded memory: traces whose root never comes are forgotten.
        if pending.len() > 10_000 {
            pending.clear();
        }
    }
}
