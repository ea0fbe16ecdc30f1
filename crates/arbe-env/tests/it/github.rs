//! The GitHub App: its JWT checked by an independent verifier (PyJWT); tokens, revocation,
//! listings, the OAuth code exchange and connect states against the fake; error classes; and a
//! bad key that is named but never echoed.

use std::process::Command;

use arbe_core::{ErrorKind, GitHubConnection, HouseId, RepoRef, SecretValue};
use arbe_env::{GitHubApp, GitHubAppConfig};
use chrono::{TimeDelta, Utc};

use crate::{TEST_KEY, assert_kind, fake_github, test_app, test_config};

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

fn stranger_key() -> SecretValue {
    let other = Command::new("openssl").args(["genrsa", "-traditional", "2048"]).output().expect("openssl runs");
    assert!(other.status.success());
    SecretValue::new(String::from_utf8(other.stdout).unwrap()).unwrap()
}

fn connection(id: i64, account: &str) -> GitHubConnection {
    GitHubConnection {
        house_id: HouseId::new(),
        installation_id: id,
        account_login: account.into(),
        github_login: "alice".into(),
        connected_by: None,
        connected_at: Utc::now(),
    }
}

fn repos(list: &[&str]) -> Vec<RepoRef> {
    list.iter().map(|r| RepoRef::parse(r).unwrap()).collect()
}

#[test]
fn app_jwt_signed_with_another_key_fails_pyjwt() {
    // The verifier is not a rubber stamp: a JWT whose claims are fine but whose signature is
    // from another key is refused.
    let app = GitHubApp::new(&GitHubAppConfig::new("424242", stranger_key())).unwrap();
    let jwt = app.jwt(Utc::now()).unwrap();
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
    let err = GitHubApp::new(&GitHubAppConfig::new("424242", SecretValue::new(secretish.into()).unwrap())).unwrap_err();
    let text = format!("{err} {err:?}");
    assert_eq!(err.to_string(), "invalid GitHub App setting GITHUB_APP_PRIVATE_KEY: must be a PEM RSA private key");
    assert!(!text.contains("canary"), "{text}");
    let err = GitHubApp::new(&GitHubAppConfig::new("42 42", SecretValue::new(TEST_KEY.into()).unwrap())).unwrap_err();
    assert!(err.to_string().contains("GITHUB_APP_ID"), "{err}");
    let err = GitHubApp::new(&GitHubAppConfig { slug: Some("a/b".into()), ..test_config("https://api.github.com") })
        .unwrap_err();
    assert!(err.to_string().contains("GITHUB_APP_SLUG"), "{err}");
    // The app's Debug output names the app, never a key or the client secret.
    let debug = format!("{:?} {:?}", test_app("https://api.github.com"), test_config("https://api.github.com"));
    assert!(
        debug.contains("424242") && !debug.contains("PRIVATE") && !debug.contains(fake_github::CLIENT_SECRET),
        "{debug}"
    );
}

#[tokio::test]
async fn each_token_is_scoped_to_the_accounts_repos_and_the_least_permissions_and_revocable() {
    let gh = fake_github::start().await;
    let app = test_app(&gh.url);
    let org = connection(7, "org");
    let wanted = repos(&["https://github.com/org/api", "Org/web", "git@github.com:org/api.git"]);
    let first = app.installation_token(&org, &wanted).await.unwrap();
    assert_eq!(first.repositories, ["api", "web"]);
    assert!(first.expires_at > Utc::now() + TimeDelta::minutes(50));
    assert_eq!(first.permissions["contents"], "write");
    // Every dispatch gets its own token: none is cached and shared.
    let second = app.installation_token(&org, &wanted[..1]).await.unwrap();
    assert_ne!(first.token.expose(), second.token.expose());
    let permissions = serde_json::json!({"contents": "write", "pull_requests": "write"});
    assert_eq!(
        gh.seen.lock().unwrap().token_requests,
        [
            (7, serde_json::json!({"repositories": ["api", "web"], "permissions": permissions})),
            (7, serde_json::json!({"repositories": ["api"], "permissions": permissions})),
        ]
    );
    // Revoked: GitHub no longer accepts it, and revoking again is harmless.
    assert!(gh.token_live(first.token.expose()));
    app.revoke(&first).await.unwrap();
    assert!(!gh.token_live(first.token.expose()));
    app.revoke(&first).await.unwrap();
    assert!(gh.token_live(second.token.expose()));

    // Another account's repository of the same name is refused before any request: GitHub
    // scopes by name, so `evil/api` would have meant `org/api`.
    let before = gh.seen.lock().unwrap().token_requests.len();
    let err = assert_kind(app.installation_token(&org, &repos(&["evil/api"])).await, ErrorKind::InvalidInput);
    assert!(err.to_string().contains("github.com/org, the account of installation 7"), "{err}");
    assert_kind(app.installation_token(&org, &repos(&["https://gitlab.com/org/api"])).await, ErrorKind::InvalidInput);
    let err = assert_kind(app.installation_token(&org, &[]).await, ErrorKind::InvalidInput);
    assert!(err.to_string().starts_with("invalid allowed_repos:"), "{err}");
    assert_eq!(gh.seen.lock().unwrap().token_requests.len(), before);
    assert!(gh.problems().is_empty(), "{:?}", gh.problems());
}

