//! The operator's routes, behind the admin token (never an API key).

use arbe_core::Name;
use arbe_store::Admin;
use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::{StatusCode, request::Parts},
};
use serde::Serialize;

use crate::{ApiError, AppState, auth, body::Body};

/// The operator, proven by the admin token (under the same failed-authentication limit as keys).
pub(crate) struct AsAdmin(Admin);

impl FromRequestParts<AppState> for AsAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        auth::limited(state, parts, |token| async move { Ok(Self(state.services.admin(&token)?)) }).await
    }
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
    AsAdmin(admin): AsAdmin,
    Body(body): Body<arbe_api::AdminCreateHouse>,
) -> Result<(StatusCode, Json<Bootstrapped>), ApiError> {
    let house = Name::parse_field("house", &body.house)?;
    let user = Name::parse_field("user", &body.user)?;
    let made = state.services.access.admin_bootstrap(&admin, &house, &user, "first key").await?;
    let api_key = made.key.key.expose().to_owned();
    Ok((StatusCode::CREATED, Json(Bootstrapped { house: made.house, owner: made.owner, api_key })))
}
