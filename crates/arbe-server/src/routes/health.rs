//! Liveness and readiness.

use axum::{extract::State, http::StatusCode};

use arbe_core::ErrorKind;

use crate::{ApiError, AppState};

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "The process answers", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// The store answers (its migrations ran when it opened) and the dispatch workers run, so
/// requests can be served.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses((status = 200, description = "Ready to serve", body = String, content_type = "text/plain")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<(StatusCode, &'static str), ApiError> {
    state.services.ping().await?;
    if state.options.workers.as_ref().is_some_and(|workers| !workers.running()) {
        return Err(ApiError::new(
            ErrorKind::Unavailable,
            "the dispatch workers are not running (draining or stopped)",
        ));
    }
    Ok((StatusCode::OK, "ready\n"))
}
