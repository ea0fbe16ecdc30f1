//! arbe's HTTP API over [`arbe_dispatch::Services`]: every handler authenticates its caller, makes
//! one service call and translates the answer, so the server adds no rules of its own. Errors are
//! `application/problem+json` ([`arbe_api::Problem`]); another house's object is the same 404 as
//! a missing one; a thread's entries can be tailed as Server-Sent Events. The OpenAPI document
//! is generated from the handlers ([`openapi`]).
#![doc = include_str!("../README.md")]

mod auth;
mod body;
mod error;
pub mod launch;
mod metrics;
mod openapi;
mod routes;
pub mod settings;

use std::sync::Arc;

use arbe_dispatch::Services;
use axum::{
    Json, Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, Request, header},
    routing::get,
};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::TraceLayer,
};
use utoipa::OpenApi as _;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use auth::FailedAuth;
pub use error::ApiError;
pub use metrics::Metrics;
pub use routes::github::{GitHubSessions, SESSION_COOKIE};

/// The most a request body may hold: room for the longest message (32,768 characters) even
/// when every character is JSON-escaped as a surrogate pair.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// The header that carries a request's id, set by the server when the client sent none.
pub const REQUEST_ID: &str = "x-request-id";

/// How the server behaves beyond its services.
#[derive(Clone, Debug)]
pub struct Options {
    /// Mirror every Server-Sent Event to the log (`ARBE_API_VERBOSE`, `--verbose`).
    pub verbose: bool,
    /// Failed authentications allowed per client address per minute
    /// (`ARBE_AUTH_FAILURES_PER_MINUTE`, default [`FailedAuth::MAX`]).
    pub auth_failures_per_minute: u32,
    /// This process's dispatch workers, which `/readyz` requires to be running; `None` for a
    /// server whose dispatches run elsewhere.
    pub workers: Option<arbe_dispatch::WorkersHealth>,
}

impl Default for Options {
    fn default() -> Self {
        Self { verbose: false, auth_failures_per_minute: FailedAuth::MAX, workers: None }
    }
}

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The services every route calls.
    pub services: Arc<Services>,
    /// Failed authentications per client address.
    pub failed_auth: Arc<auth::FailedAuth>,
    /// Request counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The server's options.
    pub options: Options,
    /// Signed-in GitHub users, by session.
    pub github_sessions: Arc<routes::github::GitHubSessions>,
}

#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(arbe_api::Problem)))]
struct Components;

/// Every documented route, with its part of the OpenAPI document.
fn api() -> OpenApiRouter<AppState> {
    use routes::{
        admin, agents, entries, environments, github, health, houses, keys, members, sandboxes, secrets, threads,
    };
    OpenApiRouter::with_openapi(Components::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(houses::list, houses::create))
        .routes(routes!(admin::houses, admin::create_house))
        .routes(routes!(admin::set_quotas))
        .routes(routes!(admin::users, admin::create_user))
        .routes(routes!(admin::create_key))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(admin::rotate_master_key))
        .routes(routes!(members::list, members::add))
        .routes(routes!(members::set_role, members::remove))
        .routes(routes!(members::audit))
        .routes(routes!(keys::list, keys::create))
        .routes(routes!(keys::revoke))
        .routes(routes!(sandboxes::list, sandboxes::create))
        .routes(routes!(sandboxes::view, sandboxes::destroy))
        .routes(routes!(sandboxes::ping))
        .routes(routes!(sandboxes::diagnose))
        .routes(routes!(sandboxes::env))
        .routes(routes!(sandboxes::start))
        .routes(routes!(sandboxes::stop))
        .routes(routes!(agents::list, agents::create))
        .routes(routes!(agents::view, agents::delete))
        .routes(routes!(secrets::list))
        .routes(routes!(secrets::view, secrets::set, secrets::delete))
        .routes(routes!(environments::list, environments::create))
        .routes(routes!(environments::view, environments::update, environments::delete))
        .routes(routes!(environments::diagnose))
        .routes(routes!(environments::bind, environments::unbind))
        .routes(routes!(threads::list, threads::create))
        .routes(routes!(threads::view))
        .routes(routes!(threads::cancel))
        .routes(routes!(entries::list, entries::create))
        .routes(routes!(entries::stream))
        .routes(routes!(github::connections))
        .routes(routes!(github::connect))
        .routes(routes!(github::disconnect))
        .routes(routes!(github::callback))
        .routes(routes!(github::installations))
        .routes(routes!(github::installation_repos))
}

/// The API's OpenAPI document, as `GET /api/openapi.json` serves it.
pub fn openapi() -> serde_json::Value {
    openapi::finish(api().into_openapi())
}

/// The API's routes over `services`. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so failed authentications are limited
/// per client address.
pub fn router(services: Arc<Services>, options: Options) -> Router {
    let (router, doc) = api().split_for_parts();
    let doc = Arc::new(openapi::finish(doc));
    let failed_auth = Arc::new(FailedAuth::new(options.auth_failures_per_minute));
    let state = AppState { services, failed_auth, metrics: Arc::default(), options, github_sessions: Arc::default() };
    let request_id = HeaderName::from_static(REQUEST_ID);
    router
        .route("/api/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
        }))
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
