//! The GitHub App: its JWT checked by an independent verifier (PyJWT), the token exchange
//! against the fake, caching, error classes, and a bad key that is named but never echoed.

use std::process::Command;

use arbe_core::{ErrorKind, RepoRef, SecretValue};
use arbe_env::{GitHubApp, GitHubAppConfig};

use crate::{TEST_KEY, assert_kind, fake_github, test_app};

/// PyJWT verifies the signature with the key's public half, and the claims GitHub requires.
const VERIFY: &str = r#"
import sys, time, jwt
from cryptography.hazmat.primitives import serialization
token, key_path, app_id = sys.argv[1], sys.argv[2], sys.argv[3]
private = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
claims = jwt.decode(token, private.public_key(), algorithms=["RS256"], issuer=app_id,
                    options={"require": ["iat", "exp", "iss"]})
header = jwt.get_unverified_header(token)
now = int(time.time())
assert header["alg"] == "RS256", header
assert claims["iat"] <= now - 55, ("iat must be about 60 s in the past", claims, now)
assert claims["exp"] - claims["iat"] <= 600, ("exp at most 10 minutes after iat", claims)
assert claims["exp"] > now, ("exp in the future", claims, now)
assert isinstance(claims["iss"], str), claims
print("verified")
"#;

#[test]
fn app_jwt_verifies_with_pyjwt() {
    let app = test_app("https://api.github.com");
    let jwt = app.jwt(chrono::Utc::now()).unwrap();
    let key_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/github-app-test-key.pem");
    let out = Command::new("python3").args(["-c", VERIFY, &jwt, key_path, "424242"]).output().expect(
        "python3 runs (the JWT test needs python3 with pyjwt and cryptography: pip install pyjwt cryptography)",
    );
    assert!(
        out.status.success(),
        "PyJWT rejected the JWT (or is not installed: pip install pyjwt cryptography): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verified");
}

#[test]
fn app_jwt_signed_with_another_key_fails_pyjwt() {
    // The verifier is not a rubber stamp: a JWT whose claims are fine but whose signature is
    // from another key is refused.
    let other = Command::new("openssl").args(["genrsa", "-traditional", "2048"]).output().expect("openssl runs");
    assert!(other.status.success());
    let app = GitHubApp::new(&GitHubAppConfig {
        app_id: "424242".into(),
        private_key_pem: SecretValue::new(String::from_utf8(other.stdout).unwrap()).unwrap(),
        api_url: "https://api.github.com".into(),
    })
    .unwrap();
    let jwt = app.jwt(chrono::Utc::now()).unwrap();
    let key_path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/github-app-test-key.pem");
    let out = Command::new("python3").args(["-c", VERIFY, &jwt, key_path, "424242"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InvalidSignatureError"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_key_or_app_id_is_named_and_never_echoed() {
    let secretish = "-----BEGIN RSA PRIVATE KEY-----\nnot-a-key-canary-5150\n-----END RSA PRIVATE KEY-----\n";
    let err = GitHubApp::new(&GitHubAppConfig {
        app_id: "424242".into(),
        private_key_pem: SecretValue::new(secretish.into()).unwrap(),
        api_url: GitHubAppConfig::DEFAULT_API_URL.into(),
    })
    .unwrap_err();
    let text = format!("{err} {err:?}");
    assert_eq!(err.to_string(), "invalid GitHub App setting GITHUB_APP_PRIVATE_KEY: must be a PEM RSA private key");
    assert!(!text.contains("canary"), "{text}");
    let err = GitHubApp::new(&GitHubAppConfig {
        app_id: "42 42".into(),
        private_key_pem: SecretValue::new(TEST_KEY.into()).unwrap(),
        api_url: GitHubAppConfig::DEFAULT_API_URL.into(),
    })
    .unwrap_err();
    assert!(err.to_string().contains("GITHUB_APP_ID"), "{err}");
    // The app's Debug output names the app, never the key.
    let debug = format!("{:?}", test_app("https://api.github.com"));
    assert!(debug.contains("424242") && !debug.contains("PRIVATE"), "{debug}");
}

#[tokio::test]
async fn token_exchange_is_scoped_by_repo_name_and_cached() {
    let (url, seen) = fake_github::start().await;
    let app = test_app(&url);
    let repos = [
        RepoRef::parse("https://github.com/org/api").unwrap(),
        RepoRef::parse("org/web").unwrap(),
        RepoRef::parse("git@github.com:org/api.git").unwrap(),
    ];
    let first = app.installation_token(7, &repos).await.unwrap();
    assert_eq!(first.token.expose(), "ghs_fake1_7");
    assert_eq!(first.repositories, ["api", "web"]);
    assert!(first.expires_at > chrono::Utc::now() + chrono::TimeDelta::minutes(50));
    // Served from the cache: no second request.
    let again = app.installation_token(7, &repos[..2]).await.unwrap();
    assert_eq!(again.token.expose(), "ghs_fake1_7");
    // Another scope is another token.
    let other = app.installation_token(7, &repos[1..2]).await.unwrap();
    assert_eq!(other.token.expose(), "ghs_fake2_7");
    let seen = seen.lock().unwrap();
    assert!(seen.problems.is_empty(), "{:?}", seen.problems);
    assert_eq!(
        seen.token_requests,
        [(7, serde_json::json!({"repositories": ["api", "web"]})), (7, serde_json::json!({"repositories": ["web"]}))]
    );
}

#[tokio::test]
async fn token_errors_are_classified_and_unscoped_tokens_refused() {
    let (url, seen) = fake_github::start().await;
    let app = test_app(&url);
    let repos = [RepoRef::parse("org/api").unwrap()];
    let err = assert_kind(app.installation_token(404, &repos).await, ErrorKind::NotFound);
    assert!(err.to_string().contains("not installed"), "{err}");
    // No repos: refused before any request, since GitHub would grant every repository.
    let err = assert_kind(app.installation_token(7, &[]).await, ErrorKind::InvalidInput);
    assert!(err.to_string().starts_with("invalid allowed_repos:"), "{err}");
    assert_kind(app.installation_token(0, &repos).await, ErrorKind::InvalidInput);
    assert_eq!(seen.lock().unwrap().token_requests.len(), 1);
    // An app GitHub does not know (here: a key the fake cannot verify) is unauthenticated.
    let other = Command::new("openssl").args(["genrsa", "-traditional", "2048"]).output().expect("openssl runs");
    let stranger = GitHubApp::new(&GitHubAppConfig {
        app_id: "424242".into(),
        private_key_pem: SecretValue::new(String::from_utf8(other.stdout).unwrap()).unwrap(),
        api_url: url.clone(),
    })
    .unwrap();
    let err = assert_kind(stranger.installation_token(7, &repos).await, ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("GITHUB_APP_PRIVATE_KEY"), "{err}");
    // Nobody listening: unavailable, retryable.
    let gone = test_app("http://127.0.0.1:9");
    assert_kind(gone.installation_token(7, &repos).await, ErrorKind::Unavailable);
}

#[tokio::test]
async fn installations_are_listed_through_the_app() {
    let (url, seen) = fake_github::start().await;
    let list = test_app(&url).list_installations().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].id, list[0].account.as_ref().unwrap().login.as_str()), (7, "org"));
    assert!(seen.lock().unwrap().problems.is_empty());
}
