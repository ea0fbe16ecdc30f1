//! A local fake of the GitHub endpoints arbe calls, checking each request as GitHub documents
//! it (`../shared/reference/github-app.md`, GitHub's OAuth web-flow docs):
//!
//! - app endpoints take a Bearer RS256 JWT from the app (verified against the app's public key,
//!   `iss` the app id, `exp` at most 10 minutes after `iat`), the `application/vnd.github+json`
//!   Accept header, the API version header and a user agent;
//! - token creation takes repository *names* that the installation can reach and permissions
//!   the app was granted (else 422), and answers 201 with a token it then accepts until it is
//!   revoked (`DELETE /installation/token`, 204; afterwards 401);
//! - the OAuth code exchange takes the app's client id and secret and a code, each code once
//!   (a bad one answers 200 with `error`, as GitHub does);
//! - `/user`, `/user/installations` and `/user/installations/{id}/repositories` take a user's
//!   token and list only what that user can reach, a page at a time (`per_page` at most 100);
//! - installation 429 is rate limited (403 with `x-ratelimit-remaining: 0`).
//!
//! Anything else is recorded as a problem, which every test asserts is empty.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) const CLIENT_ID: &str = "Iv1.fakeclient";
pub(crate) const CLIENT_SECRET: &str = "fake-client-secret-0123456789";

/// One installation of the app in the fake world.
#[derive(Clone)]
pub(crate) struct FakeInstallation {
    pub(crate) id: i64,
    pub(crate) account: &'static str,
    pub(crate) repos: Vec<&'static str>,
    /// GitHub users who can reach it.
    pub(crate) users: Vec<&'static str>,
}

/// What the fake saw.
#[derive(Default)]
pub(crate) struct Seen {
    /// Bodies of token requests, by installation.
    pub(crate) token_requests: Vec<(i64, Value)>,
    /// Tokens revoked.
    pub(crate) revoked: Vec<String>,
    /// Codes exchanged.
    pub(crate) codes: Vec<String>,
    /// Problems with requests (empty when every request was as documented).
    pub(crate) problems: Vec<String>,
}

#[derive(Default)]
struct World {
    installations: Vec<FakeInstallation>,
    /// Codes not yet used, and whose they are.
    codes: HashMap<String, &'static str>,
    /// Live user tokens, and whose they are.
    user_tokens: HashMap<String, &'static str>,
    /// Live installation tokens.
    tokens: HashSet<String>,
}

#[derive(Clone)]
struct FakeState {
    seen: Arc<Mutex<Seen>>,
    world: Arc<Mutex<World>>,
    key: Arc<DecodingKey>,
}

/// The app's permissions: what a token may ask for.
const APP_PERMISSIONS: [(&str, &str); 3] = [("contents", "write"), ("pull_requests", "write"), ("metadata", "read")];

/// The fake's base URL, what it saw, and a handle to add codes.
pub(crate) struct FakeGitHub {
    pub(crate) url: String,
    pub(crate) seen: Arc<Mutex<Seen>>,
    world: Arc<Mutex<World>>,
}

impl FakeGitHub {
    /// A one-use OAuth code that signs in GitHub user `login`.
    pub(crate) fn code_for(&self, login: &'static str) -> String {
        let code = format!("code-{login}-{}", uuid::Uuid::now_v7().simple());
        self.world.lock().unwrap().codes.insert(code.clone(), login);
        code
    }

    /// Whether the fake still accepts `token`.
    pub(crate) fn token_live(&self, token: &str) -> bool {
        self.world.lock().unwrap().tokens.contains(token)
    }

