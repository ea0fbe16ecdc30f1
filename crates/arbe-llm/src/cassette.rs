//! Record/replay: a provider wrapper that records real exchanges to a cassette file and plays
//! them back offline, for tests and demos.
//!
//! Requests are keyed by a fingerprint: SHA-256 of the request's canonical JSON after secret
//! values are scrubbed out. Credentials never reach the cassette: recording happens above the
//! HTTP layer, so headers are never seen, and any secret value the caller names is replaced by
//! `[redacted:NAME]` in requests, deltas, replies and failures before they are written.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use arbe_core::SecretValue;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{ChatProvider, ChatRequest, ChatResponse, Collect, Delta, DeltaSink, LlmError, ProviderFailure, Result};

/// Record against a real provider, or replay offline.
#[derive(Debug)]
pub enum CassetteMode {
    /// Forward to the provider and append each exchange to the file.
    Record(Box<dyn ChatProvider>),
    /// Answer from the file only; a request with no recorded answer is an error.
    Replay,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    interactions: Vec<Interaction>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Interaction {
    fingerprint: String,
    request: ChatRequest,
    deltas: Vec<Delta>,
    outcome: Outcome,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Reply(ChatResponse),
    Failure(ProviderFailure),
}

/// The record/replay provider.
#[derive(Debug)]
pub struct Cassette {
    path: PathBuf,
    mode: CassetteMode,
    secrets: Vec<(String, SecretValue)>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: File,
    /// How many times each fingerprint was replayed, so repeated requests get their answers in
    /// recorded order.
    served: HashMap<String, usize>,
}

impl Cassette {
    /// Opens `path` (a missing file is an empty cassette when recording). `secrets` are the
    /// values to scrub, by name.
    pub fn open(path: &Path, mode: CassetteMode, secrets: Vec<(String, SecretValue)>) -> Result<Self> {
        let file = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| LlmError::CassetteFile {
                path: path.display().to_string(),
                reason: format!("is not a cassette: {err}"),
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && matches!(mode, CassetteMode::Record(_)) => {
                File { version: 1, interactions: Vec::new() }
            }
            Err(err) => {
                return Err(LlmError::CassetteFile { path: path.display().to_string(), reason: err.to_string() });
            }
        };
        Ok(Self { path: path.to_owned(), mode, secrets, state: Mutex::new(State { file, served: HashMap::new() }) })
    }

    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (name, value) in &self.secrets {
            if text.contains(value.expose()) {
                text = text.replace(value.expose(), &format!("[redacted:{name}]"));
            }
        }
        text
    }

    /// Scrubs every string in a serializable value, by a round trip through JSON text.
    fn scrub_value<T: Serialize + for<'de> Deserialize<'de>>(&self, value: &T) -> T {
        let json = serde_json::to_string(value).expect("cassette types serialize");
        let scrubbed = self.secrets.iter().fold(json, |json, (name, value)| {
            // Match the value as it appears inside a JSON string.
            let escaped = serde_json::to_string(value.expose()).expect("a string serializes");
            json.replace(&escaped[1..escaped.len() - 1], &format!("[redacted:{name}]"))
        });
        serde_json::from_str(&scrubbed).expect("scrubbing keeps the JSON valid")
    }

    fn save(&self, file: &File) -> Result<()> {
        let err = |reason: String| LlmError::CassetteFile { path: self.path.display().to_string(), reason };
        let text = serde_json::to_string_pretty(file).map_err(|e| err(e.to_string()))?;
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.path)).map_err(|e| err(e.to_string()))
    }
}

/// The fingerprint of a (scrubbed) request.
fn fingerprint(request: &ChatRequest) -> String {
    let json = serde_json::to_vec(request).expect("requests serialize");
    let digest = Sha256::digest(&json);
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait::async_trait]
impl ChatProvider for Cassette {
    fn name(&self) -> &str {
        match &self.mode {
            CassetteMode::Record(inner) => inner.name(),
            CassetteMode::Replay => "cassette",
        }
    }

    async fn chat(&self, request: &ChatRequest, sink: &mut dyn DeltaSink) -> Result<ChatResponse> {
        let scrubbed = self.scrub_value(request);
        let fingerprint = fingerprint(&scrubbed);
        match &self.mode {
            CassetteMode::Replay => {
                let interaction = {
                    let mut state = self.state.lock().expect("cassette lock");
                    let matches: Vec<Interaction> =
                        state.file.interactions.iter().filter(|i| i.fingerprint == fingerprint).cloned().collect();
                    let served = state.served.entry(fingerprint.clone()).or_default();
                    let pick = matches.get(*served).or(matches.last()).cloned();
                    *served += 1;
                    pick
                };
                let interaction = interaction.ok_or_else(|| LlmError::CassetteMiss {
                    path: self.path.display().to_string(),
                    fingerprint: fingerprint.clone(),
                })?;
                for delta in interaction.deltas {
                    sink.delta(delta);
                }
                match interaction.outcome {
                    Outcome::Reply(reply) => Ok(reply),
                    Outcome::Failure(failure) => Err(LlmError::Provider(failure)),
                }
            }
            CassetteMode::Record(inner) => {
                let mut collect = Collect::default();
                let res = inner.chat(request, &mut collect).await;
                for delta in &collect.0 {
                    sink.delta(delta.clone());
                }
                let outcome = match &res {
                    Ok(reply) => Outcome::Reply(self.scrub_value(reply)),
                    Err(LlmError::Provider(failure)) => {
                        Outcome::Failure(ProviderFailure { message: self.scrub(&failure.message), ..failure.clone() })
                    }
                    // Not an exchange with the provider: nothing to record.
                    Err(_) => return res,
                };
                let deltas = collect.0.iter().map(|d| self.scrub_value(d)).collect();
                let file = {
                    let mut state = self.state.lock().expect("cassette lock");
                    state.file.interactions.push(Interaction { fingerprint, request: scrubbed, deltas, outcome });
                    state.file.clone()
                };
                self.save(&file)?;
                res
            }
        }
    }
}
