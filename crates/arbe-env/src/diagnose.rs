//! `arbe env diagnose`: seed 000's one-stop preflight. Each line is ok, a warning, or a blocker
//! that would make a dispatch fail, and says what to do.

use arbe_core::{Action, EnvironmentName, EnvironmentRef, ErrorKind, ModelRef, SandboxState};
use arbe_runtime::{Check, CheckStatus, ExternalId};
use arbe_store::Actor;

use crate::{BindingProblem, Environments, Result};

/// The checklist for one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvDiagnosis {
    /// The environment.
    pub environment: EnvironmentName,
    /// The model whose key was checked.
    pub model: ModelRef,
    /// The lines, in the order a dispatch meets them.
    pub checks: Vec<Check>,
}

impl EnvDiagnosis {
    /// No line is a blocker.
    pub fn is_ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Blocker)
    }

    fn push(&mut self, name: impl Into<String>, status: CheckStatus, detail: impl Into<String>) {
        self.checks.push(Check { name: name.into(), status, detail: detail.into() });
    }
}

impl Environments {
    /// Whether a token could be minted from installation `id` for `repos`: connected to the
    /// house, every repo of its account, and known to GitHub and not suspended (read with the
    /// app's JWT: no token is minted).
    async fn diagnose_installation(
        &self,
        house: arbe_core::HouseId,
        app: &crate::GitHubApp,
        id: i64,
        repos: &[arbe_core::RepoRef],
    ) -> (CheckStatus, String) {
        let connection = match self.store.github_connection(house, id).await {
            Ok(connection) => connection,
            Err(arbe_store::StoreError::NotFound { .. }) => {
                return (CheckStatus::Blocker, crate::EnvError::GitHubNotConnected { installation: id }.to_string());
            }
            Err(err) => return (CheckStatus::Blocker, err.to_string()),
        };
        if let Err(err) = app.check_repos(&connection, repos) {
            return (CheckStatus::Blocker, err.to_string());
        }
        match app.installation(id).await {
            Ok(installation) if installation.suspended_at.is_some() => {
                (CheckStatus::Blocker, format!("installation {id} is suspended on GitHub"))
            }
            Ok(_) => (
                CheckStatus::Ok,
                format!(
                    "installation {id} ({}): a token for {} repo(s) is minted at dispatch and revoked after",
                    connection.account_login,
                    repos.len()
                ),
            ),
            Err(err) => (CheckStatus::Blocker, err.to_string()),
        }
    }

