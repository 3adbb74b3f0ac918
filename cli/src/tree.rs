//! The tree of one trace's spans by parent id, in the order it is shown:
//! depth first, children by start time, each span exactly once whatever
//! the parent links say. `observra tail` draws it as text, `observra report`
//! as a waterfall.

use std::collections::{HashMap, HashSet};

use crate::spans::Span;

/// One span's place in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// The span's index in the slice given to [`walk`].
    pub index: usize,
    /// 0 for a top-level span.
    pub depth: usize,
    /// The parent's index in the slice, `None` at the top level.
    pub parent: Option<usize>,
    /// Whether it is the last child of its parent (or the last top-level span).
    pub last: bool,
    /// Whether it is at the top level only because its parent links form a
    /// cycle (no root above it); it is the earliest span of that cycle.
    pub breaks_cycle: bool,
}

/// The spans of one trace in tree order, each exactly once.
///
/// Bad parent links never loop: a span that names itself as its parent is a
/// root, a span whose parent is not among `spans` is a root, and spans whose
/// parent links form a cycle (no root above them) are shown from the
/// earliest of them, as a root marked [`Node::breaks_cycle`]. The walk is
/// iterative, so a deep trace cannot overflow the stack.
pub fn walk(spans: &[Span]) -> Vec<Node> {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots: Vec<usize> = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.parent_span_id.as_deref().filter(|p| *p != s.span_id && ids.contains(p)) {
            Some(p) => children.entry(p).or_default().push(i),
            None => roots.push(i),
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|&i| spans[i].start_ns);
    }
    roots.sort_by_key(|&i| spans[i].start_ns);
    let tops = tops(spans, &children, roots);
    let mut placed = vec![false; spans.len()];
    for &(t, _) in &tops {
        placed[t] = true;
    }
    let mut nodes = Vec::with_capacity(spans.len());
    let mut stack: Vec<Node> = tops
        .iter()
        .enumerate()
        .rev()
        .map(|(n, &(index, breaks_cycle))| Node {
            index,
            depth: 0,
            parent: None,
            last: n + 1 == tops.len(),
            breaks_cycle,
        })
        .collect();
    while let Some(node) = stack.pop() {
        nodes.push(node);
        let kids: Vec<usize> = children
            .get(spans[node.index].span_id.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(|&k| !placed[k])
            .collect();
        for &k in &kids {
            placed[k] = true;
        }
        stack.extend(kids.iter().enumerate().rev().map(|(n, &k)| Node {
            index: k,
            depth: node.depth + 1,
            parent: Some(node.index),
            last: n + 1 == kids.len(),
            breaks_cycle: false,
        }));
    }
    nodes
}

/// The top level: the roots, then the earliest span of each cycle (marked
/// `true`).
fn tops(spans: &[Span], children: &HashMap<&str, Vec<usize>>, roots: Vec<usize>) -> Vec<(usize, bool)> {
    // The spans below `top` not yet `seen`, marked (iteratively).
    let reach = |top: usize, seen: &mut [bool]| {
        let mut stack = vec![top];
        while let Some(i) = stack.pop() {
            for &k in children.get(spans[i].span_id.as_str()).into_iter().flatten() {
                if !seen[k] {
                    seen[k] = true;
                    stack.push(k);
                }
            }
        }
    };
    let mut seen = vec![false; spans.len()];
    for &r in &roots {
        seen[r] = true;
    }
    for &r in &roots {
        reach(r, &mut seen);
    }
    let mut tops: Vec<(usize, bool)> = roots.into_iter().map(|r| (r, false)).collect();
    let mut by_start: Vec<usize> = (0..spans.len()).collect();
    by_start.sort_by_key(|&i| spans[i].start_ns);
    for i in by_start {
        if !seen[i] {
            seen[i] = true;
            tops.push((i, true));
            reach(i, &mut seen);
        }
    }
    tops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: Option<&str>, start: u64) -> Span {
        let v = serde_json::json!({
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": id, "parent_span_id": parent, "name": id,
            "start_time_unix_nano": start, "end_time_unix_nano": start + 1_000,
        });
        Span::from_json(&v).unwrap()
    }

    fn shape(spans: &[Span]) -> Vec<(&str, usize, Option<&str>, bool)> {
        walk(spans)
            .iter()
            .map(|n| (spans[n.index].name.as_str(), n.depth, n.parent.map(|p| spans[p].name.as_str()), n.breaks_cycle))
            .collect()
    }

    #[test]
    fn children_follow_their_parent_in_start_order() {
        let spans = [span("late", Some("root"), 5), span("root", None, 0), span("early", Some("root"), 1)];
        let s = shape(&spans);
        assert_eq!(
            s,
            vec![("root", 0, None, false), ("early", 1, Some("root"), false), ("late", 1, Some("root"), false)]
        );
        let last: Vec<bool> = walk(&spans).iter().map(|n| n.last).collect();
        assert_eq!(last, vec![true, false, true]);
    }

    #[test]
    fn a_cycle_is_placed_once_from_its_earliest_span_and_marked() {
        let spans = [span("b", Some("a"), 2), span("a", Some("b"), 1), span("orphan", Some("gone"), 0)];
        let s = shape(&spans);
        assert_eq!(s, vec![("orphan", 0, None, false), ("a", 0, None, true), ("b", 1, Some("a"), false)]);
    }
}
