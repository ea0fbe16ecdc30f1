//! Reaching an environment's sandbox: provision on demand, start if stopped, and record the
//! state the runtime reports.

use std::sync::Arc;

use arbe_core::{ErrorKind, HouseId, Labels, Name, Resources, RuntimeName, Sandbox, SandboxId, SandboxState};
use arbe_runtime::{ExternalId, Runtime, SandboxSpec};
use arbe_store::NewSandbox;

use crate::{Environments, Result};

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

impl Environments {
    /// Records a sandbox called `name` on `runtime` and provisions it there. When provisioning
    /// fails the row is left in state `error` and the runtime's error is returned.
    pub async fn provision_sandbox(&self, house: HouseId, runtime: &RuntimeName, name: Name) -> Result<ReadySandbox> {
        let adapter = self.runtimes.get(runtime.as_str())?;
        let mut sandbox = self
            .store
            .create_sandbox(NewSandbox {
                house_id: house,
                runtime: runtime.clone(),
                name,
                external_id: None,
                state: SandboxState::Provisioning,
                image: None,
                resources: Resources::default(),
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
    pub async fn ensure_sandbox(&self, house: HouseId, id: SandboxId) -> Result<ReadySandbox> {
        let mut sandbox = self.store.sandbox(house, id).await?;
        let adapter = self.runtimes.get(sandbox.runtime.as_str())?;
        if sandbox.state == SandboxState::Destroyed {
            return Err(arbe_store::StoreError::NotFound { what: "sandbox (it was destroyed)" }.into());
        }
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
    pub async fn destroy_sandbox(&self, house: HouseId, id: SandboxId) -> Result<()> {
        let sandbox = self.store.sandbox(house, id).await?;
        if let Some(external_id) = sandbox.external_id {
            let adapter = self.runtimes.get(sandbox.runtime.as_str())?;
            match adapter.destroy(&ExternalId(external_id)).await {
                Ok(()) => {}
                Err(err) if err.kind == ErrorKind::NotFound => {}
                Err(err) => return Err(err.into()),
            }
        }
        self.store.set_sandbox_state(house, id, SandboxState::Destroyed, None).await?;
        Ok(())
    }
}
