//! Seed 001's operations: create (with a sandbox or by provisioning one), view by name or id,
//! list, partial update, bind and unbind secrets, soft delete.

use arbe_core::{
    Action, AuditAction, Environment, EnvironmentName, EnvironmentRef, HouseId, InvalidInput, Name, PrivateSecret,
    RepoRef, RuntimeName, SandboxRef, SecretBinding, SecretName,
    environment::{BindOutcome, bind_secret},
};
use arbe_store::{Actor, AuditActor, NewEnvironment, StoreError};

use crate::{EnvError, Environments, Result};

/// An environment to create (`arbe env create`, `POST /api/environments`).
#[derive(Clone, Debug)]
pub struct CreateEnvironment {
    /// Its name, unique in the house without regard to case.
    pub name: EnvironmentName,
    /// The runtime; `None` takes the sandbox's, or the service's default when no sandbox is
    /// given.
    pub runtime: Option<RuntimeName>,
    /// An existing sandbox of the house; `None` provisions a fresh one on the runtime.
    pub sandbox: Option<SandboxRef>,
    /// The default repository; it is also added to `allowed_repos`.
    pub repo: Option<RepoRef>,
    /// Further repositories a dispatch may clone and push.
    pub allowed_repos: Vec<RepoRef>,
    /// The GitHub App installation to mint `GITHUB_TOKEN` from.
    pub github_installation_id: Option<i64>,
    /// Secret bindings (`--secret` required, `--optional-secret` warn-only).
    pub secrets: Vec<SecretBinding>,
}

impl CreateEnvironment {
    /// An environment called `name` with nothing else set.
    pub fn new(name: EnvironmentName) -> Self {
        Self {
            name,
            runtime: None,
            sandbox: None,
            repo: None,
            allowed_repos: Vec::new(),
            github_installation_id: None,
            secrets: Vec::new(),
        }
    }
}

/// A partial update (`PATCH /api/environments/{id}`): `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct EnvironmentPatch {
    /// A new name.
    pub name: Option<EnvironmentName>,
    /// Another sandbox of the house; the environment's runtime becomes the sandbox's.
    pub sandbox: Option<SandboxRef>,
    /// A new default repository (`Some(None)` clears it); a new one is added to `allowed_repos`.
    pub default_repo: Option<Option<RepoRef>>,
    /// A new repo policy.
    pub allowed_repos: Option<Vec<RepoRef>>,
    /// A new installation (`Some(None)` clears it).
    pub github_installation_id: Option<Option<i64>>,
    /// New bindings, replacing the old ones.
    pub secret_bindings: Option<Vec<SecretBinding>>,
}

fn check_bindings(bindings: &[SecretBinding]) -> std::result::Result<(), InvalidInput> {
    for (i, b) in bindings.iter().enumerate() {
        if bindings[..i].iter().any(|earlier| earlier.name == b.name) {
            return Err(InvalidInput::new(
                format!("secret binding {}", b.name),
                "must be listed once (as required or as optional, not both)",
            ));
        }
    }
    if bindings.len() > 256 {
        return Err(InvalidInput::new("secret bindings", "must be at most 256"));
    }
    Ok(())
}

/// `allowed` plus `default`, without duplicates (compared as GitHub does, without case).
fn with_default(
    mut allowed: Vec<RepoRef>,
    default: Option<&RepoRef>,
) -> std::result::Result<Vec<RepoRef>, InvalidInput> {
    let mut out: Vec<RepoRef> = Vec::with_capacity(allowed.len() + 1);
    allowed.extend(default.cloned());
    for repo in allowed {
        if !out.iter().any(|r| r.same_repo(&repo)) {
            out.push(repo);
        }
    }
    if out.len() > 500 {
        return Err(InvalidInput::new("allowed_repos", "must name at most 500 repositories"));
    }
    Ok(out)
}

impl Environments {
    /// Checks an environment's installation: connected to the house, and every allowed repo
    /// of its account. Without a GitHub App nothing can be checked (and nothing is minted).
    async fn check_installation(&self, house: HouseId, id: Option<i64>, repos: &[RepoRef]) -> Result<()> {
        let Some(id) = id else { return Ok(()) };
        if id <= 0 {
            return Err(InvalidInput::new("github_installation_id", "must be a positive integer").into());
        }
        let connection = match self.store.github_connection(house, id).await {
            Ok(connection) => connection,
            Err(StoreError::NotFound { .. }) => return Err(EnvError::GitHubNotConnected { installation: id }),
            Err(err) => return Err(err.into()),
        };
        if let Some(app) = self.config.github.as_deref()
            && !repos.is_empty()
        {
            app.check_repos(&connection, repos)?;
        }
        Ok(())
    }