    /// Problems seen so far.
    pub(crate) fn problems(&self) -> Vec<String> {
        self.seen.lock().unwrap().problems.clone()
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

fn problem(state: &FakeState, what: String) -> Response {
    state.seen.lock().unwrap().problems.push(what);
    (StatusCode::BAD_REQUEST, Json(json!({"message": "the fake refused a request GitHub would refuse"})))
        .into_response()
}

fn api_headers(headers: &HeaderMap) -> Result<&str, String> {
    if headers.get("accept").and_then(|v| v.to_str().ok()) != Some("application/vnd.github+json") {
        return Err("Accept must be application/vnd.github+json".into());
    }
    if headers.get("x-github-api-version").and_then(|v| v.to_str().ok()) != Some("2022-11-28") {
        return Err("X-GitHub-Api-Version must be 2022-11-28".into());
    }
    if headers.get("user-agent").is_none() {
        return Err("GitHub requires a User-Agent".into());
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).ok_or("no Authorization header")?;
    auth.strip_prefix("Bearer ").ok_or_else(|| "credentials must be sent as Authorization: Bearer".into())
}

/// `Ok(true)` for a valid app JWT; `Ok(false)` for one GitHub would not accept (401).
fn check_jwt(headers: &HeaderMap, key: &DecodingKey) -> Result<bool, String> {
    let jwt = api_headers(headers)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["424242"]);
    validation.set_required_spec_claims(&["iat", "exp", "iss"]);
    let Ok(data) = jsonwebtoken::decode::<Claims>(jwt, key, &validation) else { return Ok(false) };
    let claims = data.claims;
    if claims.exp - claims.iat > 600 {
        return Err("exp must be at most 10 minutes after iat".into());
    }
    let now = chrono::Utc::now().timestamp();
    if claims.iat > now - 30 || claims.iss != "424242" {
        return Err("iat must be in the past (GitHub advises 60 s) and iss the app id".into());
    }
    Ok(true)
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response()
}

fn installation_json(i: &FakeInstallation) -> Value {
    json!({
        "id": i.id, "app_id": 424242, "target_type": "Organization", "repository_selection": "selected",
        "account": {"login": i.account, "id": i.id * 10, "type": "Organization"}, "suspended_at": null,
        "permissions": {"contents": "write", "pull_requests": "write", "metadata": "read"}, "events": []
    })
}

struct Page {
    per_page: Option<usize>,
    page: Option<usize>,
}

impl Page {
    fn parse(RawQuery(query): RawQuery) -> Result<Self, String> {
        let mut page = Page { per_page: None, page: None };
        for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| format!("bad query pair {pair}"))?;
            let n = value.parse().map_err(|_| format!("{key} must be a number, not {value}"))?;
            match key {
                "per_page" => page.per_page = Some(n),
                "page" => page.page = Some(n),
                other => return Err(format!("unexpected query parameter {other}")),
            }
        }
        Ok(page)
    }

    fn slice<T: Clone>(&self, all: &[T]) -> Result<Vec<T>, String> {
        let per_page = self.per_page.unwrap_or(30);
        if per_page == 0 || per_page > 100 {
            return Err(format!("per_page must be 1 to 100, not {per_page}"));
        }
        let page = self.page.unwrap_or(1).max(1);
        Ok(all.iter().skip((page - 1) * per_page).take(per_page).cloned().collect())
    }
}

