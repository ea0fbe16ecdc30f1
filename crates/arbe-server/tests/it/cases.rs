//! The cases `both_backends!` runs on each backend.

use arbe_api::Problem;
use arbe_core::{SecretValue, ThreadStatus};
use arbe_store::testkit::TestStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{App, spawn_app};
pub(crate) use crate::{
    github::github_installations_connect_through_the_callback_and_list_with_the_session,
    matrix::every_house_route_refuses_whom_seed_001_says_and_refusals_change_nothing,
};

impl App {
    /// Calls `path` (with `?house_id=` of `house`) as the holder of `key` (none: anonymous).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        house: &arbe_core::House,
        key: Option<&SecretValue>,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut req = self.http.request(method, format!("{}{path}{sep}house_id={}", self.url, house.id));
        if let Some(key) = key {
            req = req.bearer_auth(key.expose());
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status();
        let problem = res.headers().get("content-type").is_some_and(|v| v == "application/problem+json");
        let text = res.text().await.unwrap();
        self.bodies.lock().unwrap().push(text.clone());
        if !status.is_success() {
            assert!(problem, "an error is a problem document: {status} {text}");
        }
        (status, text)
    }

    async fn env_names(&self, key: &SecretValue) -> Vec<String> {
        let (status, body) = self.call(Method::GET, "/api/environments", &self.house, Some(key), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let list: Vec<Value> = serde_json::from_str(&body).unwrap();
        list.iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect()
    }
}

fn problem(body: &str) -> Problem {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("a problem document: {body}"))
}

