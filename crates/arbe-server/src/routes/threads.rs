//! Threads: create (with an environment and agents, all checked first), list, view, cancel.

use std::collections::HashMap;

use arbe_api::Cancelled;
use arbe_core::{AgentRef, EnvironmentRef, ModelRef, ParentRef, Thread, ThreadId};
use arbe_dispatch::CreateThread;
use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};

use crate::{
    ApiError, AppState,
    auth::InHouse,
    body::Body,
    routes::{HouseParam, Limit, limit},
};

/// `POST /api/threads?house_id=`.
#[utoipa::path(post, path = "/api/threads", tag = "threads", operation_id = "threads_create", params(HouseParam),
    request_body = arbe_api::CreateThread, responses((status = 201, description = "The new thread", body = Thread)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Body(body): Body<arbe_api::CreateThread>,
) -> Result<(StatusCode, Json<Thread>), ApiError> {
    let mut req = CreateThread::new(ParentRef::parse(&body.parent)?);
    req.environment = body.environment.as_deref().map(EnvironmentRef::parse).transpose()?;
    req.model_override = body.model.as_deref().map(ModelRef::parse).transpose()?;
    req.agents = body.agents.iter().map(|a| AgentRef::parse(a)).collect::<Result<_, _>>()?;
    Ok((StatusCode::CREATED, Json(state.services.threads.create(&actor, req).await?)))
}

/// `GET /api/threads?house_id=&limit=`: the newest first.
#[utoipa::path(get, path = "/api/threads", tag = "threads", operation_id = "threads_list", params(HouseParam, Limit),
    responses((status = 200, description = "The house's threads, newest first", body = Vec<Thread>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Thread>>, ApiError> {
    Ok(Json(state.services.threads.list(&actor, limit(&query, 100)?).await?))
}

/// `GET /api/threads/{id}?house_id=`.
#[utoipa::path(get, path = "/api/threads/{id}", tag = "threads", operation_id = "threads_view", params(HouseParam, ("id" = String, Path, description = "The thread's id")),
    responses((status = 200, description = "The thread", body = Thread)))]
pub(crate) async fn view(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<Thread>, ApiError> {
    Ok(Json(state.services.threads.view(&actor, ThreadId::parse(&id)?).await?))
}

/// `POST /api/threads/{id}/cancel?house_id=`: ends queued dispatches, stops running ones.
#[utoipa::path(post, path = "/api/threads/{id}/cancel", tag = "threads", operation_id = "threads_cancel",
    params(HouseParam, ("id" = String, Path, description = "The thread's id")),
    responses((status = 200, description = "How many dispatches were ended or told to stop", body = Cancelled)))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<Cancelled>, ApiError> {
    let cancelled = state.services.dispatcher.cancel(&actor, ThreadId::parse(&id)?).await?;
    Ok(Json(Cancelled { cancelled }))
}
