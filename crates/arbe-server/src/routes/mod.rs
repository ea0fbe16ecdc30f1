//! One module per area; each handler authenticates, makes one service call and answers.

pub(crate) mod admin;
pub(crate) mod agents;
pub(crate) mod entries;
pub(crate) mod environments;
pub(crate) mod github;
pub(crate) mod health;
pub(crate) mod houses;
pub(crate) mod keys;
pub(crate) mod members;
pub(crate) mod sandboxes;
pub(crate) mod secrets;
pub(crate) mod threads;

use arbe_core::ErrorKind;

use crate::ApiError;

/// A path no route serves.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "no such route")
}

/// A route that does not take this method: 405 (axum adds the `Allow` header).
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// `?limit=`, bounded by the service.
pub(crate) fn limit(query: &std::collections::HashMap<String, String>, default: u32) -> Result<u32, ApiError> {
    match query.get("limit") {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .map_err(|_| ApiError::new(ErrorKind::InvalidInput, "invalid limit: must be a whole number")),
    }
}

/// The house a request acts in: every route on a house's objects names it.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HouseParam {
    /// The house's id; a house the caller is not a member of is not found.
    #[allow(dead_code)]
    house_id: arbe_core::HouseId,
}

/// `?limit=`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Limit {
    /// At most this many (each list has its own default and bound).
    #[allow(dead_code)]
    limit: Option<u32>,
}

/// `?after=&limit=`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Page {
    /// Only events after this sequence number.
    #[allow(dead_code)]
    after: Option<i64>,
    /// At most this many (default 200).
    #[allow(dead_code)]
    limit: Option<u32>,
}

/// A check of a diagnosis, as the API shows it.
pub(crate) fn check_view(check: arbe_env::Check) -> arbe_api::Check {
    let status = match check.status {
        arbe_env::CheckStatus::Ok => arbe_api::CheckStatus::Ok,
        arbe_env::CheckStatus::Warning => arbe_api::CheckStatus::Warning,
        arbe_env::CheckStatus::Blocker => arbe_api::CheckStatus::Blocker,
    };
    arbe_api::Check { name: check.name, status, detail: check.detail }
}