pub(crate) async fn environments_answer_seed_001s_roles_and_another_house_finds_nothing(test: TestStore) {
    let app = spawn_app(test).await;
    let (house, other) = (&app.house, &app.other);
    let create = |name: &str| json!({"name": name, "secret_bindings": [{"name": "OPENROUTER_API_KEY"}]});
    // Anonymous: 401, the same whatever was wrong.
    let (status, body) = app.call(Method::GET, "/api/environments", house, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bad_key = SecretValue::new("arbe_not_a_real_key".into()).unwrap();
    let (status, body2) = app.call(Method::GET, "/api/environments", house, Some(&bad_key), None).await;
    assert_eq!((status, problem(&body2)), (StatusCode::UNAUTHORIZED, problem(&body)));
    // A reader lists and views but may not create.
    let (status, body) =
        app.call(Method::POST, "/api/environments", house, Some(&app.reader), Some(create("work"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(app.env_names(&app.reader).await, Vec::<String>::new(), "a refused call changed nothing");
    // A writer creates (a sandbox is provisioned) and updates, but may not delete.
    let (status, body) =
        app.call(Method::POST, "/api/environments", house, Some(&app.writer), Some(create("work"))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let env: Value = serde_json::from_str(&body).unwrap();
    let id = env["id"].as_str().unwrap().to_owned();
    assert_eq!(env["secret_bindings"][0]["required"], true);
    let (status, body) = app
        .call(Method::PATCH, "/api/environments/WORK", house, Some(&app.writer), Some(json!({"name": "work2"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.call(Method::GET, &format!("/api/environments/{id}"), house, Some(&app.reader), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        app.call(Method::DELETE, &format!("/api/environments/{id}"), house, Some(&app.writer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(app.env_names(&app.reader).await, ["work2"]);
    // Another house's member: 404 whether it names acme's house or its own, for every method,
    // and the same body as an environment that does not exist.
    let missing = format!("/api/environments/{}", arbe_core::EnvironmentId::new());
    let (_, missing_body) = app.call(Method::GET, &missing, house, Some(&app.owner), None).await;
    for (method, body) in
        [(Method::GET, None), (Method::PATCH, Some(json!({"name": "stolen"}))), (Method::DELETE, None)]
    {
        for in_house in [house, other] {
            let path = format!("/api/environments/{id}");
            let (status, text) = app.call(method.clone(), &path, in_house, Some(&app.outsider), body.clone()).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} as the outsider in {}: {text}", in_house.name);
            if in_house.id == other.id {
                assert_eq!(problem(&text), problem(&missing_body));
            }
        }
    }
    let (status, _) = app.call(Method::GET, "/api/environments", house, Some(&app.outsider), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a house without a membership does not exist for the caller");
    assert_eq!(app.env_names(&app.reader).await, ["work2"], "refused calls changed nothing");
    // Bindings by name: seed 001's idempotent bind, unbind, and the preflight.
    let bind = |required: bool| json!({"required": required});
    let secret = "/api/environments/work2/secrets/DEPLOY_KEY";
    let outcome = |text: String| serde_json::from_str::<Value>(&text).unwrap()["outcome"].clone();
    let key = Some(&app.writer);
    assert_eq!(outcome(app.call(Method::PUT, secret, house, key, Some(bind(true))).await.1), "added");
    assert_eq!(outcome(app.call(Method::PUT, secret, house, key, Some(bind(true))).await.1), "unchanged");
    assert_eq!(outcome(app.call(Method::PUT, secret, house, key, Some(bind(false))).await.1), "changed");
    let (status, _) = app.call(Method::PUT, secret, house, Some(&app.reader), Some(bind(true))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, text) =
        app.call(Method::GET, "/api/environments/work2/diagnose", house, Some(&app.reader), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let diagnosis: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(diagnosis["ok"], false, "no OPENROUTER_API_KEY anywhere: {text}");
    assert!(text.contains("OPENROUTER_API_KEY"), "the blocker names the key: {text}");
    let removed = |text: String| serde_json::from_str::<Value>(&text).unwrap()["removed"].clone();
    assert_eq!(removed(app.call(Method::DELETE, secret, house, key, None).await.1), true);
    assert_eq!(removed(app.call(Method::DELETE, secret, house, key, None).await.1), false);
    // An owner deletes (soft).
    let (status, _) = app.call(Method::DELETE, &format!("/api/environments/{id}"), house, Some(&app.owner), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.env_names(&app.reader).await, Vec::<String>::new());
    app.clean_up().await;
}

pub(crate) async fn secret_values_never_come_back(test: TestStore) {
    let logs = arbe_testkit::LogCapture::install();
    let app = spawn_app(test).await;
    let house = &app.house;
    let canary = format!("sk-canary-{}", arbe_core::SandboxId::new().as_uuid().simple());
    let mut bodies = vec![];
    let body = json!({"value": canary, "shared": true});
    let (status, text) = app.call(Method::PUT, "/api/secrets/DEPLOY_KEY", house, Some(&app.writer), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    bodies.push(text);
    // Rotated, listed, viewed; refused for a reader and for another house.
    let body = json!({"value": format!("{canary}-2")});
    bodies.push(app.call(Method::PUT, "/api/secrets/DEPLOY_KEY", house, Some(&app.writer), Some(body.clone())).await.1);
    bodies.push(app.call(Method::GET, "/api/secrets", house, Some(&app.reader), None).await.1);
    bodies.push(app.call(Method::GET, "/api/secrets/DEPLOY_KEY", house, Some(&app.reader), None).await.1);
    let (status, text) = app.call(Method::PUT, "/api/secrets/DEPLOY_KEY", house, Some(&app.reader), Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    bodies.push(text);
    let (status, text) = app.call(Method::GET, "/api/secrets/DEPLOY_KEY", &app.other, Some(&app.outsider), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    bodies.push(text);
    // A value too short to redact is refused, naming the rule and not the value.
    let (status, text) =
        app.call(Method::PUT, "/api/secrets/PIN", house, Some(&app.writer), Some(json!({"value": "7x3q9z1"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(problem(&text).detail.contains("must be 8 to 16,384 characters"), "{text}");
    assert!(!text.contains("7x3q9z1"));
    let list: Vec<Value> = serde_json::from_str(&bodies[2]).unwrap();
    let deploy: Vec<&Value> = list.iter().filter(|s| s["name"] == "DEPLOY_KEY").collect();
    assert_eq!(deploy.len(), 1);
    assert_eq!(deploy[0]["version"], 2);
    for body in &bodies {
        assert!(!body.contains(&canary), "a response carried the value: {body}");
    }
    assert!(!logs.text().contains(&canary), "a log line carried the value");
    // An owner deletes it.
    let (status, _) = app.call(Method::DELETE, "/api/secrets/DEPLOY_KEY", house, Some(&app.owner), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.clean_up().await;
}

pub(crate) async fn bad_input_is_a_problem_that_names_the_field_and_echoes_nothing(test: TestStore) {
    let app = spawn_app(test).await;
    let house = &app.house;
    let key = Some(&app.writer);
    let cases: Vec<(Method, &str, Option<Value>, &str)> = vec![
        (Method::POST, "/api/environments", Some(json!({"name": "bad name!zq"})), "environment name"),
        (Method::POST, "/api/environments", Some(json!({"name": "ok", "bogus_fieldzq": 1})), "request body"),
        (Method::POST, "/api/environments", Some(json!({"name": "ok", "repo": "not a repo zq"})), "repo"),
        (Method::PUT, "/api/secrets/lower_casezq", Some(json!({"value": "long enough value"})), "secret name"),
        (Method::GET, "/api/threads/not-a-uuid-zq", None, "thread_id"),
        (Method::GET, "/api/threads?limit=manyzq", None, "limit"),
    ];
    for (method, path, body, field) in cases {
        let (status, text) = app.call(method.clone(), path, house, key, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {text}");
        let problem = problem(&text);
        assert_eq!(problem.type_, "urn:arbe:error:invalid_input");
        assert!(problem.detail.contains(field), "{method} {path}: {}", problem.detail);
        assert!(!text.contains("zq"), "the input came back: {text}");
    }
    // Not JSON at all, and no house named.
    let res =
        app.http.post(format!("{}/api/environments?house_id={}", app.url, house.id)).bearer_auth(app.writer.expose());
    let res = res.header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res =
        app.http.get(format!("{}/api/environments", app.url)).bearer_auth(app.writer.expose()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(problem(&res.text().await.unwrap()).detail.contains("house_id"));
    // A body nested past any sense, an array where an object belongs, a body over the limit:
    // each a plain 400 that names the rule, and the server answers on.
    let url = format!("{}/api/environments?house_id={}", app.url, app.house.id);
    let deep = format!("{{\"name\": {}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(arbe_server::MAX_BODY_BYTES));
    for (body, rule) in [
        (deep, "must match the operation's schema"),
        ("[\"work\"]".to_owned(), "must be a JSON object"),
        (huge, "must be at most 512 KiB"),
    ] {
        let res = app
            .http
            .post(&url)
            .bearer_auth(app.writer.expose())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let text = res.text().await.unwrap();
        assert!(problem(&text).detail.contains(rule), "{text}");
    }
    // Nothing was created.
    assert_eq!(app.env_names(&app.reader).await, Vec::<String>::new());
    // A path no route serves.
    let res = app.http.get(format!("{}/api/nothing-here", app.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.clean_up().await;
}

pub(crate) async fn a_posted_entry_dispatches_and_its_stream_ends_with_the_dispatch(test: TestStore) {
    let app = spawn_app(test).await;
    let house = &app.house;
    let key = Some(&app.writer);
    let body = json!({"value": "sk-or-house-key-value", "audience": "capability", "shared": true});
    assert_eq!(
        app.call(Method::PUT, "/api/secrets/OPENROUTER_API_KEY", house, key, Some(body)).await.0,
        StatusCode::OK
    );
    let body = json!({"name": "work", "secret_bindings": [{"name": "CANARY_TOKEN"}]});
    let (status, text) = app.call(Method::POST, "/api/environments", house, key, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let body = json!({"parent": "general", "environment": "work"});
    let (status, text) = app.call(Method::POST, "/api/threads", house, key, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let thread: Value = serde_json::from_str(&text).unwrap();
    let thread_id = thread["id"].as_str().unwrap().to_owned();
    let entries = format!("/api/threads/{thread_id}/entries");
    let (status, text) = app.call(Method::POST, &entries, house, key, Some(json!({"text": "say hello"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    // The tail runs until the dispatch ends, then the stream closes by itself.
    let stream = format!("{}{entries}/stream?house_id={}", app.url, house.id);
    let res = app.http.get(&stream).bearer_auth(app.writer.expose()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let text =
        tokio::time::timeout(std::time::Duration::from_secs(60), res.text()).await.expect("the stream ends").unwrap();
    app.bodies.lock().unwrap().push(text.clone());
    let events: Vec<(i64, Value)> = text
        .split("\n\n")
        .filter_map(|event| {
            let id = event.lines().find_map(|l| l.strip_prefix("id: "))?.parse().ok()?;
            let data = event.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((id, serde_json::from_str(data).unwrap()))
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(_, e)| e["kind"].as_str().unwrap_or("?")).collect();
    assert!(kinds.contains(&"tool.call"), "{kinds:?}");
    let output: String = events.iter().filter_map(|(_, e)| e["output"].as_str()).collect();
    assert!(output.contains("hello-from-the-sandbox [redacted:CANARY_TOKEN]"), "the canary ran, redacted: {text}");
    let last = &events.last().unwrap().1;
    assert_eq!(last["status"], ThreadStatus::Succeeded.as_str(), "{text}");
    let seqs: Vec<i64> = events.iter().map(|(id, _)| *id).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "every entry once, in order: {seqs:?}");
    // Resumed with Last-Event-ID: only what came after.
    let res = app
        .http
        .get(&stream)
        .bearer_auth(app.reader.expose())
        .header("last-event-id", seqs[seqs.len() - 3].to_string())
        .send()
        .await
        .unwrap();
    let resumed = res.text().await.unwrap();
    app.bodies.lock().unwrap().push(resumed.clone());
    let ids: Vec<i64> = resumed.lines().filter_map(|l| l.strip_prefix("id: ")).map(|id| id.parse().unwrap()).collect();
    assert_eq!(ids, seqs[seqs.len() - 2..]);
    // The thread says how it ended.
    let (_, text) = app.call(Method::GET, &format!("/api/threads/{thread_id}"), house, Some(&app.reader), None).await;
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["status"], "succeeded");
    app.clean_up().await;
}

pub(crate) async fn the_admin_token_makes_a_house_and_its_first_key_and_nothing_else_does(test: TestStore) {
    let app = spawn_app(test).await;
    let url = format!("{}/api/admin/houses", app.url);
    let body = json!({"house": "newco", "user": "founder"});
    // An API key, even an owner's, is not the admin token; neither is nothing.
    for key in [Some(&app.owner), None] {
        let mut req = app.http.post(&url).json(&body);
        if let Some(key) = key {
            req = req.bearer_auth(key.expose());
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = app.http.post(&url).bearer_auth(app.admin.expose()).json(&body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let made: Value = res.json().await.unwrap();
    let key = SecretValue::new(made["api_key"].as_str().unwrap().to_owned()).unwrap();
    assert_eq!(made["owner"]["role"], "owner");
    // The key works, as that house's owner, and only there.
    let houses = app.http.get(format!("{}/api/houses", app.url)).bearer_auth(key.expose()).send().await.unwrap();
    let houses: Vec<Value> = houses.json().await.unwrap();
    assert_eq!(houses.iter().map(|h| h["name"].as_str().unwrap()).collect::<Vec<_>>(), ["newco"]);
    let (status, _) = app.call(Method::GET, "/api/environments", &app.house, Some(&key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The same house name again is a conflict, and leaves no user behind: "second" is free.
    let users = || async {
        let res = app.http.get(format!("{}/api/admin/users", app.url)).bearer_auth(app.admin.expose()).send().await;
        let users: Vec<Value> = res.unwrap().json().await.unwrap();
        users.iter().map(|u| u["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let before = users().await;
    let res = app.http.post(&url).bearer_auth(app.admin.expose()).json(&json!({"house": "newco", "user": "second"}));
    assert_eq!(res.send().await.unwrap().status(), StatusCode::CONFLICT);
    assert_eq!(users().await, before);
    let res = app.http.post(&url).bearer_auth(app.admin.expose()).json(&json!({"house": "otherco", "user": "second"}));
    assert_eq!(res.send().await.unwrap().status(), StatusCode::CREATED);
    // A taken user name creates no house either.
    let res = app.http.post(&url).bearer_auth(app.admin.expose()).json(&json!({"house": "thirdco", "user": "second"}));
    assert_eq!(res.send().await.unwrap().status(), StatusCode::CONFLICT);
    let res = app.http.get(format!("{}/api/admin/houses", app.url)).bearer_auth(app.admin.expose()).send().await;
    let houses: Vec<Value> = res.unwrap().json().await.unwrap();
    assert!(!houses.iter().any(|h| h["name"] == "thirdco"));
    app.clean_up().await;
}

pub(crate) async fn sandboxes_keys_and_agents_follow_their_rules(test: TestStore) {
    let app = spawn_app(test).await;
    let house = &app.house;
    let json_of = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    // Sandboxes: a writer provisions one; readers see it; another house does not.
    let (status, text) =
        app.call(Method::POST, "/api/sandboxes", house, Some(&app.reader), Some(json!({"name": "box"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    let (status, text) =
        app.call(Method::POST, "/api/sandboxes", house, Some(&app.writer), Some(json!({"name": "box"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(json_of(&text)["state"], "started");
    let (_, text) = app.call(Method::GET, "/api/sandboxes?runtime=docker", house, Some(&app.reader), None).await;
    assert_eq!(json_of(&text).as_array().unwrap().len(), 1);
    let (status, text) = app.call(Method::GET, "/api/sandboxes/box/ping", house, Some(&app.writer), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(json_of(&text)["round_trip_ms"].as_f64().is_some(), "{text}");
    let (_, text) = app.call(Method::GET, "/api/sandboxes/box/diagnose", house, Some(&app.writer), None).await;
    assert_eq!(json_of(&text)["runtime"], "docker");
    assert!(json_of(&text)["checks"].as_array().unwrap().iter().all(|c| c["status"] != "blocker"), "{text}");
    let (_, text) = app.call(Method::GET, "/api/sandboxes/box/env", house, Some(&app.writer), None).await;
    assert_eq!(json_of(&text), json!([]));
    let (status, _) = app.call(Method::POST, "/api/sandboxes/box/stop", house, Some(&app.reader), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, text) = app.call(Method::POST, "/api/sandboxes/box/stop", house, Some(&app.writer), None).await;
    assert_eq!(json_of(&text)["state"], "stopped");
    let (_, text) = app.call(Method::POST, "/api/sandboxes/box/start", house, Some(&app.writer), None).await;
    assert_eq!(json_of(&text)["state"], "started");
    let (status, _) = app.call(Method::GET, "/api/sandboxes/box", &app.other, Some(&app.outsider), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, text) = app.call(Method::DELETE, "/api/sandboxes/box", house, Some(&app.owner), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(json_of(&text)["state"], "destroyed");
    // Keys: a new key is shown once, works, and stops working when revoked.
    let res = app.http.post(format!("{}/api/keys", app.url)).bearer_auth(app.writer.expose());
    let res = res.json(&json!({"label": "ci"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let made: Value = res.json().await.unwrap();
    let key = SecretValue::new(made["api_key"].as_str().unwrap().to_owned()).unwrap();
    let list = app.http.get(format!("{}/api/keys", app.url)).bearer_auth(key.expose()).send().await.unwrap();
    let list = list.text().await.unwrap();
    assert!(list.contains("\"ci\"") && !list.contains(key.expose()), "{list}");
    assert_eq!(app.call(Method::GET, "/api/environments", house, Some(&key), None).await.0, StatusCode::OK);
    let id = made["id"].as_str().unwrap();
    let res = app.http.delete(format!("{}/api/keys/{id}", app.url)).bearer_auth(app.writer.expose()).send().await;
    assert_eq!(res.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::GET, "/api/environments", house, Some(&key), None).await.0, StatusCode::UNAUTHORIZED);
    // Agents.
    let body = json!({"name": "helper", "model": "openrouter/anthropic/claude-haiku-4.5"});
    let (status, text) = app.call(Method::POST, "/api/agents", house, Some(&app.writer), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (_, text) = app.call(Method::GET, "/api/agents/helper", house, Some(&app.reader), None).await;
    assert_eq!(json_of(&text)["name"], "helper");
    let (status, _) = app.call(Method::GET, "/api/agents/helper", &app.other, Some(&app.outsider), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.call(Method::DELETE, "/api/agents/helper", house, Some(&app.owner), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.clean_up().await;
}

pub(crate) async fn members_join_change_and_leave_and_owners_read_the_audit_trail(test: TestStore) {
    let app = spawn_app(test).await;
    let house = &app.house;
    let json_of = |text: &str| serde_json::from_str::<Value>(text).unwrap();
    let envs = |key| app.call(Method::GET, "/api/environments", house, Some(key), None);
    assert_eq!(envs(&app.outsider).await.0, StatusCode::NOT_FOUND);
    // Only an owner adds a member.
    let body = json!({"user": "outsider", "role": "reader"});
    let (status, _) = app.call(Method::POST, "/api/members", house, Some(&app.writer), Some(body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(envs(&app.outsider).await.0, StatusCode::NOT_FOUND, "a refused call changed nothing");
    let (status, text) = app.call(Method::POST, "/api/members", house, Some(&app.owner), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let member = json_of(&text)["id"].as_str().unwrap().to_owned();
    assert_eq!(envs(&app.outsider).await.0, StatusCode::OK, "a member now");
    let (status, _) =
        app.call(Method::POST, "/api/environments", house, Some(&app.outsider), Some(json!({"name": "nope"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "as a reader");
    let path = format!("/api/members/{member}");
    let (status, text) =
        app.call(Method::PATCH, &path, house, Some(&app.owner), Some(json!({"role": "superuser"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(!text.contains("superuser"));
    let (_, text) = app.call(Method::PATCH, &path, house, Some(&app.owner), Some(json!({"role": "writer"}))).await;
    assert_eq!(json_of(&text)["role"], "writer");
    let (status, _) = app.call(Method::DELETE, &path, house, Some(&app.owner), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(envs(&app.outsider).await.0, StatusCode::NOT_FOUND, "gone again");
    // The audit trail: owners only, names and never values.
    let canary = "sk-audit-canary-value";
    let body = json!({"value": canary});
    app.call(Method::PUT, "/api/secrets/AUDITED", house, Some(&app.writer), Some(body)).await;
    assert_eq!(app.call(Method::GET, "/api/audit", house, Some(&app.writer), None).await.0, StatusCode::FORBIDDEN);
    let (status, text) = app.call(Method::GET, "/api/audit", house, Some(&app.owner), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("AUDITED") && !text.contains(canary), "{text}");
    app.clean_up().await;
}

pub(crate) async fn failed_authentication_is_limited_per_address_and_never_limits_another(test: TestStore) {
    let app = spawn_app(test).await;
    // Two clients on their own loopback addresses: one guessing keys, one with a valid key.
    let from = |ip: [u8; 4]| reqwest::Client::builder().local_address(std::net::IpAddr::from(ip)).build().unwrap();
    let (guesser, honest) = (from([127, 0, 0, 2]), from([127, 0, 0, 3]));
    let url = format!("{}/api/houses", app.url);
    let mut statuses = vec![];
    for n in 0..arbe_server::FailedAuth::MAX + 1 {
        let res = guesser.get(&url).bearer_auth(format!("arbe_guess_{n}")).send().await.unwrap();
        statuses.push(res.status());
    }
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    let res = guesser.get(&url).bearer_auth("arbe_one_more").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(problem(&res.text().await.unwrap()).type_, "urn:arbe:error:rate_limited");
    // The guesser's address is limited even with a valid key (and so is the admin token there)…
    let res = guesser.get(&url).bearer_auth(app.writer.expose()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // …and nobody else is.
    let res = honest.get(&url).bearer_auth(app.writer.expose()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.clean_up().await;
}

/// The entries a tail sends until it ends: `(seq, entry)`.
async fn tail(app: &App, thread_id: &str, after: i64) -> Vec<(i64, Value)> {
    let stream = format!("{}/api/threads/{thread_id}/entries/stream?house_id={}&after={after}", app.url, app.house.id);
    let res = app.http.get(&stream).bearer_auth(app.reader.expose()).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text =
        tokio::time::timeout(std::time::Duration::from_secs(90), res.text()).await.expect("the stream ends").unwrap();
    app.bodies.lock().unwrap().push(text.clone());
    text.split("\n\n")
        .filter_map(|event| {
            let id = event.lines().find_map(|l| l.strip_prefix("id: "))?.parse().ok()?;
            let data = event.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((id, serde_json::from_str(data).unwrap()))
        })
        .collect()
}

pub(crate) async fn a_dispatch_in_flight_finishes_after_a_restart(test: TestStore) {
    let mut app = spawn_app(test).await;
    let house = app.house.clone();
    let key = Some(&app.writer);
    let body = json!({"value": "sk-or-house-key-value", "audience": "capability", "shared": true});
    app.call(Method::PUT, "/api/secrets/OPENROUTER_API_KEY", &house, key, Some(body)).await;
    let (status, text) = app.call(Method::POST, "/api/environments", &house, key, Some(json!({"name": "work"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let body = json!({"parent": "general", "environment": "work"});
    let (_, text) = app.call(Method::POST, "/api/threads", &house, key, Some(body)).await;
    let thread_id = serde_json::from_str::<Value>(&text).unwrap()["id"].as_str().unwrap().to_owned();
    let entries = format!("/api/threads/{thread_id}/entries");
    let (status, text) =
        app.call(Method::POST, &entries, &house, key, Some(json!({"text": "something slow, please"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let job = serde_json::from_str::<Value>(&text).unwrap()["job"]["id"].as_str().unwrap().to_owned();

    // Wait until the agent's slow command runs, then restart the server under it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, text) = app.call(Method::GET, &entries, &house, Some(&app.reader), None).await;
        if text.contains("\"tool.call\"") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the command never started: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let old_url = app.url.clone();
    let ready = app.http.get(format!("{old_url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    app.restart().await;
    assert_ne!(app.url, old_url);
    // The old process drained: it says it is not ready; the new one is.
    let ready = app.http.get(format!("{old_url}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready = app.http.get(format!("{}/readyz", app.url)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    // The new process takes the job over and finishes it: one terminal status, succeeded.
    let events = tail(&app, &thread_id, 0).await;
    let terminal: Vec<&str> = events
        .iter()
        .filter(|(_, e)| e["kind"] == "signal.thread.status" && e["job"] == job.as_str())
        .filter_map(|(_, e)| e["status"].as_str())
        .filter(|s| !["queued", "running"].contains(s))
        .collect();
    assert_eq!(terminal, ["succeeded"], "{events:?}");
    let (_, text) = app.call(Method::GET, &format!("/api/threads/{thread_id}"), &house, Some(&app.reader), None).await;
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["status"], "succeeded");
    app.clean_up().await;
}
