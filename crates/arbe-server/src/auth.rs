//! Who is calling: an API key (`Authorization: Bearer <key>`) and, for a house's objects, the
//! house the request names (`?house_id=`). A key without a membership there finds no house (404).

use std::collections::HashMap;

use arbe_core::{ErrorKind, HouseId};
use arbe_store::{Actor, Caller};
use axum::http::{HeaderMap, header};

use crate::{ApiError, AppState};

/// The bearer key, or the one 401 every failure gets.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .ok_or_else(ApiError::unauthenticated)
}

/// The user the key belongs to.
pub(crate) async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    Ok(state.services.access.authenticate(bearer(headers)?).await?)
}

/// The caller acting in the house `?house_id=` names.
pub(crate) async fn actor(
    state: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Actor, ApiError> {
    // The key first: a caller who is not one gets 401 whatever else is wrong with the request.
    let caller = caller(state, headers).await?;
    let house = query
        .get("house_id")
        .ok_or_else(|| ApiError::new(ErrorKind::InvalidInput, "invalid house_id: the request must name its house"))?;
    let house = HouseId::parse(house)?;
    Ok(state.services.access.actor(&caller, house).await?)
}
