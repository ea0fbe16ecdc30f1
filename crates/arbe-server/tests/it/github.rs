//! GitHub over HTTP, against the fake GitHub: an owner starts the connect flow, GitHub's
//! redirect reaches the callback, which connects the installation and opens a GitHub session;
//! seed 001's listing endpoints answer to that session only.

use std::sync::Arc;

use arbe_store::testkit::TestStore;
use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use crate::{fake_github, spawn_app};

pub(crate) async fn github_installations_connect_through_the_callback_and_list_with_the_session(test: TestStore) {
    let gh = fake_github::start().await;
    let mut app = spawn_app(test).await;
    // A server without a GitHub App says so: 501 on the GitHub routes.
    let (status, text) = app.call(Method::POST, "/api/github/connect", &app.house, Some(&app.owner), None).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{text}");

    let config = arbe_env::GitHubAppConfig {
        api_url: gh.url.clone(),
        web_url: gh.url.clone(),
        oauth: Some(arbe_env::GitHubOAuthClient {
            client_id: fake_github::CLIENT_ID.into(),
            client_secret: arbe_core::SecretValue::new(fake_github::CLIENT_SECRET.into()).unwrap(),
        }),
        slug: Some("arbe-test".into()),
        ..arbe_env::GitHubAppConfig::new("424242", arbe_core::SecretValue::new(crate::TEST_KEY.into()).unwrap())
    };
    app.github = Some(Arc::new(arbe_env::GitHubApp::new(&config).unwrap()));
    app.stop().await;
    app.start().await;
    let house = app.house.clone();

    // Only an owner starts the flow.
    let (status, _) = app.call(Method::POST, "/api/github/connect", &house, Some(&app.writer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, text) = app.call(Method::POST, "/api/github/connect", &house, Some(&app.owner), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let start: Value = serde_json::from_str(&text).unwrap();
    let state = start["state"].as_str().unwrap();
    assert!(start["authorize_url"].as_str().unwrap().starts_with(&gh.url));

    // GitHub sends the browser back: a forged state connects nothing.
    let callback = |query: String| app.http.get(format!("{}/api/github/callback?{query}", app.url)).send();
    let res = callback(format!("code={}&state=forged&installation_id=7", gh.code_for("alice"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    // Mallory cannot reach installation 7.
    let res = callback(format!("code={}&state={state}&installation_id=7", gh.code_for("mallory"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = callback(format!("code={}&state={state}&installation_id=7", gh.code_for("alice"))).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("arbe_github_session=") && cookie.contains("HttpOnly"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    let signed_in: Value = res.json().await.unwrap();
    assert_eq!(
        (signed_in["login"].as_str(), signed_in["connection"]["installation_id"].as_i64()),
        (Some("alice"), Some(7))
    );

    // The house lists it; another house does not see it.
    let (_, text) = app.call(Method::GET, "/api/github/connections", &house, Some(&app.reader), None).await;
    let connections: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0]["account_login"], "org");
    let (_, text) = app.call(Method::GET, "/api/github/connections", &app.other, Some(&app.outsider), None).await;
    assert_eq!(text, "[]");

    // Seed 001's listings answer to the session, never to an API key.
    let installations = format!("{}/api/github/installations", app.url);
    let res = app.http.get(&installations).bearer_auth(app.owner.expose()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.http.get(&installations).header(header::COOKIE, "arbe_github_session=made-up").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.http.get(&installations).header(header::COOKIE, &session).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let found: Vec<Value> = res.json().await.unwrap();
    assert_eq!(found.iter().map(|i| i["id"].as_i64().unwrap()).collect::<Vec<_>>(), [7]);
    let res = app.http.get(format!("{installations}/7/repos")).header(header::COOKIE, &session).send().await.unwrap();
    let repos: Vec<Value> = res.json().await.unwrap();
    let mut names: Vec<&str> = repos.iter().map(|r| r["full_name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["org/api", "org/web"]);
    let res = app.http.get(format!("{installations}/8/repos")).header(header::COOKIE, &session).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "alice does not reach installation 8");

    // A writer may not disconnect it; the owner does.
    let path = "/api/github/connections/7";
    assert_eq!(app.call(Method::DELETE, path, &house, Some(&app.writer), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.call(Method::DELETE, path, &house, Some(&app.owner), None).await.0, StatusCode::NO_CONTENT);
    let (_, text) = app.call(Method::GET, "/api/github/connections", &house, Some(&app.reader), None).await;
    assert_eq!(text, "[]");
    assert!(gh.problems().is_empty(), "{:?}", gh.problems());
    app.clean_up().await;
}
