//! The runtime is layered, and this test holds it there.
//!
//! - **One order, stated once**: `runtime/src/lib.rs` declares its modules
//!   bottom to top; this test reads that order from it. A module imports
//!   only from modules declared before it: an import that runs up the
//!   layers fails, naming the file.
//! - **`lib.rs` is a pure facade**: nothing inside the crate imports from
//!   the crate root. `use crate::Name` of a root re-export counts as an
//!   import of `lib.rs`, which sits above everything, so it fails too.
//! - **No cycle inside a folder**: the files of each folder (`base/`,
//!   `export/`, ...) do not import each other around a cycle.
//! - The macro crate's modules do not import each other around a cycle.
//!
//! A module is a file or a folder directly under `src/`; an import is any
//! `crate::name` path (or `crate::{a, b}` group) outside comments, or
//! `super::name` in a file directly under `src/` (or, inside a folder, in a
//! file directly under that folder).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's sources: for each top-level module, its files as (path
/// relative to the module's folder, text). A top-level file has one entry
/// with an empty path.
type Sources = BTreeMap<String, Vec<(PathBuf, String)>>;

fn read_sources(src: &Path) -> Sources {
    let mut out = Sources::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut files = Vec::new();
            walk(&path, &mut files);
            let files = files.into_iter().map(|f| (f.strip_prefix(&path).unwrap().to_path_buf(), read(&f))).collect();
            out.insert(name, files);
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            out.insert(name, vec![(PathBuf::new(), read(&path))]);
        }
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Removes `//` comments (doc comments included: intra-doc links are not imports).
fn strip_comments(src: &str) -> String {
    src.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The first identifier of each path right after `prefix` (a `{...}` group
/// counts each name in it).
fn names_after(src: &str, prefix: &str) -> Vec<String> {
    let ident = |s: &str| -> String { s.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find(prefix) {
        // Not part of a longer path (`my_crate::`, `a::crate::`).
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            out.extend(group[..end].split(',').map(ident));
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|n| !n.is_empty());
    out
}

/// The modules `lib.rs` declares, in the order it declares them (bottom to top).
fn declared_order(lib: &str) -> Vec<String> {
    strip_comments(lib)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub(crate) ").or_else(|| l.strip_prefix("pub ")).unwrap_or(l);
            l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_string)
        })
        .collect()
}

/// What each top-level module imports: other top-level modules by name,
/// and `lib` for a `crate::Name` that is no module (a root re-export).
fn imports(sources: &Sources) -> BTreeMap<String, BTreeSet<(String, PathBuf)>> {
    let mut edges = BTreeMap::new();
    for (module, files) in sources {
        let mut to = BTreeSet::new();
        for (file, text) in files {
            let text = strip_comments(text);
            let mut found = names_after(&text, "crate::");
            if file.as_os_str().is_empty() {
                found.extend(names_after(&text, "super::"));
            }
            for name in found.into_iter().filter(|n| n != module && n != "self") {
                let target = if sources.contains_key(&name) { name } else { "lib".to_string() };
                to.insert((target, file.clone()));
            }
        }
        edges.insert(module.clone(), to);
    }
    edges
}

/// Every import that does not run down the layers of `order`: to a module
/// declared later, to `lib.rs`, or to or from a module `order` leaves out.
fn upward_imports(order: &[String], sources: &Sources) -> Vec<String> {
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut out = Vec::new();
    for m in sources.keys().filter(|m| rank(m).is_none()) {
        out.push(format!("{m} is not declared in lib.rs, so it has no place in the layers"));
    }
    for (module, to) in imports(sources) {
        for (target, file) in to {
            let at = format!("{module}/{}", file.display());
            match (rank(&module), rank(&target)) {
                _ if target == "lib" => out.push(format!("{at} imports from the crate root (lib.rs)")),
                (Some(a), Some(b)) if b > a => out.push(format!("{at} imports {target}, a layer above it")),
                _ => {}
            }
        }
    }
    out
}

