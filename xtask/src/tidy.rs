//! House rules checked over the source tree (rust-analyzer's tidy): every Rust file starts with
//! module docs, no test is ignored or expects a panic, no stub is left, every crate has a
//! README, internal dependencies go through `[workspace.dependencies]`, and no public service
//! method takes a bare `HouseId` (it takes an `Actor`, which only authentication makes).

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
            Some("rs") => {
                check_rust(&rel, &text, &mut problems);
                if is_service_file(&rel) {
                    check_service(&rel, &text, &mut problems);
                }
            }
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

/// The files that hold services: every method there that reaches a house's objects takes an
/// `Actor` (or a job's `Claim`, or the operator's `Admin`).
fn is_service_file(rel: &str) -> bool {
    let rel = rel.replace('\\', "/");
    rel == "crates/arbe-store/src/access.rs"
        || ["crates/arbe-vault/src/", "crates/arbe-env/src/", "crates/arbe-dispatch/src/"]
            .iter()
            .any(|dir| rel.starts_with(dir) && !rel.ends_with("testkit.rs"))
}

/// A public function of a service file whose parameters hold a `HouseId` must also take the
/// operator's `&Admin` or a verified `&Caller`, or be one of the authentication steps that turn
/// a key and a house into an `Actor`.
fn check_service(rel: &str, text: &str, problems: &mut Vec<String>) {
    const AUTHENTICATION: &[&str] = &["authenticate", "authenticate_in", "actor"];
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(rest) = trimmed.strip_prefix("pub async fn ").or_else(|| trimmed.strip_prefix("pub fn ")) else {
            continue;
        };
        let name = rest.split(['(', '<']).next().unwrap_or_default();
        let signature = lines[n..lines.len().min(n + 12)].join(" ");
        let params = signature.split_once('(').map_or("", |(_, p)| p);
        let params = params.split_once(") ->").or_else(|| params.split_once(") {")).map_or(params, |(p, _)| p);
        let proven = params.contains("&Admin") || params.contains("&Caller") || AUTHENTICATION.contains(&name);
        if params.contains("HouseId") && !proven {
            problems.push(format!(
                "{rel}:{}: public service method `{name}` takes a bare HouseId: take an `&Actor` (or a job's `&Claim`)",
                n + 1
            ));
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

    #[test]
    fn tidy_flags_a_service_method_taking_a_bare_house_id() {
        let mut problems = Vec::new();
        let source = "//! x\nimpl S {\n    pub async fn list(\n        &self,\n        house: HouseId,\n    ) -> Vec<X> {\n    }\n    \
                      pub async fn view(&self, actor: &Actor, id: HouseId) -> X {}\n    \
                      pub fn quotas(&self, _: &Admin, house: HouseId) -> Q {}\n}\n";
        check_service("crates/arbe-env/src/x.rs", source, &mut problems);
        // An `Actor` beside a bare house id could still aim at another house: flagged too.
        let lines: Vec<_> = problems.iter().map(|p| p.split(": public").next().unwrap()).collect();
        assert_eq!(lines, ["crates/arbe-env/src/x.rs:3", "crates/arbe-env/src/x.rs:8"]);
        assert!(
            is_service_file("crates/arbe-dispatch/src/lib.rs") && !is_service_file("crates/arbe-store/src/jobs.rs")
        );
    }
}
