//! GitHub: an owner connects an installation of the App to the house (the install flow ends at
//! the callback, which proves with the signed-in GitHub user's token that they reach it), the
//! house lists and disconnects its connections, and seed 001's two listing endpoints answer to
//! the GitHub session the callback opens (an http-only cookie), never to an arbe API key.
//! Without a configured App every GitHub route but the house's own list answers 501.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use arbe_core::{ErrorKind, GitHubConnection};
use arbe_env::GitHubUser;
use axum::{
    Json,
    extract::{FromRequestParts, Path, Query, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{ApiError, AppState, auth::InHouse, routes::HouseParam};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "arbe_github_session";
/// How long a GitHub session lasts (GitHub's user tokens last 8 hours).
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Signed-in GitHub users by session id. Held in this process: behind several replicas, a
/// session is served by the replica that opened it.
#[derive(Default)]
pub struct GitHubSessions {
    by_id: Mutex<HashMap<String, (GitHubUser, Instant)>>,
}

impl std::fmt::Debug for GitHubSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSessions").finish_non_exhaustive()
    }
}

impl GitHubSessions {
    fn open(&self, user: GitHubUser) -> Result<String, ApiError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|_| ApiError::new(ErrorKind::Internal, "the server could not draw a session id"))?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, (_, opened)| opened.elapsed() < SESSION_TTL);
        sessions.insert(id.clone(), (user, Instant::now()));
        Ok(id)
    }

    fn get(&self, id: &str) -> Option<GitHubUser> {
        let sessions = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(id).filter(|(_, opened)| opened.elapsed() < SESSION_TTL).map(|(user, _)| user.clone())
    }
}

/// The GitHub user of the request's session cookie.
pub(crate) struct GitHubSession(GitHubUser);

impl FromRequestParts<AppState> for GitHubSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(no_session)?;
        let user = state.github_sessions.get(id).ok_or_else(no_session)?;
        if !state.services.environments.github_configured() {
            return Err(not_configured());
        }
        Ok(Self(user))
    }
}

fn no_session() -> ApiError {
    ApiError::new(
        ErrorKind::Unauthenticated,
        "a GitHub session is required: sign in through the GitHub App (an arbe API key does not do)",
    )
}

fn not_configured() -> ApiError {
    ApiError::new(
        ErrorKind::Unsupported,
        "this server has no GitHub App configured (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY)",
    )
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// `GET /api/github/connections?house_id=`: the installations the house connected.
#[utoipa::path(get, path = "/api/github/connections", tag = "github", operation_id = "github_connections_list",
    params(HouseParam),
    responses((status = 200, description = "The house's connected installations", body = Vec<GitHubConnection>)))]
pub(crate) async fn connections(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
) -> Result<Json<Vec<GitHubConnection>>, ApiError> {
    Ok(Json(state.services.environments.github_connections(&actor).await?))
}

/// Where to send the owner's browser.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ConnectStartView {
    /// The signed state GitHub carries back to the callback.
    state: String,
    /// When the state stops being accepted.
    expires_at: chrono::DateTime<chrono::Utc>,
    /// GitHub's sign-in page for the App, for an installation that already exists.
    authorize_url: String,
    /// The App's install page, when the App's slug is configured.
    install_url: Option<String>,
}

/// `POST /api/github/connect?house_id=`: starts connecting an installation (owners).
#[utoipa::path(post, path = "/api/github/connect", tag = "github", operation_id = "github_connect",
    params(HouseParam),
    responses((status = 200, description = "Where to send the browser; GitHub returns it to the callback", body = ConnectStartView)))]
pub(crate) async fn connect(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
) -> Result<Json<ConnectStartView>, ApiError> {
    let start = state.services.environments.github_connect_start(&actor, None)?;
    Ok(Json(ConnectStartView {
        state: start.state,
        expires_at: start.expires_at,
        authorize_url: start.authorize_url,
        install_url: start.install_url,
    }))
}

/// `DELETE /api/github/connections/{installation_id}?house_id=` (owners).
#[utoipa::path(delete, path = "/api/github/connections/{installation_id}", tag = "github",
    operation_id = "github_disconnect",
    params(HouseParam, ("installation_id" = i64, Path, description = "The installation's id on GitHub")),
    responses((status = 204, description = "Disconnected")))]
