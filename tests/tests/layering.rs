//! The runtime and the macro crate are layered: no two top-level modules
//! import each other, directly or around a cycle. A top-level module is a
//! file or a folder directly under `src/`; an import is any `crate::name`
//! path (or `crate::{a, b}` group) outside comments, or `super::name` in a
//! top-level file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source text of each top-level module of a crate's `src/`.
fn modules(src: &Path) -> BTreeMap<String, Vec<(PathBuf, bool)>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut files = Vec::new();
            collect(&path, &mut files);
            out.insert(name, files.into_iter().map(|f| (f, false)).collect());
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            out.insert(name, vec![(path, true)]);
        }
    }
    out
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Removes `//` comments (doc comments included: intra-doc links are not imports).
fn strip_comments(src: &str) -> String {
    src.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The identifiers right after each occurrence of `prefix` (a `{...}` group
/// counts each name in it).
fn names_after(src: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find(prefix) {
        // Not part of a longer path segment (`my_crate::`).
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Which top-level modules each one imports.
fn imports(
    sources: &BTreeMap<String, Vec<String>>,
    top_files: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (module, texts) in sources {
        let mut to = BTreeSet::new();
        for text in texts {
            let text = strip_comments(text);
            let mut found = names_after(&text, "crate::");
            if top_files.contains(module) {
                found.extend(names_after(&text, "super::"));
            }
            to.extend(found.into_iter().filter(|n| n != module && sources.contains_key(n)));
        }
        edges.insert(module.clone(), to);
    }
    edges
}

/// The groups of modules that import each other around a cycle (Tarjan).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.edges[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.out.push(group);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn cycles_in(crate_dir: &str) -> (usize, Vec<Vec<String>>, BTreeMap<String, BTreeSet<String>>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(crate_dir).join("src");
    let mods = modules(&src);
    let top_files = mods.iter().filter(|(_, f)| f.len() == 1 && f[0].1).map(|(n, _)| n.clone()).collect();
    let sources = mods
        .iter()
        .map(|(n, files)| (n.clone(), files.iter().map(|(f, _)| std::fs::read_to_string(f).unwrap()).collect()))
        .collect();
    let edges = imports(&sources, &top_files);
    (mods.len(), cycles(&edges), edges)
}

fn explain(found: &[Vec<String>], edges: &BTreeMap<String, BTreeSet<String>>) -> String {
    let mut out = String::new();
    for group in found {
        out.push_str(&format!("\nthese modules import each other around a cycle: {}\n", group.join(", ")));
        for m in group {
            let inside: Vec<_> = edges[m].iter().filter(|t| group.contains(t)).cloned().collect();
            out.push_str(&format!("  {m} -> {}\n", inside.join(", ")));
        }
    }
    out
}

#[test]
fn no_two_runtime_modules_import_each_other() {
    let (count, found, edges) = cycles_in("runtime");
    assert!(count > 20, "read the runtime's modules ({count})");
    assert!(found.is_empty(), "{}", explain(&found, &edges));
}

#[test]
fn no_two_macro_modules_import_each_other() {
    let (count, found, edges) = cycles_in("macros");
    assert!(count >= 4, "read the macro crate's modules ({count})");
    assert!(found.is_empty(), "{}", explain(&found, &edges));
}

#[test]
fn the_check_finds_a_cycle_around_three_modules_and_ignores_comments() {
    let sources: BTreeMap<String, Vec<String>> = [
        ("a", "use crate::b::X;\n/// see [`crate::d`]"),
        ("b", "fn f() { crate::{c, d}::g(); }"),
        ("c", "use crate::a;"),
        ("d", "// crate::a in a comment\nuse my_crate::a;"),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), vec![s.to_string()]))
    .collect();
    let edges = imports(&sources, &BTreeSet::new());
    assert_eq!(cycles(&edges), vec![vec!["a".to_string(), "b".to_string(), "c".to_string()]]);
    assert!(edges["d"].is_empty(), "comments and other crates' paths are not imports: {edges:?}");
}
