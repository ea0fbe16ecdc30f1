//! The caller's own API keys: no house is named, a key is its user's.

use arbe_core::{ApiKeyId, ApiKeyMeta};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Serialize;

use crate::{ApiError, AppState, auth::Authed, body::Body};

/// `GET /api/keys`: the caller's keys (never the keys themselves).
pub(crate) async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<Vec<ApiKeyMeta>>, ApiError> {
    Ok(Json(state.services.access.keys(&caller).await?))
}

/// A new key, shown this once.
#[derive(Serialize)]
pub(crate) struct Created {
    #[serde(flatten)]
    meta: ApiKeyMeta,
    api_key: String,
}

/// `POST /api/keys` with `{"label": …}`.
pub(crate) async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Body(body): Body<arbe_api::CreateKey>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let made = state.services.access.create_key(&caller, &body.label).await?;
    Ok((StatusCode::CREATED, Json(Created { meta: made.meta, api_key: made.key.expose().to_owned() })))
}

/// `DELETE /api/keys/{id}`: revokes one of the caller's keys; it fails at its next request.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.access.revoke_key(&caller, ApiKeyId::parse(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
