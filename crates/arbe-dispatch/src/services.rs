//! The composition root: one function wires store → vault → runtimes → environments →
//! dispatcher, so the server, `arbe up`, the example, the benches and every test build arbe the
//! same way.

use std::sync::Arc;

use arbe_core::HouseId;
use arbe_env::{EnvConfig, Environments, Sandboxes};
use arbe_runtime::RuntimeRegistry;
use arbe_store::{Access, Actor, Admin, AdminToken, Store, StoreConfig, StoreError};
use arbe_vault::{MasterKeys, Vault};

use crate::{Agents, DispatchConfig, Dispatcher, ModelFactory, Result, Threads, Workers};

/// Everything [`Services`] needs besides the store. Libraries take it typed; the binaries fill
/// it from flags, `ARBE_*` variables and `~/.arbe/`.
#[derive(Debug)]
pub struct ServicesConfig {
    /// The vault's master keys (the current one and any previous ones during a rotation).
    pub master_keys: MasterKeys,
    /// The runtimes this process reaches sandboxes on, built by the binary (dispatch never
    /// names an adapter).
    pub runtimes: RuntimeRegistry,
    /// The default runtime, the GitHub App, and the worker's model keys.
    pub env: EnvConfig,
    /// Workers, leases, limits.
    pub dispatch: DispatchConfig,
    /// Where model providers come from.
    pub models: Arc<dyn ModelFactory>,
    /// The operator's admin token; `None` turns the admin operations off.
    pub admin_token: Option<AdminToken>,
}

/// Every service of arbe over one store. Each method that reads or changes a house's objects
/// takes an [`Actor`], which only authentication makes; the raw store is not reachable from
/// here. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Services {
    /// Houses, memberships, API keys and quotas.
    pub access: Access,
    /// Secrets (values in, metadata out).
    pub secrets: Vault,
    /// Environments (seed 001) and their diagnose preflight.
    pub environments: Environments,
    /// Sandboxes on the house's runtimes.
    pub sandboxes: Sandboxes,
    /// Threads.
    pub threads: Threads,
    /// Agents.
    pub agents: Agents,
    /// Entries: posting (which dispatches), reading, following; cancelling; the workers.
    pub dispatcher: Dispatcher,
    admin_token: Option<AdminToken>,
    store: Store,
}

impl Services {
    /// Connects to the store (migrating it) and wires every service.
    pub async fn build(store: &StoreConfig, config: ServicesConfig) -> Result<Self> {
        let store = Store::connect(store).await?;
        Ok(Self::with_store(store, config))
    }

    /// Wires every service over a store already open (a test's, say).
    pub fn with_store(store: Store, config: ServicesConfig) -> Self {
        let secrets = Vault::new(store.clone(), config.master_keys);
        let environments = Environments::new(store.clone(), secrets.clone(), Arc::new(config.runtimes), config.env);
        let dispatcher = Dispatcher::new(store.clone(), environments.clone(), config.models, config.dispatch);
        Self {
            access: Access::new(store.clone()),
            sandboxes: environments.sandboxes(),
            threads: Threads::new(store.clone()),
            agents: Agents::new(store.clone()),
            secrets,
            environments,
            dispatcher,
            admin_token: config.admin_token,
            store,
        }
    }

    /// The actor an API key proves in `house`: `Unauthenticated` for a bad or revoked key,
    /// `NotFound` for a house the key's user is no member of.
    pub async fn authenticate(&self, key: &str, house: HouseId) -> Result<Actor> {
        Ok(self.access.authenticate_in(key, house).await?)
    }

    /// The operator, when `token` is the admin token. `Unauthenticated` otherwise, and when no
    /// admin token is configured.
    pub fn admin(&self, token: &str) -> Result<Admin> {
        let configured = self.admin_token.as_ref().ok_or(StoreError::Unauthenticated)?;
        Ok(configured.verify(token)?)
    }

    /// Starts this process's dispatch workers and the recovery sweep.
    pub fn start_workers(&self) -> Workers {
        self.dispatcher.start()
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        Ok(self.store.ping().await?)
    }

    /// Dispatch jobs queued or running across houses, by state (counts only, for `/metrics`).
    pub async fn active_job_counts(&self) -> Result<Vec<(String, u64)>> {
        Ok(self.store.active_job_counts().await?)
    }

    /// Sandboxes across houses by runtime and state (counts only, for `/metrics`).
    pub async fn sandbox_counts(&self) -> Result<Vec<(String, String, u64)>> {
        Ok(self.store.sandbox_counts().await?)
    }

    /// Which database the services run on.
    pub fn backend(&self) -> arbe_store::Backend {
        self.store.backend()
    }

    /// Closes the store's connections, waiting for queries in flight.
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// The raw store, for test fixtures (the `testkit` feature) only.
    #[cfg(feature = "testkit")]
    pub fn store(&self) -> &Store {
        &self.store
    }
}