pub(crate) async fn disconnect(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = installation_id(&id)?;
    state.services.environments.github_disconnect(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn installation_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::new(ErrorKind::InvalidInput, "invalid installation_id: must be a positive integer"))
}

/// What the callback did.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SignedIn {
    /// The GitHub user now signed in.
    login: String,
    /// The installation connected, when GitHub came back from the install or connect flow.
    connection: Option<GitHubConnection>,
}

/// `GET /api/github/callback?code=&state=&installation_id=`: where GitHub sends the browser
/// back (the App's setup URL and OAuth callback). With a state and an installation id it
/// finishes connecting; either way it opens a GitHub session (an http-only cookie).
#[utoipa::path(get, path = "/api/github/callback", tag = "github", operation_id = "github_callback",
    security(()),
    params(
        ("code" = String, Query, description = "The OAuth code GitHub passed"),
        ("state" = Option<String>, Query, description = "The state `POST /api/github/connect` issued"),
        ("installation_id" = Option<i64>, Query, description = "The installation GitHub passed"),
        ("setup_action" = Option<String>, Query, description = "`install` or `update`, from the install flow"),
    ),
    responses((status = 200, description = "Signed in (and connected); sets the session cookie", body = SignedIn,
        headers(("Set-Cookie" = String, description = "`arbe_github_session`, http-only")))))]
pub(crate) async fn callback(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let envs = &state.services.environments;
    if !envs.github_configured() {
        return Err(not_configured());
    }
    let code = query
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::new(ErrorKind::InvalidInput, "invalid code: GitHub's redirect carries one"))?;
    let (user, connection) = match (query.get("state"), query.get("installation_id")) {
        (Some(flow), Some(id)) => {
            let (connection, user) = envs.github_connect_finish(flow, code, installation_id(id)?, None).await?;
            (user, Some(connection))
        }
        _ => (envs.github_sign_in(code, None).await?, None),
    };
    let login = user.login.clone();
    let session = state.github_sessions.open(user)?;
    let cookie = format!(
        "{SESSION_COOKIE}={session}; HttpOnly; SameSite=Lax; Path=/api/github; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    Ok(([(header::SET_COOKIE, cookie)], Json(SignedIn { login, connection })).into_response())
}

/// An installation the signed-in GitHub user can reach.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct InstallationView {
    id: i64,
    /// The account it is installed on.
    account: Option<String>,
    /// `all` or `selected`.
    repository_selection: Option<String>,
    suspended: bool,
}

/// `GET /api/github/installations` (seed 001): the App's installations the GitHub session's
/// user can reach. Not callable with an API key.
#[utoipa::path(get, path = "/api/github/installations", tag = "github", operation_id = "github_installations",
    security(("github_session" = [])),
    responses((status = 200, description = "The installations the signed-in GitHub user reaches", body = Vec<InstallationView>)))]
pub(crate) async fn installations(
    State(state): State<AppState>,
    GitHubSession(user): GitHubSession,
) -> Result<Json<Vec<InstallationView>>, ApiError> {
    let found = state.services.environments.github_user_installations(&user).await?;
    Ok(Json(
        found
            .into_iter()
            .map(|i| InstallationView {
                id: i.id,
                account: i.account.map(|a| a.login),
                repository_selection: i.repository_selection,
                suspended: i.suspended_at.is_some(),
            })
            .collect(),
    ))
}

/// A repository an installation reaches.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct RepoView {
    /// `owner/name`.
    full_name: String,
    private: bool,
}

/// `GET /api/github/installations/{id}/repos` (seed 001): its repositories the session's user
/// can reach.
#[utoipa::path(get, path = "/api/github/installations/{installation_id}/repos", tag = "github",
    operation_id = "github_installation_repos", security(("github_session" = [])),
    params(("installation_id" = i64, Path, description = "The installation's id on GitHub")),
    responses((status = 200, description = "Its repositories the signed-in GitHub user reaches", body = Vec<RepoView>)))]
pub(crate) async fn installation_repos(
    State(state): State<AppState>,
    GitHubSession(user): GitHubSession,
    Path(id): Path<String>,
) -> Result<Json<Vec<RepoView>>, ApiError> {
    let repos = state.services.environments.github_user_installation_repos(&user, installation_id(&id)?).await?;
    Ok(Json(repos.into_iter().map(|r| RepoView { full_name: r.full_name, private: r.private }).collect()))
}
