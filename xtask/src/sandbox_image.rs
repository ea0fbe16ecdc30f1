//! `cargo xtask sandbox-image`: builds the default sandbox image locally (no registry is
//! reachable): a root filesystem of busybox (from Debian's `busybox-static`) with its applets and
//! the `arbe-sandboxd` executor built statically, imported with `docker import` as
//! `arbe-sandbox:latest` and labelled so the docker runtime runs commands through the executor,
//! and again as `arbe-sandbox:plain` without the label, so the runtime's exec-API path (what any
//! other image gets) meets the same conformance suite.

use std::{
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    process::{Command, Stdio},
};

/// The tag the docker runtime uses by default.
pub(crate) const TAG: &str = "arbe-sandbox:latest";
/// The same root filesystem without the executor label.
pub(crate) const PLAIN_TAG: &str = "arbe-sandbox:plain";
/// Where the executor lives in the image (the runtime reads the `arbe.executor` label).
const EXECUTOR: &str = "/usr/local/bin/arbe-sandboxd";

pub(crate) fn run() -> Result<(), String> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err(
            "/bin/busybox not found: install Debian's busybox-static (`apt-get install busybox-static`; .ci/run does)"
                .into(),
        );
    }
    let executor = build_executor()?;
    let root = std::env::temp_dir().join(format!("arbe-sandbox-rootfs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let res = build(busybox, &executor, &root);
    let _ = std::fs::remove_dir_all(&root);
    res
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// Builds `arbe-sandboxd` as a static binary (glibc's static archive; no libc in the image).
/// The isolated local runtime's tests run the same binary on the host.
pub(crate) fn build_executor() -> Result<std::path::PathBuf, String> {
    let host = Command::new("rustc").arg("-vV").output().map_err(io("run rustc -vV"))?;
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .ok_or("rustc -vV did not name the host")?;
    let target_dir = crate::root().join("target/sandboxd");
    crate::run(
        crate::cargo()
            .args(["build", "--release", "--locked", "-p", "arbe-sandboxd", "--target", &host, "--target-dir"])
            .arg(&target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )?;
    Ok(target_dir.join(&host).join("release/arbe-sandboxd"))
}

fn build(busybox: &Path, executor: &Path, root: &Path) -> Result<(), String> {
    for dir in ["bin", "usr/bin", "usr/local/bin", "etc", "root", "workspace", "tmp", "proc", "sys", "dev", "run"] {
        std::fs::create_dir_all(root.join(dir)).map_err(io("create the root filesystem"))?;
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).map_err(io("chmod /tmp"))?;
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(io("copy busybox"))?;
    let list = Command::new(busybox).arg("--list").output().map_err(io("run busybox --list"))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| !a.is_empty() && *a != "busybox") {
        symlink("busybox", root.join("bin").join(applet)).map_err(io("link an applet"))?;
    }
    symlink("/bin/busybox", root.join("usr/bin/env")).map_err(io("link /usr/bin/env"))?;
    std::fs::copy(executor, root.join(EXECUTOR.trim_start_matches('/'))).map_err(io("copy arbe-sandboxd"))?;
    // Commands run as `sandbox` (1000:1000, the docker runtime's SANDBOX_USER), which owns the
    // workspace; the executor runs as root and switches to it for each command.
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nsandbox:x:1000:1000::/workspace:/bin/sh\n")
        .map_err(io("write /etc/passwd"))?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nsandbox:x:1000:\n").map_err(io("write /etc/group"))?;

    let archive = root.with_extension("tar");
    // Everything root's, then the workspace again as the sandbox user's (the later entry wins).
    let tar = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "--exclude=./workspace", "-C"])
        .arg(root)
        .args(["-c", "-f"])
        .arg(&archive)
        .arg(".")
        .status()
        .map_err(io("run tar"))?;
    let workspace = Command::new("tar")
        .args(["--numeric-owner", "--owner=1000", "--group=1000", "-C"])
        .arg(root)
        .args(["-r", "-f"])
        .arg(&archive)
        .arg("./workspace")
        .status()
        .map_err(io("run tar"))?;
    if !tar.success() || !workspace.success() {
        return Err(format!("packing the root filesystem failed (tar: {tar}, {workspace})"));
    }
    let label = format!("LABEL arbe.executor={EXECUTOR}");
    let build = format!("LABEL arbe.build={}", build_id());
    let res = import(&archive, TAG, &[&label, &build]).and_then(|()| import(&archive, PLAIN_TAG, &[&build]));
    let _ = std::fs::remove_file(&archive);
    res?;
    eprintln!("xtask: built {TAG} and {PLAIN_TAG}");
    Ok(())
}

/// What the image is built from (the executor's source and this file), so `cargo xtask ci`
/// rebuilds an image older than either.
pub(crate) fn build_id() -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let src = crate::root().join("crates/arbe-sandboxd/src");
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(&src).map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    files.push(crate::root().join("crates/arbe-sandboxd/Cargo.toml"));
    files.push(crate::root().join("xtask/src/sandbox_image.rs"));
    for file in files {
        file.file_name().hash(&mut hasher);
        std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

fn import(archive: &Path, tag: &str, labels: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("docker");
    cmd.args([
        "import",
        "--change",
        "CMD [\"/bin/sh\"]",
        "--change",
        "WORKDIR /workspace",
        "--change",
        "ENV PATH=/usr/local/bin:/usr/bin:/bin",
    ]);
    for label in labels {
        cmd.args(["--change", label]);
    }
    let status = cmd.arg(archive).arg(tag).stdout(Stdio::null()).status().map_err(io("run docker import"))?;
    if !status.success() {
        return Err(format!("building {tag} failed (docker import: {status})"));
    }
    Ok(())
}