/// For one folder: which of its children (a file or a sub-folder directly
/// in it, `mod.rs` aside) each child imports, through `crate::folder::x`
/// anywhere or `super::x` in a file directly in the folder.
fn folder_edges(folder: &str, files: &[(PathBuf, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let child =
        |p: &Path| p.components().next().map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string());
    let kids: BTreeSet<String> = files.iter().filter_map(|(p, _)| child(p)).filter(|k| k != "mod").collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = kids.iter().map(|k| (k.clone(), BTreeSet::new())).collect();
    for (path, text) in files {
        let Some(kid) = child(path).filter(|k| k != "mod") else { continue };
        let text = strip_comments(text);
        let mut found = names_after(&text, &format!("crate::{folder}::"));
        if path.components().count() == 1 {
            found.extend(names_after(&text, "super::"));
        }
        let to = edges.get_mut(&kid).unwrap();
        to.extend(found.into_iter().filter(|n| *n != kid && kids.contains(n)));
    }
    edges
}

/// The groups of nodes that import each other around a cycle (Tarjan).
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
        for w in s.edges[v].iter().filter(|w| s.edges.contains_key(*w)) {
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

/// The cycles inside each folder of `sources`, explained.
fn folder_cycles(sources: &Sources) -> Vec<String> {
    let mut out = Vec::new();
    for (folder, files) in sources.iter().filter(|(_, f)| !f[0].0.as_os_str().is_empty()) {
        let edges = folder_edges(folder, files);
        for group in cycles(&edges) {
            let inside: Vec<String> = group
                .iter()
                .map(|m| {
                    let to: Vec<_> = edges[m].iter().filter(|t| group.contains(t)).cloned().collect();
                    format!("{m} -> {}", to.join(", "))
                })
                .collect();
            out.push(format!("in {folder}/, these import each other around a cycle: {}", inside.join("; ")));
        }
    }
    out
}

/// Top-level modules that import each other around a cycle, explained.
fn module_cycles(sources: &Sources) -> Vec<String> {
    let edges: BTreeMap<String, BTreeSet<String>> = imports(sources)
        .into_iter()
        .map(|(m, to)| (m, to.into_iter().map(|(t, _)| t).filter(|t| t != "lib").collect()))
        .collect();
    cycles(&edges)
        .into_iter()
        .map(|g| format!("these modules import each other around a cycle: {}", g.join(", ")))
        .collect()
}

fn crate_src(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir).join("src")
}

#[test]
fn the_runtime_imports_only_down_the_layers_lib_rs_declares() {
    let src = crate_src("runtime");
    let order = declared_order(&read(&src.join("lib.rs")));
    let sources = read_sources(&src);
    assert!(
        order.len() >= 10 && sources.len() >= 10,
        "read the layers ({order:?}) and the modules ({})",
        sources.len()
    );
    let mut found = upward_imports(&order, &sources);
    found.extend(module_cycles(&sources));
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
}

#[test]
fn no_runtime_folder_has_a_cycle_inside() {
    let sources = read_sources(&crate_src("runtime"));
    let folders = sources.values().filter(|f| !f[0].0.as_os_str().is_empty()).count();
    assert!(folders >= 8, "read the runtime's folders ({folders})");
    let found = folder_cycles(&sources);
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
}

#[test]
fn no_two_macro_modules_import_each_other() {
    let sources = read_sources(&crate_src("macros"));
    assert!(sources.len() >= 4, "read the macro crate's modules ({})", sources.len());
    let found = module_cycles(&sources);
    assert!(found.is_empty(), "\n{}\n", found.join("\n"));
}

fn synthetic(files: &[(&str, &str, &str)]) -> Sources {
    let mut out = Sources::new();
    for (module, path, text) in files {
        out.entry(module.to_string()).or_default().push((PathBuf::from(path), text.to_string()));
    }
    out
}

#[test]
fn the_check_fails_on_an_upward_import_a_root_import_and_an_undeclared_module() {
    let order =
        declared_order("// bottom first\npub mod low;\n#[cfg(x)]\nmod mid;\npub(crate) mod high;\n/// mod not;");
    assert_eq!(order, ["low", "mid", "high"]);
    let sources = synthetic(&[
        ("low", "", "use crate::mid::Thing; // runs up\n/// see [`crate::high`]"),
        ("mid", "a.rs", "use crate::low::X;\nfn f() { crate::Guard::new(); }"),
        ("mid", "mod.rs", "pub(crate) mod a;"),
        ("high", "", "use crate::{low, mid::Y};\nuse my_crate::high::Z;"),
        ("stray", "", ""),
    ]);
    assert_eq!(
        upward_imports(&order, &sources),
        [
            "stray is not declared in lib.rs, so it has no place in the layers",
            "low/ imports mid, a layer above it",
            "mid/a.rs imports from the crate root (lib.rs)",
        ]
    );
}

#[test]
fn the_check_finds_a_cycle_between_modules_and_inside_a_folder() {
    let sources = synthetic(&[
        ("a", "", "use crate::b::X;"),
        ("b", "", "fn f() { crate::{c, d}::g(); }"),
        ("c", "", "use crate::a;"),
        ("d", "", "// crate::a in a comment"),
        ("base", "mod.rs", "mod frame; mod queue; mod state;"),
        ("base", "frame.rs", "use super::queue::Note;"),
        ("base", "queue.rs", "use crate::base::state::Loss;"),
        ("base", "state.rs", "use super::frame::Frame;\nuse super::super::x;"),
        ("base", "deep/inner.rs", "use super::y; use crate::base::frame::F;"),
    ]);
    assert_eq!(module_cycles(&sources), ["these modules import each other around a cycle: a, b, c"]);
    assert_eq!(
        folder_cycles(&sources),
        ["in base/, these import each other around a cycle: frame -> queue; queue -> state; state -> frame"]
    );
    let edges = folder_edges("base", &sources["base"]);
    assert_eq!(edges["deep"], BTreeSet::from(["frame".to_string()]), "a nested file's super:: is its own folder");
}
