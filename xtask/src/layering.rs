//! The layering check (SPEC §1): a crate may depend only on crates of a strictly lower layer,
//! a runtime adapter only on arbe-core and arbe-runtime, nothing above arbe-runtime names an
//! adapter (adapters arrive as `Arc<dyn Runtime>`, wired by the binaries and tests), arbe-core
//! uses no async runtime, database or web crate, and arbe-sandboxd (it runs inside sandboxes)
//! depends on no arbe crate.

use std::{path::Path, process::Command};

use serde_json::Value;

/// Every workspace crate and its layer. A new crate must be added here, or the check fails.
const LAYERS: &[(&str, u8)] = &[
    ("arbe-core", 0),
    ("arbe-testkit", 0),
    ("arbe-store", 1),
    ("arbe-runtime", 1),
    ("arbe-llm", 1),
    ("arbe-api", 1),
    ("arbe-vault", 2),
    ("arbe-runtime-local", 2),
    ("arbe-runtime-docker", 2),
    ("arbe-runtime-ssh", 2),
    ("arbe-runtime-daytona", 2),
    ("arbe-runtime-sprite", 2),
    ("arbe-runtime-runpod", 2),
    ("arbe-sandboxd", 2),
    ("arbe-env", 3),
    ("arbe-dispatch", 4),
    ("arbe-server", 5),
    ("arbe-client", 5),
    ("arbe-cli", 6),
    ("arbe-tests", 7),
];

/// Tooling outside the product's layers.
const UNLAYERED: &[&str] = &["xtask"];

const ADAPTER_MAY_USE: &[&str] = &["arbe-core", "arbe-runtime"];

/// Library crates above the runtime trait: they hold `Arc<dyn Runtime>` and never name an
/// adapter. The binaries (server, CLI) and the test crate wire adapters in.
const NEVER_NAME_AN_ADAPTER: &[&str] = &["arbe-vault", "arbe-env", "arbe-dispatch", "arbe-client"];

/// What arbe-core (no I/O, layer 0) must not use.
const CORE_MAY_NOT_USE: &[&str] =
    &["tokio", "async-std", "sqlx", "axum", "hyper", "reqwest", "bollard", "russh", "tower", "tower-http"];

pub(crate) fn run(root: &Path) -> Result<(), String> {
    let metadata = metadata(root)?;
    let violations = check(&metadata);
    if violations.is_empty() { Ok(()) } else { Err(format!("layering violations:\n  {}", violations.join("\n  "))) }
}

fn metadata(root: &Path) -> Result<Value, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .map_err(|err| format!("cargo metadata: {err}"))?;
    if !out.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|err| format!("cargo metadata output: {err}"))
}

fn layer(name: &str) -> Option<u8> {
    LAYERS.iter().find(|(crate_name, _)| *crate_name == name).map(|(_, layer)| *layer)
}

/// Every violation in `cargo metadata` output, all at once.
fn check(metadata: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let packages = metadata["packages"].as_array().map(Vec::as_slice).unwrap_or_default();
    for package in packages {
        let name = package["name"].as_str().unwrap_or_default();
        if UNLAYERED.contains(&name) {
            continue;
        }
        let Some(own) = layer(name) else {
            violations.push(format!("unknown crate {name}: add it to LAYERS in xtask/src/layering.rs"));
            continue;
        };
        let deps = package["dependencies"].as_array().map(Vec::as_slice).unwrap_or_default();
        for dep in deps {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            // Dev-dependencies may reach anywhere: tests wire real pieces together.
            let kind = dep["kind"].as_str();
            let normal = matches!(kind, None | Some("build"));
            if name == "arbe-core" && normal && CORE_MAY_NOT_USE.contains(&dep_name) {
                violations.push(format!("arbe-core does no I/O: it may not depend on {dep_name}"));
            }
            if name == "arbe-sandboxd" && normal && dep_name.starts_with("arbe-") {
                violations.push(format!("arbe-sandboxd runs inside sandboxes: it may not depend on {dep_name}"));
            }
            if NEVER_NAME_AN_ADAPTER.contains(&name) && normal && dep_name.starts_with("arbe-runtime-") {
                violations.push(format!(
                    "{name} names the adapter {dep_name}: take `Arc<dyn Runtime>` from a registry the binary builds"
                ));
            }
            if !dep_name.starts_with("arbe-") || !matches!(kind, None | Some("build")) {
                continue;
            }
            let Some(theirs) = layer(dep_name) else {
                violations.push(format!("{name} depends on unknown crate {dep_name}: add it to LAYERS"));
                continue;
            };
            if theirs >= own {
                violations.push(format!("wrong-way: {name} (L{own}) -> {dep_name} (L{theirs})"));
            } else if name.starts_with("arbe-runtime-") && !ADAPTER_MAY_USE.contains(&dep_name) {
                violations.push(format!(
                    "adapter reaches past runtime: {name} -> {dep_name} (adapters may use only arbe-core and arbe-runtime)"
                ));
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn package(name: &str, deps: &[(&str, Option<&str>)]) -> Value {
        let deps: Vec<Value> = deps.iter().map(|(dep, kind)| json!({ "name": dep, "kind": kind })).collect();
        json!({ "name": name, "dependencies": deps })
    }

    #[test]
    fn workspace_layering_holds() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let violations = check(&metadata(root).unwrap());
        assert!(violations.is_empty(), "{violations:#?}");
    }

    #[test]
    fn layering_flags_every_wrong_way_dependency() {
        let metadata = json!({ "packages": [
            package("arbe-core", &[("arbe-store", None)]),
            package("arbe-store", &[("arbe-core", None), ("arbe-runtime", None)]),
            package("arbe-runtime-docker", &[("arbe-runtime", None), ("arbe-store", None)]),
            package("arbe-vault", &[("arbe-store", None), ("arbe-env", Some("dev"))]),
            package("arbe-mystery", &[]),
            package("arbe-env", &[("arbe-build-helper", Some("build"))]),
            package("arbe-dispatch", &[("arbe-runtime-docker", None), ("arbe-runtime-local", Some("dev"))]),
            package("arbe-sandboxd", &[("arbe-core", None)]),
            package("arbe-testkit", &[("tokio", None)]),
        ]});
        let mut metadata = metadata;
        metadata["packages"][0]["dependencies"].as_array_mut().unwrap().push(json!({"name": "tokio", "kind": null}));
        assert_eq!(
            check(&metadata),
            [
                "wrong-way: arbe-core (L0) -> arbe-store (L1)",
                "arbe-core does no I/O: it may not depend on tokio",
                "wrong-way: arbe-store (L1) -> arbe-runtime (L1)",
                "adapter reaches past runtime: arbe-runtime-docker -> arbe-store (adapters may use only arbe-core and arbe-runtime)",
                "unknown crate arbe-mystery: add it to LAYERS in xtask/src/layering.rs",
                "arbe-env depends on unknown crate arbe-build-helper: add it to LAYERS",
                "arbe-dispatch names the adapter arbe-runtime-docker: take `Arc<dyn Runtime>` from a registry the binary builds",
                "arbe-sandboxd runs inside sandboxes: it may not depend on arbe-core",
            ]
        );
    }
}
