//! The caller's own API keys: no house is named, a key is its user's.

use arbe_api::NewKey;
use arbe_core::{ApiKeyId, ApiKeyMeta};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};

use crate::{ApiError, AppState, auth::Authed, body::Body};

/// `GET /api/keys`: the caller's keys (never the keys themselves).
#[utoipa::path(get, path = "/api/keys", tag = "keys", operation_id = "keys_list",
    responses((status = 200, description = "The caller's keys, without the keys themselves", body = Vec<ApiKeyMeta>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<Vec<ApiKeyMeta>>, ApiError> {
    Ok(Json(state.services.access.keys(&caller).await?))
}

/// A new key as the API shows it, this once.
pub(crate) fn created(made: arbe_store::NewApiKey) -> NewKey {
    NewKey { meta: made.meta, api_key: made.key.expose().to_owned() }
}

/// `POST /api/keys` with `{"label": …}`.
#[utoipa::path(post, path = "/api/keys", tag = "keys", operation_id = "keys_create", request_body = arbe_api::CreateKey,
    responses((status = 201, description = "The new key, shown this once", body = NewKey)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Body(body): Body<arbe_api::CreateKey>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let made = state.services.access.create_key(&caller, &body.label).await?;
    Ok((StatusCode::CREATED, Json(created(made))))
}

/// `DELETE /api/keys/{id}`: revokes one of the caller's keys; it fails at its next request.
#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys", operation_id = "keys_revoke",
    params(("id" = String, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked")))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.access.revoke_key(&caller, ApiKeyId::parse(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
