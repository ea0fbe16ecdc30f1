//! Resolution at dispatch: an environment snapshot's bindings become values, checked against
//! audience and sharing (a non-shared secret serves only dispatches its author posted), plus a
//! GitHub installation token from a connected installation when the App is configured, revoked
//! by [`Environments::release`] when the dispatch ends.

use std::fmt;

use arbe_core::{EnvironmentName, EnvironmentSnapshot, RepoRef, SecretName, SecretValue};
use arbe_store::Claim;

use crate::{BindingProblem, EnvError, Environments, InstallationToken, Result};

/// The name the installation token is injected under.
const GITHUB_TOKEN: &str = "GITHUB_TOKEN";

/// What a dispatch in an environment gets: the variables for each command, warnings to record,
/// and the repo policy. Values print `[redacted]`.
#[derive(Clone)]
pub struct Resolution {
    /// The environment.
    pub environment: EnvironmentName,
    /// Variables for every command in the sandbox, by secret name.
    pub vars: Vec<(SecretName, SecretValue)>,
    /// Non-fatal problems (missing optional bindings, a token that could not be scoped), in
    /// words with no value in them.
    pub warnings: Vec<String>,
    /// The only repositories a dispatch may clone or push.
    pub allowed_repos: Vec<RepoRef>,
    /// The installation token minted for this dispatch, revoked by [`Environments::release`].
    pub github_token: Option<InstallationToken>,
    /// Values not injected but to redact all the same: tokens minted for earlier dispatches in
    /// the same sandbox that GitHub may still accept.
    pub redact_also: Vec<(SecretName, SecretValue)>,
}

impl fmt::Debug for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolution")
            .field("environment", &self.environment)
            .field("vars", &self.secret_names())
            .field("warnings", &self.warnings)
            .field("allowed_repos", &self.allowed_repos)
            .field("github_token", &self.github_token.as_ref().map(|t| t.expires_at))
            .field("redact_also", &self.redact_also.len())
            .finish()
    }
}

impl Resolution {
    /// The names of the resolved variables (for the run's ledger).
    pub fn secret_names(&self) -> Vec<SecretName> {
        self.vars.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Whether a dispatch may clone or push `repo`.
    pub fn check_repo(&self, repo: &RepoRef) -> Result<()> {
        if self.allowed_repos.iter().any(|r| r.same_repo(repo)) {
            Ok(())
        } else {
            Err(EnvError::RepoNotAllowed { environment: self.environment.clone(), repo: repo.as_str().to_owned() })
        }
    }
}

impl Environments {
    /// Resolves `env` (a thread's snapshot) for the claimed job's dispatch. Only a worker
    /// holding the job's [`Claim`] can ask: no request handler can reach a value.
    ///
    /// Every required binding must resolve, else the error names each one that does not and
    /// why; an optional one that does not is a warning. A `capability` secret is never
    /// returned for injection, and a non-shared secret only when its author posted the entry
    /// the dispatch answers. With an installation id and a configured GitHub App, the house
    /// must have connected that installation; a token scoped to the allowed repos (all of the
    /// installation's account) and the configured permissions is minted and injected as
    /// `GITHUB_TOKEN` (replacing a bound secret of that name). With no App configured this is
    /// skipped with one info log line.
    pub async fn resolve(&self, claim: &Claim, env: &EnvironmentSnapshot) -> Result<Resolution> {
        let names: Vec<SecretName> = env.secret_bindings.iter().map(|b| b.name.clone()).collect();
        let poster = self.store.job_poster(claim).await?;
        let mut found = self.vault.resolve(claim, &names).await?;
        let mut vars = Vec::with_capacity(names.len() + 1);
        let mut warnings = Vec::new();
        let mut problems = Vec::new();
        for binding in &env.secret_bindings {
            let secret = found.iter().position(|s| s.meta.name == binding.name).map(|i| found.swap_remove(i));
            let problem = BindingProblem::of(secret.as_ref().map(|s| &s.meta), poster);
            if let (None, Some(secret)) = (problem, secret) {
                if secret.value.expose().len() < SecretValue::MIN_REDACTED_BYTES {
                    warnings.push(format!(
                        "secret {} is shorter than {} bytes, so it is injected but cannot be redacted from output; \
                         set a longer value",
                        binding.name,
                        SecretValue::MIN_REDACTED_BYTES
                    ));
                }
                vars.push((binding.name.clone(), secret.value));
            }
            match problem {
                Some(problem) if binding.required => problems.push((binding.name.clone(), problem)),
                Some(problem) => warnings.push(format!(
                    "optional secret {} {}; the run goes on without it",
                    binding.name,
                    problem.describe()
                )),
                None => {}
            }
        }
        if !problems.is_empty() {
            return Err(EnvError::UnresolvedSecrets { environment: env.name.clone(), problems });
        }
        let mut github_token = None;
        let mut redact_also = Vec::new();
        if let Some(installation) = env.github_installation_id {
            match self.config.github.as_deref() {
                None => tracing::info!(
                    environment = %env.id,
                    "no GitHub App is configured: GITHUB_TOKEN is not minted for this dispatch"
                ),
                Some(_) if env.allowed_repos.is_empty() => warnings.push(format!(
                    "environment {} names a GitHub installation but no allowed repos: no GITHUB_TOKEN was minted",
                    env.name
                )),
                Some(app) => {
                    let connection = match self.store.github_connection(claim.house_id(), installation).await {
                        Ok(connection) => connection,
                        Err(arbe_store::StoreError::NotFound { .. }) => {
                            return Err(EnvError::GitHubNotConnected { installation });
                        }
                        Err(err) => return Err(err.into()),
                    };
                    let token = app.installation_token(&connection, &env.allowed_repos).await?;
                    let name = SecretName::parse(GITHUB_TOKEN)?;
                    vars.retain(|(n, _)| *n != name);
                    vars.push((name.clone(), token.token.clone()));
                    let mut minted = self.minted.lock().unwrap_or_else(|e| e.into_inner());
                    let now = chrono::Utc::now();
                    minted.retain(|_, tokens| {
                        tokens.retain(|t| t.expires_at > now);
                        !tokens.is_empty()
                    });
                    let earlier = minted.entry(env.sandbox_id).or_default();
                    redact_also.extend(earlier.iter().map(|t| (name.clone(), t.token.clone())));
                    earlier.push(token.clone());
                    github_token = Some(token);
                }
            }
        }
        Ok(Resolution {
            environment: env.name.clone(),
            vars,
            warnings,
            allowed_repos: env.allowed_repos.clone(),
            github_token,
            redact_also,
        })
    }

    /// Ends what a dispatch's resolution holds: revokes its installation token. A failure is
    /// logged (the token expires within the hour anyway), never returned.
    pub async fn release(&self, resolution: &Resolution) {
        if let (Some(token), Some(app)) = (&resolution.github_token, self.config.github.as_deref())
            && let Err(err) = app.revoke(token).await
        {
            tracing::warn!(installation_id = token.installation_id, error = %err, "could not revoke a GitHub installation token");
        }
    }
}
