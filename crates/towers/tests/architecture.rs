//! The house rules of ARCHITECTURE.md that code can check: which module may use which (the
//! layers below it), and no source file over 600 lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module of the library and the modules it may use: every rule points down.
const RULES: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("rng", &[]),
    ("tensors", &[]),
    ("progress", &[]),
    ("dist", &[]),
    ("kernels", &["rng"]),
    ("data", &["rng"]),
    ("task", &["kernels"]),
    ("metrics", &["kernels"]),
    ("index", &["kernels", "rng", "tensors", "progress"]),
    ("model", &["data", "kernels", "rng", "task", "tensors"]),
    ("config", &["data", "model", "task"]),
    ("artifact", &["config", "data", "index", "metrics", "model", "task", "tensors"]),
    ("eval", &["artifact", "config", "data", "dist", "metrics", "model"]),
    ("recommend", &["artifact", "config", "data", "eval", "index", "kernels", "metrics", "model", "progress"]),
    (
        "train",
        &[
            "artifact",
            "config",
            "data",
            "dist",
            "eval",
            "index",
            "kernels",
            "metrics",
            "model",
            "progress",
            "recommend",
            "rng",
            "task",
            "tensors",
        ],
    ),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules a file's code (not its comments) names as `crate::module`.
fn uses(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules: BTreeMap<&str, &[&str]> = RULES.iter().copied().collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut broken = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let module = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let allowed =
            rules.get(module.as_str()).unwrap_or_else(|| panic!("{module}: a module ARCHITECTURE.md does not place"));
        for used in uses(f) {
            if used != module && !allowed.contains(&used.as_str()) {
                broken.push(format!("{}: uses crate::{used}", rel.display()));
            }
        }
    }
    assert!(broken.is_empty(), "imports against the rules of ARCHITECTURE.md:\n{}", broken.join("\n"));
}

#[test]
fn no_source_file_is_over_600_lines() {
    let crates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            sources(&src, &mut files);
        }
    }
    let big: Vec<String> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, n)| *n > 600)
        .map(|(f, n)| format!("{} ({n} lines)", f.display()))
        .collect();
    assert!(big.is_empty(), "split these by what they hold: {big:?}");
}
