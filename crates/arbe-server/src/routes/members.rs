//! A house's members and its audit trail.

use std::collections::HashMap;

use arbe_core::{AuditEvent, ErrorKind, Member, MemberId, Name, Role};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};

use crate::{ApiError, AppState, auth::InHouse, body::Body, routes::limit};

fn role(text: &str) -> Result<Role, ApiError> {
    Ok(Role::parse(text)?)
}

/// `GET /api/members?house_id=`.
pub(crate) async fn list(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
) -> Result<Json<Vec<Member>>, ApiError> {
    Ok(Json(state.services.access.members(&actor).await?))
}

/// `POST /api/members?house_id=` with `{"user": …, "role": …}`: an existing user joins.
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
pub(crate) async fn remove(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.access.remove_member(&actor, MemberId::parse(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/audit?house_id=&after=&limit=`: owners only; who did what, never a value.
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
