//! The operator's routes, behind the admin token (never an API key): houses, users and their
//! keys, quotas, and master-key rotation.

use arbe_core::{ApiKeyId, House, HouseId, Name, Quotas, User, UserId};
use arbe_store::Admin;
use axum::{
    Json,
    extract::{FromRequestParts, Path, State},
    http::{StatusCode, request::Parts},
};
use serde::Serialize;

use crate::{ApiError, AppState, auth, body::Body, routes::keys::created};

/// The operator, proven by the admin token (under the same failed-authentication limit as keys).
pub(crate) struct AsAdmin(Admin);

impl FromRequestParts<AppState> for AsAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        auth::limited(state, parts, |token| async move { Ok(Self(state.services.admin(&token)?)) }).await
    }
}

/// A new house, its owner and the owner's first API key.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Bootstrapped {
    house: House,
    user: User,
    owner: arbe_core::Member,
    /// The key itself, shown this once.
    api_key: String,
}

/// `GET /api/admin/houses`: every house.
#[utoipa::path(get, path = "/api/admin/houses", tag = "admin", operation_id = "admin_houses_list",
    security(("admin_token" = [])),
    responses((status = 200, description = "Every house", body = Vec<House>)))]
pub(crate) async fn houses(
    State(state): State<AppState>,
    AsAdmin(admin): AsAdmin,
) -> Result<Json<Vec<House>>, ApiError> {
    Ok(Json(state.services.access.admin_houses(&admin).await?))
}

/// `POST /api/admin/houses` with `{"house": …, "user": …}`: a house with a new user as its
/// owner, and that user's first key.
#[utoipa::path(post, path = "/api/admin/houses", tag = "admin", operation_id = "admin_houses_create",
    security(("admin_token" = [])), request_body = arbe_api::AdminCreateHouse,
    responses((status = 201, description = "The house, its owner and the owner's first key (shown once)", body = Bootstrapped)))]
pub(crate) async fn create_house(
    State(state): State<AppState>,
    AsAdmin(admin): AsAdmin,
    Body(body): Body<arbe_api::AdminCreateHouse>,
) -> Result<(StatusCode, Json<Bootstrapped>), ApiError> {
    let house = Name::parse_field("house", &body.house)?;
    let user = Name::parse_field("user", &body.user)?;
    let made = state.services.access.admin_bootstrap(&admin, &house, &user, "first key").await?;
    let api_key = made.key.key.expose().to_owned();
    Ok((StatusCode::CREATED, Json(Bootstrapped { house: made.house, user: made.user, owner: made.owner, api_key })))
}

/// `PUT /api/admin/houses/{id}/quotas`: the house's overrides; an absent or `null` field takes
/// the operator's default.
#[utoipa::path(put, path = "/api/admin/houses/{id}/quotas", tag = "admin", operation_id = "admin_quotas_set",
    security(("admin_token" = [])), params(("id" = String, Path, description = "The house's id")),
    request_body = arbe_api::SetQuotas,
    responses((status = 200, description = "The house's quotas now in force", body = Quotas)))]
pub(crate) async fn set_quotas(
    State(state): State<AppState>,
    AsAdmin(admin): AsAdmin,
    Path(id): Path<String>,
    Body(body): Body<arbe_api::SetQuotas>,
) -> Result<Json<Quotas>, ApiError> {
    let house = HouseId::parse(&id)?;
    let quotas = Quotas {
        sandboxes: body.sandboxes,
        concurrent_dispatches: body.concurrent_dispatches,
        workspace_bytes: body.workspace_bytes,
    };
    Ok(Json(state.services.access.admin_set_quotas(&admin, house, quotas).await?))
}

/// `GET /api/admin/users`: every user.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", operation_id = "admin_users_list",
    security(("admin_token" = [])),
    responses((status = 200, description = "Every user", body = Vec<User>)))]
pub(crate) async fn users(State(state): State<AppState>, AsAdmin(admin): AsAdmin) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(state.services.access.admin_users(&admin).await?))
}

/// `POST /api/admin/users` with `{"name": …}`: a user with no house and no key yet.
#[utoipa::path(post, path = "/api/admin/users", tag = "admin", operation_id = "admin_users_create",
    security(("admin_token" = [])), request_body = arbe_api::AdminCreateUser,
    responses((status = 201, description = "The new user", body = User)))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    AsAdmin(admin): AsAdmin,
    Body(body): Body<arbe_api::AdminCreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let name = Name::parse_field("user", &body.name)?;
    Ok((StatusCode::CREATED, Json(state.services.access.admin_create_user(&admin, &name).await?)))
}

/// `POST /api/admin/users/{id}/keys` with `{"label": …}`: a key for that user, shown once.
#[utoipa::path(post, path = "/api/admin/users/{id}/keys", tag = "admin", operation_id = "admin_keys_create",
    security(("admin_token" = [])), params(("id" = String, Path, description = "The user's id")),
    request_body = arbe_api::CreateKey,
    responses((status = 201, description = "The new key, shown this once", body = arbe_api::NewKey)))]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    AsAdmin(admin): AsAdmin,
    Path(id): Path<String>,
    Body(body): Body<arbe_api::CreateKey>,
) -> Result<(StatusCode, Json<arbe_api::NewKey>), ApiError> {
    let made = state.services.access.admin_create_key(&admin, UserId::parse(&id)?, &body.label).await?;
    Ok((StatusCode::CREATED, Json(created(made))))
}

/// `DELETE /api/admin/users/{id}/keys/{key_id}`: revokes any user's key.
#[utoipa::path(delete, path = "/api/admin/users/{id}/keys/{key_id}", tag = "admin", operation_id = "admin_keys_revoke",
    security(("admin_token" = [])),
    params(("id" = String, Path, description = "The user's id"), ("key_id" = String, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked")))]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    AsAdmin(admin): AsAdmin,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.services.access.admin_revoke_key(&admin, UserId::parse(&id)?, ApiKeyId::parse(&key_id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a master-key rotation did.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Rotated {
    /// Data keys rewrapped under the current master key.
    rewrapped: u64,
}

/// `POST /api/admin/master-key/rotate`: rewraps every house's data key under the master key
/// the server started with. Run it after starting with a new key and the old one in
/// `ARBE_PREVIOUS_MASTER_KEYS`; safe to run again.
#[utoipa::path(post, path = "/api/admin/master-key/rotate", tag = "admin", operation_id = "admin_master_key_rotate",
    security(("admin_token" = [])),
    responses((status = 200, description = "How many data keys were rewrapped", body = Rotated)))]
pub(crate) async fn rotate_master_key(
    State(state): State<AppState>,
    AsAdmin(admin): AsAdmin,
) -> Result<Json<Rotated>, ApiError> {
    let report = state.services.secrets.rotate_master_key(&admin).await?;
    Ok(Json(Rotated { rewrapped: report.rewritten }))
}
