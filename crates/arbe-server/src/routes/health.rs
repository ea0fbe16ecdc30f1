//! Liveness and readiness.

use axum::{extract::State, http::StatusCode};

use crate::{ApiError, AppState};

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "The process answers", body = String, content_type = "text/plain")))]
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// The store answers (its migrations ran when it opened), so requests can be served.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses((status = 200, description = "Ready to serve", body = String, content_type = "text/plain")))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<(StatusCode, &'static str), ApiError> {
    state.services.ping().await?;
    Ok((StatusCode::OK, "ready\n"))
}
