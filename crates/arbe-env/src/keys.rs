//! Model keys for a dispatch, in seed 000's order: the house secret for the model's provider →
//! the worker's environment → `~/.arbe/keys/<VAR>`. The library reads neither the environment
//! nor the files' location itself: the binaries pass [`WorkerKeys`].

use std::{fmt, path::PathBuf, sync::Arc};

use arbe_core::{HouseId, MemberId, ModelRef, SecretName, SecretValue};
use arbe_llm::{KeySource, ResolvedModel, lookup_key, resolve_model};
use arbe_store::Claim;

use crate::{Environments, Result};

type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where a worker looks for model keys that the house does not hold.
#[derive(Clone)]
pub struct WorkerKeys {
    env: Arc<EnvLookup>,
    keys_dir: Option<PathBuf>,
}

impl fmt::Debug for WorkerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerKeys").field("keys_dir", &self.keys_dir).finish_non_exhaustive()
    }
}

impl WorkerKeys {
    /// Keys from `env` (the binaries pass `std::env::var`) and the files in `keys_dir`.
    pub fn new(env: impl Fn(&str) -> Option<String> + Send + Sync + 'static, keys_dir: Option<PathBuf>) -> Self {
        Self { env: Arc::new(env), keys_dir }
    }

    /// No worker keys: only house secrets count.
    pub fn none() -> Self {
        Self::new(|_| None, None)
    }
}

/// The key a model needs, and where it was found.
#[derive(Clone, Debug)]
pub struct ModelKey {
    /// The model, resolved to its provider and wire id.
    pub model: ResolvedModel,
    /// The variable holding its key (`OPENROUTER_API_KEY`); `None` when it needs none (Ollama).
    pub var: Option<&'static str>,
    /// The key and its source; `None` when it needs none or none was found.
    pub found: Option<(SecretValue, KeySource)>,
}

impl ModelKey {
    /// Whether a call to the model can authenticate.
    pub fn is_available(&self) -> bool {
        self.var.is_none() || self.found.is_some()
    }
}

impl Environments {
    /// The key `model` needs for the claimed job's dispatch: a house secret named after the
    /// provider's variable (shared, or authored by `author`, the environment's author), else the
    /// worker's environment, else its keys folder. Either audience counts: a model key is the
    /// control plane's to use. Only a worker holding the job's [`Claim`] can ask.
    pub async fn model_key(&self, claim: &Claim, model: &ModelRef, author: Option<MemberId>) -> Result<ModelKey> {
        let resolved = resolve_model(model)?;
        let Some(var) = resolved.key_var() else {
            return Ok(ModelKey { model: resolved, var: None, found: None });
        };
        let name = SecretName::parse(var)?;
        let from_house = self
            .vault
            .resolve(claim, std::slice::from_ref(&name))
            .await?
            .into_iter()
            .find(|s| s.meta.shared || Some(s.meta.author_id) == author)
            .map(|s| s.value);
        let keys = &self.config.worker_keys;
        let found = lookup_key(var, from_house, |v| (keys.env)(v), keys.keys_dir.as_deref());
        Ok(ModelKey { model: resolved, var: Some(var), found })
    }

    /// Where the key `model` needs would come from, read without decrypting anything (for
    /// `diagnose`): `(variable, source)`; the variable is `None` when the provider needs no key,
    /// the source `None` when no key was found.
    pub(crate) async fn model_key_source(
        &self,
        house: HouseId,
        model: &ModelRef,
        author: Option<MemberId>,
    ) -> Result<(Option<&'static str>, Option<KeySource>)> {
        let resolved = resolve_model(model)?;
        let Some(var) = resolved.key_var() else { return Ok((None, None)) };
        let name = SecretName::parse(var)?;
        let in_house = match self.store.secret_meta(house, &name).await {
            Ok(meta) => meta.shared || Some(meta.author_id) == author,
            Err(arbe_store::StoreError::NotFound { .. }) => false,
            Err(err) => return Err(err.into()),
        };
        if in_house {
            return Ok((Some(var), Some(KeySource::House)));
        }
        let keys = &self.config.worker_keys;
        if (keys.env)(var).is_some_and(|v| !v.trim().is_empty()) {
            return Ok((Some(var), Some(KeySource::Environment)));
        }
        let file = keys.keys_dir.as_ref().map(|dir| dir.join(var));
        let in_file = file.as_ref().is_some_and(|path| std::fs::metadata(path).is_ok_and(|m| m.len() > 0));
        Ok((Some(var), file.filter(|_| in_file).map(KeySource::File)))
    }
}
