//! The GitHub App: installation tokens minted per dispatch (scoped to the environment's
//! repositories of the installation's own account, with the least permissions, revoked when the
//! dispatch ends), and the connect flow that binds an installation to a house (a signed,
//! expiring `state`, the OAuth code exchange, and a check through `/user/installations` that
//! the signed-in GitHub user can reach the installation).

use std::{fmt, time::Duration};

use arbe_core::{GitHubConnection, HouseId, InvalidInput, RepoRef, SecretValue, UserId};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{EnvError, Result};

/// The numeric app id (or client id) of the GitHub App.
pub const GITHUB_APP_ID: &str = "GITHUB_APP_ID";
/// The app's PEM RSA private key (PKCS#1 as GitHub hands it out, or PKCS#8).
pub const GITHUB_APP_PRIVATE_KEY: &str = "GITHUB_APP_PRIVATE_KEY";
/// The REST API's base URL, for GitHub Enterprise Server and tests.
pub const GITHUB_API_URL: &str = "GITHUB_API_URL";
/// The app's OAuth client id (the `Iv1.…` on its settings page), for connecting installations.
pub const GITHUB_APP_CLIENT_ID: &str = "GITHUB_APP_CLIENT_ID";
/// The app's OAuth client secret.
pub const GITHUB_APP_CLIENT_SECRET: &str = "GITHUB_APP_CLIENT_SECRET";
/// The app's URL slug (`https://github.com/apps/<slug>`), for the install link.
pub const GITHUB_APP_SLUG: &str = "GITHUB_APP_SLUG";
/// The web host's base URL (OAuth endpoints and the install page).
pub const GITHUB_WEB_URL: &str = "GITHUB_WEB_URL";

/// GitHub accepts at most 500 repositories per token request.
const MAX_REPOS: usize = 500;
/// How long a connect `state` stays valid: enough to install the app and sign in.
const STATE_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(15);
/// The audience a connect `state` is signed for, so no other token of ours passes as one.
const STATE_AUDIENCE: &str = "arbe-github-connect";
/// At most this many pages of 100 are read from a listing.
const MAX_PAGES: u32 = 50;

/// What the binaries read from `GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY`, `GITHUB_API_URL`,
/// `GITHUB_WEB_URL`, `GITHUB_APP_CLIENT_ID`, `GITHUB_APP_CLIENT_SECRET` and `GITHUB_APP_SLUG`.
#[derive(Clone, Debug)]
pub struct GitHubAppConfig {
    /// The app id (`123456`) or client id (`Iv1.…`): the JWT's `iss`.
    pub app_id: String,
    /// The PEM private key.
    pub private_key_pem: SecretValue,
    /// The REST API's base URL.
    pub api_url: String,
    /// The web host's base URL: OAuth endpoints and the install page.
    pub web_url: String,
    /// The host repositories live on (`github.com`): a token is minted only for repositories
    /// there.
    pub repo_host: String,
    /// The app's OAuth client; without it installations cannot be connected.
    pub oauth: Option<GitHubOAuthClient>,
    /// The app's URL slug, for the install link.
    pub slug: Option<String>,
    /// The permissions installation tokens ask for: the least an agent needs to clone, push and
    /// open pull requests.
    pub token_permissions: Vec<(String, String)>,
}

/// The app's OAuth client, for the connect flow.
#[derive(Clone, Debug)]
pub struct GitHubOAuthClient {
    /// The client id.
    pub client_id: String,
    /// The client secret (prints `[redacted]`).
    pub client_secret: SecretValue,
}

impl GitHubAppConfig {
    /// GitHub.com's REST API.
    pub const DEFAULT_API_URL: &'static str = "https://api.github.com";
    /// GitHub.com's web host.
    pub const DEFAULT_WEB_URL: &'static str = "https://github.com";

    /// An app on GitHub.com with no OAuth client, asking for `contents: write` and
    /// `pull_requests: write` (metadata read comes with any token).
    pub fn new(app_id: impl Into<String>, private_key_pem: SecretValue) -> Self {
        Self {
            app_id: app_id.into(),
            private_key_pem,
            api_url: Self::DEFAULT_API_URL.into(),
            web_url: Self::DEFAULT_WEB_URL.into(),
            repo_host: "github.com".into(),
            oauth: None,
            slug: None,
            token_permissions: vec![("contents".into(), "write".into()), ("pull_requests".into(), "write".into())],
        }
    }
}

