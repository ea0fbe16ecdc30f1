//! Agents (bots). At most one per house is the default, which replies when a thread names none.

use arbe_core::{Agent, AgentId, HouseId, ModelRef, Name};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Result, Store, StoreError, column, now, on};

/// An agent to create.
#[derive(Clone, Debug)]
pub struct NewAgent {
    /// The house.
    pub house_id: HouseId,
    /// Its name, unique in the house.
    pub name: Name,
    /// Its model.
    pub model: ModelRef,
    /// Its system prompt.
    pub system_prompt: String,
    /// Make it the house's default (the previous default, if any, stops being one).
    pub is_default: bool,
}

/// Changes to an agent: `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AgentPatch {
    /// A new name, unique in the house.
    pub name: Option<Name>,
    /// A new model.
    pub model: Option<ModelRef>,
    /// A new system prompt.
    pub system_prompt: Option<String>,
    /// `Some(true)` makes it the house's default (the previous default stops being one).
    pub is_default: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: Uuid,
    house_id: Uuid,
    name: String,
    model: String,
    system_prompt: String,
    is_default: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<AgentRow> for Agent {
    type Error = StoreError;
    fn try_from(row: AgentRow) -> Result<Self> {
        Ok(Agent {
            id: AgentId::from_uuid(row.id),
            house_id: HouseId::from_uuid(row.house_id),
            name: column("agents", Name::parse(&row.name))?,
            model: column("agents", ModelRef::parse(&row.model))?,
            system_prompt: row.system_prompt,
            is_default: row.is_default,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

macro_rules! agent_columns {
    () => {
        "id, house_id, name, model, system_prompt, is_default, created_at, updated_at"
    };
}

impl Store {
    /// Creates an agent; with `is_default` it becomes the house's default in the same
    /// transaction.
    pub async fn create_agent(&self, new: NewAgent) -> Result<Agent> {
        let at = now();
        let agent = Agent {
            id: AgentId::new(),
            house_id: new.house_id,
            name: new.name,
            model: new.model,
            system_prompt: new.system_prompt,
            is_default: new.is_default,
            created_at: at,
            updated_at: at,
        };
        on!(&self.write, |pool| {
            let mut tx = pool.begin().await?;
            if agent.is_default {
                sqlx::query("UPDATE agents SET is_default = FALSE, updated_at = $2 WHERE house_id = $1 AND is_default")
                    .bind(agent.house_id.as_uuid())
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(concat!("INSERT INTO agents (", agent_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                .bind(agent.id.as_uuid())
                .bind(agent.house_id.as_uuid())
                .bind(agent.name.as_str())
                .bind(agent.model.as_str())
                .bind(&agent.system_prompt)
                .bind(agent.is_default)
                .bind(agent.created_at)
                .bind(agent.updated_at)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::unique("agent", "an agent with this name already exists in the house"))?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(agent)
    }

    /// An agent of `house`.
    pub async fn agent(&self, house: HouseId, id: AgentId) -> Result<Agent> {
        let row: Option<AgentRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!("SELECT ", agent_columns!(), " FROM agents WHERE house_id = $1 AND id = $2"))
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "agent" })?.try_into()
    }

    /// The house's default agent.
    pub async fn default_agent(&self, house: HouseId) -> Result<Agent> {
        let row: Option<AgentRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!("SELECT ", agent_columns!(), " FROM agents WHERE house_id = $1 AND is_default"))
                .bind(house.as_uuid())
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "default agent" })?.try_into()
    }

    /// The agents of `house`, by name.
    pub async fn list_agents(&self, house: HouseId) -> Result<Vec<Agent>> {
        let rows: Vec<AgentRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!("SELECT ", agent_columns!(), " FROM agents WHERE house_id = $1 ORDER BY name"))
                .bind(house.as_uuid())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// An agent of `house` by name.
    pub async fn agent_by_name(&self, house: HouseId, name: &str) -> Result<Agent> {
        let row: Option<AgentRow> = on!(&self.read, |pool| {
            sqlx::query_as(concat!("SELECT ", agent_columns!(), " FROM agents WHERE house_id = $1 AND name = $2"))
                .bind(house.as_uuid())
                .bind(name)
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound { what: "agent" })?.try_into()
    }

    /// Changes the fields `patch` sets, in one transaction.
    pub async fn update_agent(&self, house: HouseId, id: AgentId, patch: AgentPatch) -> Result<Agent> {
        let mut agent = self.agent(house, id).await?;
        if let Some(name) = patch.name {
            agent.name = name;
        }
        if let Some(model) = patch.model {
            agent.model = model;
        }
        if let Some(prompt) = patch.system_prompt {
            agent.system_prompt = prompt;
        }
        if let Some(is_default) = patch.is_default {
            agent.is_default = is_default;
        }
        agent.updated_at = now();
        let n = on!(&self.write, |pool| {
            let mut tx = pool.begin().await?;
            if agent.is_default {
                sqlx::query(
                    "UPDATE agents SET is_default = FALSE, updated_at = $3 WHERE house_id = $1 AND id <> $2 AND is_default",
                )
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .bind(agent.updated_at)
                .execute(&mut *tx)
                .await?;
            }
            let n = sqlx::query(
                "UPDATE agents SET name = $3, model = $4, system_prompt = $5, is_default = $6, updated_at = $7 \
                 WHERE house_id = $1 AND id = $2",
            )
            .bind(house.as_uuid())
            .bind(id.as_uuid())
            .bind(agent.name.as_str())
            .bind(agent.model.as_str())
            .bind(&agent.system_prompt)
            .bind(agent.is_default)
            .bind(agent.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::unique("agent", "an agent with this name already exists in the house"))?
            .rows_affected();
            tx.commit().await?;
            Ok::<_, StoreError>(n)
        })?;
        if n == 0 { Err(StoreError::NotFound { what: "agent" }) } else { Ok(agent) }
    }

    /// Deletes an agent. Threads that named it fail their next dispatch, saying so.
    pub async fn delete_agent(&self, house: HouseId, id: AgentId) -> Result<()> {
        let n = on!(&self.write, |pool| {
            sqlx::query("DELETE FROM agents WHERE house_id = $1 AND id = $2")
                .bind(house.as_uuid())
                .bind(id.as_uuid())
                .execute(pool)
                .await
                .map(|res| res.rows_affected())
        })?;
        if n == 0 { Err(StoreError::NotFound { what: "agent" }) } else { Ok(()) }
    }
}
