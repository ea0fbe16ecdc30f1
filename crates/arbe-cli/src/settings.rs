//! The one place the CLI reads its environment and files: `ARBE_URL`, `ARBE_API_KEY`, `NO_COLOR`,
//! `~/.arbe/credentials` (the server and key, 0600) and `~/.arbe/cli` (the active house and
//! environment). `~/.arbe/` comes from `$HOME`, so `HOME=/other arbe …` is another instance.

use std::{
    collections::BTreeMap,
    io::Write,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use crate::error::CliError;

/// The server's address when nothing else names one.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8080";

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// What the CLI resolved from its environment and files.
#[derive(Clone)]
pub(crate) struct Settings {
    /// `~/.arbe/`.
    pub(crate) home: PathBuf,
    /// The server: `ARBE_URL`, else the credentials file's, else [`DEFAULT_URL`].
    pub(crate) url: String,
    /// The API key: `ARBE_API_KEY`, else the credentials file's.
    pub(crate) api_key: Option<String>,
    /// The active house and environment.
    pub(crate) context: Context,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings").field("home", &self.home).field("url", &self.url).finish_non_exhaustive()
    }
}

/// The active house and environment, kept in `~/.arbe/cli`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Context {
    /// The active house's id.
    pub(crate) house: Option<String>,
    /// The active environment's name or id.
    pub(crate) env: Option<String>,
}

impl Settings {
    /// Reads the environment and `~/.arbe/`.
    pub(crate) fn resolve() -> Result<Self, CliError> {
        let home = arbe_home()?;
        let credentials = read_pairs(&home.join("credentials"))?;
        let url = var("ARBE_URL")
            .or_else(|| credentials.get("url").cloned())
            .unwrap_or_else(|| DEFAULT_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let api_key = var("ARBE_API_KEY").or_else(|| credentials.get("api_key").cloned());
        let context = read_pairs(&home.join("cli"))?;
        Ok(Self {
            url,
            api_key,
            context: Context { house: context.get("house").cloned(), env: context.get("env").cloned() },
            home,
        })
    }

    /// Saves the active house and environment.
    pub(crate) fn save_context(&self, context: &Context) -> Result<(), CliError> {
        let mut text = String::from("# arbe's active house and environment (`arbe house select`, `arbe env use`)\n");
        if let Some(house) = &context.house {
            text.push_str(&format!("house = {house}\n"));
        }
        if let Some(env) = &context.env {
            text.push_str(&format!("env = {env}\n"));
        }
        write_private(&self.home.join("cli"), &text)
    }
}

/// `~/.arbe/`.
pub(crate) fn arbe_home() -> Result<PathBuf, CliError> {
    let home = var("HOME").ok_or_else(|| CliError::usage("HOME is not set: arbe keeps its files under ~/.arbe/"))?;
    Ok(PathBuf::from(home).join(".arbe"))
}

/// Writes `url` and `api_key` to `<home>/credentials`, readable by its owner only.
pub(crate) fn save_credentials(home: &Path, url: &str, api_key: &str) -> Result<(), CliError> {
    let text = format!(
        "# arbe's server and API key (written by `arbe up` or `arbe login`): keep this file private.\nurl = {url}\napi_key = {api_key}\n"
    );
    write_private(&home.join("credentials"), &text)
}

/// `name = value` lines; `#` starts a comment. A missing file is empty.
fn read_pairs(path: &Path) -> Result<BTreeMap<String, String>, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(CliError::local(format!("cannot read {}: {e}", path.display()))),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// Replaces `path` with `text`, mode 0600, its folder 0700.
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    let error = |e: std::io::Error| CliError::local(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(error)?;
    }
    // A temporary file of its own (0600) in the same folder, then one rename: a reader sees
    // the old file or the new one, and two writers do not share a temporary.
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(error)?;
    temp.write_all(text.as_bytes()).and_then(|()| temp.as_file().sync_all()).map_err(error)?;
    temp.persist(path).map_err(|e| error(e.error)).map(drop)
}

/// `OPENROUTER_API_KEY`: with it, the quickstart uses the real provider.
pub(crate) fn openrouter_key() -> Option<String> {
    var("OPENROUTER_API_KEY")
}

/// `NO_COLOR`: no colour even on a terminal.
pub(crate) fn no_color() -> bool {
    var("NO_COLOR").is_some()
}

/// `USER`: the name `arbe up` gives the first house's owner.
pub(crate) fn user_name() -> Option<String> {
    var("USER")
}
