//! Secrets: values go in, only metadata comes out.

use arbe_core::{Audience, SecretMeta, SecretName, SecretValue};
use arbe_vault::SetOptions;
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};

use crate::{ApiError, AppState, auth::InHouse, body::Body, routes::HouseParam};

/// `GET /api/secrets?house_id=`.
#[utoipa::path(get, path = "/api/secrets", tag = "secrets", operation_id = "secrets_list", params(HouseParam),
    responses((status = 200, description = "The house's secrets, never a value", body = Vec<SecretMeta>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
) -> Result<Json<Vec<SecretMeta>>, ApiError> {
    Ok(Json(state.services.secrets.list(&actor).await?))
}

/// `GET /api/secrets/{name}?house_id=`: its metadata.
#[utoipa::path(get, path = "/api/secrets/{name}", tag = "secrets", operation_id = "secrets_view",
    params(HouseParam, ("name" = String, Path, description = "The secret's name: an environment variable name, `[A-Z_][A-Z0-9_]*`")),
    responses((status = 200, description = "The secret's metadata", body = SecretMeta)))]
pub(crate) async fn view(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(name): Path<String>,
) -> Result<Json<SecretMeta>, ApiError> {
    Ok(Json(state.services.secrets.meta(&actor, &SecretName::parse(&name)?).await?))
}

/// `PUT /api/secrets/{name}?house_id=`: creates or rotates it.
#[utoipa::path(put, path = "/api/secrets/{name}", tag = "secrets", operation_id = "secrets_set",
    params(HouseParam, ("name" = String, Path, description = "The secret's name: an environment variable name, `[A-Z_][A-Z0-9_]*`")),
    request_body = arbe_api::SetSecret, responses((status = 200, description = "The secret's metadata, never its value", body = SecretMeta)))]
pub(crate) async fn set(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(name): Path<String>,
    Body(body): Body<arbe_api::SetSecret>,
) -> Result<Json<SecretMeta>, ApiError> {
    let name = SecretName::parse(&name)?;
    let audience = body.audience.as_deref().map(Audience::parse).transpose()?;
    let value = SecretValue::new(body.value)?;
    let options = SetOptions { audience, shared: body.shared };
    Ok(Json(state.services.secrets.set(&actor, &name, &value, options).await?))
}

/// `DELETE /api/secrets/{name}?house_id=`.
#[utoipa::path(delete, path = "/api/secrets/{name}", tag = "secrets", operation_id = "secrets_delete",
    params(HouseParam, ("name" = String, Path, description = "The secret's name: an environment variable name, `[A-Z_][A-Z0-9_]*`")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.secrets.delete(&actor, &SecretName::parse(&name)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
