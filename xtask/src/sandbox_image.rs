//! `cargo xtask sandbox-image`: builds the default sandbox image locally (no registry is
//! reachable): a root filesystem of busybox (from Debian's `busybox-static`) with its applets,
//! imported with `docker import` as `arbe-sandbox:latest`.

use std::{
    os::unix::fs::{PermissionsExt, symlink},
    path::Path,
    process::{Command, Stdio},
};

/// The tag the docker runtime uses by default.
pub(crate) const TAG: &str = "arbe-sandbox:latest";

pub(crate) fn run() -> Result<(), String> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        return Err(
            "/bin/busybox not found: install Debian's busybox-static (`apt-get install busybox-static`; .ci/run does)"
                .into(),
        );
    }
    let root = std::env::temp_dir().join(format!("arbe-sandbox-rootfs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let res = build(busybox, &root);
    let _ = std::fs::remove_dir_all(&root);
    res
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn build(busybox: &Path, root: &Path) -> Result<(), String> {
    for dir in ["bin", "usr/bin", "etc", "root", "workspace", "tmp", "proc", "sys", "dev", "run"] {
        std::fs::create_dir_all(root.join(dir)).map_err(io("create the root filesystem"))?;
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).map_err(io("chmod /tmp"))?;
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(io("copy busybox"))?;
    let list = Command::new(busybox).arg("--list").output().map_err(io("run busybox --list"))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| !a.is_empty() && *a != "busybox") {
        symlink("busybox", root.join("bin").join(applet)).map_err(io("link an applet"))?;
    }
    symlink("/bin/busybox", root.join("usr/bin/env")).map_err(io("link /usr/bin/env"))?;
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").map_err(io("write /etc/passwd"))?;
    std::fs::write(root.join("etc/group"), "root:x:0:\n").map_err(io("write /etc/group"))?;

    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(io("run tar"))?;
    let import = Command::new("docker")
        .args([
            "import",
            "--change",
            "CMD [\"/bin/sh\"]",
            "--change",
            "WORKDIR /workspace",
            "--change",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin",
            "-",
            TAG,
        ])
        .stdin(tar.stdout.take().expect("piped"))
        .status()
        .map_err(io("run docker import"))?;
    let tar_status = tar.wait().map_err(io("wait for tar"))?;
    if !tar_status.success() || !import.success() {
        return Err(format!("building {TAG} failed (tar: {tar_status}, docker import: {import})"));
    }
    eprintln!("xtask: built {TAG}");
    Ok(())
}
