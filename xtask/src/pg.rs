//! A throwaway PostgreSQL cluster for tests and benchmarks: a temporary data folder, a free
//! loopback port, started as a non-root user (postgres refuses to run as root), stopped and
//! removed on drop.

use std::{net::TcpListener, path::PathBuf, process::Command};

/// The variable the test suites read the server URL from (arbe_core::env_vars::ARBE_TEST_PG_URL).
pub(crate) const URL_VAR: &str = "ARBE_TEST_PG_URL";
/// The variable naming the server's bin folder, for tests that run `pg_dump`.
pub(crate) const BIN_VAR: &str = "ARBE_TEST_PG_BIN";

pub(crate) struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    run_as: Option<String>,
    port: u16,
}

impl Postgres {
    /// A cluster tuned for tests: nothing is flushed to disk (fsync off).
    pub(crate) fn start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// A cluster that flushes commits to disk as a deployment would, for benchmarks.
    pub(crate) fn start_durable() -> Result<Self, String> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Result<Self, String> {
        if let Ok(url) = std::env::var(URL_VAR) {
            return Err(format!(
                "{URL_VAR} is already set ({url}); unset it, or run `cargo nextest run` directly against that server"
            ));
        }
        let bin = find_bin()?;
        let dir = std::env::temp_dir().join(format!("arbe-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|err| format!("create {}: {err}", dir.display()))?;
        let run_as = if is_root() { Some(unprivileged_user()?) } else { None };
        if let Some(user) = &run_as {
            check(Command::new("chown").arg(user).arg(&dir), "chown the data folder")?;
        }
        let port = free_port()?;
        let mut pg = Self { bin, dir, run_as, port };
        let data = pg.dir.join("data");
        pg.check(
            pg.command("initdb").arg("-D").arg(&data).args([
                "-U",
                "arbe",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]),
            "initdb",
        )?;
        let tuning = if durable { "" } else { "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" };
        // A free port is picked by binding and releasing it; should another process take it
        // first, the start fails and the next attempt picks another.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} {tuning} -c max_connections=300",
                pg.port,
                pg.dir.display()
            );
            let started = pg.check(
                pg.command("pg_ctl")
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(pg.dir.join("server.log"))
                    .args(["-w", "-t", "60", "-o", &options, "start"]),
                "pg_ctl start",
            );
            match started {
                Ok(()) => break,
                Err(err) if attempt >= 3 => return Err(err),
                Err(_) => pg.port = free_port()?,
            }
        }
        eprintln!("xtask: PostgreSQL running at {} (data in {})", pg.url(), pg.dir.display());
        Ok(pg)
    }

    /// The folder of the server binaries, whose `pg_dump` matches the server's version.
    pub(crate) fn bin(&self) -> &std::path::Path {
        &self.bin
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://arbe@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    fn check(&self, cmd: &mut Command, what: &str) -> Result<(), String> {
        check(cmd, what).map_err(|err| {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            format!("{err}\n{log}")
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.command("pg_ctl").arg("-D").arg(&data).args(["-m", "immediate", "-w", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn check(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|err| format!("{what}: could not start {cmd:?}: {err}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The PostgreSQL server binaries: `ARBE_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`,
/// else the folder of `initdb` on `PATH`.
fn find_bin() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("ARBE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|it| {
            let version = it.file_name().to_str()?.parse().ok()?;
            let bin = it.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").exists()))
        .ok_or_else(|| {
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql (Debian: \
             `apt-get install postgresql`) or set ARBE_PG_BIN"
                .to_owned()
        })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| out.stdout.trim_ascii() == b"0").unwrap_or(false)
}

/// postgres refuses to run as root: use the `postgres` account, else `nobody`.
fn unprivileged_user() -> Result<String, String> {
    ["postgres", "nobody"]
        .into_iter()
        .find(|user| Command::new("id").arg(user).output().is_ok_and(|out| out.status.success()))
        .map(str::to_owned)
        .ok_or_else(|| "running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL".into())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| format!("find a free port: {err}"))?;
    listener.local_addr().map(|addr| addr.port()).map_err(|err| err.to_string())
}