#[tokio::test]
async fn github_refusals_are_classified() {
    let gh = fake_github::start().await;
    let app = test_app(&gh.url);
    // A repository the installation does not reach, and a permission the app lacks: 422.
    let err = assert_kind(
        app.installation_token(&connection(7, "org"), &repos(&["org/nope"])).await,
        ErrorKind::InvalidInput,
    );
    assert!(err.to_string().contains("not accessible to the parent installation"), "{err}");
    let greedy = GitHubApp::new(&GitHubAppConfig {
        token_permissions: vec![("administration".into(), "write".into())],
        ..test_config(&gh.url)
    })
    .unwrap();
    assert_kind(greedy.installation_token(&connection(7, "org"), &repos(&["org/api"])).await, ErrorKind::InvalidInput);
    // Gone: 404. Rate limited (a 403 with the rate-limit headers): retryable.
    let err =
        assert_kind(app.installation_token(&connection(404, "org"), &repos(&["org/api"])).await, ErrorKind::NotFound);
    assert!(err.to_string().contains("not installed"), "{err}");
    let err = assert_kind(
        app.installation_token(&connection(429, "org"), &repos(&["org/api"])).await,
        ErrorKind::RateLimited,
    );
    assert!(arbe_core::Classify::kind(&err).is_retryable(), "{err}");
    // An app GitHub does not know (a key the fake cannot verify) is unauthenticated.
    let stranger =
        GitHubApp::new(&GitHubAppConfig { private_key_pem: stranger_key(), ..test_config(&gh.url) }).unwrap();
    let err = assert_kind(
        stranger.installation_token(&connection(7, "org"), &repos(&["org/api"])).await,
        ErrorKind::Unauthenticated,
    );
    assert!(err.to_string().contains("GITHUB_APP_PRIVATE_KEY"), "{err}");
    // Nobody listening: unavailable, retryable.
    let gone = test_app("http://127.0.0.1:9");
    assert_kind(gone.installation_token(&connection(7, "org"), &repos(&["org/api"])).await, ErrorKind::Unavailable);
    assert!(gh.problems().is_empty(), "{:?}", gh.problems());
}

#[tokio::test]
async fn listings_follow_every_page() {
    // 230 installations: three pages of at most 100 for the app and for a user who reaches all.
    let many: Vec<_> = (1..=230)
        .map(|id| fake_github::FakeInstallation { id, account: "org", repos: vec!["api"], users: vec!["alice"] })
        .collect();
    let gh = fake_github::start_with(many).await;
    let app = test_app(&gh.url);
    let all = app.list_installations().await.unwrap();
    assert_eq!(all.len(), 230);
    assert_eq!((all[0].id, all[229].id), (1, 230));
    let alice = app.exchange_code(&gh.code_for("alice"), None).await.unwrap();
    assert_eq!(app.user_installations(&alice).await.unwrap().len(), 230);
    assert_eq!(app.installation(230).await.unwrap().account.unwrap().login, "org");
    assert_kind(app.installation(231).await, ErrorKind::NotFound);
    assert!(gh.problems().is_empty(), "{:?}", gh.problems());
}

#[tokio::test]
async fn a_code_signs_in_its_user_once_and_lists_only_what_they_reach() {
    let gh = fake_github::start().await;
    let app = test_app(&gh.url);
    let code = gh.code_for("alice");
    let alice = app.exchange_code(&code, Some("https://arbe.example/api/github/callback")).await.unwrap();
    assert_eq!(alice.login, "alice");
    assert!(!format!("{alice:?}").contains(alice.token.expose()));
    let theirs = app.user_installations(&alice).await.unwrap();
    assert_eq!(theirs.iter().map(|i| i.id).collect::<Vec<_>>(), [7]);
    let repos = app.user_installation_repos(&alice, 7).await.unwrap();
    assert_eq!(repos.iter().map(|r| r.full_name.as_str()).collect::<Vec<_>>(), ["org/api", "org/web"]);
    // Another user's installation is invisible to alice.
    assert_kind(app.user_installation_repos(&alice, 8).await, ErrorKind::NotFound);
    // A code works once, and a made-up one not at all.
    let err = assert_kind(app.exchange_code(&code, None).await, ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("bad_verification_code"), "{err}");
    assert_kind(app.exchange_code("made-up", None).await, ErrorKind::Unauthenticated);
    assert_kind(app.exchange_code("", None).await, ErrorKind::InvalidInput);
    // Without an OAuth client nothing can be exchanged.
    let bare = GitHubApp::new(&GitHubAppConfig { oauth: None, ..test_config(&gh.url) }).unwrap();
    let err = assert_kind(bare.exchange_code(&gh.code_for("alice"), None).await, ErrorKind::Misconfigured);
    assert!(err.to_string().contains("GITHUB_APP_CLIENT_ID"), "{err}");
    assert!(gh.problems().is_empty(), "{:?}", gh.problems());
}