    /// Refuses a change of bindings that adds, removes or flips a binding of another member's
    /// non-shared secret: such a secret is bound only in its author's name.
    async fn check_private_bindings(
        &self,
        actor: &Actor,
        before: &[SecretBinding],
        after: &[SecretBinding],
    ) -> Result<()> {
        let changed = |b: &SecretBinding, other: &[SecretBinding]| !other.iter().any(|o| o == b);
        let touched: Vec<&SecretName> = after
            .iter()
            .filter(|b| changed(b, before))
            .chain(before.iter().filter(|b| changed(b, after)))
            .map(|b| &b.name)
            .collect();
        if touched.is_empty() {
            return Ok(());
        }
        for meta in self.store.list_secrets(actor.house_id()).await? {
            if touched.contains(&&meta.name) && !meta.usable_by(actor.member_id()) {
                return Err(PrivateSecret { name: meta.name }.into());
            }
        }
        Ok(())
    }

    async fn audit(&self, actor: &Actor, action: AuditAction, target: &str) {
        self.store.audit(Some(actor.house_id()), None, AuditActor::Member(actor), action, target).await;
    }

    /// Creates an environment. Without a sandbox, provisions one on the environment's runtime
    /// (named `<env>-<short id>`). Needs a writer. Bad input changes nothing: every rule is
    /// checked, and the name looked up, before anything is provisioned.
    pub async fn create(&self, actor: &Actor, req: CreateEnvironment) -> Result<Environment> {
        actor.require(Action::WriteEnvironment)?;
        let house = actor.house_id();
        check_bindings(&req.secrets)?;
        let allowed_repos = with_default(req.allowed_repos, req.repo.as_ref())?;
        self.check_installation(house, req.github_installation_id, &allowed_repos).await?;
        self.check_private_bindings(actor, &[], &req.secrets).await?;
        self.store.environment_name_free(house, &req.name).await?;
        let mut provisioned = None;
        let (sandbox_id, runtime) = match &req.sandbox {
            Some(by) => {
                let sandbox = self.find_sandbox(house, by).await?;
                if let Some(runtime) = &req.runtime
                    && *runtime != sandbox.runtime
                {
                    return Err(EnvError::RuntimeMismatch {
                        sandbox: sandbox.name.to_string(),
                        runtime: sandbox.runtime.to_string(),
                    });
                }
                (sandbox.id, sandbox.runtime)
            }
            None => {
                actor.require(Action::OperateSandbox)?;
                let runtime = req.runtime.clone().unwrap_or_else(|| self.config.default_runtime.clone());
                // Fails here, naming why, when the runtime is not configured.
                self.runtimes.get(runtime.as_str())?;
                let short = &uuid::Uuid::now_v7().simple().to_string()[24..];
                let base: String = req.name.as_str().chars().take(63 - 1 - short.len()).collect();
                let name = Name::parse_field("sandbox", &format!("{base}-{short}"))?;
                let ready = self.provision_sandbox(house, &runtime, name).await?;
                provisioned = Some(ready.sandbox.id);
                (ready.sandbox.id, runtime)
            }
        };
        let created = self
            .store
            .create_environment(NewEnvironment {
                house_id: house,
                author_id: actor.member_id(),
                name: req.name,
                runtime,
                sandbox_id,
                default_repo: req.repo,
                allowed_repos,
                github_installation_id: req.github_installation_id,
                secret_bindings: req.secrets,
            })
            .await;
        let env = match created {
            Ok(env) => env,
            Err(err) => {
                // A concurrent create took the name, say: the sandbox made for this one goes.
                if let Some(id) = provisioned
                    && let Err(cleanup) = self.destroy_sandbox(house, id).await
                {
                    tracing::warn!(sandbox = %id, error = %cleanup, "could not destroy the sandbox of a failed create");
                }
                return Err(err.into());
            }
        };
        tracing::info!(house = %house, environment = %env.id, runtime = %env.runtime, "environment created");
        self.audit(actor, AuditAction::EnvironmentCreated, env.name.as_str()).await;
        Ok(env)
    }

    /// A live environment, by name (without regard to case) or id. Needs a reader.
    pub async fn view(&self, actor: &Actor, by: &EnvironmentRef) -> Result<Environment> {
        actor.require(Action::Read)?;
        Ok(self.store.environment(actor.house_id(), by).await?)
    }

