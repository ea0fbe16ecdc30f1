//! Project automation, run as `cargo xtask <task>` (rust-analyzer's xtask pattern).
//!
//! Tasks shell out to cargo and the PostgreSQL binaries; they need nothing installed beyond
//! what `.ci/run` installs.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod api;
mod layering;
mod pg;
mod sandbox_image;
mod tidy;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci [--keep-going]     fmt, clippy, layering, tidy, deny, then every test on SQLite and PostgreSQL
  test [ARGS...]        cargo nextest run --workspace ARGS, with a throwaway PostgreSQL
  layering              check that crates depend only on lower layers (SPEC §1)
  tidy                  check module docs, no ignored or should_panic tests, workspace deps
  sandbox-image         build the default docker sandbox image (arbe-sandbox:latest) locally
  openapi               write the API's OpenAPI document, as the code generates it, to docs/openapi.json
  schemathesis          fuzz a live arbe-server against its OpenAPI document (every check, stateful too)
  bench <area>          run a benchmark (targets judged; non-zero exit on a miss) with a throwaway,
                        durable PostgreSQL; areas: store, vault, runtime, dispatch, server, cli, all
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("ci") => ci(args.iter().any(|a| a == "--keep-going")),
        Some("test") => test(&args[1..]),
        Some("layering") => layering::run(&root()),
        Some("tidy") => tidy::run(&root()),
        Some("bench") => bench(args.get(1).map(String::as_str)),
        Some("sandbox-image") => sandbox_image::run(),
        Some("openapi") => api::write_openapi(),
        Some("schemathesis") => api::schemathesis(),
        _ => Err(USAGE.to_owned()),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace root").to_owned()
}

/// Runs a command in the workspace root, failing with its command line if it fails.
pub(crate) fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let status = cmd.current_dir(root()).status().map_err(|err| format!("could not start {shown}: {err}"))?;
    if status.success() { Ok(()) } else { Err(format!("{shown} failed ({status})")) }
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ci(keep_going: bool) -> Result<(), String> {
    type Step = (&'static str, fn() -> Result<(), String>);
    let steps: &[Step] = &[
        ("fmt", || run(cargo().args(["fmt", "--all", "--check"]))),
        ("clippy", || {
            run(cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))
        }),
        ("layering", || layering::run(&root())),
        ("tidy", || tidy::run(&root())),
        ("deny", deny),
        ("test", || test(&[])),
        ("schemathesis", api::schemathesis),
    ];
    let mut failed = Vec::new();
    for (name, step) in steps {
        let started = Instant::now();
        eprintln!("==> {name}");
        match step() {
            Ok(()) => eprintln!("==> {name} ok ({:.1}s)", started.elapsed().as_secs_f64()),
            Err(err) => {
                eprintln!("==> {name} FAILED: {err}");
                failed.push(*name);
                if !keep_going {
                    break;
                }
            }
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("ci failed at: {}", failed.join(", "))) }
}

fn deny() -> Result<(), String> {
    // `advisories` needs the RustSec database from github.com, which this network cannot reach.
    run(cargo().args(["deny", "--locked", "check", "--hide-inclusion-graph", "licenses", "bans", "sources"]))
        .map_err(|err| format!("{err}\nhint: install it with `cargo install cargo-deny --locked` (.ci/run does)"))
}

/// Runs the whole test suite with a throwaway PostgreSQL, so both backends are exercised, and
/// with the sandbox image the docker tests need.
fn test(args: &[String]) -> Result<(), String> {
    ensure_sandbox_image()?;
    let pg = pg::Postgres::start()?;
    let mut cmd = cargo();
    cmd.args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]).args(args);
    cmd.env(pg::URL_VAR, pg.url()).env(pg::BIN_VAR, pg.bin());
    let res = run(&mut cmd).and_then(|()| {
        // Every benchmark once, in the test profile: a smoke run proves it runs and prints
        // (targets are judged by `cargo xtask bench <area>`).
        if args.is_empty() {
            run(cargo()
                .args(["test", "--locked"])
                .args(BENCHES.iter().flat_map(|(package, _)| ["-p", package]))
                .args(BENCHES.iter().flat_map(|(_, bench)| ["--bench", bench]))
                .env(pg::URL_VAR, pg.url())
                .env(pg::BIN_VAR, pg.bin()))
        } else {
            Ok(())
        }
    });
    drop(pg);
    res?;
    // nextest does not run doctests.
    run(cargo().args(["test", "--workspace", "--locked", "--doc"]))
}

/// Every benchmark: its package and target.
const BENCHES: &[(&str, &str)] = &[
    ("arbe-store", "store"),
    ("arbe-vault", "vault"),
    ("arbe-dispatch", "dispatch"),
    ("arbe-tests", "runtime"),
    ("arbe-server", "server"),
    ("arbe-cli", "cli"),
];

/// Builds the sandbox image when the engine answers and the image is missing or predates the
/// executor. Without an engine the docker tests fail on their own, saying so.
pub(crate) fn ensure_sandbox_image() -> Result<(), String> {
    let engine = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
    if !engine.is_ok_and(|out| out.status.success()) {
        eprintln!("xtask: no docker engine answers; the docker runtime tests will fail");
        return Ok(());
    }
    // Both images must carry the build id of today's sources; an older one is built again.
    let want = sandbox_image::build_id();
    let current = [sandbox_image::TAG, sandbox_image::PLAIN_TAG].iter().all(|tag| {
        let label = Command::new("docker")
            .args(["image", "inspect", "--format", "{{index .Config.Labels \"arbe.build\"}}", tag])
            .output();
        label.is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == want)
    });
    if current {
        // The isolated local runtime's tests use the same static executor on the host.
        sandbox_image::build_executor().map(drop)
    } else {
        sandbox_image::run()
    }
}

/// Benchmark areas: (area, package, bench target).
const BENCH_AREAS: [(&str, &str, &str); 6] = [
    ("store", "arbe-store", "store"),
    ("vault", "arbe-vault", "vault"),
    ("runtime", "arbe-tests", "runtime"),
    ("dispatch", "arbe-dispatch", "dispatch"),
    ("server", "arbe-server", "server"),
    ("cli", "arbe-cli", "cli"),
];

fn bench(area: Option<&str>) -> Result<(), String> {
    let areas: Vec<_> = match area {
        Some("all") => BENCH_AREAS.to_vec(),
        Some(name) => match BENCH_AREAS.iter().find(|(area, ..)| *area == name) {
            Some(found) => vec![*found],
            None => {
                return Err(format!(
                    "unknown bench area `{name}`: must be store, vault, runtime, dispatch, server, cli or all"
                ));
            }
        },
        None => return Err(format!("bench needs an area\n{USAGE}")),
    };
    if areas.iter().any(|(area, ..)| *area == "runtime") {
        ensure_sandbox_image()?;
    }
    // Durable, as a deployment runs it: commits reach the disk.
    let pg = pg::Postgres::start_durable()?;
    let mut failed = Vec::new();
    for (area, package, bench) in areas {
        eprintln!("==> bench {area}");
        let res = run(cargo()
            .args(["bench", "--locked", "-p", package, "--bench", bench])
            .env(pg::URL_VAR, pg.url())
            .env(pg::BIN_VAR, pg.bin()));
        if res.is_err() {
            failed.push(area);
        }
    }
    drop(pg);
    if failed.is_empty() { Ok(()) } else { Err(format!("benchmarks missed a target or failed: {}", failed.join(", "))) }
}
