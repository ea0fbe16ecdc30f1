//! Sandboxes: the house's machines on its runtimes. Users list, view, start, stop, destroy,
//! ping and diagnose them through [`Sandboxes`], which keeps each row in step with what the
//! runtime reports; dispatch reaches them through the job's [`Claim`] (provision on demand,
//! start if stopped). Every runtime call on an existing sandbox goes through the row the house
//! owns: the runtime's id is read from that row, never taken from a caller.

use std::{sync::Arc, time::Duration};

use arbe_core::{
    Action, ErrorKind, HouseId, InvalidInput, Labels, Name, Resources, RuntimeName, Sandbox, SandboxId, SandboxRef,
    SandboxState, SecretName,
};
use arbe_runtime::{Diagnosis, ExecRequest, ExternalId, Isolation, Runtime, SandboxSpec};
use arbe_store::{Actor, Claim, NewSandbox};

use crate::{EnvError, Environments, Result};

/// A sandbox that is started and ready for commands.
#[derive(Clone, Debug)]
pub struct ReadySandbox {
    /// Its row.
    pub sandbox: Sandbox,
    /// The runtime it lives on.
    pub runtime: Arc<dyn Runtime>,
    /// The runtime's id for it.
    pub external_id: ExternalId,
}

/// What `ping` found.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxPing {
    /// The sandbox, its state as the runtime reports it now.
    pub sandbox: Sandbox,
    /// How long a `true` took to run, when the sandbox is started.
    pub round_trip: Option<Duration>,
}

/// What `diagnose` found: the sandbox and its runtime's checklist.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxDiagnosis {
    /// The sandbox, its state as the runtime reports it now.
    pub sandbox: Sandbox,
    /// The runtime's checklist.
    pub runtime: Diagnosis,
}

/// A variable a command in the sandbox gets from an environment's binding (the name only: values
/// are resolved per command at dispatch and never stored in the sandbox).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVarName {
    /// The variable (the secret's name).
    pub name: SecretName,
    /// Whether a missing value fails a dispatch.
    pub required: bool,
    /// The environment that binds it.
    pub environment: arbe_core::EnvironmentName,
}

/// The sandboxes of houses, for their members. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sandboxes {
    envs: Environments,
}

impl Sandboxes {
    pub(crate) fn new(envs: Environments) -> Self {
        Self { envs }
    }

    /// The house's sandboxes (on one runtime, or on every one), their states refreshed from
    /// the runtimes. Needs a reader.
    pub async fn list(&self, actor: &Actor, runtime: Option<&RuntimeName>) -> Result<Vec<Sandbox>> {
        actor.require(Action::Read)?;
        let rows = self.envs.store.list_sandboxes(actor.house_id(), runtime).await?;
        let refreshed = rows.into_iter().map(|row| self.envs.refresh(row));
        Ok(futures_util::future::join_all(refreshed).await)
    }

    /// One sandbox by id or name, its state refreshed from the runtime. Needs a reader.
    pub async fn view(&self, actor: &Actor, by: &SandboxRef) -> Result<Sandbox> {
        actor.require(Action::Read)?;
        let row = self.envs.sandbox_row(actor.house_id(), by).await?;
        Ok(self.envs.refresh(row).await)
    }

    /// Provisions a new sandbox called `name` on `runtime` (the default runtime when `None`).
    /// Needs a writer; the house's `sandboxes` quota applies.
    pub async fn create(&self, actor: &Actor, name: Name, runtime: Option<RuntimeName>) -> Result<Sandbox> {
        actor.require(Action::OperateSandbox)?;
        let runtime = runtime.unwrap_or_else(|| self.envs.config.default_runtime.clone());
        Ok(self.envs.provision_sandbox(actor.house_id(), &runtime, name).await?.sandbox)
    }

    /// Starts a stopped sandbox. Needs a writer.
    pub async fn start(&self, actor: &Actor, by: &SandboxRef) -> Result<Sandbox> {
        actor.require(Action::OperateSandbox)?;
        let row = self.envs.live_row(actor.house_id(), by).await?;
        Ok(self.envs.ensure_row(row).await?.sandbox)
    }

