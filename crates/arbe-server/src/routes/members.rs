//! A house's members and its audit trail.

use std::collections::HashMap;

use arbe_core::{AuditEvent, ErrorKind, Member, MemberId, Name, Role};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};

use crate::{
    ApiError, AppState,
    auth::InHouse,
    body::Body,
    routes::{HouseParam, Page, limit},
};

fn role(text: &str) -> Result<Role, ApiError> {
    Ok(Role::parse(text)?)
}

/// `GET /api/members?house_id=`.
#[utoipa::path(get, path = "/api/members", tag = "members", operation_id = "members_list", params(HouseParam),
    responses((status = 200, description = "The house's members", body = Vec<Member>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
) -> Result<Json<Vec<Member>>, ApiError> {
    Ok(Json(state.services.access.members(&actor).await?))
}

/// `POST /api/members?house_id=` with `{"user": …, "role": …}`: an existing user joins.
#[utoipa::path(post, path = "/api/members", tag = "members", operation_id = "members_add", params(HouseParam),
    request_body = arbe_api::AddMember, responses((status = 201, description = "The new member", body = Member)))]
pub(crate) async fn add(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Body(body): Body<arbe_api::AddMember>,
) -> Result<(StatusCode, Json<Member>), ApiError> {
    let user = Name::parse_field("user", &body.user)?;
    let member = state.services.access.add_member(&actor, &user, role(&body.role)?).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// `PATCH /api/members/{id}?house_id=` with `{"role": …}`.
#[utoipa::path(patch, path = "/api/members/{id}", tag = "members", operation_id = "members_set_role",
    params(HouseParam, ("id" = String, Path, description = "The membership's id")),
    request_body = arbe_api::SetRole, responses((status = 200, description = "The member with its new role", body = Member)))]
pub(crate) async fn set_role(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
    Body(body): Body<arbe_api::SetRole>,
) -> Result<Json<Member>, ApiError> {
    let member = MemberId::parse(&id)?;
    Ok(Json(state.services.access.set_role(&actor, member, role(&body.role)?).await?))
}

/// `DELETE /api/members/{id}?house_id=`.
#[utoipa::path(delete, path = "/api/members/{id}", tag = "members", operation_id = "members_remove",
    params(HouseParam, ("id" = String, Path, description = "The membership's id")),
    responses((status = 204, description = "Removed")))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.access.remove_member(&actor, MemberId::parse(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/audit?house_id=&after=&limit=`: owners only; who did what, never a value.
#[utoipa::path(get, path = "/api/audit", tag = "members", operation_id = "audit_list", params(HouseParam, Page),
    responses((status = 200, description = "Who did what, oldest first", body = Vec<AuditEvent>)))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    let after = match query.get("after") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| ApiError::new(ErrorKind::InvalidInput, "invalid after: must be a whole number"))?,
        ),
    };
    Ok(Json(state.services.access.audit(&actor, after, limit(&query, 200)?).await?))
}
