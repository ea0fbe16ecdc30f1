//! The caller's houses.

use arbe_api::HouseView;
use arbe_core::Name;
use axum::{Json, extract::State, http::StatusCode};

use crate::{ApiError, AppState, auth::Authed, body::Body};

/// `GET /api/houses`: the houses the caller is a member of.
#[utoipa::path(get, path = "/api/houses", tag = "houses", operation_id = "houses_list",
    responses((status = 200, description = "The caller's houses and memberships", body = Vec<HouseView>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<Vec<HouseView>>, ApiError> {
    let houses = state.services.access.houses(&caller).await?;
    Ok(Json(houses.into_iter().map(|(house, membership)| HouseView { house, membership }).collect()))
}

/// `POST /api/houses`: a new house, the caller its owner.
#[utoipa::path(post, path = "/api/houses", tag = "houses", operation_id = "houses_create", request_body = arbe_api::CreateHouse,
    responses((status = 201, description = "The new house; the caller owns it", body = HouseView)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Body(body): Body<arbe_api::CreateHouse>,
) -> Result<(StatusCode, Json<HouseView>), ApiError> {
    let name = Name::parse_field("house name", &body.name)?;
    let (house, membership) = state.services.access.create_house(&caller, &name).await?;
    Ok((StatusCode::CREATED, Json(HouseView { house, membership })))
}