    /// Checks everything a dispatch in the environment needs: the runtime configured and
    /// answering, the sandbox reachable, every binding resolvable, the key for `model` (the
    /// agent's or the thread's) and where it comes from, and the GitHub App. Needs a reader.
    /// Nothing is provisioned, started or changed, no secret is decrypted and no token minted:
    /// every line comes from metadata.
    pub async fn diagnose(&self, actor: &Actor, by: &EnvironmentRef, model: &ModelRef) -> Result<EnvDiagnosis> {
        actor.require(Action::Read)?;
        let house = actor.house_id();
        let env = self.store.environment(house, by).await?;
        let mut out = EnvDiagnosis { environment: env.name.clone(), model: model.clone(), checks: Vec::new() };

        // The runtime, and the sandbox on it.
        let runtime_line = format!("runtime {}", env.runtime);
        let sandbox = self.store.sandbox(house, env.sandbox_id).await?;
        let sandbox_line = format!("sandbox {}", sandbox.name);
        match self.runtimes.get(env.runtime.as_str()) {
            Err(err) => {
                out.push(runtime_line, CheckStatus::Blocker, err.message);
                out.push(sandbox_line, CheckStatus::Blocker, "cannot be reached without its runtime");
            }
            Ok(adapter) => {
                match (self.check_isolation(house, &*adapter).await, adapter.ping().await) {
                    (Err(err), _) => out.push(runtime_line, CheckStatus::Blocker, err.to_string()),
                    (Ok(()), Ok(())) => out.push(runtime_line, CheckStatus::Ok, "configured and answering"),
                    (Ok(()), Err(err)) => {
                        out.push(runtime_line, CheckStatus::Blocker, format!("does not answer: {err}"))
                    }
                }
                let (status, detail) = match (&sandbox.state, sandbox.external_id.clone()) {
                    (SandboxState::Destroyed, _) => {
                        (CheckStatus::Blocker, "was destroyed: point the environment at another sandbox".to_owned())
                    }
                    (_, None) => {
                        (CheckStatus::Warning, "not provisioned yet: the first dispatch provisions it".to_owned())
                    }
                    (_, Some(id)) => match adapter.get(&ExternalId(id)).await {
                        Ok(info) if info.state == SandboxState::Started => (CheckStatus::Ok, "started".to_owned()),
                        Ok(info) => (CheckStatus::Warning, format!("{}: the next dispatch starts it", info.state)),
                        Err(err) if err.kind == ErrorKind::NotFound => (
                            CheckStatus::Warning,
                            "gone from the runtime: the next dispatch provisions a fresh one (its workspace is lost)"
                                .to_owned(),
                        ),
                        Err(err) => (CheckStatus::Blocker, format!("cannot be reached: {err}")),
                    },
                };
                out.push(sandbox_line, status, detail);
            }
        }

        // Every binding, from metadata alone.
        let metas = self.store.list_secrets(house).await?;
        for binding in &env.secret_bindings {
            let line = format!("secret {}", binding.name);
            let missing = if binding.required { CheckStatus::Blocker } else { CheckStatus::Warning };
            let how = if binding.required { "required" } else { "optional" };
            let secret = metas.iter().find(|meta| meta.name == binding.name);
            // As it would resolve for a dispatch the caller posts.
            match BindingProblem::of(secret, Some(actor.member_id())) {
                Some(problem) => out.push(
                    line,
                    missing,
                    format!("{how}, but it {}: {}", problem.describe(), problem.hint(&binding.name)),
                ),
                None => {
                    let version = secret.map_or(0, |meta| meta.version);
                    out.push(line, CheckStatus::Ok, format!("{how}, set (version {version})"));
                }
            }
        }

        // The model's key: whose it would be, never its value or where a key file lives.
        match self.model_key_source(house, model, actor.member_id()).await {
            Err(err) => out.push(format!("model {model}"), CheckStatus::Blocker, err.to_string()),
            Ok(key) => match key {
                (None, _) => out.push(format!("model {model}"), CheckStatus::Ok, "its provider needs no key"),
                (Some(var), Some(source)) => {
                    out.push(format!("model key {var}"), CheckStatus::Ok, format!("for {model}, from the {source}"))
                }
                (Some(var), None) => {
                    let operator = if self.config.operator_keys.serve(house) {
                        "nor does the operator have one (worker environment or ~/.arbe/keys/)"
                    } else {
                        "and the operator's own keys do not serve this house"
                    };
                    out.push(
                        format!("model key {var}"),
                        CheckStatus::Blocker,
                        format!(
                            "{model} needs {var}: the house holds none you can use, {operator}; \
                             printf '%s' \"$KEY\" | arbe secret set {var} --shared"
                        ),
                    )
                }
            },
        }

        // The repo policy.
        match &env.default_repo {
            Some(repo) if !env.allowed_repos.iter().any(|r| r.same_repo(repo)) => out.push(
                "repo policy",
                CheckStatus::Blocker,
                format!("the default repo {repo} is not in allowed_repos"),
            ),
            _ => out.push("repo policy", CheckStatus::Ok, format!("{} allowed repo(s)", env.allowed_repos.len())),
        }

        // The GitHub App.
        match (env.github_installation_id, self.config.github.as_deref()) {
            (None, _) => {
                out.push("github app", CheckStatus::Ok, "no installation: GITHUB_TOKEN comes from bindings, if any")
            }
            (Some(_), None) => out.push(
                "github app",
                CheckStatus::Warning,
                "the environment names an installation but the server has no GitHub App: no GITHUB_TOKEN is minted",
            ),
            (Some(_), Some(_)) if env.allowed_repos.is_empty() => out.push(
                "github app",
                CheckStatus::Warning,
                "no allowed repos to scope a token to: no GITHUB_TOKEN is minted",
            ),
            (Some(id), Some(app)) => {
                let (status, detail) = self.diagnose_installation(house, app, id, &env.allowed_repos).await;
                out.push("github app", status, detail);
            }
        }
        Ok(out)
    }
}