    /// Stops a sandbox, keeping its workspace where the runtime persists it. Needs a writer.
    pub async fn stop(&self, actor: &Actor, by: &SandboxRef) -> Result<Sandbox> {
        actor.require(Action::OperateSandbox)?;
        let mut row = self.envs.live_row(actor.house_id(), by).await?;
        if let Some(external_id) = row.external_id.clone() {
            let adapter = self.envs.runtimes.get(row.runtime.as_str())?;
            match adapter.stop(&ExternalId(external_id)).await {
                Ok(()) => {}
                // Gone from the runtime: nothing runs, and the next start provisions it again.
                Err(err) if err.kind == ErrorKind::NotFound => {}
                Err(err) => return Err(err.into()),
            }
        }
        self.envs.store.set_sandbox_state(row.house_id, row.id, SandboxState::Stopped, None).await?;
        row.state = SandboxState::Stopped;
        tracing::info!(house = %row.house_id, sandbox = %row.id, "sandbox stopped");
        Ok(row)
    }

    /// Destroys a sandbox and everything in it. Needs an owner.
    pub async fn destroy(&self, actor: &Actor, by: &SandboxRef) -> Result<Sandbox> {
        actor.require(Action::DestroySandbox)?;
        let row = self.envs.sandbox_row(actor.house_id(), by).await?;
        self.envs.destroy_row(&row).await?;
        Ok(Sandbox { state: SandboxState::Destroyed, ..row })
    }

    /// Whether the sandbox answers: its state from the runtime, and the round trip of `true`
    /// when it is started. Starts nothing. Needs a writer (it runs a command).
    pub async fn ping(&self, actor: &Actor, by: &SandboxRef) -> Result<SandboxPing> {
        actor.require(Action::OperateSandbox)?;
        let row = self.envs.sandbox_row(actor.house_id(), by).await?;
        let sandbox = self.envs.refresh(row).await;
        let round_trip = match (&sandbox.external_id, sandbox.state) {
            (Some(external_id), SandboxState::Started) => {
                let adapter = self.envs.runtimes.get(sandbox.runtime.as_str())?;
                let req = ExecRequest::argv(["true"]).timeout(Duration::from_secs(10));
                let outcome = adapter.exec(&ExternalId(external_id.clone()), req, &mut ()).await?;
                Some(outcome.duration)
            }
            _ => None,
        };
        Ok(SandboxPing { sandbox, round_trip })
    }

    /// The sandbox's state and its runtime's checklist. Changes nothing. Needs a reader.
    pub async fn diagnose(&self, actor: &Actor, by: &SandboxRef) -> Result<SandboxDiagnosis> {
        actor.require(Action::Read)?;
        let row = self.envs.sandbox_row(actor.house_id(), by).await?;
        let sandbox = self.envs.refresh(row).await;
        let runtime = match self.envs.runtimes.get(sandbox.runtime.as_str()) {
            Ok(adapter) => adapter.diagnose().await,
            Err(err) => {
                let mut d = Diagnosis::new("registry");
                d.check(format!("runtime {}", sandbox.runtime), arbe_runtime::CheckStatus::Blocker, err.message);
                d
            }
        };
        Ok(SandboxDiagnosis { sandbox, runtime })
    }

    /// The variables commands in this sandbox get, by name: the bindings of the house's
    /// environments on it. No value is read. Needs a reader.
    pub async fn env_names(&self, actor: &Actor, by: &SandboxRef) -> Result<Vec<EnvVarName>> {
        actor.require(Action::Read)?;
        let row = self.envs.sandbox_row(actor.house_id(), by).await?;
        let mut names = Vec::new();
        for env in self.envs.store.list_environments(actor.house_id()).await? {
            if env.sandbox_id != row.id {
                continue;
            }
            for binding in env.secret_bindings {
                names.push(EnvVarName {
                    name: binding.name,
                    required: binding.required,
                    environment: env.name.clone(),
                });
            }
        }
        names.sort_by(|a, b| (a.name.as_str(), a.environment.as_str()).cmp(&(b.name.as_str(), b.environment.as_str())));
        Ok(names)
    }

    /// Writes a file into the sandbox's workspace (the house's `workspace_bytes` quota
    /// applies). Needs a writer.
    pub async fn put_file(&self, actor: &Actor, by: &SandboxRef, path: &str, contents: &[u8]) -> Result<()> {
        actor.require(Action::OperateSandbox)?;
        let row = self.envs.live_row(actor.house_id(), by).await?;
        let ready = self.envs.ensure_row(row).await?;
        Ok(ready.runtime.put_file(&ready.external_id, path, contents).await?)
    }

    /// Reads a file from the sandbox's workspace. Needs a writer (it reaches into the machine).
    pub async fn get_file(&self, actor: &Actor, by: &SandboxRef, path: &str) -> Result<Vec<u8>> {
        actor.require(Action::OperateSandbox)?;
        let row = self.envs.live_row(actor.house_id(), by).await?;
        let ready = self.envs.ensure_row(row).await?;
        Ok(ready.runtime.get_file(&ready.external_id, path).await?)
    }
}

