//! GitHub App installation tokens: an RS256 app JWT exchanged for a short-lived token scoped to
//! an environment's allowed repositories, cached until shortly before it expires.

use std::{collections::HashMap, fmt, sync::Mutex, time::Duration};

use arbe_core::{RepoRef, SecretValue};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::{EnvError, Result};

/// The numeric app id (or client id) of the GitHub App.
pub const GITHUB_APP_ID: &str = "GITHUB_APP_ID";
/// The app's PEM RSA private key (PKCS#1 as GitHub hands it out, or PKCS#8).
pub const GITHUB_APP_PRIVATE_KEY: &str = "GITHUB_APP_PRIVATE_KEY";
/// The REST API's base URL, for GitHub Enterprise Server and tests.
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";

/// How long before `expires_at` a cached token is replaced: a dispatch that starts with it
/// still has this long to use it, longer than a dispatch's default time limit (30 minutes).
/// Tokens live an hour, so one is minted at most every 20 minutes per scope.
const REFRESH_BEFORE: chrono::TimeDelta = chrono::TimeDelta::minutes(40);
/// GitHub accepts at most 500 repositories per token request.
const MAX_REPOS: usize = 500;

/// What the binaries read from `GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY` and `GITHUB_API_URL`.
#[derive(Clone, Debug)]
pub struct GitHubAppConfig {
    /// The app id (`123456`) or client id (`Iv1.…`): the JWT's `iss`.
    pub app_id: String,
    /// The PEM private key.
    pub private_key_pem: SecretValue,
    /// The REST API's base URL.
    pub api_url: String,
}

impl GitHubAppConfig {
    /// GitHub.com's REST API.
    pub const DEFAULT_API_URL: &'static str = "https://api.github.com";
}

/// An installation access token. The token prints `[redacted]`.
#[derive(Clone, Debug)]
pub struct InstallationToken {
    /// The token, injected as `GITHUB_TOKEN`.
    pub token: SecretValue,
    /// When GitHub stops accepting it.
    pub expires_at: DateTime<Utc>,
    /// The repository names it is scoped to.
    pub repositories: Vec<String>,
}

/// An installation of the app, as `GET /app/installations` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    /// The installation id environments name in `github_installation_id`.
    pub id: i64,
    /// The account (user or organisation) it is installed on.
    pub account: Option<InstallationAccount>,
    /// `Organization` or `User`.
    #[serde(default)]
    pub target_type: Option<String>,
    /// `all` or `selected`.
    #[serde(default)]
    pub repository_selection: Option<String>,
    /// Set when the installation is suspended.
    #[serde(default)]
    pub suspended_at: Option<String>,
}

/// The account an installation belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationAccount {
    /// Its login.
    pub login: String,
    /// `Organization` or `User`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: String,
    expires_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// A configured GitHub App. Cheap to share behind an `Arc`; the token cache lives inside.
pub struct GitHubApp {
    app_id: String,
    key: EncodingKey,
    api_url: String,
    http: reqwest::Client,
    cache: Mutex<HashMap<(i64, Vec<String>), InstallationToken>>,
}

