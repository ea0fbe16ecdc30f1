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
    let mut functions = std::collections::BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(root).unwrap_or(file).display().to_string();
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        match file.extension().and_then(|e| e.to_str()) {
            Some("rs") => {
                check_rust(&rel, &text, &mut problems);
                if is_service_file(&rel) {
                    check_service(&rel, &text, &mut problems);
                }
                if is_library_source(&rel) {
                    check_no_env(&rel, &text, &mut problems);
                }
                functions.extend(function_names(&text));
            }
            Some("toml") if file.ends_with("Cargo.toml") => check_manifest(&rel, &text, &mut problems),
            _ => {}
        }
    }
    // AES-GCM is generic and compiles at its caller's level: unoptimised, the vault is 50-190x
    // slower (CRATES.md).
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    if !manifest.contains("[profile.dev.package.arbe-vault]\nopt-level = 3") {
        problems.push("Cargo.toml: arbe-vault must build at opt-level 3 in the dev profile too".into());
    }
    if let Ok(doc) = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")) {
        check_invariants(&doc, &functions, &mut problems);
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
        (concat!(", ", "ignore)]"), "ignored test (through cfg_attr): a test that cannot run must fail, not skip"),
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

/// Library code under `crates/*/src`, but for test support (`testkit.rs`) and the binaries'
/// settings modules, the one place each binary reads its environment.
fn is_library_source(rel: &str) -> bool {
    let rel = rel.replace('\\', "/");
    rel.starts_with("crates/")
        && rel.contains("/src/")
        && !rel.ends_with("testkit.rs")
        && !rel.ends_with("/src/settings.rs")
        && !rel.starts_with("crates/arbe-testkit/")
}

/// Libraries take typed configs: only the binaries' settings modules read the environment.
fn check_no_env(rel: &str, text: &str, problems: &mut Vec<String>) {
    // Split so this file does not match itself.
    for pattern in [concat!("env::", "var("), concat!("env::", "var_os("), concat!("env::", "vars(")] {
        for (n, line) in text.lines().enumerate() {
            if line.contains(pattern) && !line.trim_start().starts_with("//") {
                problems.push(format!(
                    "{rel}:{}: a library reads the environment: take the value in a typed config (only settings.rs reads env vars)",
                    n + 1
                ));
            }
        }
    }
}

/// Every `fn` name in a Rust file.
fn function_names(text: &str) -> Vec<String> {
    text.split("fn ")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// Every `**Architecture Invariant:**` in the architecture document names, in backticks, a test
/// that exists: the one that fails if the invariant breaks.
fn check_invariants(doc: &str, functions: &std::collections::BTreeSet<String>, problems: &mut Vec<String>) {
    for (n, line) in doc.lines().enumerate() {
        if !line.starts_with("**Architecture Invariant:**") {
            continue;
        }
        // The tests are named in the line's last parenthesis: `… (`a_test`, `another_test`).`
        let last = line.rfind('(').map_or("", |at| &line[at..]);
        let named: Vec<&str> = last.split('`').skip(1).step_by(2).collect();
        let tests: Vec<&&str> = named
            .iter()
            .filter(|name| {
                name.contains('_') && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .collect();
        if tests.is_empty() {
            problems.push(format!("docs/ARCHITECTURE.md:{}: the invariant names no test (add `the_test_name`)", n + 1));
        }
        for test in tests {
            if !functions.contains(*test) {
                problems.push(format!(
                    "docs/ARCHITECTURE.md:{}: the invariant names `{test}`, which no test defines",
                    n + 1
                ));
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

    #[test]
    fn tidy_flags_env_reads_in_libraries_and_invariants_without_tests() {
        let mut problems = Vec::new();
        let source = concat!("//! x\nfn f() { let _ = std::env::", "var(\"HOME\"); }\n");
        assert!(
            is_library_source("crates/arbe-env/src/keys.rs") && !is_library_source("crates/arbe-cli/src/settings.rs")
        );
        check_no_env("crates/arbe-env/src/keys.rs", source, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
        let mut problems = Vec::new();
        let functions = ["real_test".to_owned()].into_iter().collect();
        let doc = "**Architecture Invariant:** holds (`real_test`).\n**Architecture Invariant:** untested.\n\
                   **Architecture Invariant:** gone (`renamed_test`).\n";
        check_invariants(doc, &functions, &mut problems);
        assert_eq!(
            problems,
            [
                "docs/ARCHITECTURE.md:2: the invariant names no test (add `the_test_name`)",
                "docs/ARCHITECTURE.md:3: the invariant names `renamed_test`, which no test defines",
            ]
        );
        let mut problems = Vec::new();
        check_rust("t.rs", concat!("//! x\n#[cfg_attr(ci", ", ig", "nore)]\n"), &mut problems);
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