impl Environments {
    /// A sandbox row of `house` by id or name.
    pub(crate) async fn sandbox_row(&self, house: HouseId, by: &SandboxRef) -> Result<Sandbox> {
        Ok(match by {
            SandboxRef::Id(id) => self.store.sandbox(house, *id).await?,
            SandboxRef::Name(name) => self.store.sandbox_by_name(house, name.as_str()).await?,
            // Looked up in the house's own rows: another house's runtime id finds nothing.
            SandboxRef::External { runtime, id } => {
                let row = self.store.sandbox_by_external_id(house, id).await?;
                if row.runtime != *runtime {
                    return Err(arbe_store::StoreError::NotFound { what: "sandbox" }.into());
                }
                row
            }
        })
    }

    /// A sandbox row that is not destroyed.
    async fn live_row(&self, house: HouseId, by: &SandboxRef) -> Result<Sandbox> {
        let row = self.sandbox_row(house, by).await?;
        if row.state == SandboxState::Destroyed {
            return Err(InvalidInput::new("sandbox", "was destroyed: it cannot be used again").into());
        }
        Ok(row)
    }

    /// The row with its state as the runtime reports it now, recorded when it changed (the idle
    /// reaper stopped it, say). A runtime that cannot be asked leaves the row as it is.
    async fn refresh(&self, mut row: Sandbox) -> Sandbox {
        let (Some(external_id), Ok(adapter)) = (row.external_id.clone(), self.runtimes.get(row.runtime.as_str()))
        else {
            return row;
        };
        if row.state == SandboxState::Destroyed {
            return row;
        }
        let now = match adapter.get(&ExternalId(external_id)).await {
            Ok(info) => info.state,
            // The runtime lost it: the next dispatch or start provisions it again.
            Err(err) if err.kind == ErrorKind::NotFound => SandboxState::Error,
            Err(_) => return row,
        };
        if now != row.state {
            match self.store.set_sandbox_state(row.house_id, row.id, now, None).await {
                Ok(()) => row.state = now,
                Err(err) => tracing::warn!(sandbox = %row.id, error = %err, "could not record a sandbox's new state"),
            }
        }
        row
    }

    /// Refuses a runtime that does not keep houses apart when another house could be reached
    /// through it: one that runs on the control plane's host ([`Isolation::Host`]) while the
    /// deployment has more than one house, one that shares an account between sandboxes
    /// ([`Isolation::SharedAccount`]) when another house has a sandbox on it. Checked before
    /// anything is provisioned or started, so a refused call changes nothing.
    pub(crate) async fn check_isolation(&self, house: HouseId, runtime: &dyn Runtime) -> Result<()> {
        match runtime.capabilities().isolation {
            Isolation::Sandbox => Ok(()),
            Isolation::Host => {
                let houses = self.store.count_houses().await?;
                if houses > 1 {
                    return Err(EnvError::NotIsolated {
                        runtime: runtime.name(),
                        rule: format!(
                            "it runs commands on the server's host as the server's user, where they could read \
                             every house's secrets, so it serves a deployment with one house only (this one has {houses})"
                        ),
                    });
                }
                Ok(())
            }
            Isolation::SharedAccount => {
                if self.store.runtime_used_by_another_house(house, runtime.name()).await? {
                    return Err(EnvError::NotIsolated {
                        runtime: runtime.name(),
                        rule: "its sandboxes share one account on the host, and another house already has \
                               sandboxes there: one house per host configuration"
                            .to_owned(),
                    });
                }
                Ok(())
            }
        }
    }

    /// Records a sandbox called `name` on `runtime` and provisions it there, with the house's
    /// `workspace_bytes` quota as its workspace cap. When provisioning fails the row is left in
    /// state `error` and the runtime's error is returned.
    pub(crate) async fn provision_sandbox(
        &self,
        house: HouseId,
        runtime: &RuntimeName,
        name: Name,
    ) -> Result<ReadySandbox> {
        let adapter = self.runtimes.get(runtime.as_str())?;
        self.check_isolation(house, &*adapter).await?;
        let workspace_bytes = self.store.house_quotas(house).await?.workspace_bytes;
        let mut sandbox = self
            .store
            .create_sandbox(NewSandbox {
                house_id: house,
                runtime: runtime.clone(),
                name,
                state: SandboxState::Provisioning,
                image: None,
                resources: Resources { workspace_bytes, ..Resources::default() },
                labels: Labels::default(),
            })
            .await?;
        self.provision_row(&mut sandbox, adapter).await
    }

