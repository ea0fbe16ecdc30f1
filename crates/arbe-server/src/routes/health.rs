//! Liveness and readiness.

use axum::{extract::State, http::StatusCode};

use crate::{ApiError, AppState};

/// The process answers.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// The store answers (its migrations ran when it opened), so requests can be served.
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<(StatusCode, &'static str), ApiError> {
    state.services.ping().await?;
    Ok((StatusCode::OK, "ready\n"))
}