    /// The house's live environments, by name. Needs a reader.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<Environment>> {
        actor.require(Action::Read)?;
        Ok(self.store.list_environments(actor.house_id()).await?)
    }

    /// Changes the fields `patch` sets. Needs a writer.
    pub async fn update(&self, actor: &Actor, by: &EnvironmentRef, patch: EnvironmentPatch) -> Result<Environment> {
        actor.require(Action::WriteEnvironment)?;
        let mut env = self.store.environment(actor.house_id(), by).await?;
        let before = env.secret_bindings.clone();
        let scope_changed =
            patch.github_installation_id.is_some() || patch.allowed_repos.is_some() || patch.default_repo.is_some();
        if let Some(name) = patch.name {
            env.name = name;
        }
        if let Some(by) = &patch.sandbox {
            let sandbox = self.find_sandbox(actor.house_id(), by).await?;
            env.sandbox_id = sandbox.id;
            env.runtime = sandbox.runtime;
        }
        if let Some(allowed) = patch.allowed_repos {
            env.allowed_repos = allowed;
        }
        if let Some(default) = patch.default_repo {
            env.default_repo = default;
        }
        env.allowed_repos = with_default(std::mem::take(&mut env.allowed_repos), env.default_repo.as_ref())?;
        if let Some(id) = patch.github_installation_id {
            env.github_installation_id = id;
        }
        if scope_changed {
            self.check_installation(actor.house_id(), env.github_installation_id, &env.allowed_repos).await?;
        }
        if let Some(bindings) = patch.secret_bindings {
            check_bindings(&bindings)?;
            self.check_private_bindings(actor, &before, &bindings).await?;
            env.secret_bindings = bindings;
        }
        let env = self.store.update_environment(&env).await?;
        self.audit(actor, AuditAction::EnvironmentUpdated, env.name.as_str()).await;
        Ok(env)
    }

    /// Adds a binding, or flips its `required` flag (seed 001: the same flag again is a no-op).
    /// Needs a writer. Bindings store names; the secret need not exist yet.
    pub async fn bind_secret(
        &self,
        actor: &Actor,
        by: &EnvironmentRef,
        name: SecretName,
        required: bool,
    ) -> Result<(Environment, BindOutcome)> {
        actor.require(Action::WriteEnvironment)?;
        let mut env = self.store.environment(actor.house_id(), by).await?;
        let before = env.secret_bindings.clone();
        let target = format!("{} in {}", name, env.name);
        let outcome = bind_secret(&mut env.secret_bindings, name, required);
        if outcome == BindOutcome::Unchanged {
            return Ok((env, outcome));
        }
        self.check_private_bindings(actor, &before, &env.secret_bindings).await?;
        let env = self.store.update_environment(&env).await?;
        self.audit(actor, AuditAction::SecretBound, &target).await;
        Ok((env, outcome))
    }

    /// Removes a binding; `false` when there was none (nothing changes). Needs a writer.
    pub async fn unbind_secret(
        &self,
        actor: &Actor,
        by: &EnvironmentRef,
        name: &SecretName,
    ) -> Result<(Environment, bool)> {
        actor.require(Action::WriteEnvironment)?;
        let mut env = self.store.environment(actor.house_id(), by).await?;
        let before = env.secret_bindings.clone();
        env.secret_bindings.retain(|b| b.name != *name);
        if env.secret_bindings.len() == before.len() {
            return Ok((env, false));
        }
        self.check_private_bindings(actor, &before, &env.secret_bindings).await?;
        let env = self.store.update_environment(&env).await?;
        self.audit(actor, AuditAction::SecretUnbound, &format!("{} in {}", name, env.name)).await;
        Ok((env, true))
    }

    /// Soft-deletes an environment: hidden from lookups and lists, its name free again,
    /// threads keep their snapshot. Needs an owner.
    pub async fn delete(&self, actor: &Actor, by: &EnvironmentRef) -> Result<()> {
        actor.require(Action::DeleteEnvironment)?;
        let env = self.store.environment(actor.house_id(), by).await?;
        self.store.delete_environment(actor.house_id(), env.id).await?;
        tracing::info!(house = %actor.house_id(), environment = %env.id, "environment deleted");
        self.audit(actor, AuditAction::EnvironmentDeleted, env.name.as_str()).await;
        Ok(())
    }

    async fn find_sandbox(&self, house: arbe_core::HouseId, by: &SandboxRef) -> Result<arbe_core::Sandbox> {
        let sandbox = self.sandbox_row(house, by).await?;
        if sandbox.state == arbe_core::SandboxState::Destroyed {
            return Err(InvalidInput::new(
                "sandbox",
                "must not be destroyed: name another, or omit it to provision a fresh one",
            )
            .into());
        }
        Ok(sandbox)
    }
}
