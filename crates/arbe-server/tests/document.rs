//! The committed OpenAPI document (`docs/openapi.json`) is the one the code generates, and it
//! holds to the rules the server's clients rely on.

#[test]
fn the_committed_document_is_the_one_the_code_generates() {
    let generated = arbe_server::openapi();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("docs/openapi.json exists")).expect("it is JSON");
    assert!(committed == generated, "docs/openapi.json is stale: run `cargo xtask openapi` and commit it");
}

#[test]
fn every_operation_is_described_with_its_problems_and_the_house_routes_name_their_house() {
    let doc = arbe_server::openapi();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has an operationId"));
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2')), "{id} documents its success");
            if path.starts_with("/api/") {
                for status in ["400", "401", "404", "429", "500"] {
                    assert!(responses.contains_key(status), "{id} documents {status}");
                }
                assert!(op["security"].is_array(), "{id} names its credential");
            }
            let params = op["parameters"].as_array().map(Vec::as_slice).unwrap_or_default();
            let names_house = params.iter().any(|p| p["name"] == "house_id" && p["required"] == true);
            let house_route = !path.starts_with("/api/admin/")
                && ![
                    "/api/houses",
                    "/api/keys",
                    "/api/keys/{id}",
                    "/api/github/callback",
                    "/api/github/installations",
                    "/api/github/installations/{installation_id}/repos",
                ]
                .contains(&path.as_str())
                && path.starts_with("/api/");
            assert_eq!(names_house, house_route, "{id}: house_id is required exactly on a house's routes");
        }
    }
    assert!(operations >= 50, "{operations} operations");
    // Every problem response carries the problem document's media type.
    let problem = &doc["components"]["responses"]["404"]["content"]["application/problem+json"]["schema"]["$ref"];
    assert_eq!(problem, "#/components/schemas/Problem");
}
