//! Agents (bots): a name, a model and a system prompt. The house's default agent replies when a
//! thread names none; it is created on first use with [`DEFAULT_PROMPT`].

use arbe_core::{Action, Agent, AgentRef, InvalidInput, ModelRef, Name};
use arbe_store::{Actor, AgentPatch, NewAgent, Store};

use crate::Result;

/// The longest system prompt accepted, in characters (at most 64 KiB of UTF-8).
pub const MAX_PROMPT_CHARS: usize = 16 * 1024;

/// The default agent's instructions.
pub const DEFAULT_PROMPT: &str = "You are arbe, a coding agent. You work in a sandbox through the \
run_command tool: every read, write, edit, search and build is a shell command there. Work in \
small steps, check what each command did, and finish with a short summary of what you changed.";

/// An agent to create (`arbe agent create`, `POST /api/agents`).
#[derive(Clone, Debug)]
pub struct CreateAgent {
    /// Its name, unique in the house.
    pub name: Name,
    /// Its model; `None` is seed 000's default (`openrouter/anthropic/claude-haiku-4.5`).
    pub model: Option<ModelRef>,
    /// Its system prompt; `None` is [`DEFAULT_PROMPT`].
    pub system_prompt: Option<String>,
    /// Make it the house's default agent.
    pub is_default: bool,
}

fn check_prompt(prompt: &str) -> std::result::Result<(), InvalidInput> {
    // Counted in characters, as the API's schema counts them (at most 64 KiB of UTF-8).
    if prompt.chars().count() > MAX_PROMPT_CHARS || prompt.contains('\0') {
        return Err(InvalidInput::new("system_prompt", "must be at most 16,384 characters with no NUL characters"));
    }
    Ok(())
}

/// Agents of houses, for their members. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Agents {
    store: Store,
}

impl Agents {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }

    /// Creates an agent. Needs a writer.
    pub async fn create(&self, actor: &Actor, req: CreateAgent) -> Result<Agent> {
        actor.require(Action::WriteAgent)?;
        let system_prompt = req.system_prompt.unwrap_or_else(|| DEFAULT_PROMPT.to_owned());
        check_prompt(&system_prompt)?;
        let agent = self
            .store
            .create_agent(NewAgent {
                house_id: actor.house_id(),
                name: req.name,
                model: req.model.unwrap_or_default(),
                system_prompt,
                is_default: req.is_default,
            })
            .await?;
        tracing::info!(house = %actor.house_id(), agent = %agent.id, "agent created");
        Ok(agent)
    }

    /// The house's agents, by name. Needs a reader.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<Agent>> {
        actor.require(Action::Read)?;
        Ok(self.store.list_agents(actor.house_id()).await?)
    }

    /// One agent, by name or id. Needs a reader.
    pub async fn view(&self, actor: &Actor, by: &AgentRef) -> Result<Agent> {
        actor.require(Action::Read)?;
        self.find(actor, by).await
    }

    /// Changes the fields `patch` sets. Needs a writer.
    pub async fn update(&self, actor: &Actor, by: &AgentRef, patch: AgentPatch) -> Result<Agent> {
        actor.require(Action::WriteAgent)?;
        if let Some(prompt) = &patch.system_prompt {
            check_prompt(prompt)?;
        }
        let agent = self.find(actor, by).await?;
        Ok(self.store.update_agent(actor.house_id(), agent.id, patch).await?)
    }

    /// Deletes an agent; threads that name it fail their next dispatch, saying so. Needs an
    /// owner.
    pub async fn delete(&self, actor: &Actor, by: &AgentRef) -> Result<()> {
        actor.require(Action::DeleteAgent)?;
        let agent = self.find(actor, by).await?;
        self.store.delete_agent(actor.house_id(), agent.id).await?;
        tracing::info!(house = %actor.house_id(), agent = %agent.id, "agent deleted");
        Ok(())
    }

    async fn find(&self, actor: &Actor, by: &AgentRef) -> Result<Agent> {
        Ok(match by {
            AgentRef::Id(id) => self.store.agent(actor.house_id(), *id).await?,
            AgentRef::Name(name) => self.store.agent_by_name(actor.house_id(), name.as_str()).await?,
        })
    }
}