async fn access_tokens(
    State(state): State<FakeState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    match check_jwt(&headers, &state.key) {
        Err(what) => return problem(&state, what),
        Ok(false) => return unauthorized(),
        Ok(true) => {}
    }
    if id == 429 {
        return (
            StatusCode::FORBIDDEN,
            [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1900000000")],
            Json(json!({"message": "API rate limit exceeded"})),
        )
            .into_response();
    }
    let Some(names) =
        body["repositories"].as_array().and_then(|r| r.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
    else {
        return problem(&state, format!("repositories must be a list of names: {body}"));
    };
    if names.iter().any(|n| n.contains('/')) {
        return problem(&state, format!("repositories are names, not owner/name: {body}"));
    }
    state.seen.lock().unwrap().token_requests.push((id, body.clone()));
    let mut world = state.world.lock().unwrap();
    let Some(installation) = world.installations.iter().find(|i| i.id == id).cloned() else { return not_found() };
    if let Some(unknown) = names.iter().find(|n| !installation.repos.contains(n)) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": format!("There is at least one repository that does not exist or is not accessible to the parent installation: {unknown}")})),
        )
            .into_response();
    }
    let asked = body["permissions"].as_object().cloned().unwrap_or_default();
    for (name, level) in &asked {
        let granted = APP_PERMISSIONS.iter().find(|(n, _)| n == name).map(|(_, l)| *l);
        let ok =
            matches!((granted, level.as_str()), (Some("write"), Some("read" | "write")) | (Some("read"), Some("read")));
        if !ok {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"message": format!("The permissions requested are not granted to this installation: {name}")})),
            )
                .into_response();
        }
    }
    let token = format!("ghs_fake{}_{id}", world.tokens.len() + state.seen.lock().unwrap().revoked.len() + 1);
    world.tokens.insert(token.clone());
    let expires_at = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let permissions =
        if asked.is_empty() { APP_PERMISSIONS.iter().map(|(n, l)| (n.to_string(), json!(l))).collect() } else { asked };
    (
        StatusCode::CREATED,
        Json(json!({
            "token": token, "expires_at": expires_at, "permissions": permissions,
            "repository_selection": "selected",
            "repositories": names.iter().map(|n| json!({"name": n, "full_name": format!("{}/{n}", installation.account)})).collect::<Vec<_>>(),
        })),
    )
        .into_response()
}

async fn revoke_token(State(state): State<FakeState>, headers: HeaderMap) -> Response {
    let token = match api_headers(&headers) {
        Err(what) => return problem(&state, what),
        Ok(token) => token.to_owned(),
    };
    if !state.world.lock().unwrap().tokens.remove(&token) {
        return unauthorized();
    }
    state.seen.lock().unwrap().revoked.push(token);
    StatusCode::NO_CONTENT.into_response()
}

async fn app_installations(State(state): State<FakeState>, headers: HeaderMap, query: RawQuery) -> Response {
    let page = match Page::parse(query) {
        Ok(page) => page,
        Err(what) => return problem(&state, what),
    };
    match check_jwt(&headers, &state.key) {
        Err(what) => return problem(&state, what),
        Ok(false) => return unauthorized(),
        Ok(true) => {}
    }
    let all: Vec<Value> = state.world.lock().unwrap().installations.iter().map(installation_json).collect();
    match page.slice(&all) {
        Ok(page) => Json(page).into_response(),
        Err(what) => problem(&state, what),
    }
}

async fn app_installation(State(state): State<FakeState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    match check_jwt(&headers, &state.key) {
        Err(what) => return problem(&state, what),
        Ok(false) => return unauthorized(),
        Ok(true) => {}
    }
    match state.world.lock().unwrap().installations.iter().find(|i| i.id == id) {
        Some(i) => Json(installation_json(i)).into_response(),
        None => not_found(),
    }
}

#[derive(Deserialize)]
struct CodeExchange {
    client_id: String,
    client_secret: String,
    code: String,
}

async fn oauth_access_token(State(state): State<FakeState>, headers: HeaderMap, body: String) -> Response {
    if headers.get("accept").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return problem(&state, "the code exchange must ask for Accept: application/json".into());
    }
    let Ok(exchange) = serde_json::from_str::<CodeExchange>(&body) else {
        return problem(&state, format!("the code exchange needs client_id, client_secret and code: {body}"));
    };
    if exchange.client_id != CLIENT_ID || exchange.client_secret != CLIENT_SECRET {
        return Json(json!({"error": "incorrect_client_credentials", "error_description": "The client_id and/or client_secret passed are incorrect."})).into_response();
    }
    state.seen.lock().unwrap().codes.push(exchange.code.clone());
    let mut world = state.world.lock().unwrap();
    // Each code works once.
    let Some(login) = world.codes.remove(&exchange.code) else {
        return Json(
            json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
        )
        .into_response();
    };
    let token = format!("ghu_{login}_{}", uuid::Uuid::now_v7().simple());
    world.user_tokens.insert(token.clone(), login);
    Json(json!({"access_token": token, "expires_in": 28800, "refresh_token": "ghr_unused", "refresh_token_expires_in": 15811200, "scope": "", "token_type": "bearer"}))
        .into_response()
}

