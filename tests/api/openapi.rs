//! The OpenAPI document (`/api/openapi.json`) and its page (`/api/reference`): every documented operation is
//! routed (none reaches the API's "no such route" or "method not allowed" answer), every error code and the three
//! security schemes are in it, and the page shows every operation. The other direction (no route missing from
//! the document) holds by construction: routes are added only through `utoipa_axum::routes!`, and schemathesis
//! (end2end/api-schema.py, in `make test`) checks every answer against the document.
use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn the_document_covers_the_routes_and_the_page_shows_it() {
    let app = spawn(Backend::Sqlite).await.unwrap();
    let r = app.client.get(format!("{}/api/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for scheme in ["session", "apiKey", "application"] {
        assert!(doc["components"]["securitySchemes"][scheme].is_object(), "security scheme {scheme}");
    }
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for (code, _, _) in latchkey::rest::envelope::ERROR_CODES {
        assert!(codes.contains(code), "{code} is documented");
    }
    for code in app::model::SIGN_IN_ERROR_CODES {
        assert!(codes.contains(code), "{code} is documented");
    }

    let paths = doc["paths"].as_object().unwrap();
    let mut operations = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations.push((path.clone(), method.clone(), op["operationId"].as_str().unwrap_or_default().to_string()));
            assert!(op["responses"]["422"].is_object() && op["responses"]["503"].is_object(), "{method} {path}: shared errors");
            assert!(op.get("security").is_some() || path.starts_with("/api/openapi") || path == "/api/reference", "{method} {path}: security");
        }
    }
    assert!(operations.len() >= 80, "{} operations", operations.len());
    let ids: std::collections::HashSet<&str> = operations.iter().map(|(_, _, id)| id.as_str()).collect();
    assert_eq!(ids.len(), operations.len(), "operation ids are unique");
    for (path, method, _) in &operations {
        let url = format!("{}{}", app.base, path.replace("{org_id}", "org_x").replace("{id}", "x").replace("{user_id}", "x").replace("{slug}", "x").replace("{delivery_id}", "x"));
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = app.client.request(m, &url).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path} is routed: {body}");
        assert!(status < 500 || status == 503, "{method} {path}: {status} {body}");
        assert!(!body.contains("There is no API route"), "{method} {path} is routed: {body}");
    }
    // A route that is not in the document is not served either.
    let r = app.client.get(format!("{}/api/not-a-route", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);

    let r = app.client.get(format!("{}/api/reference", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = r.text().await.unwrap();
    for (path, method, id) in &operations {
        assert!(html.contains(&format!("id=\"op-{id}\"")), "the page shows {method} {path}");
    }
    assert!(html.contains("id=\"schema-ErrorBody\"") && html.contains("ldap_invalid_credentials"));
    assert!(!html.contains("<script"), "the page needs no script");
}