/// An installation access token. The token prints `[redacted]`.
#[derive(Clone, Debug)]
pub struct InstallationToken {
    /// The token, injected as `GITHUB_TOKEN`.
    pub token: SecretValue,
    /// When GitHub stops accepting it.
    pub expires_at: DateTime<Utc>,
    /// The installation it was minted from.
    pub installation_id: i64,
    /// The repository names it is scoped to.
    pub repositories: Vec<String>,
    /// The permissions GitHub granted, as it reported them.
    pub permissions: serde_json::Map<String, serde_json::Value>,
}

/// An installation of the app.
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

/// A repository an installation reaches, as `/user/installations/{id}/repositories` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRepo {
    /// `owner/name`.
    pub full_name: String,
    /// Whether it is private.
    #[serde(default)]
    pub private: bool,
}

/// A GitHub user signed in through the app's OAuth flow ([`GitHubApp::exchange_code`]; the
/// server keeps one per GitHub session): what listing a user's installations and connecting
/// one take. GitHub checks the token on every call, so a made-up one reaches nothing. The
/// token prints `[redacted]`.
#[derive(Clone, Debug)]
pub struct GitHubUser {
    /// The user's login.
    pub login: String,
    /// Their user-to-server token.
    pub token: SecretValue,
}

/// Where to send an owner's browser to connect an installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectStart {
    /// The signed state the callback must carry back.
    pub state: String,
    /// When the state stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// GitHub's sign-in page for the app (`…/login/oauth/authorize`), for an installation that
    /// already exists.
    pub authorize_url: String,
    /// The app's install page, when its slug is configured; after installing, GitHub signs the
    /// user in and calls back with the state.
    pub install_url: Option<String>,
}

#[derive(Serialize)]
struct AppClaims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

#[derive(Serialize, Deserialize)]
struct StateClaims {
    /// The house.
    h: uuid::Uuid,
    /// The arbe user who started the flow.
    u: uuid::Uuid,
    aud: String,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: String,
    expires_at: DateTime<Utc>,
    #[serde(default)]
    permissions: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct OAuthResponse {
    access_token: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct UserResponse {
    login: String,
}

#[derive(Deserialize)]
struct UserInstallations {
    installations: Vec<Installation>,
}

#[derive(Deserialize)]
struct InstallationRepos {
    repositories: Vec<InstallationRepo>,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
}

/// A configured GitHub App. Cheap to share behind an `Arc`.
pub struct GitHubApp {
    app_id: String,
    key: EncodingKey,
    /// Signs and checks connect states: derived from the app's private key, so every replica
    /// of a deployment agrees on it and nothing else needs configuring.
    state_key: (EncodingKey, DecodingKey),
    api_url: String,
    web_url: String,
    repo_host: String,
    oauth: Option<GitHubOAuthClient>,
    slug: Option<String>,
    permissions: serde_json::Map<String, serde_json::Value>,
    http: reqwest::Client,
}

impl fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys never print.
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("api_url", &self.api_url)
            .field("web_url", &self.web_url)
            .finish_non_exhaustive()
    }
}

