//! Who is calling: an API key (`Authorization: Bearer <key>`) and, for a house's objects, the
//! house the request names (`?house_id=`). A key without a membership there finds no house (404).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

use arbe_core::{ErrorKind, HouseId};
use arbe_store::{Actor, Caller};
use axum::{
    extract::{ConnectInfo, FromRequestParts, Query},
    http::{HeaderMap, header, request::Parts},
};

use crate::{ApiError, AppState};

/// Failed authentications per client address: past its limit in a window, that address gets
/// 429 until the window ends, whatever it presents. Other addresses are never affected, so a
/// valid key is never limited by someone else's failures.
#[derive(Debug)]
pub struct FailedAuth {
    max: u32,
    by_address: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Default for FailedAuth {
    fn default() -> Self {
        Self::new(Self::MAX)
    }
}

impl FailedAuth {
    /// Failures allowed per address per window, unless the operator sets another limit.
    pub const MAX: u32 = 20;

    /// A limit of `max` failures per address per window.
    pub fn new(max: u32) -> Self {
        Self { max, by_address: Mutex::default() }
    }
    /// The window.
    pub const WINDOW: Duration = Duration::from_secs(60);

    /// `Err` (429, with how long to wait) while `address` is over the limit.
    fn check(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(address) = address else { return Ok(()) };
        let map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&address) {
            Some((count, since)) if *count >= self.max && since.elapsed() < Self::WINDOW => {
                let wait = Self::WINDOW.saturating_sub(since.elapsed()).as_secs().max(1);
                Err(ApiError::rate_limited(
                    format!("too many failed authentications from this address: try again in {wait} s"),
                    wait,
                ))
            }
            _ => Ok(()),
        }
    }

    fn record(&self, address: Option<IpAddr>) {
        let Some(address) = address else { return };
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, since)| since.elapsed() < Self::WINDOW);
        }
        let entry = map.entry(address).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= Self::WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

/// The client's address, when the server was started with connect info.
fn address(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
}

/// The caller, by its API key.
pub(crate) struct Authed(pub(crate) Caller);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(caller(state, parts).await?))
    }
}

/// Runs `verify` on the request's bearer credential under the failed-authentication limit.
pub(crate) async fn limited<T, F>(
    state: &AppState,
    parts: &Parts,
    verify: impl FnOnce(String) -> F,
) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    let address = address(parts);
    state.failed_auth.check(address)?;
    // Only a credential that was presented and is wrong counts: no credential at all is no guess.
    let key = bearer(&parts.headers)?;
    let result = verify(key.to_owned()).await;
    if matches!(&result, Err(err) if err.kind() == ErrorKind::Unauthenticated) {
        state.failed_auth.record(address);
    }
    result
}

/// The caller, acting in the house the request names: what every route on a house's objects
/// starts from.
pub(crate) struct InHouse(pub(crate) Actor);

impl FromRequestParts<AppState> for InHouse {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let query = query(parts).await?;
        // The key first: a caller who is not one gets 401 whatever else is wrong with the request.
        let caller = caller(state, parts).await?;
        let house = query.get("house_id").ok_or_else(|| {
            ApiError::new(ErrorKind::InvalidInput, "invalid house_id: the request must name its house")
        })?;
        let house = HouseId::parse(house)?;
        Ok(Self(state.services.access.actor(&caller, house).await?))
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
async fn caller(state: &AppState, parts: &Parts) -> Result<Caller, ApiError> {
    limited(state, parts, |key| async move { Ok(state.services.access.authenticate(&key).await?) }).await
}
