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

/// Renders one trace (all its spans) as a tree, each span once, in the
/// order of [`crate::tree::walk`] (which says how bad parent links are
/// shown).
pub fn render_trace(spans: &[Span], style: Style) -> String {
    let service = spans.first().and_then(|s| s.resource.get("service.name")).and_then(|v| v.as_str()).unwrap_or("");
    let trace_id = spans.first().map_or("", |s| s.trace_id.as_str());
    let mut out = format!("{} {}  {}\n", style.paint("1", "trace"), trace_id, style.paint("36", service));
    // Whether the ancestor at each depth above the current node was the last of its siblings.
    let mut last_above: Vec<bool> = Vec::new();
    for node in crate::tree::walk(spans) {
        last_above.truncate(node.depth);
        let prefix: String = last_above.iter().map(|&last| if last { "   " } else { "│  " }).collect();
        let branch = if node.last { "└─ " } else { "├─ " };
        let s = &spans[node.index];
        out.push_str(&format!("{prefix}{branch}{}  {}\n", style.paint("1", &s.name), details(s, style)));
        last_above.push(node.last);
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
        // A span that names itself as its parent is a root too.
        let is_root = span.parent_span_id.as_ref().is_none_or(|p| *p == span.span_id);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: Option<&str>, name: &str, start: u64) -> Span {
        let v = serde_json::json!({
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": id, "parent_span_id": parent, "name": name,
            "start_time_unix_nano": start, "end_time_unix_nano": start + 1_000,
        });
        Span::from_json(&v).unwrap()
    }

    fn count(out: &str, name: &str) -> usize {
        out.matches(&format!("─ {name}  ")).count()
    }

    #[test]
    fn a_self_parented_span_is_a_root_shown_once() {
        let out = render_trace(&[span("a", Some("a"), "loop", 1), span("b", Some("a"), "below", 2)], Style(false));
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows.len(), 3, "{out}");
        assert!(rows[1].starts_with("└─ loop") && rows[2].starts_with("   └─ below"), "{out}");
    }

    #[test]
    fn a_cycle_is_shown_once_from_its_earliest_span() {
        let spans = [
            span("r", None, "root", 0),
            span("b", Some("a"), "second", 2),
            span("a", Some("b"), "first", 1),
            span("c", Some("b"), "third", 3),
        ];
        let out = render_trace(&spans, Style(false));
        for name in ["root", "first", "second", "third"] {
            assert_eq!(count(&out, name), 1, "{name}:\n{out}");
        }
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows.len(), 5, "{out}");
        for (row, start) in rows[1..].iter().zip(["├─ root", "└─ first", "   └─ second", "      └─ third"])
        {
            assert!(row.starts_with(start), "{start:?}:\n{out}");
        }
    }

    #[test]
    fn a_loop_through_a_duplicated_id_ends() {
        let spans = [span("r", None, "root", 0), span("x", Some("r"), "child", 1), span("r", Some("x"), "again", 2)];
        let out = render_trace(&spans, Style(false));
        for name in ["root", "child", "again"] {
            assert_eq!(count(&out, name), 1, "{name}:\n{out}");
        }
    }

    #[test]
    fn a_deep_chain_does_not_overflow_the_stack() {
        let ids: Vec<String> = (0..3_000).map(|i| format!("{i:016x}")).collect();
        let spans: Vec<Span> =
            (0..ids.len()).map(|i| span(&ids[i], i.checked_sub(1).map(|p| ids[p].as_str()), "s", i as u64)).collect();
        let out = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || render_trace(&spans, Style(false)).lines().count())
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert_eq!(out, 3_001);
    }
}
