//! House rules checked over the source tree (rust-analyzer's tidy): every Rust file starts with
//! module docs, no test is ignored or expects a panic, no stub is left, every crate has a
//! README, and internal dependencies go through `[workspace.dependencies]`.

use std::path::{Path, PathBuf};

pub(crate) fn run(root: &Path) -> Result<(), String> {
    let problems = check(root);
    if problems.is_empty() { Ok(()) } else { Err(format!("tidy:\n  {}", problems.join("\n  "))) }
}

fn check(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        collect(&root.join(dir), &mut files);
    }
    for file in &files {
        let rel = file.strip_prefix(root).unwrap_or(file).display().to_string();
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        match file.extension().and_then(|e| e.to_str()) {
            Some("rs") => check_rust(&rel, &text, &mut problems),
            Some("toml") if file.ends_with("Cargo.toml") => check_manifest(&rel, &text, &mut problems),
            _ => {}
        }
    }
    let crates = std::fs::read_dir(root.join("crates")).into_iter().flatten().flatten();
    for krate in crates {
        if !krate.path().join("README.md").exists() {
            problems.push(format!("crates/{}: no README.md", krate.file_name().to_string_lossy()));
        }
    }
    problems
}

fn check_rust(rel: &str, text: &str, problems: &mut Vec<String>) {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    if !first.starts_with("//!") && !first.starts_with("#![doc") {
        problems.push(format!("{rel}: must start with `//!` module docs"));
    }
    // The patterns are split so this file does not match itself.
    for (pattern, why) in [
        (concat!("#[", "ignore"), "ignored test: a test that cannot run must fail, not skip"),
        (concat!("#[should", "_panic"), "a panicking test: assert on the error's kind instead"),
        (concat!("todo", "!("), "stub left in code"),
        (concat!("unimplemented", "!("), "stub left in code"),
    ] {
        for (n, line) in text.lines().enumerate() {
            if line.contains(pattern) {
                problems.push(format!("{rel}:{}: {why}", n + 1));
            }
        }
    }
}

fn check_manifest(rel: &str, text: &str, problems: &mut Vec<String>) {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("arbe-") && line.contains("path =") {
            problems.push(format!(
                "{rel}:{}: declare internal crates once in [workspace.dependencies] and use `workspace = true`",
                n + 1
            ));
        }
    }
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_is_tidy() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let problems = check(root);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn tidy_flags_missing_docs_and_skipped_tests() {
        let mut problems = Vec::new();
        let source = concat!("use x;\n#[test]\n#[", "ignore]\nfn t() {}\n");
        check_rust("a.rs", source, &mut problems);
        assert_eq!(
            problems,
            [
                "a.rs: must start with `//!` module docs",
                "a.rs:3: ignored test: a test that cannot run must fail, not skip",
            ]
        );
        let mut problems = Vec::new();
        check_manifest("c/Cargo.toml", "arbe-core = { path = \"../arbe-core\" }", &mut problems);
        assert_eq!(problems.len(), 1);
    }
}
