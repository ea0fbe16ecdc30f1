//! The auth matrix: every house route the OpenAPI document lists, called as anonymous, as a
//! member of another house, and as every role below the route's least role (seed 001: GET for
//! members, writes for writers, DELETE for owners, members and the audit trail for owners).
//! Refusals are 401, 404 and 403 in that order, and change nothing.

use arbe_core::Role;
use arbe_store::testkit::TestStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{App, spawn_app};

/// The least role of each house operation, and a body it accepts.
fn rule(operation: &str) -> Option<(Role, Option<Value>)> {
    use Role::{Owner, Reader, Writer};
    Some(match operation {
        "agents_list"
        | "agents_view"
        | "environments_list"
        | "environments_view"
        | "environments_diagnose"
        | "secrets_list"
        | "secrets_view"
        | "sandboxes_list"
        | "sandboxes_view"
        | "sandboxes_diagnose"
        | "sandboxes_env"
        | "threads_list"
        | "threads_view"
        | "entries_list"
        | "entries_stream"
        | "members_list"
        | "github_connections_list" => (Reader, None),
        "agents_create" => (Writer, Some(json!({"name": "matrix-agent"}))),
        "environments_create" => (Writer, Some(json!({"name": "matrix-env", "sandbox_id": "box"}))),
        "environments_update" => (Writer, Some(json!({"allowed_repos": ["acme/api"]}))),
        "environments_bind" => (Writer, Some(json!({"required": false}))),
        "environments_unbind" => (Writer, None),
        "secrets_set" => (Writer, Some(json!({"value": "matrix-secret-value"}))),
        "sandboxes_create" => (Writer, Some(json!({"name": "matrix-box"}))),
        // A ping runs a command in the sandbox: operating it.
        "sandboxes_start" | "sandboxes_stop" | "sandboxes_ping" => (Writer, None),
        "threads_create" => (Writer, Some(json!({"parent": "general"}))),
        "threads_cancel" => (Writer, None),
        "entries_create" => (Writer, Some(json!({"text": "hello"}))),
        "agents_delete"
        | "environments_delete"
        | "secrets_delete"
        | "sandboxes_destroy"
        | "members_remove"
        | "audit_list"
        | "github_connect"
        | "github_disconnect" => (Owner, None),
        "members_add" => (Owner, Some(json!({"user": "acme-key-reader", "role": "writer"}))),
        "members_set_role" => (Owner, Some(json!({"role": "owner"}))),
        _ => return None,
    })
}

/// What the house holds, as its owner sees it.
async fn snapshot(app: &App) -> Vec<String> {
    let mut all = Vec::new();
    for list in ["/api/environments", "/api/secrets", "/api/sandboxes", "/api/agents", "/api/members", "/api/threads"] {
        let (status, body) = app.call(Method::GET, list, &app.house, Some(&app.owner), None).await;
        assert_eq!(status, StatusCode::OK, "{list}: {body}");
        all.push(body);
    }
    all
}

pub(crate) async fn every_house_route_refuses_whom_seed_001_says_and_refusals_change_nothing(test: TestStore) {
    let app = spawn_app(test).await;
    let house = &app.house;
    // Objects for the paths to name: a secret, a sandbox, an environment on it, an agent, a
    // thread and the reader's membership.
    let w = Some(&app.writer);
    app.call(Method::PUT, "/api/secrets/API_TOKEN", house, w, Some(json!({"value": "sk-matrix-1234"}))).await;
    let (status, body) = app.call(Method::POST, "/api/sandboxes", house, w, Some(json!({"name": "box"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let body = json!({"name": "work", "sandbox_id": "box", "secret_bindings": [{"name": "API_TOKEN"}]});
    assert_eq!(app.call(Method::POST, "/api/environments", house, w, Some(body)).await.0, StatusCode::CREATED);
    assert_eq!(
        app.call(Method::POST, "/api/agents", house, w, Some(json!({"name": "coder"}))).await.0,
        StatusCode::CREATED
    );
    let (_, body) = app.call(Method::POST, "/api/threads", house, w, Some(json!({"parent": "general"}))).await;
    let thread = serde_json::from_str::<Value>(&body).unwrap()["id"].as_str().unwrap().to_owned();
    let (_, body) = app.call(Method::GET, "/api/members", house, Some(&app.owner), None).await;
    let members: Vec<Value> = serde_json::from_str(&body).unwrap();
    let reader = members.iter().find(|m| m["role"] == "reader").unwrap()["id"].as_str().unwrap().to_owned();

    let before = snapshot(&app).await;
    let doc = arbe_server::openapi();
    let mut checked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let names_house = op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == "house_id"));
            if !names_house {
                continue;
            }
            let id = op["operationId"].as_str().unwrap();
            let (least, body) = rule(id).unwrap_or_else(|| panic!("{id}: the matrix needs its least role"));
            let object = if template.starts_with("/api/threads/") {
                thread.as_str()
            } else if template.starts_with("/api/members/") {
                reader.as_str()
            } else if template.starts_with("/api/sandboxes/") {
                "box"
            } else if template.starts_with("/api/agents/") {
                "coder"
            } else {
                "work"
            };
            let path =
                template.replace("{id}", object).replace("{name}", "API_TOKEN").replace("{installation_id}", "7");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let call = |key| app.call(method.clone(), &path, house, key, body.clone());
            let (status, text) = call(None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{id} as anonymous: {text}");
            let (status, text) = call(Some(&app.outsider)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{id} as another house's member: {text}");
            for (role, key) in [(Role::Reader, &app.reader), (Role::Writer, &app.writer)] {
                if role < least {
                    let (status, text) = call(Some(key)).await;
                    assert_eq!(status, StatusCode::FORBIDDEN, "{id} as a {role:?}: {text}");
                }
            }
            if least == Role::Reader && method == Method::GET {
                let (status, text) = call(Some(&app.reader)).await;
                assert!(status.is_success(), "{id} as a reader: {status} {text}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 35, "{checked} house operations checked");
    assert_eq!(snapshot(&app).await, before, "refused calls changed nothing");
    app.clean_up().await;
}
