//! The layout's promise, checked: top-level modules depend on each other in
//! one direction only (read from the `crate::` paths in each module's files),
//! so data flows acquire -> account -> outbox -> spool -> publish and the shared
//! vocabulary stays in leaf modules.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// module -> the other top-level modules its files name as `crate::X`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut all = Vec::new();
    files(&src, &mut all);
    for f in all {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let deps = g.entry(module.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let before = text[..i].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `bessmon_crate::` and the like
            }
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                deps.insert(name);
            }
        }
    }
    g
}

fn cycle_from(
    g: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|p| p == node) {
        let mut c = path[at..].to_vec();
        c.push(node.to_string());
        return Some(c);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for d in g.get(node).into_iter().flatten() {
        if let Some(c) = cycle_from(g, d, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn top_level_modules_depend_on_each_other_in_one_direction() {
    let g = graph();
    assert!(g.len() > 10, "read the modules: {g:?}");
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(c) = cycle_from(&g, m, &mut Vec::new(), &mut done) {
            panic!("dependency cycle: {}", c.join(" -> "));
        }
    }
    // The flow's direction, explicitly: acquisition knows no accounting or
    // sinks, accounting no sinks and no config, the outbox no sink, the spool
    // nothing above it.
    for (module, forbidden) in [
        (
            "acquire",
            &["account", "config", "outbox", "publish", "spool", "daemon"][..],
        ),
        (
            "account",
            &["config", "outbox", "publish", "spool", "daemon"][..],
        ),
        // What is produced and made durable knows no network sink.
        ("outbox", &["config", "publish", "daemon"][..]),
        (
            "spool",
            &["acquire", "account", "outbox", "publish", "config"][..],
        ),
    ] {
        for f in forbidden {
            assert!(
                !g[module].contains(*f),
                "{module} depends on {f}: {:?}",
                g[module]
            );
        }
    }
}
