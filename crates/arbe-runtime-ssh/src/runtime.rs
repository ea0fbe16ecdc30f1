//! `SshRuntime`: sandboxes as folders on one SSH host; one persistent session, a channel per
//! command. Every action is a shell command (seed 004), files included.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use arbe_core::{ErrorKind, HouseId, Labels, SandboxId, SandboxState};
use arbe_runtime::{
    Capabilities, Capture, CheckStatus, Command, Diagnosis, ExecOutcome, ExecRequest, ExternalId, HOUSE_LABEL,
    OutputSink, Result, Runtime, RuntimeError, SANDBOX_LABEL, SandboxInfo, SandboxSpec, Stream, check_workspace_path,
    shell_quote as quote,
};
use russh::{
    ChannelMsg,
    client::{self, Handle},
    keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate},
};
use serde::{Deserialize, Serialize};

use crate::{HostKeyPolicy, NAME, SshConfig};

/// The ssh runtime for one host.
#[derive(Clone)]
pub struct SshRuntime {
    config: Arc<SshConfig>,
    key: Arc<PrivateKey>,
    session: Arc<tokio::sync::Mutex<Option<Arc<Handle<HostCheck>>>>>,
}

impl std::fmt::Debug for SshRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshRuntime").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Kills a running command's process group when its exec future is dropped before the command
/// ended.
struct KillOnDrop {
    runtime: Option<SshRuntime>,
    op: &'static str,
    pidfile: Option<String>,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let (Some(runtime), Some(pidfile)) = (self.runtime.take(), self.pidfile.take()) else { return };
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let op = self.op;
        handle.spawn(async move {
            if let Err(err) = runtime.kill_group(op, &pidfile).await {
                tracing::warn!(error = %err, "could not kill a dropped command");
            }
        });
    }
}

/// Checks the host's key by the configured policy.
struct HostCheck {
    host: String,
    port: u16,
    policy: HostKeyPolicy,
}

impl client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else { return Ok(false) };
        Ok(match &self.policy {
            HostKeyPolicy::KnownHosts(path) => {
                russh::keys::check_known_hosts_path(&self.host, self.port, key, path).unwrap_or(false)
            }
            HostKeyPolicy::TrustOnFirstUse(path) => {
                match russh::keys::check_known_hosts_path(&self.host, self.port, key, path) {
                    Ok(true) => true,
                    // Unknown host: learn it. A changed key (an Err) is refused.
                    Ok(false) => {
                        tracing::info!(host = %self.host, port = self.port, "trusting a new host key on first use");
                        russh::keys::known_hosts::learn_known_hosts_path(&self.host, self.port, key, path).is_ok()
                    }
                    Err(_) => false,
                }
            }
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    state: SandboxState,
    labels: Labels,
}

fn err(op: &'static str, kind: ErrorKind, message: impl Into<String>) -> RuntimeError {
    RuntimeError::new(NAME, op, kind, message)
}

/// Runs on the host for every command, with shell builtins only (every extra process costs a
/// fork and exec per command): refuses a missing or stopped sandbox, reads the command's
/// variables from the first bytes of standard input (so values never appear in a process list
/// or on disk), records its process id for a timeout to kill its group, and runs it in its folder.
const WRAPPER: &str = r#"n=$1; meta=$2; pidfile=$3; dir=$4; shift 4
if [ -n "$meta" ]; then
  [ -f "$meta" ] || { echo arbe-sandbox-missing >&2; exit 255; }
  IFS= read -r state < "$meta"
  case $state in *'"state":"started"'*) ;; *) echo arbe-sandbox-stopped >&2; exit 255 ;; esac
fi
if [ "$n" -gt 0 ]; then eval "$(dd bs=1 count="$n" 2>/dev/null)"; fi
[ -n "$pidfile" ] && echo $$ > "$pidfile"
cd -- "$dir" || exit 126
"$@"; rc=$?
[ -n "$pidfile" ] && rm -f -- "$pidfile"
exit $rc"#;