fn user_of(state: &FakeState, headers: &HeaderMap) -> Result<Option<&'static str>, String> {
    let token = api_headers(headers)?;
    if !token.starts_with("ghu_") {
        return Err(format!("user endpoints take a user's token, not {}", &token[..token.len().min(4)]));
    }
    Ok(state.world.lock().unwrap().user_tokens.get(token).copied())
}

async fn user(State(state): State<FakeState>, headers: HeaderMap) -> Response {
    match user_of(&state, &headers) {
        Err(what) => problem(&state, what),
        Ok(None) => unauthorized(),
        Ok(Some(login)) => Json(json!({"login": login, "id": 1, "type": "User"})).into_response(),
    }
}

async fn user_installations(State(state): State<FakeState>, headers: HeaderMap, query: RawQuery) -> Response {
    let page = match Page::parse(query) {
        Ok(page) => page,
        Err(what) => return problem(&state, what),
    };
    let login = match user_of(&state, &headers) {
        Err(what) => return problem(&state, what),
        Ok(None) => return unauthorized(),
        Ok(Some(login)) => login,
    };
    let all: Vec<Value> = state
        .world
        .lock()
        .unwrap()
        .installations
        .iter()
        .filter(|i| i.users.contains(&login))
        .map(installation_json)
        .collect();
    match page.slice(&all) {
        Ok(installations) => Json(json!({"total_count": all.len(), "installations": installations})).into_response(),
        Err(what) => problem(&state, what),
    }
}

async fn user_installation_repos(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    query: RawQuery,
) -> Response {
    let page = match Page::parse(query) {
        Ok(page) => page,
        Err(what) => return problem(&state, what),
    };
    let login = match user_of(&state, &headers) {
        Err(what) => return problem(&state, what),
        Ok(None) => return unauthorized(),
        Ok(Some(login)) => login,
    };
    let world = state.world.lock().unwrap();
    let Some(installation) = world.installations.iter().find(|i| i.id == id && i.users.contains(&login)) else {
        return not_found();
    };
    let all: Vec<Value> = installation
        .repos
        .iter()
        .map(|r| json!({"name": r, "full_name": format!("{}/{r}", installation.account), "private": true}))
        .collect();
    drop(world);
    match page.slice(&all) {
        Ok(repos) => Json(json!({"total_count": all.len(), "repositories": repos})).into_response(),
        Err(what) => problem(&state, what),
    }
}

/// The default world: installation 7 on `org` (repos `api` and `web`) that GitHub user `alice`
/// can reach, and installation 8 on `other-org` (repo `vault`) that only `mallory` can.
pub(crate) fn world() -> Vec<FakeInstallation> {
    vec![
        FakeInstallation { id: 7, account: "org", repos: vec!["api", "web"], users: vec!["alice"] },
        FakeInstallation { id: 8, account: "other-org", repos: vec!["vault"], users: vec!["mallory"] },
    ]
}

/// Starts the fake on a loopback port with `installations`.
pub(crate) async fn start_with(installations: Vec<FakeInstallation>) -> FakeGitHub {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let world = Arc::new(Mutex::new(World { installations, ..World::default() }));
    let key = Arc::new(DecodingKey::from_rsa_pem(crate::TEST_PUBLIC_KEY.as_bytes()).unwrap());
    let app = Router::new()
        .route("/app/installations/{id}/access_tokens", post(access_tokens))
        .route("/app/installations", get(app_installations))
        .route("/app/installations/{id}", get(app_installation))
        .route("/installation/token", delete(revoke_token))
        .route("/login/oauth/access_token", post(oauth_access_token))
        .route("/user", get(user))
        .route("/user/installations", get(user_installations))
        .route("/user/installations/{id}/repositories", get(user_installation_repos))
        .with_state(FakeState { seen: seen.clone(), world: world.clone(), key });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeGitHub { url, seen, world }
}

/// Starts the fake with the default [`world`].
pub(crate) async fn start() -> FakeGitHub {
    start_with(world()).await
}