impl fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key never prints.
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl GitHubApp {
    /// Checks the settings and parses the key. A bad key is named, never echoed.
    pub fn new(config: &GitHubAppConfig) -> Result<Self> {
        let app_id = config.app_id.trim();
        if app_id.is_empty()
            || app_id.len() > 64
            || !app_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(EnvError::GitHubConfig {
                field: GITHUB_APP_ID,
                rule: "must be the app's numeric id or its client id",
            });
        }
        let key = EncodingKey::from_rsa_pem(config.private_key_pem.expose().as_bytes()).map_err(|_| {
            EnvError::GitHubConfig { field: GITHUB_APP_PRIVATE_KEY, rule: "must be a PEM RSA private key" }
        })?;
        let api_url = config.api_url.trim().trim_end_matches('/').to_owned();
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(EnvError::GitHubConfig { field: GITHUB_API_URL, rule: "must be an http(s) URL" });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("arbe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| EnvError::GitHubConfig { field: GITHUB_API_URL, rule: "could not build an HTTP client" })?;
        let app = Self { app_id: app_id.to_owned(), key, api_url, http, cache: Mutex::default() };
        // Sign once now, so an unusable key shows at start-up rather than at the first dispatch.
        app.jwt(Utc::now())?;
        Ok(app)
    }

    /// The app id the JWT names as its issuer.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The app JWT for `now`: RS256, `iat` 60 s in the past (clock drift), `exp` 9 minutes
    /// ahead (GitHub allows at most 10), `iss` the app id.
    pub fn jwt(&self, now: DateTime<Utc>) -> Result<String> {
        let now = now.timestamp();
        let claims = Claims { iat: now - 60, exp: now + 540, iss: &self.app_id };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|_| EnvError::GitHubConfig { field: GITHUB_APP_PRIVATE_KEY, rule: "could not sign an RS256 JWT" })
    }

    /// An installation token scoped to `repos` (by name), from the cache while it has more than
    /// forty minutes left, else freshly minted.
    pub async fn installation_token(&self, installation_id: i64, repos: &[RepoRef]) -> Result<InstallationToken> {
        if installation_id <= 0 {
            return Err(arbe_core::InvalidInput::new("github_installation_id", "must be a positive integer").into());
        }
        let mut names: Vec<String> = repos.iter().map(|r| r.name().to_owned()).collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(arbe_core::InvalidInput::new(
                "allowed_repos",
                "must name at least one repository: an unscoped token would reach every repository of the installation",
            )
            .into());
        }
        if names.len() > MAX_REPOS {
            return Err(arbe_core::InvalidInput::new("allowed_repos", "must name at most 500 repositories").into());
        }
        let key = (installation_id, names);
        if let Some(token) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && token.expires_at - Utc::now() > REFRESH_BEFORE
        {
            return Ok(token.clone());
        }
        const OP: &str = "create installation token";
        let url = format!("{}/app/installations/{installation_id}/access_tokens", self.api_url);
        let body = serde_json::json!({ "repositories": key.1 });
        let res = self.request(reqwest::Method::POST, &url)?.json(&body).send().await.map_err(transport(OP))?;
        let res = check(res, OP).await?;
        let parsed: TokenResponse = res.json().await.map_err(|_| EnvError::GitHub {
            operation: OP,
            status: None,
            message: "the answer is not an installation token".into(),
        })?;
        let token = InstallationToken {
            token: SecretValue::new(parsed.token).map_err(|_| EnvError::GitHub {
                operation: OP,
                status: None,
                message: "the answer holds an empty token".into(),
            })?,
            expires_at: parsed.expires_at,
            repositories: key.1.clone(),
        };
        tracing::debug!(installation_id, expires_at = %token.expires_at, repos = token.repositories.len(), "minted a GitHub installation token");
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let now = Utc::now();
        cache.retain(|_, t| t.expires_at > now);
        cache.insert(key, token.clone());
        Ok(token)
    }

    /// Every installation of the app.
    pub async fn list_installations(&self) -> Result<Vec<Installation>> {
        const OP: &str = "list installations";
        let mut all = Vec::new();
        for page in 1.. {
            let url = format!("{}/app/installations?per_page=100&page={page}", self.api_url);
            let res = self.request(reqwest::Method::GET, &url)?.send().await.map_err(transport(OP))?;
            let batch: Vec<Installation> = check(res, OP).await?.json().await.map_err(|_| EnvError::GitHub {
                operation: OP,
                status: None,
                message: "the answer is not a list of installations".into(),
            })?;
            let done = batch.len() < 100;
            all.extend(batch);
            if done {
                break;
            }
        }
        Ok(all)
    }

    fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder> {
        let jwt = self.jwt(Utc::now())?;
        Ok(self
            .http
            .request(method, url)
            .bearer_auth(jwt)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28"))
    }
}

fn transport(operation: &'static str) -> impl Fn(reqwest::Error) -> EnvError {
    move |err| EnvError::GitHub {
        operation,
        status: None,
        message: if err.is_timeout() { "timed out".into() } else { "could not reach the GitHub API".into() },
    }
}

/// Passes a success through; turns an error status into [`EnvError::GitHub`] with GitHub's own
/// message (classified on the status, not the text).
async fn check(res: reqwest::Response, operation: &'static str) -> Result<reqwest::Response> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    let said = res.json::<ErrorBody>().await.ok().and_then(|b| b.message).unwrap_or_default();
    let said: String = said.chars().filter(|c| !c.is_control()).take(200).collect();
    let hint = match status.as_u16() {
        401 => "GitHub rejected the app's JWT: check GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY",
        404 => "the installation does not exist or the app is not installed there",
        422 => "GitHub refused the request: a repository may not be part of the installation",
        403 | 429 => "GitHub refused or rate-limited the request",
        _ => "GitHub answered with an error",
    };
    let message = if said.is_empty() { hint.to_owned() } else { format!("{hint} ({said})") };
    Err(EnvError::GitHub { operation, status: Some(status.as_u16()), message })
}