/// Kills the process group of every command recorded in a run folder.
const KILL_ALL: &str = r#"for p in "$1"/*.pid; do [ -f "$p" ] || continue; pg=$(cut -d' ' -f5 "/proc/$(cat "$p")/stat" 2>/dev/null); [ -n "$pg" ] && kill -9 -"$pg" 2>/dev/null; rm -f -- "$p"; done; true"#;

/// Where a sandbox lives, relative to the user's home.
struct Paths {
    workspace: String,
    meta: String,
    run: String,
}

/// One command's plumbing.
struct Raw<'a> {
    argv: Vec<String>,
    env: &'a [(String, arbe_core::SecretValue)],
    dir: String,
    meta: Option<&'a str>,
    run: Option<&'a str>,
    stdin: Option<&'a [u8]>,
    timeout: Duration,
}

impl SshRuntime {
    /// A runtime for the host in `config`. Parses the key now; connects on first use.
    pub fn new(config: SshConfig) -> Result<Self> {
        let key = russh::keys::decode_secret_key(&config.private_key, None).map_err(|_| {
            err("connect", ErrorKind::Misconfigured, "the private key is not a valid OpenSSH private key")
        })?;
        Ok(Self { config: Arc::new(config), key: Arc::new(key), session: Arc::default() })
    }

    fn paths(&self, op: &'static str, id: &ExternalId) -> Result<Paths> {
        let (house, sandbox) = id.0.split_once('/').ok_or_else(|| RuntimeError::not_found(NAME, op, &id.0))?;
        let (Ok(house), Ok(sandbox)) = (HouseId::parse(house), SandboxId::parse(sandbox)) else {
            return Err(RuntimeError::not_found(NAME, op, &id.0));
        };
        let dir = format!("{}/{house}", self.config.base_dir);
        Ok(Paths {
            workspace: format!("{dir}/{sandbox}"),
            meta: format!("{dir}/{sandbox}.json"),
            run: format!("{dir}/.{sandbox}.run"),
        })
    }

