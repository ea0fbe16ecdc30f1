//! The API's OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! the wire types' schemas, then completed in one place with what every operation shares: the
//! security scheme, the problem responses each can answer with, and the links a client (or
//! schemathesis's stateful phase) follows from a created object to the operations on it.

use serde_json::{Value, json};

/// Problem statuses every operation under `/api/` may answer with.
const API_PROBLEMS: [(u16, &str); 10] = [
    (400, "Invalid input: `detail` names the field and the rule"),
    (401, "No valid credential: `Authorization: Bearer <key>`"),
    (403, "The caller's role does not allow it, or a quota is reached"),
    (404, "No such object in this house (another house's object is not found either)"),
    (409, "It conflicts with the current state (a name in use, say)"),
    (429, "Too many failed authentications from this address: wait `Retry-After` seconds"),
    (500, "The server could not complete the request; its log says why"),
    (501, "Not supported by this server (a runtime or integration it was not configured with)"),
    (503, "A runtime, the store or a provider is unavailable; try again"),
    (504, "A runtime or provider did not answer in time"),
];

/// A link from an operation's success response: `(operation, status, name, target, parameters)`,
/// each parameter a runtime expression.
type Link = (&'static str, &'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

/// Every link the document declares.
const LINKS: &[Link] = &[
    (
        "threads_create",
        "201",
        "view",
        "threads_view",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "threads_create",
        "201",
        "post_entry",
        "entries_create",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "threads_create",
        "201",
        "entries",
        "entries_list",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "threads_create",
        "201",
        "cancel",
        "threads_cancel",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "entries_create",
        "201",
        "entries",
        "entries_list",
        &[("id", "$request.path.id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "entries_create",
        "201",
        "stream",
        "entries_stream",
        &[("id", "$request.path.id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "agents_create",
        "201",
        "view",
        "agents_view",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "agents_create",
        "201",
        "delete",
        "agents_delete",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "secrets_set",
        "200",
        "view",
        "secrets_view",
        &[("name", "$request.path.name"), ("house_id", "$request.query.house_id")],
    ),
    (
        "secrets_set",
        "200",
        "delete",
        "secrets_delete",
        &[("name", "$request.path.name"), ("house_id", "$request.query.house_id")],
    ),
    (
        "environments_create",
        "201",
        "view",
        "environments_view",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "environments_create",
        "201",
        "update",
        "environments_update",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "environments_create",
        "201",
        "diagnose",
        "environments_diagnose",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "environments_create",
        "201",
        "delete",
        "environments_delete",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "sandboxes_create",
        "201",
        "view",
        "sandboxes_view",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "sandboxes_create",
        "201",
        "ping",
        "sandboxes_ping",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "sandboxes_create",
        "201",
        "env",
        "sandboxes_env",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "sandboxes_create",
        "201",
        "stop",
        "sandboxes_stop",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "sandboxes_create",
        "201",
        "destroy",
        "sandboxes_destroy",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "members_add",
        "201",
        "set_role",
        "members_set_role",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    (
        "members_add",
        "201",
        "remove",
        "members_remove",
        &[("id", "$response.body#/id"), ("house_id", "$request.query.house_id")],
    ),
    ("keys_create", "201", "revoke", "keys_revoke", &[("id", "$response.body#/id")]),
    ("admin_users_create", "201", "create_key", "admin_keys_create", &[("id", "$response.body#/id")]),
    (
        "admin_keys_create",
        "201",
        "revoke",
        "admin_keys_revoke",
        &[("id", "$request.path.id"), ("key_id", "$response.body#/id")],
    ),
    ("admin_houses_create", "201", "quotas", "admin_quotas_set", &[("id", "$response.body#/house/id")]),
];

/// The slug names of houses, users, environments, sandboxes and agents (never a UUID, which a
/// generator will not hit by chance); also what an "id or name" path parameter takes.
const SLUG: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$";
const SECRET_NAME: &str = "^[A-Z_][A-Z0-9_]{0,127}$";
const RUNTIME: &str = "^[a-z][a-z0-9-]{0,31}$";
const MODEL: &str = "^[a-z][a-z0-9-]*/[!-~]+$";
const REPO: &str =
    "^(https://[A-Za-z0-9.:-]+/|git@[A-Za-z0-9.:-]+:)?[A-Za-z0-9_-][A-Za-z0-9._-]*/[A-Za-z0-9_-][A-Za-z0-9._-]*$";
const PARENT: &str = "^[A-Za-z0-9._#-]{1,100}$";
/// No control characters (Unicode's Cc).
const NO_CONTROL: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";
const NO_NUL: &str = "^[^\\x00]*$";
/// One character at least that is not white space as Rust's `str::trim` sees it (Unicode's
/// White_Space, which differs from a regex engine's `\s`). Unanchored: it may be anywhere.
const MESSAGE: &str = "[^\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

/// The rules the server's parsers apply, as JSON Schema: `(schema, property, keywords)`. A
/// request that breaks one gets 400, one that keeps them all is not refused for its form.
fn field_rules() -> Vec<(&'static str, &'static str, Value)> {
    let slug = json!({"pattern": SLUG});
    let ids_or_names = json!({"items": {"type": "string", "pattern": SLUG}});
    vec![
        ("CreateHouse", "name", slug.clone()),
        ("AdminCreateHouse", "house", slug.clone()),
        ("AdminCreateHouse", "user", slug.clone()),
        ("AdminCreateUser", "name", slug.clone()),
        ("AddMember", "user", slug.clone()),
        ("AddMember", "role", json!({"enum": ["owner", "writer", "reader"]})),
        ("SetRole", "role", json!({"enum": ["owner", "writer", "reader"]})),
        ("CreateKey", "label", json!({"maxLength": 100, "pattern": NO_CONTROL})),
        ("CreateSandbox", "name", slug.clone()),
        ("CreateSandbox", "runtime", json!({"pattern": RUNTIME})),
        ("CreateAgent", "name", slug.clone()),
        ("CreateAgent", "model", json!({"pattern": MODEL, "maxLength": 200})),
        ("CreateAgent", "system_prompt", json!({"maxLength": 16384, "pattern": NO_NUL})),
        ("SetSecret", "value", json!({"minLength": 8, "maxLength": 16384})),
        ("SetSecret", "audience", json!({"enum": ["environment", "capability", null]})),
        ("Binding", "name", json!({"pattern": SECRET_NAME})),
        ("CreateEnvironment", "name", slug.clone()),
        ("CreateEnvironment", "runtime", json!({"pattern": RUNTIME})),
        ("CreateEnvironment", "sandbox_id", slug.clone()),
        ("CreateEnvironment", "repo", json!({"pattern": REPO, "maxLength": 256})),
        ("CreateEnvironment", "allowed_repos", json!({"items": {"type": "string", "pattern": REPO, "maxLength": 256}})),
        ("PatchEnvironment", "name", slug.clone()),
        ("PatchEnvironment", "sandbox_id", slug.clone()),
        ("PatchEnvironment", "default_repo", json!({"pattern": REPO, "maxLength": 256})),
        ("PatchEnvironment", "allowed_repos", json!({"items": {"type": "string", "pattern": REPO, "maxLength": 256}})),
        ("CreateThread", "parent", json!({"pattern": PARENT})),
        ("CreateThread", "environment", slug.clone()),
        ("CreateThread", "model", json!({"pattern": MODEL, "maxLength": 200})),
        ("CreateThread", "agents", ids_or_names),
        ("CreateEntry", "text", json!({"pattern": MESSAGE, "maxLength": 32768})),
        ("CreateEnvironment", "github_installation_id", json!({"minimum": 1})),
        ("PatchEnvironment", "github_installation_id", json!({"minimum": 1})),
        ("SetQuotas", "sandboxes", json!({"maximum": i64::MAX})),
        ("SetQuotas", "concurrent_dispatches", json!({"maximum": i64::MAX})),
        ("SetQuotas", "workspace_bytes", json!({"maximum": i64::MAX})),
    ]
}

/// What a path or query parameter takes, by its name and the path it is on.
fn param_schema(path: &str, name: &str) -> Option<Value> {
    let uuid = json!({"type": "string", "format": "uuid"});
    Some(match name {
        "id" if ["/api/environments/", "/api/sandboxes/", "/api/agents/"].iter().any(|p| path.starts_with(p)) => {
            json!({"type": "string", "pattern": SLUG})
        }
        "installation_id" => json!({"type": "integer", "format": "int64", "minimum": 1}),
        "id" | "key_id" => uuid,
        "after" | "Last-Event-ID" => json!({"type": "integer", "format": "int64", "minimum": 0}),
        "name" => json!({"type": "string", "pattern": SECRET_NAME}),
        "runtime" => json!({"type": "string", "pattern": RUNTIME}),
        "model" => json!({"type": "string", "pattern": MODEL, "maxLength": 200}),
        _ => return None,
    })
}

/// Completes the generated document (see the module's doc).
pub(crate) fn finish(api: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(api).expect("an OpenAPI document serializes");
    doc["info"] = json!({
        "title": "arbe",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "arbe's HTTP API: houses, their secrets, environments and sandboxes, and threads whose \
            entries dispatch AI coding agents. Every error is an `application/problem+json` document whose \
            `type` is stable per kind; a house's objects are addressed with `?house_id=`.",
    });
    let components = doc.as_object_mut().expect("a document is an object").entry("components").or_insert(json!({}));
    components["securitySchemes"] = json!({
        "api_key": {"type": "http", "scheme": "bearer", "description": "An API key: `arbe_<id>_<secret>`"},
        "admin_token": {"type": "http", "scheme": "bearer", "description": "The operator's admin token (`~/.arbe/admin_token`)"},
        "github_session": {"type": "apiKey", "in": "cookie", "name": "arbe_github_session",
            "description": "The GitHub session `GET /api/github/callback` opens"},
    });
    components["responses"] = problem_responses();

    let all_rules = field_rules();
    for (schema, property, rules) in &all_rules {
        let field = &mut components["schemas"][*schema]["properties"][*property];
        assert!(field.is_object(), "{schema}.{property} is documented");
        for (key, value) in rules.as_object().expect("rules are an object") {
            field[key] = value.clone();
        }
    }
    // Every request body refuses fields it does not know.
    for (name, schema) in components["schemas"].as_object_mut().expect("schemas").iter_mut() {
        let is_request = all_rules.iter().any(|(s, _, _)| s == name)
            || ["BindSecret", "CreateKey", "SetSecret"].contains(&name.as_str());
        if is_request {
            schema["additionalProperties"] = json!(false);
        }
    }

    let paths = doc["paths"].as_object_mut().expect("paths is an object");
    for (path, item) in paths.iter_mut() {
        let item = item.as_object_mut().expect("a path item is an object");
        for (_, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else { continue };
            for param in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                let name = param["name"].as_str().unwrap_or_default().to_owned();
                if let Some(schema) = param_schema(path, &name) {
                    param["schema"] = schema;
                }
            }
            let responses = op.entry("responses").or_insert(json!({})).as_object_mut().expect("responses");
            if path.starts_with("/api/") && path != "/api/openapi.json" {
                for (status, _) in API_PROBLEMS {
                    responses
                        .entry(status.to_string())
                        .or_insert(json!({"$ref": format!("#/components/responses/{status}")}));
                }
                op.entry("security").or_insert(json!([{"api_key": []}]));
            } else {
                responses.entry("500").or_insert(json!({"$ref": "#/components/responses/500"}));
                if path == "/readyz" {
                    responses.entry("503").or_insert(json!({"$ref": "#/components/responses/503"}));
                }
            }
        }
    }
    // A tail is a stream of events: `id` the sequence number, `event` the kind, `data` the entry.
    let stream = operation_mut(&mut doc, "entries_stream").expect("the tail is documented");
    stream["responses"]["200"]["content"]["text/event-stream"]["schema"] = json!({
        "type": "object",
        "required": ["id", "event", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "event": {"type": "string"},
            "data": {"type": "string", "contentMediaType": "application/json",
                     "contentSchema": {"$ref": "#/components/schemas/Entry"}},
        },
    });
    for (from, status, name, target, parameters) in LINKS {
        let op = operation_mut(&mut doc, from).unwrap_or_else(|| panic!("a link's source {from} exists"));
        let response = &mut op["responses"][*status];
        assert!(response.is_object(), "{from} answers {status}");
        let parameters: serde_json::Map<String, Value> =
            parameters.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
        response.as_object_mut().expect("a response").entry("links").or_insert(json!({}))[*name] =
            json!({"operationId": target, "parameters": parameters});
    }
    for (_, _, _, target, _) in LINKS {
        assert!(operation_mut(&mut doc, target).is_some(), "a link's target {target} exists");
    }
    doc
}

fn problem_responses() -> Value {
    let mut responses = serde_json::Map::new();
    for (status, description) in API_PROBLEMS {
        let mut response = json!({
            "description": description,
            "content": {arbe_api::PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        });
        if status == 429 {
            response["headers"] = json!({"Retry-After": {
                "description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}
            }});
        }
        if status == 401 {
            response["headers"] = json!({"WWW-Authenticate": {"schema": {"type": "string"}}});
        }
        responses.insert(status.to_string(), response);
    }
    Value::Object(responses)
}

fn operation_mut<'a>(doc: &'a mut Value, id: &str) -> Option<&'a mut Value> {
    doc["paths"]
        .as_object_mut()?
        .values_mut()
        .flat_map(|item| item.as_object_mut().into_iter().flat_map(|m| m.values_mut()))
        .find(|op| op.get("operationId").and_then(Value::as_str) == Some(id))
}
