//! Model keys for a dispatch, in seed 000's order: the house secret for the model's provider →
//! the worker's environment → `~/.arbe/keys/<VAR>`. The last two are the operator's own keys;
//! whether they serve a house without a key of its own is the operator's choice
//! ([`OperatorKeys`]). The library reads neither the environment nor the files' location
//! itself: the binaries pass [`WorkerKeys`].

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

/// Which houses the operator's own model keys (the worker's environment and `~/.arbe/keys/`)
/// serve when they hold no key of their own. Every house by default, as seed 000 says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OperatorKeys {
    /// Every house.
    #[default]
    Every,
    /// Only these houses.
    Houses(Vec<HouseId>),
    /// No house: each must hold its own keys.
    None,
}

impl OperatorKeys {
    /// Whether the operator's keys serve `house`.
    pub(crate) fn serve(&self, house: HouseId) -> bool {
        match self {
            Self::Every => true,
            Self::Houses(houses) => houses.contains(&house),
            Self::None => false,
        }
    }
}

/// Where a model key comes from, in words fit for any member: the operator's key file paths
/// are never shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// A house secret.
    House,
    /// The operator's key, from the worker's environment.
    OperatorEnvironment,
    /// The operator's key, from a key file on the worker.
    OperatorFile,
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::House => "house secret",
            Self::OperatorEnvironment => "operator's key (the worker's environment)",
            Self::OperatorFile => "operator's key (a key file on the worker)",
        })
    }
}

impl From<&KeySource> for KeyOrigin {
    fn from(source: &KeySource) -> Self {
        match source {
            KeySource::House => Self::House,
            KeySource::Environment => Self::OperatorEnvironment,
            KeySource::File(_) => Self::OperatorFile,
        }
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
    /// provider's variable (shared, or private to the member who posted the entry being
    /// answered), else, when [`OperatorKeys`] lets them serve this house, the worker's
    /// environment, else its keys folder. Either audience counts: a model key is the control
    /// plane's to use. Only a worker holding the job's [`Claim`] can ask.
    pub async fn model_key(&self, claim: &Claim, model: &ModelRef) -> Result<ModelKey> {
        let resolved = resolve_model(model)?;
        let Some(var) = resolved.key_var() else {
            return Ok(ModelKey { model: resolved, var: None, found: None });
        };
        let name = SecretName::parse(var)?;
        let poster = self.store.job_poster(claim).await?;
        let from_house = self
            .vault
            .resolve(claim, std::slice::from_ref(&name))
            .await?
            .into_iter()
            .find(|s| s.meta.shared || poster.is_some_and(|poster| s.meta.usable_by(poster)))
            .map(|s| s.value);
        let found = if self.config.operator_keys.serve(claim.house_id()) {
            let keys = &self.config.worker_keys;
            lookup_key(var, from_house, |v| (keys.env)(v), keys.keys_dir.as_deref())
        } else {
            from_house.map(|value| (value, KeySource::House))
        };
        Ok(ModelKey { model: resolved, var: Some(var), found })
    }

    /// Where the key `model` needs would come from, read without decrypting anything (for
    /// `diagnose`): `(variable, source)`; the variable is `None` when the provider needs no key,
    /// the source `None` when no key was found.
    pub(crate) async fn model_key_source(
        &self,
        house: HouseId,
        model: &ModelRef,
        poster: MemberId,
    ) -> Result<(Option<&'static str>, Option<KeyOrigin>)> {
        let resolved = resolve_model(model)?;
        let Some(var) = resolved.key_var() else { return Ok((None, None)) };
        let name = SecretName::parse(var)?;
        let in_house = match self.store.secret_meta(house, &name).await {
            Ok(meta) => meta.usable_by(poster),
            Err(arbe_store::StoreError::NotFound { .. }) => false,
            Err(err) => return Err(err.into()),
        };
        if in_house {
            return Ok((Some(var), Some(KeyOrigin::House)));
        }
        if !self.config.operator_keys.serve(house) {
            return Ok((Some(var), None));
        }
        let keys = &self.config.worker_keys;
        if (keys.env)(var).is_some_and(|v| !v.trim().is_empty()) {
            return Ok((Some(var), Some(KeyOrigin::OperatorEnvironment)));
        }
        let file = keys.keys_dir.as_ref().map(|dir| dir.join(var));
        let in_file = file.as_ref().is_some_and(|path| std::fs::metadata(path).is_ok_and(|m| m.len() > 0));
        Ok((Some(var), in_file.then_some(KeyOrigin::OperatorFile)))
    }
}
