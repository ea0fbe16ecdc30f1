//! One module per area; each handler authenticates, makes one service call and answers.

pub(crate) mod admin;
pub(crate) mod agents;
pub(crate) mod entries;
pub(crate) mod environments;
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

/// A route that does not take this method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorKind::Unsupported, "this route does not take that method")
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

/// One check of a diagnosis, as the API shows it.
#[derive(serde::Serialize)]
pub(crate) struct CheckView {
    name: String,
    /// `ok`, `warning` or `blocker`.
    status: &'static str,
    detail: String,
}

impl From<arbe_env::Check> for CheckView {
    fn from(check: arbe_env::Check) -> Self {
        let status = match check.status {
            arbe_env::CheckStatus::Ok => "ok",
            arbe_env::CheckStatus::Warning => "warning",
            arbe_env::CheckStatus::Blocker => "blocker",
        };
        Self { name: check.name, status, detail: check.detail }
    }
}
