//! The operator's routes, behind the admin token (never an API key).

use arbe_core::Name;
use arbe_store::Admin;
use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use serde::Serialize;

use crate::{ApiError, AppState, body::Body};

fn admin(state: &AppState, headers: &HeaderMap) -> Result<Admin, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthenticated)?;
    Ok(state.services.admin(token.trim())?)
}

/// A new house, its owner and the owner's first API key.
#[derive(Serialize)]
pub(crate) struct Bootstrapped {
    house: arbe_core::House,
    owner: arbe_core::Member,
    /// The key itself, shown this once.
    api_key: String,
}

/// `POST /api/admin/houses` with `{"house": …, "user": …}`: a house with a new user as its
/// owner, and that user's first key.
pub(crate) async fn create_house(
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(body): Body<arbe_api::AdminCreateHouse>,
) -> Result<(StatusCode, Json<Bootstrapped>), ApiError> {
    let admin = admin(&state, &headers)?;
    let house = Name::parse_field("house", &body.house)?;
    let user = Name::parse_field("user", &body.user)?;
    let made = state.services.access.admin_bootstrap(&admin, &house, &user, "first key").await?;
    let api_key = made.key.key.expose().to_owned();
    Ok((StatusCode::CREATED, Json(Bootstrapped { house: made.house, owner: made.owner, api_key })))
}
