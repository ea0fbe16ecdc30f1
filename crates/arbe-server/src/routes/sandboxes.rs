//! Sandboxes: list (on one runtime or every one), view, create, start, stop, destroy, ping,
//! diagnose, and the names of the variables commands there get. The stored state is kept in
//! step with the runtime by the service.

use std::collections::HashMap;

use arbe_api::{EnvVar, Ping, SandboxDiagnosis};
use arbe_core::{Name, RuntimeName, Sandbox, SandboxRef};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};

use crate::{
    ApiError, AppState,
    auth::InHouse,
    body::Body,
    routes::{HouseParam, check_view},
};

/// `GET /api/sandboxes?house_id=&runtime=`.
#[utoipa::path(get, path = "/api/sandboxes", tag = "sandboxes", operation_id = "sandboxes_list",
    params(HouseParam, ("runtime" = Option<String>, Query, description = "Only this runtime's sandboxes (default: every runtime)")),
    responses((status = 200, description = "The house's sandboxes", body = Vec<Sandbox>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Sandbox>>, ApiError> {
    let runtime = query.get("runtime").map(|r| RuntimeName::parse(r)).transpose()?;
    Ok(Json(state.services.sandboxes.list(&actor, runtime.as_ref()).await?))
}

/// `GET /api/sandboxes/{id or name}?house_id=`.
#[utoipa::path(get, path = "/api/sandboxes/{id}", tag = "sandboxes", operation_id = "sandboxes_view",
    params(HouseParam, ("id" = String, Path, description = "The sandbox's id or name")),
    responses((status = 200, description = "The sandbox", body = Sandbox)))]
pub(crate) async fn view(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(state.services.sandboxes.view(&actor, &SandboxRef::parse(&id)?).await?))
}

/// `POST /api/sandboxes?house_id=` with `{"name": …, "runtime": …}`.
#[utoipa::path(post, path = "/api/sandboxes", tag = "sandboxes", operation_id = "sandboxes_create", params(HouseParam),
    request_body = arbe_api::CreateSandbox, responses((status = 201, description = "The new sandbox", body = Sandbox)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Body(body): Body<arbe_api::CreateSandbox>,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    let name = Name::parse_field("sandbox name", &body.name)?;
    let runtime = body.runtime.as_deref().map(RuntimeName::parse).transpose()?;
    Ok((StatusCode::CREATED, Json(state.services.sandboxes.create(&actor, name, runtime).await?)))
}

/// `POST /api/sandboxes/{id or name}/start?house_id=`.
#[utoipa::path(post, path = "/api/sandboxes/{id}/start", tag = "sandboxes", operation_id = "sandboxes_start",
    params(HouseParam, ("id" = String, Path, description = "The sandbox's id or name")),
    responses((status = 200, description = "The sandbox, started", body = Sandbox)))]
pub(crate) async fn start(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(state.services.sandboxes.start(&actor, &SandboxRef::parse(&id)?).await?))
}

/// `POST /api/sandboxes/{id or name}/stop?house_id=`: the workspace is kept.
#[utoipa::path(post, path = "/api/sandboxes/{id}/stop", tag = "sandboxes", operation_id = "sandboxes_stop",
    params(HouseParam, ("id" = String, Path, description = "The sandbox's id or name")),
    responses((status = 200, description = "The sandbox, stopped", body = Sandbox)))]
pub(crate) async fn stop(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(state.services.sandboxes.stop(&actor, &SandboxRef::parse(&id)?).await?))
}

/// `DELETE /api/sandboxes/{id or name}?house_id=`: destroys it and its workspace.
#[utoipa::path(delete, path = "/api/sandboxes/{id}", tag = "sandboxes", operation_id = "sandboxes_destroy",
    params(HouseParam, ("id" = String, Path, description = "The sandbox's id or name")),
    responses((status = 200, description = "The sandbox, destroyed", body = Sandbox)))]
pub(crate) async fn destroy(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    Ok(Json(state.services.sandboxes.destroy(&actor, &SandboxRef::parse(&id)?).await?))
}

/// `GET /api/sandboxes/{id or name}/ping?house_id=`.
#[utoipa::path(get, path = "/api/sandboxes/{id}/ping", tag = "sandboxes", operation_id = "sandboxes_ping",
    params(HouseParam, ("id" = String, Path, description = "The sandbox's id or name")),
    responses((status = 200, description = "The sandbox and, when started, a round trip", body = Ping)))]
pub(crate) async fn ping(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<Ping>, ApiError> {
    let ping = state.services.sandboxes.ping(&actor, &SandboxRef::parse(&id)?).await?;
    let round_trip_ms = ping.round_trip.map(|d| d.as_secs_f64() * 1000.0);
    Ok(Json(Ping { sandbox: ping.sandbox, round_trip_ms }))
}

/// `GET /api/sandboxes/{id or name}/diagnose?house_id=`.
#[utoipa::path(get, path = "/api/sandboxes/{id}/diagnose", tag = "sandboxes", operation_id = "sandboxes_diagnose",
    params(HouseParam, ("id" = String, Path, description = "The sandbox's id or name")),
    responses((status = 200, description = "What the runtime found", body = SandboxDiagnosis)))]
pub(crate) async fn diagnose(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<SandboxDiagnosis>, ApiError> {
    let found = state.services.sandboxes.diagnose(&actor, &SandboxRef::parse(&id)?).await?;
    let checks = found.runtime.checks.into_iter().map(check_view).collect();
    Ok(Json(SandboxDiagnosis { sandbox: found.sandbox, runtime: found.runtime.runtime.to_owned(), checks }))
}

/// `GET /api/sandboxes/{id or name}/env?house_id=`.
#[utoipa::path(get, path = "/api/sandboxes/{id}/env", tag = "sandboxes", operation_id = "sandboxes_env",
    params(HouseParam, ("id" = String, Path, description = "The sandbox's id or name")),
    responses((status = 200, description = "The variables commands there get, by name", body = Vec<EnvVar>)))]
pub(crate) async fn env(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<Vec<EnvVar>>, ApiError> {
    let names = state.services.sandboxes.env_names(&actor, &SandboxRef::parse(&id)?).await?;
    Ok(Json(
        names
            .into_iter()
            .map(|v| EnvVar { name: v.name.to_string(), required: v.required, environment: v.environment.to_string() })
            .collect(),
    ))
}
