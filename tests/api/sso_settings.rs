//! `/settings/sso`: the four-field contract, owner-only access, the secret never leaving, the test endpoint
//! against real discovery, and the SSRF guard.
use crate::both;
use crate::helpers::*;
use crate::peers::Peer;
use reqwest::Method;
use serde_json::json;

pub const SECRET: &str = "forge-secret";

pub async fn forge() -> Peer {
    Peer::start("forge-idp.mjs", &[("CLIENT_ID", "latchkey-test"), ("CLIENT_SECRET", SECRET)]).await
}

pub async fn configure(app: &TestApp, org: &str, issuer: &str) -> serde_json::Value {
    let body = json!({"provider": "oidc", "issuerUrl": issuer, "clientId": "latchkey-test", "clientSecret": SECRET});
    let r = app.send(app.client.put(app.url(&format!("/api/user/organizations/{org}/settings/sso"))).json(&body)).await;
    r.expect(200, "OK").data().clone()
}

both!(sso owner_saves_reads_tests_and_deletes, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@example.com").await;
    let org = app.create_org("SSO Org", "sso-org").await;
    let path = format!("/api/user/organizations/{org}/settings/sso");
    app.get(&path).await.expect(404, "NOT_FOUND");

    let saved = configure(&app, &org, &idp.url).await;
    assert_eq!(saved["issuerUrl"], idp.url);
    assert_eq!(saved["status"], "inactive", "untested until the test passes");
    assert_eq!(saved["jitProvisioning"], true);
    assert_eq!(saved["defaultRole"], "member");
    assert_eq!(saved["callbackUrl"], format!("{}/api/auth/sso/callback", app.base));
    assert_eq!(saved["loginUrl"], format!("{}/api/auth/sso/sso-org/login", app.base));
    let read = app.get(&path).await.expect(200, "OK");
    assert!(!read.body.to_string().contains(SECRET), "the secret is never returned");
    assert_eq!(read.data()["clientSecretSet"], true);
    // Encrypted at rest: the stored bytes do not contain the secret.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret FROM connections").fetch_one(&app.db).await.unwrap();
    assert!(!stored.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));

    let test = app.post(&format!("{path}/test"), json!(null)).await.expect(200, "OK");
    assert_eq!(test.data()["success"], true, "{}", test.body);
    assert!(test.data()["responseTimeMs"].is_u64());
    assert_eq!(app.get(&path).await.data()["status"], "active");
    assert!(app.get(&path).await.data()["lastTestedAt"].is_string());

    app.send(app.client.delete(app.url(&path))).await.expect(200, "OK");
    app.get(&path).await.expect(404, "NOT_FOUND");
    let actions = app.audit_actions(&org).await;
    for a in ["sso.settings.create", "sso.test", "sso.settings.delete"] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
});

both!(sso body_must_have_exactly_the_four_fields, |app: TestApp| async move {
    app.sign_up("o@example.com").await;
    let org = app.create_org("Fields", "fields").await;
    let path = format!("/api/user/organizations/{org}/settings/sso");
    let put = |b: serde_json::Value| app.client.put(app.url(&path)).json(&b);
    let full = json!({"provider": "okta", "issuerUrl": "https://acme.okta.com", "clientId": "abc", "clientSecret": "s"});
    let mut extra = full.clone();
    extra["domain"] = json!("acme.com");
    assert!(app.send(put(extra)).await.expect(422, "VALIDATION_ERROR").message().contains("unknown field `domain`"));
    let mut missing = full.clone();
    missing.as_object_mut().unwrap().remove("clientSecret");
    assert!(app.send(put(missing)).await.expect(422, "VALIDATION_ERROR").message().contains("clientSecret"));
    for (field, value, says) in [
        ("provider", "auth0", "provider:"),
        ("issuerUrl", "acme.okta.com", "issuerUrl:"),
        ("issuerUrl", "http://acme.okta.com", "issuerUrl:"),
        ("issuerUrl", "https://acme.okta.com/.well-known/openid-configuration", "issuerUrl:"),
        ("clientId", "has space", "clientId:"),
        ("clientSecret", "", "clientSecret:"),
    ] {
        let mut b = full.clone();
        b[field] = json!(value);
        let r = app.send(put(b)).await.expect(422, "VALIDATION_ERROR");
        assert!(r.message().starts_with(says), "{field}={value}: {}", r.message());
        assert!(!r.body.to_string().contains("\"s\""), "no secret echoed");
    }
    app.send(put(full)).await.expect(200, "OK");
});