fn base_url(field: &'static str, url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/').to_owned();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(EnvError::GitHubConfig { field, rule: "must be an http(s) URL" });
    }
    Ok(url)
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
        let pem = config.private_key_pem.expose().as_bytes();
        let key = EncodingKey::from_rsa_pem(pem).map_err(|_| EnvError::GitHubConfig {
            field: GITHUB_APP_PRIVATE_KEY,
            rule: "must be a PEM RSA private key",
        })?;
        let mut derive = Sha256::new();
        derive.update(b"arbe.github.connect-state.v1\0");
        derive.update(pem);
        let state_secret = zeroize::Zeroizing::new(<[u8; 32]>::from(derive.finalize()));
        let state_key = (EncodingKey::from_secret(&*state_secret), DecodingKey::from_secret(&*state_secret));
        let slug = config.slug.as_deref().map(str::trim).filter(|s| !s.is_empty());
        if let Some(slug) = slug
            && !slug.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(EnvError::GitHubConfig { field: GITHUB_APP_SLUG, rule: "must be the app's URL slug" });
        }
        if let Some(oauth) = &config.oauth
            && (oauth.client_id.trim().is_empty() || oauth.client_id.chars().any(|c| c.is_whitespace()))
        {
            return Err(EnvError::GitHubConfig { field: GITHUB_APP_CLIENT_ID, rule: "must be the app's client id" });
        }
        let permissions = config
            .token_permissions
            .iter()
            .map(|(name, level)| (name.clone(), serde_json::Value::String(level.clone())))
            .collect();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("arbe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| EnvError::GitHubConfig { field: GITHUB_API_URL, rule: "could not build an HTTP client" })?;
        let app = Self {
            app_id: app_id.to_owned(),
            key,
            state_key,
            api_url: base_url(GITHUB_API_URL, &config.api_url)?,
            web_url: base_url(GITHUB_WEB_URL, &config.web_url)?,
            repo_host: config.repo_host.trim().to_ascii_lowercase(),
            oauth: config.oauth.clone(),
            slug: slug.map(str::to_owned),
            permissions,
            http,
        };
        // Sign once now, so an unusable key shows at start-up rather than at the first dispatch.
        app.jwt(Utc::now())?;
        Ok(app)
    }

    /// The app id the JWT names as its issuer.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Whether installations can be connected (an OAuth client is configured).
    pub fn can_connect(&self) -> bool {
        self.oauth.is_some()
    }

    /// The app JWT for `now`: RS256, `iat` 60 s in the past (clock drift), `exp` 9 minutes
    /// ahead (GitHub allows at most 10), `iss` the app id.
    pub fn jwt(&self, now: DateTime<Utc>) -> Result<String> {
        let now = now.timestamp();
        let claims = AppClaims { iat: now - 60, exp: now + 540, iss: &self.app_id };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|_| EnvError::GitHubConfig { field: GITHUB_APP_PRIVATE_KEY, rule: "could not sign an RS256 JWT" })
    }

    /// Checks that a token for `repos` may be minted from `connection`: each repository on the
    /// app's host and owned by the installation's account (GitHub scopes tokens by name only,
    /// so `evil/api` would otherwise mean `<account>/api`), at least one and at most 500.
    pub fn check_repos(&self, connection: &GitHubConnection, repos: &[RepoRef]) -> Result<(), InvalidInput> {
        if repos.is_empty() {
            return Err(InvalidInput::new(
                "allowed_repos",
                "must name at least one repository: an unscoped token would reach every repository of the installation",
            ));
        }
        if repos.len() > MAX_REPOS {
            return Err(InvalidInput::new("allowed_repos", "must name at most 500 repositories"));
        }
        for repo in repos {
            if !repo.host().eq_ignore_ascii_case(&self.repo_host)
                || !repo.owner().eq_ignore_ascii_case(&connection.account_login)
            {
                return Err(InvalidInput::new(
                    "allowed_repos",
                    format!(
                        "must all be repositories of {}/{}, the account of installation {} (found {repo})",
                        self.repo_host, connection.account_login, connection.installation_id
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A fresh installation token from `connection`, scoped to `repos` (checked as in
    /// [`GitHubApp::check_repos`]) and to the configured permissions. Each dispatch mints its
    /// own and revokes it when it ends ([`GitHubApp::revoke`]).
    pub async fn installation_token(
        &self,
        connection: &GitHubConnection,
        repos: &[RepoRef],
    ) -> Result<InstallationToken> {
        self.check_repos(connection, repos)?;
        let mut names: Vec<String> = repos.iter().map(|r| r.name().to_owned()).collect();
        names.sort();
        names.dedup();
        const OP: &str = "create installation token";
        let id = connection.installation_id;
        let url = format!("{}/app/installations/{id}/access_tokens", self.api_url);
        let body = serde_json::json!({ "repositories": names, "permissions": self.permissions });
        let res = self.app_request(reqwest::Method::POST, &url)?.json(&body).send().await.map_err(transport(OP))?;
        let res = check(res, OP).await?;
        let parsed: TokenResponse =
            res.json().await.map_err(|_| malformed(OP, "the answer is not an installation token"))?;
        let token = InstallationToken {
            token: SecretValue::new(parsed.token).map_err(|_| malformed(OP, "the answer holds an empty token"))?,
            expires_at: parsed.expires_at,
            installation_id: id,
            repositories: names,
            permissions: parsed.permissions,
        };
        tracing::debug!(installation_id = id, expires_at = %token.expires_at, repos = token.repositories.len(), "minted a GitHub installation token");
        Ok(token)
    }

    /// Revokes an installation token (`DELETE /installation/token`, authenticated by the
    /// token itself). A token GitHub no longer accepts is already as good as revoked.
    pub async fn revoke(&self, token: &InstallationToken) -> Result<()> {
        const OP: &str = "revoke installation token";
        let url = format!("{}/installation/token", self.api_url);
        let res = self
            .api_request(reqwest::Method::DELETE, &url, token.token.expose())
            .send()
            .await
            .map_err(transport(OP))?;
        if res.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Ok(());
        }
        check(res, OP).await?;
        tracing::debug!(installation_id = token.installation_id, "revoked a GitHub installation token");
        Ok(())
    }

    /// One installation of the app, read with the app's JWT (no token is minted).
    pub async fn installation(&self, id: i64) -> Result<Installation> {
        const OP: &str = "get installation";
        let url = format!("{}/app/installations/{id}", self.api_url);
        let res = self.app_request(reqwest::Method::GET, &url)?.send().await.map_err(transport(OP))?;
        check(res, OP).await?.json().await.map_err(|_| malformed(OP, "the answer is not an installation"))
    }

    /// Every installation of the app (the operator's view: it spans every account).
    pub async fn list_installations(&self) -> Result<Vec<Installation>> {
        const OP: &str = "list installations";
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = format!("{}/app/installations?per_page=100&page={page}", self.api_url);
            let res = self.app_request(reqwest::Method::GET, &url)?.send().await.map_err(transport(OP))?;
            let batch: Vec<Installation> = check(res, OP)
                .await?
                .json()
                .await
                .map_err(|_| malformed(OP, "the answer is not a list of installations"))?;
            let done = batch.len() < 100;
            all.extend(batch);
            if done {
                break;
            }
        }
        Ok(all)
    }

    /// Starts a connect flow for `house`, begun by `user` at `now`: the signed state, and where
    /// to send the browser. `redirect_uri` is the server's callback, when the app has several.
    /// Reached through [`crate::Environments::github_connect_start`], which checks the actor.
    pub(crate) fn connect_start(
        &self,
        house: HouseId,
        user: UserId,
        redirect_uri: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ConnectStart> {
        let oauth = self.oauth.as_ref().ok_or(EnvError::GitHubConfig {
            field: GITHUB_APP_CLIENT_ID,
            rule: "must be set (with GITHUB_APP_CLIENT_SECRET) to connect installations",
        })?;
        let expires_at = now + STATE_TTL;
        let claims = StateClaims {
            h: house.as_uuid(),
            u: user.as_uuid(),
            aud: STATE_AUDIENCE.into(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let state = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.state_key.0)
            .map_err(|_| EnvError::GitHubConfig { field: GITHUB_APP_PRIVATE_KEY, rule: "could not sign a state" })?;
        let mut authorize = reqwest::Url::parse(&format!("{}/login/oauth/authorize", self.web_url))
            .map_err(|_| EnvError::GitHubConfig { field: GITHUB_WEB_URL, rule: "must be an http(s) URL" })?;
        authorize.query_pairs_mut().append_pair("client_id", &oauth.client_id).append_pair("state", &state);
        if let Some(redirect) = redirect_uri {
            authorize.query_pairs_mut().append_pair("redirect_uri", redirect);
        }
        let install_url = self.slug.as_ref().map(|slug| {
            let mut url = reqwest::Url::parse(&format!("{}/apps/{slug}/installations/new", self.web_url))
                .expect("the web URL and slug were checked");
            url.query_pairs_mut().append_pair("state", &state);
            url.to_string()
        });
        Ok(ConnectStart { state, expires_at, authorize_url: authorize.to_string(), install_url })
    }

    /// The house and user a connect state was issued for, if it is ours, unaltered and not
    /// expired at `now`.
    pub(crate) fn verify_state(&self, state: &str, now: DateTime<Utc>) -> Result<(HouseId, UserId)> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[STATE_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        // Expiry is judged against `now` below, not the system clock, and without leeway.
        validation.validate_exp = false;
        let refused =
            || InvalidInput::new("state", "must be a connect state this server issued in the last 15 minutes");
        let claims =
            jsonwebtoken::decode::<StateClaims>(state, &self.state_key.1, &validation).map_err(|_| refused())?.claims;
        if claims.exp <= now.timestamp() {
            return Err(refused().into());
        }
        Ok((HouseId::from_uuid(claims.h), UserId::from_uuid(claims.u)))
    }

    /// Exchanges an OAuth `code` (from GitHub's redirect) for the user's token, and reads who
    /// the user is.
    pub async fn exchange_code(&self, code: &str, redirect_uri: Option<&str>) -> Result<GitHubUser> {
        const OP: &str = "exchange the OAuth code";
        let oauth = self.oauth.as_ref().ok_or(EnvError::GitHubConfig {
            field: GITHUB_APP_CLIENT_ID,
            rule: "must be set (with GITHUB_APP_CLIENT_SECRET) to connect installations",
        })?;
        if code.is_empty() || code.len() > 512 || !code.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidInput::new("code", "must be the code GitHub passed to the callback").into());
        }
        let mut body = serde_json::json!({
            "client_id": oauth.client_id,
            "client_secret": oauth.client_secret.expose(),
            "code": code,
        });
        if let Some(redirect) = redirect_uri {
            body["redirect_uri"] = redirect.into();
        }
        let url = format!("{}/login/oauth/access_token", self.web_url);
        let res = self
            .http
            .post(&url)
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .map_err(transport(OP))?;
        let res = check(res, OP).await?;
        // GitHub answers 200 with an `error` field when the code is bad or used.
        let parsed: OAuthResponse = res.json().await.map_err(|_| malformed(OP, "the answer is not an OAuth token"))?;
        let token = match (parsed.access_token, parsed.error) {
            (Some(token), None) if !token.is_empty() => {
                SecretValue::new(token).map_err(|_| malformed(OP, "the answer holds an empty token"))?
            }
            (_, error) => {
                let error: String =
                    error.unwrap_or_default().chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
                return Err(EnvError::GitHub {
                    operation: OP,
                    status: Some(401),
                    message: format!("GitHub refused the code ({error}): start the connect flow again"),
                });
            }
        };
        const WHO: &str = "read the signed-in user";
        let res = self
            .api_request(reqwest::Method::GET, &format!("{}/user", self.api_url), token.expose())
            .send()
            .await
            .map_err(transport(WHO))?;
        let user: UserResponse =
            check(res, WHO).await?.json().await.map_err(|_| malformed(WHO, "the answer is not a user"))?;
        Ok(GitHubUser { login: user.login, token })
    }

    /// The app's installations `user` can reach (`GET /user/installations`).
    pub async fn user_installations(&self, user: &GitHubUser) -> Result<Vec<Installation>> {
        const OP: &str = "list the user's installations";
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = format!("{}/user/installations?per_page=100&page={page}", self.api_url);
            let res = self
                .api_request(reqwest::Method::GET, &url, user.token.expose())
                .send()
                .await
                .map_err(transport(OP))?;
            let batch: UserInstallations = check(res, OP)
                .await?
                .json()
                .await
                .map_err(|_| malformed(OP, "the answer is not a list of installations"))?;
            let done = batch.installations.len() < 100;
            all.extend(batch.installations);
            if done {
                break;
            }
        }
        Ok(all)
    }

    /// The repositories of installation `id` that `user` can reach
    /// (`GET /user/installations/{id}/repositories`).
    pub async fn user_installation_repos(&self, user: &GitHubUser, id: i64) -> Result<Vec<InstallationRepo>> {
        const OP: &str = "list the installation's repositories";
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = format!("{}/user/installations/{id}/repositories?per_page=100&page={page}", self.api_url);
            let res = self
                .api_request(reqwest::Method::GET, &url, user.token.expose())
                .send()
                .await
                .map_err(transport(OP))?;
            let batch: InstallationRepos = check(res, OP)
                .await?
                .json()
                .await
                .map_err(|_| malformed(OP, "the answer is not a list of repositories"))?;
            let done = batch.repositories.len() < 100;
            all.extend(batch.repositories);
            if done {
                break;
            }
        }
        Ok(all)
    }

    fn app_request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder> {
        let jwt = self.jwt(Utc::now())?;
        Ok(self.api_request(method, url, &jwt))
    }

    fn api_request(&self, method: reqwest::Method, url: &str, bearer: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(bearer)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
    }
}

fn malformed(operation: &'static str, message: &str) -> EnvError {
    EnvError::GitHub { operation, status: None, message: message.into() }
}

fn transport(operation: &'static str) -> impl Fn(reqwest::Error) -> EnvError {
    move |err| EnvError::GitHub {
        operation,
        status: None,
        message: if err.is_timeout() { "timed out".into() } else { "could not reach GitHub".into() },
    }
}

/// Passes a success through; turns an error status into [`EnvError::GitHub`] with GitHub's own
/// message (classified on the status, not the text).
async fn check(res: reqwest::Response, operation: &'static str) -> Result<reqwest::Response> {
    let status = res.status();
    if status.is_success() {
        return Ok(res);
    }
    let limited = res.headers().get("x-ratelimit-remaining").is_some_and(|v| v.as_bytes() == b"0")
        || res.headers().contains_key("retry-after");
    let said = res.json::<ErrorBody>().await.ok().and_then(|b| b.message).unwrap_or_default();
    let said: String = said.chars().filter(|c| !c.is_control()).take(200).collect();
    let (status, hint) = match status.as_u16() {
        401 => {
            (401, "GitHub rejected the credentials: check GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY, or sign in again")
        }
        404 => (404, "the installation does not exist or the app is not installed there"),
        422 => (422, "GitHub refused the request: a repository or permission may not be part of the installation"),
        // A 403 with the rate-limit headers is a rate limit, not a refusal.
        403 | 429 if limited => (429, "GitHub rate-limited the request: try again later"),
        403 => (403, "GitHub refused the request: the app may lack a permission"),
        other => (other, "GitHub answered with an error"),
    };
    let message = if said.is_empty() { hint.to_owned() } else { format!("{hint} ({said})") };
    Err(EnvError::GitHub { operation, status: Some(status), message })
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    const TEST_KEY: &str = include_str!("../tests/it/fixtures/github-app-test-key.pem");

    fn make_app(key: &str) -> GitHubApp {
        let config = GitHubAppConfig {
            oauth: Some(GitHubOAuthClient {
                client_id: "Iv1.fakeclient".into(),
                client_secret: SecretValue::new("s3cret".into()).unwrap(),
            }),
            slug: Some("arbe-test".into()),
            ..GitHubAppConfig::new("424242", SecretValue::new(key.into()).unwrap())
        };
        GitHubApp::new(&config).unwrap()
    }

    #[test]
    fn connect_states_are_signed_bound_and_expire() {
        let app = make_app(TEST_KEY);
        let (house, user) = (HouseId::new(), UserId::new());
        let now = Utc::now();
        let start = app.connect_start(house, user, Some("https://arbe.example/cb"), now).unwrap();
        assert_eq!(app.verify_state(&start.state, now).unwrap(), (house, user));
        assert!(start.authorize_url.contains("client_id=Iv1.fakeclient"), "{}", start.authorize_url);
        assert!(
            start.authorize_url.contains("redirect_uri=https%3A%2F%2Farbe.example%2Fcb"),
            "{}",
            start.authorize_url
        );
        assert!(start.install_url.as_deref().unwrap().contains("/apps/arbe-test/installations/new?state="));
        assert_eq!(start.expires_at, now + TimeDelta::minutes(15));
        // Expired, altered, or signed by another app's key: refused, naming the field.
        let err = app.verify_state(&start.state, now + TimeDelta::minutes(16)).unwrap_err();
        assert!(err.to_string().starts_with("invalid state:"), "{err}");
        let mut altered = start.state.clone();
        altered.insert(altered.len() / 2, 'x');
        assert!(app.verify_state(&altered, now).is_err());
        let other = std::process::Command::new("openssl").args(["genrsa", "-traditional", "2048"]).output().unwrap();
        let other = make_app(&String::from_utf8(other.stdout).unwrap());
        assert!(other.verify_state(&start.state, now).is_err());
        // An app JWT is not a state.
        assert!(app.verify_state(&app.jwt(now).unwrap(), now).is_err());
    }
}