    async fn connect(&self) -> Result<Arc<Handle<HostCheck>>> {
        let c = &self.config;
        let where_ = format!("{}@{}:{}", c.user, c.host, c.port);
        let client_config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            nodelay: true,
            ..client::Config::default()
        });
        let check = HostCheck { host: c.host.clone(), port: c.port, policy: c.host_keys.clone() };
        let connecting = client::connect(client_config, (c.host.as_str(), c.port), check);
        let mut handle = match tokio::time::timeout(c.connect_timeout, connecting).await {
            Err(_) => {
                return Err(err(
                    "connect",
                    ErrorKind::Unavailable,
                    format!("{where_} did not answer within {:?}", c.connect_timeout),
                ));
            }
            Ok(Err(russh::Error::UnknownKey)) => {
                return Err(err(
                    "connect",
                    ErrorKind::Unauthenticated,
                    format!("the host key of {where_} is not trusted (check known_hosts)"),
                ));
            }
            Ok(Err(e)) => {
                return Err(
                    err("connect", ErrorKind::Unavailable, format!("cannot reach {where_}: {e}")).with_source(e)
                );
            }
            Ok(Ok(handle)) => handle,
        };
        let auth = handle
            .authenticate_publickey(c.user.clone(), PrivateKeyWithHashAlg::new(self.key.clone(), None))
            .await
            .map_err(|e| err("connect", ErrorKind::Unavailable, format!("authentication with {where_} failed: {e}")))?;
        if !auth.success() {
            return Err(err("connect", ErrorKind::Unauthenticated, format!("{where_} refused the key")));
        }
        Ok(Arc::new(handle))
    }

    /// The live session, connecting (again) when there is none or it dropped.
    async fn session(&self, fresh: bool) -> Result<Arc<Handle<HostCheck>>> {
        let mut slot = self.session.lock().await;
        match &*slot {
            Some(handle) if !fresh && !handle.is_closed() => Ok(handle.clone()),
            _ => {
                let handle = self.connect().await?;
                *slot = Some(handle.clone());
                Ok(handle)
            }
        }
    }

    /// A new channel on the session, reconnecting once if the session dropped.
    async fn channel(&self) -> Result<russh::Channel<client::Msg>> {
        match self.session(false).await?.channel_open_session().await {
            Ok(channel) => Ok(channel),
            Err(_) => {
                tracing::info!(host = %self.config.host, "the ssh session dropped; reconnecting");
                self.session(true)
                    .await?
                    .channel_open_session()
                    .await
                    .map_err(|e| err("exec", ErrorKind::Unavailable, format!("cannot open a channel: {e}")))
            }
        }
    }

    /// Runs one command on the host through the wrapper, streaming into `capture`.
    async fn raw(&self, op: &'static str, raw: Raw<'_>, capture: &mut Capture<'_>) -> Result<ExecOutcome> {
        let started = Instant::now();
        let env_script = arbe_runtime::env_script(raw.env);
        let pidfile = raw.run.map(|run| format!("{run}/{}.pid", arbe_core::JobId::new()));
        let mut line = format!(
            "sh -c {} arbe {} {} {} {}",
            quote(WRAPPER),
            env_script.len(),
            quote(raw.meta.unwrap_or("")),
            quote(pidfile.as_deref().unwrap_or("")),
            quote(&raw.dir)
        );
        for arg in &raw.argv {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        let channel = self.channel().await?;
        channel.exec(true, line).await.map_err(|e| err(op, ErrorKind::Unavailable, format!("exec failed: {e}")))?;
        let (mut read, write) = channel.split();
        let mut input = zeroize::Zeroizing::new(env_script.as_bytes().to_vec());
        input.extend_from_slice(raw.stdin.unwrap_or_default());
        tokio::spawn(async move {
            let _ = write.data(&input[..]).await;
            let _ = write.eof().await;
        });
        // If this future is dropped before the command ends (a cancelled dispatch), the guard
        // kills its process group: closing the channel alone leaves it running on the host.
        let mut guard = KillOnDrop { runtime: pidfile.as_ref().map(|_| self.clone()), op, pidfile: pidfile.clone() };
        let deadline =
            tokio::time::sleep(if raw.timeout.is_zero() { Duration::from_secs(u64::MAX / 4) } else { raw.timeout });
        tokio::pin!(deadline);
        let (mut code, mut signal, mut timed_out) = (None, None, false);
        loop {
            tokio::select! {
                msg = read.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => capture.push(Stream::Stdout, &data),
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => capture.push(Stream::Stderr, &data),
                    Some(ChannelMsg::ExitStatus { exit_status }) => code = Some(exit_status as i32),
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => signal = Some(signal_number(&signal_name)),
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
                () = &mut deadline => {
                    if timed_out {
                        // The kill did not end it (no process record): stop waiting; dropping
                        // the channel closes it.
                        break;
                    }
                    timed_out = true;
                    deadline.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(5));
                    if let Some(pidfile) = &pidfile {
                        Box::pin(self.kill_group(op, pidfile)).await?;
                    }
                }
            }
        }
        guard.runtime = None;
        Ok(ExecOutcome { exit_code: code, signal, timed_out, duration: started.elapsed(), ..ExecOutcome::default() })
    }

    /// Kills the process group of the command whose wrapper recorded its pid in `pidfile`,
    /// waiting briefly for the record (a command dropped at once may not have written it yet).
    async fn kill_group(&self, op: &'static str, pidfile: &str) -> Result<()> {
        let kill = format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do [ -s {0} ] && break; sleep 0.2; done; \
             pg=$(cut -d' ' -f5 \"/proc/$(cat {0})/stat\" 2>/dev/null); [ -n \"$pg\" ] && kill -9 -\"$pg\"; rm -f -- {0}",
            quote(pidfile)
        );
        let mut ignore = ();
        let mut quiet = Capture::new(&mut ignore, 0);
        let raw = Raw {
            argv: vec!["sh".into(), "-c".into(), kill],
            env: &[],
            dir: ".".into(),
            meta: None,
            run: None,
            stdin: None,
            timeout: Duration::from_secs(10),
        };
        Box::pin(self.raw(op, raw, &mut quiet)).await.map(drop)
    }

    /// Runs an internal shell script in the home folder and returns (code, stdout, stderr).
    async fn script(
        &self,
        op: &'static str,
        script: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<(Option<i32>, Vec<u8>, Vec<u8>)> {
        let mut argv = vec!["sh".to_owned(), "-c".to_owned(), script.to_owned(), "arbe".to_owned()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let mut ignore = ();
        let mut capture = Capture::new(&mut ignore, 64 * 1024 * 1024);
        let raw = Raw {
            argv,
            env: &[],
            dir: ".".into(),
            meta: None,
            run: None,
            stdin,
            timeout: self.config.exec_timeout.max(Duration::from_secs(30)),
        };
        let outcome = self.raw(op, raw, &mut capture).await?;
        let outcome = capture.finish(outcome);
        Ok((outcome.exit_code, outcome.stdout, outcome.stderr))
    }

    async fn meta(&self, op: &'static str, id: &ExternalId) -> Result<(Paths, Meta)> {
        let paths = self.paths(op, id)?;
        let (code, out, _) = self.script(op, r#"cat -- "$1" 2>/dev/null"#, &[&paths.meta], None).await?;
        if code != Some(0) {
            return Err(RuntimeError::not_found(NAME, op, &id.0));
        }
        let meta = serde_json::from_slice(&out)
            .map_err(|e| err(op, ErrorKind::Internal, format!("sandbox state is corrupt: {e}")))?;
        Ok((paths, meta))
    }

    async fn write_meta(&self, op: &'static str, paths: &Paths, meta: &Meta) -> Result<()> {
        let text = serde_json::to_vec(meta).expect("meta serializes");
        let (code, _, errs) =
            self.script(op, r#"cat > "$1.tmp" && mv -f -- "$1.tmp" "$1""#, &[&paths.meta], Some(&text)).await?;
        if code != Some(0) {
            return Err(err(
                op,
                ErrorKind::Internal,
                format!("writing sandbox state failed: {}", String::from_utf8_lossy(&errs).trim()),
            ));
        }
        Ok(())
    }

    async fn set_state(&self, op: &'static str, id: &ExternalId, state: SandboxState) -> Result<()> {
        let (paths, mut meta) = self.meta(op, id).await?;
        if state != SandboxState::Started {
            self.script(op, KILL_ALL, &[&paths.run], None).await?;
        }
        meta.state = state;
        self.write_meta(op, &paths, &meta).await
    }
}

fn signal_number(sig: &russh::Sig) -> i32 {
    match sig {
        russh::Sig::HUP => 1,
        russh::Sig::INT => 2,
        russh::Sig::QUIT => 3,
        russh::Sig::ILL => 4,
        russh::Sig::ABRT => 6,
        russh::Sig::FPE => 8,
        russh::Sig::KILL => 9,
        russh::Sig::USR1 => 10,
        russh::Sig::SEGV => 11,
        russh::Sig::PIPE => 13,
        russh::Sig::ALRM => 14,
        russh::Sig::TERM => 15,
        _ => -1,
    }
}

/// A stderr marker from the wrapper, mapped to what it means.
fn wrapper_refusal(op: &'static str, id: &ExternalId, outcome: &ExecOutcome) -> Option<RuntimeError> {
    if outcome.exit_code != Some(255) {
        return None;
    }
    match outcome.stderr.as_slice() {
        b"arbe-sandbox-missing\n" => Some(RuntimeError::not_found(NAME, op, &id.0)),
        b"arbe-sandbox-stopped\n" => {
            Some(err(op, ErrorKind::Conflict, format!("sandbox {id} is stopped; start it first")))
        }
        _ => None,
    }
}

#[async_trait::async_trait]
impl Runtime for SshRuntime {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            isolation: arbe_runtime::Isolation::SharedAccount,
            persistent_fs: true,
            exec_streaming: true,
            file_transfer: true,
            ..Capabilities::default()
        }
    }

    async fn provision(&self, spec: &SandboxSpec) -> Result<SandboxInfo> {
        let id = ExternalId(format!("{}/{}", spec.house_id, spec.sandbox_id));
        let paths = self.paths("provision", &id)?;
        let (code, _, errs) = self
            .script(
                "provision",
                r#"mkdir -p -- "$1" "$2" && chmod 700 -- "$1" "$2" "$(dirname "$1")""#,
                &[&paths.workspace, &paths.run],
                None,
            )
            .await?;
        if code != Some(0) {
            return Err(err(
                "provision",
                ErrorKind::Internal,
                format!("creating the workspace failed: {}", String::from_utf8_lossy(&errs).trim()),
            ));
        }
        let mut pairs: Vec<(String, String)> = spec.labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        pairs.push((HOUSE_LABEL.into(), spec.house_id.to_string()));
        pairs.push((SANDBOX_LABEL.into(), spec.sandbox_id.to_string()));
        let labels = Labels::parse(pairs).map_err(|e| err("provision", ErrorKind::InvalidInput, e.to_string()))?;
        let meta = Meta { state: SandboxState::Started, labels };
        self.write_meta("provision", &paths, &meta).await?;
        Ok(SandboxInfo { external_id: id, state: meta.state, image: None, labels: meta.labels })
    }

    async fn get(&self, id: &ExternalId) -> Result<SandboxInfo> {
        let (_, meta) = self.meta("get", id).await?;
        Ok(SandboxInfo { external_id: id.clone(), state: meta.state, image: None, labels: meta.labels })
    }

    async fn list(&self, labels: &Labels) -> Result<Vec<SandboxInfo>> {
        let script =
            r#"for f in "$1"/*/*.json; do [ -f "$f" ] || continue; printf '%s\n' "$f"; cat -- "$f"; echo; done"#;
        let (_, out, _) = self.script("list", script, &[&self.config.base_dir], None).await?;
        let text = String::from_utf8_lossy(&out);
        let mut found = Vec::new();
        let mut lines = text.lines();
        while let (Some(path), Some(json)) = (lines.next(), lines.next()) {
            let Ok(meta) = serde_json::from_str::<Meta>(json) else { continue };
            let mut parts = path.rsplit('/');
            let (Some(file), Some(house)) = (parts.next(), parts.next()) else { continue };
            let Some(sandbox) = file.strip_suffix(".json") else { continue };
            if labels.iter().all(|(k, v)| meta.labels.get(k) == Some(v)) {
                found.push(SandboxInfo {
                    external_id: ExternalId(format!("{house}/{sandbox}")),
                    state: meta.state,
                    image: None,
                    labels: meta.labels,
                });
            }
        }
        found.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        Ok(found)
    }

    async fn start(&self, id: &ExternalId) -> Result<()> {
        self.set_state("start", id, SandboxState::Started).await
    }

    async fn stop(&self, id: &ExternalId) -> Result<()> {
        self.set_state("stop", id, SandboxState::Stopped).await
    }

    async fn destroy(&self, id: &ExternalId) -> Result<()> {
        let (paths, _) = self.meta("destroy", id).await?;
        self.script("destroy", KILL_ALL, &[&paths.run], None).await?;
        let (code, _, errs) = self
            .script("destroy", r#"rm -rf -- "$1" "$2" "$3""#, &[&paths.workspace, &paths.meta, &paths.run], None)
            .await?;
        if code != Some(0) {
            return Err(err(
                "destroy",
                ErrorKind::Internal,
                format!("removing the sandbox failed: {}", String::from_utf8_lossy(&errs).trim()),
            ));
        }
        Ok(())
    }

    async fn exec(&self, id: &ExternalId, req: ExecRequest, out: &mut (dyn OutputSink + '_)) -> Result<ExecOutcome> {
        req.validate().map_err(|e| err("exec", ErrorKind::InvalidInput, e.to_string()))?;
        let paths = self.paths("exec", id)?;
        let dir = match &req.cwd {
            Some(dir) if dir.starts_with('/') => dir.clone(),
            Some(dir) => format!("{}/{dir}", paths.workspace),
            None => paths.workspace.clone(),
        };
        let argv = match &req.command {
            Command::Shell(text) => vec!["sh".to_owned(), "-c".to_owned(), text.clone()],
            Command::Argv(argv) => argv.clone(),
        };
        let mut capture = Capture::new(out, req.output_cap);
        let raw = Raw {
            argv,
            env: &req.env,
            dir,
            meta: Some(&paths.meta),
            run: Some(&paths.run),
            stdin: req.stdin.as_deref(),
            timeout: req.timeout.unwrap_or(self.config.exec_timeout),
        };
        let outcome = self.raw("exec", raw, &mut capture).await?;
        let outcome = capture.finish(outcome);
        if let Some(refusal) = wrapper_refusal("exec", id, &outcome) {
            return Err(refusal);
        }
        Ok(outcome)
    }

    async fn put_file(&self, id: &ExternalId, path: &str, contents: &[u8]) -> Result<()> {
        check_workspace_path(NAME, "put_file", path)?;
        let (paths, _) = self.meta("put_file", id).await?;
        let target = format!("{}/{path}", paths.workspace);
        let max = self.config.workspace_max_bytes;
        if max > 0 {
            let script = r#"du -sk -- "$1" | cut -f1; wc -c < "$2" 2>/dev/null || echo 0"#;
            let (_, out, _) = self.script("put_file", script, &[&paths.workspace, &target], None).await?;
            let text = String::from_utf8_lossy(&out);
            let mut numbers = text.split_whitespace().map(|n| n.parse::<u64>().unwrap_or(0));
            let (used_kib, existing) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
            if (used_kib * 1024).saturating_sub(existing) + contents.len() as u64 > max {
                return Err(err(
                    "put_file",
                    ErrorKind::QuotaExceeded,
                    format!("the workspace_bytes quota of {max} bytes would be exceeded"),
                ));
            }
        }
        let (code, _, errs) = self
            .script("put_file", r#"mkdir -p -- "$(dirname -- "$1")" && cat > "$1""#, &[&target], Some(contents))
            .await?;
        if code != Some(0) {
            return Err(err(
                "put_file",
                ErrorKind::Internal,
                format!("writing the file failed: {}", String::from_utf8_lossy(&errs).trim()),
            ));
        }
        Ok(())
    }

    async fn get_file(&self, id: &ExternalId, path: &str) -> Result<Vec<u8>> {
        check_workspace_path(NAME, "get_file", path)?;
        let (paths, _) = self.meta("get_file", id).await?;
        let target = format!("{}/{path}", paths.workspace);
        let (code, out, errs) = self.script("get_file", r#"cat -- "$1""#, &[&target], None).await?;
        if code != Some(0) {
            let errs = String::from_utf8_lossy(&errs);
            let kind = if errs.contains("No such file") { ErrorKind::NotFound } else { ErrorKind::Internal };
            return Err(err("get_file", kind, format!("reading {path:?} failed: {}", errs.trim())));
        }
        Ok(out)
    }

    async fn ping(&self) -> Result<()> {
        let (code, _, _) = self.script("ping", "true", &[], None).await?;
        if code == Some(0) { Ok(()) } else { Err(err("ping", ErrorKind::Unavailable, "the host could not run `true`")) }
    }

    async fn diagnose(&self) -> Diagnosis {
        let mut d = Diagnosis::new(NAME);
        let c = &self.config;
        let where_ = format!("{}@{}:{}", c.user, c.host, c.port);
        match &c.host_keys {
            HostKeyPolicy::KnownHosts(path) => {
                d.check("host key", CheckStatus::Ok, format!("checked against {}", path.display()))
            }
            HostKeyPolicy::TrustOnFirstUse(path) => d.check(
                "host key",
                CheckStatus::Warning,
                format!("trust on first use: an unknown host is added to {}", path.display()),
            ),
        }
        match self.script("diagnose", r#"uname -sr && mkdir -p -- "$1" && [ -w "$1" ]"#, &[&c.base_dir], None).await {
            Ok((Some(0), out, _)) => {
                d.check("connection", CheckStatus::Ok, format!("{where_} ({})", String::from_utf8_lossy(&out).trim()));
                d.check("sandboxes folder", CheckStatus::Ok, format!("~/{} is writable", c.base_dir));
            }
            Ok((_, _, errs)) => {
                d.check("connection", CheckStatus::Ok, where_);
                d.check(
                    "sandboxes folder",
                    CheckStatus::Blocker,
                    format!("~/{} is not writable: {}", c.base_dir, String::from_utf8_lossy(&errs).trim()),
                );
            }
            Err(e) => d.check("connection", CheckStatus::Blocker, e.to_string()),
        }
        d
    }
}