    async fn provision_row(&self, sandbox: &mut Sandbox, adapter: Arc<dyn Runtime>) -> Result<ReadySandbox> {
        let spec = SandboxSpec {
            house_id: sandbox.house_id,
            sandbox_id: sandbox.id,
            name: sandbox.name.clone(),
            image: sandbox.image.clone(),
            resources: sandbox.resources.clone(),
            labels: sandbox.labels.clone(),
        };
        match adapter.provision(&spec).await {
            Ok(info) => {
                self.store
                    .set_sandbox_state(sandbox.house_id, sandbox.id, SandboxState::Started, Some(&info.external_id.0))
                    .await?;
                sandbox.state = SandboxState::Started;
                sandbox.external_id = Some(info.external_id.0.clone());
                tracing::info!(house = %sandbox.house_id, sandbox = %sandbox.id, runtime = adapter.name(), "sandbox provisioned");
                Ok(ReadySandbox { sandbox: sandbox.clone(), runtime: adapter, external_id: info.external_id })
            }
            Err(err) => {
                self.store.set_sandbox_state(sandbox.house_id, sandbox.id, SandboxState::Error, None).await?;
                Err(err.into())
            }
        }
    }

    /// The sandbox, started: provisioned when it never was (or the runtime lost it), started
    /// when stopped, and marked active so the idle reaper leaves it alone.
    async fn ensure_row(&self, mut sandbox: Sandbox) -> Result<ReadySandbox> {
        let adapter = self.runtimes.get(sandbox.runtime.as_str())?;
        self.check_isolation(sandbox.house_id, &*adapter).await?;
        if sandbox.state == SandboxState::Destroyed {
            return Err(arbe_store::StoreError::NotFound { what: "sandbox (it was destroyed)" }.into());
        }
        let (house, id) = (sandbox.house_id, sandbox.id);
        let ready = match sandbox.external_id.clone().map(ExternalId) {
            None => self.provision_row(&mut sandbox, adapter).await?,
            Some(external_id) => match adapter.get(&external_id).await {
                Ok(info) => {
                    if info.state != SandboxState::Started {
                        adapter.start(&external_id).await?;
                    }
                    if sandbox.state != SandboxState::Started {
                        self.store.set_sandbox_state(house, id, SandboxState::Started, None).await?;
                        sandbox.state = SandboxState::Started;
                    }
                    ReadySandbox { sandbox, runtime: adapter, external_id }
                }
                Err(err) if err.kind == ErrorKind::NotFound => {
                    tracing::warn!(house = %house, sandbox = %id, "the runtime no longer has this sandbox: provisioning it again");
                    self.provision_row(&mut sandbox, adapter).await?
                }
                Err(err) => return Err(err.into()),
            },
        };
        self.store.touch_sandbox(house, id).await?;
        Ok(ready)
    }

    /// Destroys a sandbox on its runtime and marks its row `destroyed`.
    async fn destroy_row(&self, sandbox: &Sandbox) -> Result<()> {
        if let Some(external_id) = &sandbox.external_id {
            let adapter = self.runtimes.get(sandbox.runtime.as_str())?;
            match adapter.destroy(&ExternalId(external_id.clone())).await {
                Ok(()) => {}
                Err(err) if err.kind == ErrorKind::NotFound => {}
                Err(err) => return Err(err.into()),
            }
        }
        self.store.set_sandbox_state(sandbox.house_id, sandbox.id, SandboxState::Destroyed, None).await?;
        tracing::info!(house = %sandbox.house_id, sandbox = %sandbox.id, "sandbox destroyed");
        Ok(())
    }

    /// Destroys sandbox `id` of `house` (the cleanup of a create that lost a race).
    pub(crate) async fn destroy_sandbox(&self, house: HouseId, id: SandboxId) -> Result<()> {
        let row = self.store.sandbox(house, id).await?;
        self.destroy_row(&row).await
    }

    /// The sandbox of the claimed job's house, started (see [`Environments::ensure_row`]).
    pub async fn ensure_sandbox(&self, claim: &Claim, id: SandboxId) -> Result<ReadySandbox> {
        let row = self.store.sandbox(claim.house_id(), id).await?;
        self.ensure_row(row).await
    }

    /// A fresh sandbox in the claimed job's house, for a delegated task.
    pub async fn provision_for(&self, claim: &Claim, runtime: &RuntimeName, name: Name) -> Result<ReadySandbox> {
        self.provision_sandbox(claim.house_id(), runtime, name).await
    }

    /// Destroys a sandbox of the claimed job's house (a delegated task's, once it is done).
    pub async fn destroy_for(&self, claim: &Claim, id: SandboxId) -> Result<()> {
        self.destroy_sandbox(claim.house_id(), id).await
    }
}
