//! Threads: conversations in a house, created under a parent (a channel or another thread),
//! optionally bound to an environment, with the agents that reply.

use arbe_core::{Action, AgentId, AgentRef, EnvironmentRef, InvalidInput, ModelRef, ParentRef, Thread, ThreadId};
use arbe_store::{Actor, NewThread, Store};

use crate::Result;

/// The most agents a thread may name.
pub const MAX_THREAD_AGENTS: usize = 16;

/// A thread to create (`arbe thread create`, `POST /api/threads`).
#[derive(Clone, Debug)]
pub struct CreateThread {
    /// What it hangs under: a channel name or another thread of the house.
    pub parent: ParentRef,
    /// The environment its dispatches run in, by name or id; the thread keeps a snapshot.
    pub environment: Option<EnvironmentRef>,
    /// Pins every agent of the thread to this model.
    pub model_override: Option<ModelRef>,
    /// The agents that reply, by name or id; none means the house's default agent.
    pub agents: Vec<AgentRef>,
}

impl CreateThread {
    /// A thread under `parent` with nothing else set.
    pub fn new(parent: ParentRef) -> Self {
        Self { parent, environment: None, model_override: None, agents: Vec::new() }
    }
}

/// Threads of houses, for their members. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Threads {
    store: Store,
}

impl Threads {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Creates a thread. Needs a writer. Every reference is checked first (the parent thread,
    /// the environment, each agent, naming the one not found), so bad input creates nothing.
    pub async fn create(&self, actor: &Actor, req: CreateThread) -> Result<Thread> {
        actor.require(Action::Dispatch)?;
        let house = actor.house_id();
        if req.agents.len() > MAX_THREAD_AGENTS {
            return Err(InvalidInput::new("agents", "must name at most 16 agents").into());
        }
        if let ParentRef::Thread(parent) = req.parent {
            self.store.thread(house, parent).await.map_err(|err| not_found_as(err, "parent thread"))?;
        }
        let environment = match &req.environment {
            Some(by) => Some(self.store.environment(house, by).await?),
            None => None,
        };
        let mut agent_ids: Vec<AgentId> = Vec::with_capacity(req.agents.len());
        for by in &req.agents {
            let agent = match by {
                AgentRef::Id(id) => self.store.agent(house, *id).await,
                AgentRef::Name(name) => self.store.agent_by_name(house, name.as_str()).await,
            };
            let id = agent.map_err(|err| not_found_as(err, "agent"))?.id;
            if !agent_ids.contains(&id) {
                agent_ids.push(id);
            }
        }
        let thread = self
            .store
            .create_thread(NewThread {
                house_id: house,
                author_id: actor.member_id(),
                parent: req.parent,
                environment: environment.as_ref().map(|env| env.snapshot()),
                model_override: req.model_override,
                agent_ids,
            })
            .await?;
        tracing::info!(house = %house, thread = %thread.id, "thread created");
        Ok(thread)
    }

    /// The house's newest `limit` threads (1 to 500), newest first. Needs a reader.
    pub async fn list(&self, actor: &Actor, limit: u32) -> Result<Vec<Thread>> {
        actor.require(Action::Read)?;
        Ok(self.store.list_threads(actor.house_id(), limit.clamp(1, 500)).await?)
    }

    /// One thread. Needs a reader.
    pub async fn view(&self, actor: &Actor, id: ThreadId) -> Result<Thread> {
        actor.require(Action::Read)?;
        Ok(self.store.thread(actor.house_id(), id).await?)
    }

    /// The threads hanging under thread `id` (a delegated task's sub-threads, say). Needs a
    /// reader.
    pub async fn children(&self, actor: &Actor, id: ThreadId) -> Result<Vec<Thread>> {
        actor.require(Action::Read)?;
        self.store.thread(actor.house_id(), id).await?;
        Ok(self.store.child_threads(actor.house_id(), id).await?)
    }
}

/// A `NotFound` that names what a user referred to.
fn not_found_as(err: arbe_store::StoreError, what: &'static str) -> arbe_store::StoreError {
    match err {
        arbe_store::StoreError::NotFound { .. } => arbe_store::StoreError::NotFound { what },
        err => err,
    }
}
