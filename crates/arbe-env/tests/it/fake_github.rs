//! A local fake of GitHub's App endpoints that checks each request as GitHub documents it
//! (`../shared/reference/github-app.md`): a Bearer RS256 JWT from the app (verified against the
//! app's public key, `iss` the app id, `exp` at most 10 minutes after `iat`), the
//! `application/vnd.github+json` Accept header, the API version header, a user agent, and
//! repository *names* in the body.

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// What the fake saw and what it answers.
#[derive(Default)]
pub(crate) struct Seen {
    /// Bodies of token requests, by installation.
    pub(crate) token_requests: Vec<(i64, serde_json::Value)>,
    /// Problems with requests (empty when every request was as documented).
    pub(crate) problems: Vec<String>,
}

#[derive(Clone)]
struct FakeState {
    seen: Arc<Mutex<Seen>>,
    key: Arc<DecodingKey>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

fn check_headers(headers: &HeaderMap, key: &DecodingKey) -> Result<(), String> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).ok_or("no Authorization header")?;
    let jwt = auth.strip_prefix("Bearer ").ok_or("a JWT must be sent as Authorization: Bearer")?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["424242"]);
    validation.set_required_spec_claims(&["iat", "exp", "iss"]);
    let claims = jsonwebtoken::decode::<Claims>(jwt, key, &validation).map_err(|e| format!("bad JWT: {e}"))?.claims;
    if claims.exp - claims.iat > 600 {
        return Err("exp must be at most 10 minutes after iat".into());
    }
    let now = chrono::Utc::now().timestamp();
    if claims.iat > now - 30 || claims.iss != "424242" {
        return Err("iat must be in the past (GitHub advises 60 s) and iss the app id".into());
    }
    if headers.get("accept").and_then(|v| v.to_str().ok()) != Some("application/vnd.github+json") {
        return Err("Accept must be application/vnd.github+json".into());
    }
    if headers.get("x-github-api-version").and_then(|v| v.to_str().ok()) != Some("2022-11-28") {
        return Err("X-GitHub-Api-Version must be 2022-11-28".into());
    }
    if headers.get("user-agent").is_none() {
        return Err("GitHub requires a User-Agent".into());
    }
    Ok(())
}

async fn access_tokens(
    State(state): State<FakeState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> (StatusCode, Json<serde_json::Value>) {
    let mut seen = state.seen.lock().unwrap();
    if let Err(problem) = check_headers(&headers, &state.key) {
        seen.problems.push(problem);
        return (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"message": "Bad credentials"})));
    }
    let names_ok = body["repositories"]
        .as_array()
        .is_some_and(|repos| repos.iter().all(|r| r.as_str().is_some_and(|s| !s.contains('/'))));
    if !names_ok {
        seen.problems.push(format!("repositories must be a list of names: {body}"));
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({"message": "Validation Failed"})));
    }
    seen.token_requests.push((id, body));
    if id == 404 {
        return (StatusCode::NOT_FOUND, Json(serde_json::json!({"message": "Not Found"})));
    }
    let n = seen.token_requests.len();
    let expires_at = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    (
        StatusCode::CREATED,
        Json(serde_json::json!({
            "token": format!("ghs_fake{n}_{id}"),
            "expires_at": expires_at,
            "permissions": {"contents": "write"},
            "repository_selection": "selected",
        })),
    )
}

async fn installations(State(state): State<FakeState>, headers: HeaderMap) -> (StatusCode, Json<serde_json::Value>) {
    if let Err(problem) = check_headers(&headers, &state.key) {
        state.seen.lock().unwrap().problems.push(problem);
        return (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"message": "Bad credentials"})));
    }
    (
        StatusCode::OK,
        Json(serde_json::json!([{
            "id": 7, "app_id": 424242, "target_type": "Organization", "repository_selection": "selected",
            "account": {"login": "org", "id": 1, "type": "Organization"}, "suspended_at": null,
            "permissions": {"contents": "write"}, "events": []
        }])),
    )
}

/// Starts the fake on a loopback port; returns its base URL and what it sees.
pub(crate) async fn start() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let key = Arc::new(DecodingKey::from_rsa_pem(crate::TEST_PUBLIC_KEY.as_bytes()).unwrap());
    let app = Router::new()
        .route("/app/installations/{id}/access_tokens", post(access_tokens))
        .route("/app/installations", get(installations))
        .with_state(FakeState { seen: seen.clone(), key });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}
