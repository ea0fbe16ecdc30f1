//! Agents: list, view, create, delete.

use arbe_core::{Agent, AgentRef, ModelRef, Name};
use arbe_dispatch::CreateAgent;
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};

use crate::{ApiError, AppState, auth::InHouse, body::Body, routes::HouseParam};

/// `GET /api/agents?house_id=`.
#[utoipa::path(get, path = "/api/agents", tag = "agents", operation_id = "agents_list", params(HouseParam),
    responses((status = 200, description = "The house's agents", body = Vec<Agent>)))]
pub(crate) async fn list(State(state): State<AppState>, InHouse(actor): InHouse) -> Result<Json<Vec<Agent>>, ApiError> {
    Ok(Json(state.services.agents.list(&actor).await?))
}

/// `GET /api/agents/{id or name}?house_id=`.
#[utoipa::path(get, path = "/api/agents/{id}", tag = "agents", operation_id = "agents_view",
    params(HouseParam, ("id" = String, Path, description = "The agent's id or name")),
    responses((status = 200, description = "The agent", body = Agent)))]
pub(crate) async fn view(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<Agent>, ApiError> {
    Ok(Json(state.services.agents.view(&actor, &AgentRef::parse(&id)?).await?))
}

/// `POST /api/agents?house_id=`.
#[utoipa::path(post, path = "/api/agents", tag = "agents", operation_id = "agents_create", params(HouseParam),
    request_body = arbe_api::CreateAgent, responses((status = 201, description = "The new agent", body = Agent)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Body(body): Body<arbe_api::CreateAgent>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    let req = CreateAgent {
        name: Name::parse_field("agent name", &body.name)?,
        model: body.model.as_deref().map(ModelRef::parse).transpose()?,
        system_prompt: body.system_prompt,
        is_default: body.is_default,
    };
    Ok((StatusCode::CREATED, Json(state.services.agents.create(&actor, req).await?)))
}

/// `DELETE /api/agents/{id or name}?house_id=`.
#[utoipa::path(delete, path = "/api/agents/{id}", tag = "agents", operation_id = "agents_delete",
    params(HouseParam, ("id" = String, Path, description = "The agent's id or name")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.agents.delete(&actor, &AgentRef::parse(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
