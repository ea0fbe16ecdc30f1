//! Who is calling: an API key (`Authorization: Bearer <key>`) and, for a house's objects, the
//! house the request names (`?house_id=`). A key without a membership there finds no house (404).

use std::collections::HashMap;

use arbe_core::{ErrorKind, HouseId};
use arbe_store::{Actor, Caller};
use axum::{
    extract::{FromRequestParts, Query},
    http::{HeaderMap, header, request::Parts},
};

use crate::{ApiError, AppState};

/// The caller, acting in the house the request names: what every route on a house's objects
/// starts from.
pub(crate) struct InHouse(pub(crate) Actor);

impl FromRequestParts<AppState> for InHouse {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let query = query(parts).await?;
        Ok(Self(actor(state, &parts.headers, &query).await?))
    }
}

/// The request's query parameters.
pub(crate) async fn query(parts: &mut Parts) -> Result<HashMap<String, String>, ApiError> {
    let Query(query) = Query::<HashMap<String, String>>::from_request_parts(parts, &())
        .await
        .map_err(|_| ApiError::new(ErrorKind::InvalidInput, "query: must be name=value pairs"))?;
    Ok(query)
}

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
async fn actor(state: &AppState, headers: &HeaderMap, query: &HashMap<String, String>) -> Result<Actor, ApiError> {
    // The key first: a caller who is not one gets 401 whatever else is wrong with the request.
    let caller = caller(state, headers).await?;
    let house = query
        .get("house_id")
        .ok_or_else(|| ApiError::new(ErrorKind::InvalidInput, "invalid house_id: the request must name its house"))?;
    let house = HouseId::parse(house)?;
    Ok(state.services.access.actor(&caller, house).await?)
}
