//! arbe's HTTP API over [`arbe_dispatch::Services`]: every handler authenticates its caller, makes
//! one service call and translates the answer, so the server adds no rules of its own. Errors are
//! `application/problem+json` ([`arbe_api::Problem`]); another house's object is the same 404 as
//! a missing one; a thread's entries can be tailed as Server-Sent Events.
#![doc = include_str!("../README.md")]

mod auth;
mod body;
mod error;
mod routes;

use std::sync::Arc;

use arbe_dispatch::Services;
use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{delete, get, patch, post, put},
};

pub use auth::FailedAuth;
pub use error::ApiError;

/// The most a request body may hold.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The services every route calls.
    pub services: Arc<Services>,
    /// Failed authentications per client address.
    pub failed_auth: Arc<auth::FailedAuth>,
}

/// The API's routes over `services`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so failed authentications are limited
/// per client address.
pub fn router(services: Arc<Services>) -> Router {
    use routes::{admin, agents, entries, environments, health, houses, keys, members, sandboxes, secrets, threads};
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/houses", get(houses::list).post(houses::create))
        .route("/api/admin/houses", post(admin::create_house))
        .route("/api/members", get(members::list).post(members::add))
        .route("/api/members/{id}", patch(members::set_role).delete(members::remove))
        .route("/api/audit", get(members::audit))
        .route("/api/keys", get(keys::list).post(keys::create))
        .route("/api/keys/{id}", delete(keys::revoke))
        .route("/api/sandboxes", get(sandboxes::list).post(sandboxes::create))
        .route("/api/sandboxes/{id}", get(sandboxes::view).delete(sandboxes::destroy))
        .route("/api/sandboxes/{id}/ping", get(sandboxes::ping))
        .route("/api/sandboxes/{id}/diagnose", get(sandboxes::diagnose))
        .route("/api/sandboxes/{id}/env", get(sandboxes::env))
        .route("/api/sandboxes/{id}/start", post(sandboxes::start))
        .route("/api/sandboxes/{id}/stop", post(sandboxes::stop))
        .route("/api/agents", get(agents::list).post(agents::create))
        .route("/api/agents/{id}", get(agents::view).delete(agents::delete))
        .route("/api/secrets", get(secrets::list))
        .route("/api/secrets/{name}", get(secrets::view).put(secrets::set).delete(secrets::delete))
        .route("/api/environments", get(environments::list).post(environments::create))
        .route(
            "/api/environments/{id}",
            get(environments::view).patch(environments::update).delete(environments::delete),
        )
        .route("/api/environments/{id}/diagnose", get(environments::diagnose))
        .route("/api/environments/{id}/secrets/{name}", put(environments::bind).delete(environments::unbind))
        .route("/api/threads", get(threads::list).post(threads::create))
        .route("/api/threads/{id}", get(threads::view))
        .route("/api/threads/{id}/cancel", post(threads::cancel))
        .route("/api/threads/{id}/entries", get(entries::list).post(entries::create))
        .route("/api/threads/{id}/entries/stream", get(entries::stream))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(AppState { services, failed_auth: Arc::default() })
}