both!(sso only_the_owner_reaches_sso_settings, |app: TestApp| async move {
    app.sign_up("own@example.com").await;
    let org = app.create_org("Owned", "owned").await;
    let (admin, admin_id) = app.other_user("admin@example.com").await;
    app.add_member(&org, &admin_id, "admin").await;
    let (stranger, _) = app.other_user("stranger@example.com").await;
    let path = format!("/api/user/organizations/{org}/settings/sso");
    let body = json!({"provider": "oidc", "issuerUrl": "https://idp.example.com", "clientId": "c", "clientSecret": "s"});
    app.as_client(&admin, Method::PUT, &path, Some(body.clone())).await.expect(403, "FORBIDDEN");
    app.as_client(&admin, Method::GET, &path, None).await.expect(403, "FORBIDDEN");
    app.as_client(&admin, Method::POST, &format!("{path}/test"), None).await.expect(403, "FORBIDDEN");
    app.as_client(&stranger, Method::PUT, &path, Some(body)).await.expect(404, "NOT_FOUND");
    app.as_client(&stranger, Method::DELETE, &path, None).await.expect(404, "NOT_FOUND");
});

both!(sso test_names_what_failed, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("t@example.com").await;
    let org = app.create_org("Failing", "failing").await;
    let path = format!("/api/user/organizations/{org}/settings/sso");
    let test_path = format!("{path}/test");
    let test = || app.post(&test_path, json!(null));

    // Issuer mismatch: the document names another issuer.
    configure(&app, &org, &idp.url).await;
    idp.post("/scenario", json!({"discovery_issuer": "https://someone-else.example"})).await;
    let r = test().await.expect(200, "OK");
    assert_eq!(r.data()["success"], false);
    assert!(r.data()["message"].as_str().unwrap().starts_with("Issuer mismatch"), "{}", r.body);
    assert_eq!(app.get(&path).await.data()["status"], "error");
    idp.post("/scenario", json!({})).await;

    // HTTP status: a path with no discovery document.
    configure(&app, &org, &format!("{}/nothing-here", idp.url)).await;
    let r = test().await;
    assert!(r.data()["message"].as_str().unwrap().starts_with("HTTP status"), "{}", r.body);

    // Connect: nothing listens there (the IdP is down).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    configure(&app, &org, &format!("http://127.0.0.1:{port}")).await;
    let r = test().await;
    assert!(r.data()["message"].as_str().unwrap().starts_with("Connect"), "{}", r.body);

    // DNS: a name that does not resolve.
    configure(&app, &org, "https://idp.invalid").await;
    let r = test().await;
    assert!(r.data()["message"].as_str().unwrap().starts_with("DNS"), "{}", r.body);
});

#[tokio::test]
async fn ssrf_guard_refuses_loopback_without_the_switch() {
    let idp = forge().await;
    let app = spawn(Backend::Sqlite).await.unwrap();
    app.sign_up("ssrf@example.com").await;
    let org = app.create_org("SSRF", "ssrf").await;
    configure(&app, &org, &idp.url).await;
    let r = app.post(&format!("/api/user/organizations/{org}/settings/sso/test"), json!(null)).await.expect(200, "OK");
    assert_eq!(r.data()["success"], false);
    let msg = r.data()["message"].as_str().unwrap();
    assert!(msg.contains("Refused") && msg.contains("--allow-private-idp"), "{msg}");
    // The sign-in path uses the same guard: no request reaches the IdP.
    let login = app.client.get(app.url("/api/auth/sso/ssrf/login")).send().await.unwrap();
    assert_eq!(login.headers()["location"], "/auth/error?code=sso_idp_unreachable");
}
