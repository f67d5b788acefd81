//! Operators (granted only by the command line, against a running server's database) and registered
//! applications: operator-only CRUD, validation of redirect URIs, secrets shown once and rotated with a grace.
use crate::both;
use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

/// Runs `latchkey --database-url <the app's> operators <args>`; returns (success, stdout + stderr).
pub async fn cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("--database-url")
        .arg(&app.config.database_url)
        .arg("operators")
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .await
        .expect("the latchkey binary runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Makes the signed-up `email` an operator through the command line.
pub async fn make_operator(app: &TestApp, email: &str) {
    let (ok, text) = cli(app, &["add", email]).await;
    assert!(ok, "operators add: {text}");
}

pub async fn register(app: &TestApp, c: &reqwest::Client, redirect: &str, mfa: &str) -> serde_json::Value {
    let body = json!({"name": "Acme CRM", "redirectUris": [redirect], "mfaHandling": mfa});
    app.as_client(c, Method::POST, "/api/admin/applications", Some(body)).await.expect(201, "OK").data().clone()
}

both!(operators_are_granted_only_on_the_command_line, |app: TestApp| async move {
    let owner = app.sign_up("owner@example.com").await;
    app.create_org("Org", "org").await;
    // The first account, an org owner, is no operator: sign-up order grants nothing.
    app.get("/api/admin/applications").await.expect(403, "FORBIDDEN");
    assert_eq!(app.get("/api/user/me").await.data()["operator"], false);
    let (ok, text) = cli(&app, &["list"]).await;
    assert!(ok && text.contains("No operators yet"), "{text}");
    let (ok, text) = cli(&app, &["add", "nobody@example.com"]).await;
    assert!(!ok && text.contains("No account with the email nobody@example.com"), "{text}");
    let (ok, text) = cli(&app, &["add", "Owner@Example.com"]).await;
    assert!(ok && text.contains("owner@example.com is now an operator"), "{text}");
    assert!(cli(&app, &["add", "owner@example.com"]).await.1.contains("already"));
    assert!(cli(&app, &["list"]).await.1.contains("owner@example.com"));
    // The running server sees it at once.
    assert_eq!(app.get("/api/user/me").await.data()["operator"], true);
    app.get("/api/admin/applications").await.expect(200, "OK");
    let audit = app::repo::audit::list_for_actor(&app.db, &owner, 50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "operator.add" && e.actor == "command line"), "audited");
    let (ok, text) = cli(&app, &["remove", "owner@example.com"]).await;
    assert!(ok && text.contains("no longer an operator"), "{text}");
    app.get("/api/admin/applications").await.expect(403, "FORBIDDEN");
});

both!(operators_manage_applications_and_nobody_else_does, |app: TestApp| async move {
    app.sign_up("ops@example.com").await;
    make_operator(&app, "ops@example.com").await;
    let (owner, _) = app.other_user("owner@example.com").await;
    let created = register(&app, &app.client, "https://crm.example.com/cb", "latchkey").await;
    let id = created["application"]["id"].as_str().unwrap().to_string();
    let client_id = created["application"]["clientId"].as_str().unwrap().to_string();
    let secret = created["clientSecret"].as_str().unwrap().to_string();
    assert!(client_id.starts_with("app_") && secret.starts_with("lks_") && secret.len() >= 40, "{created}");
    assert_eq!(created["application"]["redirectUris"], json!(["https://crm.example.com/cb"]));
    assert_eq!(created["application"]["mfaHandling"], "latchkey");
    // The secret is never shown again, and stored only as a digest.
    let read = app.get(&format!("/api/admin/applications/{id}")).await.expect(200, "OK");
    assert!(!read.body.to_string().contains(&secret));
    let stored: Vec<String> = sqlx::query_scalar("SELECT secret_hash FROM application_secrets").fetch_all(&app.db).await.unwrap();
    assert!(stored.iter().all(|h| !h.contains(&secret[4..])));
    // Everyone else: 403, an org owner included; a key pinned to an org too.
    for (m, path) in [(Method::GET, "/api/admin/applications".to_string()), (Method::GET, format!("/api/admin/applications/{id}")),
        (Method::DELETE, format!("/api/admin/applications/{id}")), (Method::POST, format!("/api/admin/applications/{id}/secrets"))] {
        app.as_client(&owner, m, &path, None).await.expect(403, "FORBIDDEN");
    }
    app.as_client(&app.browser(), Method::GET, "/api/admin/applications", None).await.expect(401, "UNAUTHORIZED");
    // The operator's own key pinned to an org never acts as an operator; an unpinned one does.
    let org = app.create_org("Ops", "ops").await;
    for (body, want) in [(json!({"name": "pinned", "organizationId": org}), 403), (json!({"name": "unpinned"}), 200)] {
        let key = app.post("/api/user/api-keys", body).await.expect(201, "OK").data()["key"].as_str().unwrap().to_string();
        let a = app.send(app.browser().get(app.url("/api/admin/applications")).header("X-Api-Key", key)).await;
        assert_eq!(a.status.as_u16(), want, "{}", a.body);
    }

    // Redirect URIs: exact https, loopback http; each mistake is a 422 naming the field.
    let patch = |b: serde_json::Value| app.client.patch(app.url(&format!("/api/admin/applications/{id}"))).json(&b);
    for bad in ["http://crm.example.com/cb", "https://*.example.com/cb", "https://crm.example.com/cb#x", "crm.example.com", "https://u:p@crm.example.com/"] {
        let a = app.send(patch(json!({"redirectUris": [bad]}))).await.expect(422, "VALIDATION_ERROR");
        assert!(a.message().contains("redirectUris"), "{bad}: {}", a.message());
    }
    app.send(patch(json!({"redirectUris": []}))).await.expect(422, "VALIDATION_ERROR");
    app.send(patch(json!({"mfaHandling": "sometimes"}))).await.expect(422, "VALIDATION_ERROR");
    app.send(patch(json!({"sessionDurationMinutes": 600, "maxSessionMinutes": 60}))).await.expect(422, "VALIDATION_ERROR");
    app.send(patch(json!({"clientId": "app_mine"}))).await.expect(422, "VALIDATION_ERROR");
    let ok = app.send(patch(json!({"redirectUris": ["https://crm.example.com/cb", "http://127.0.0.1:8080/cb"], "mfaHandling": "app"}))).await.expect(200, "OK");
    assert_eq!(ok.data()["redirectUris"].as_array().unwrap().len(), 2);
    assert_eq!(ok.data()["mfaHandling"], "app");

    // Rotation: a new secret at once, the old one in its 24-hour grace.
    let rotated = app.post(&format!("/api/admin/applications/{id}/secrets"), json!(null)).await.expect(201, "OK");
    let new_secret = rotated.data()["clientSecret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let secrets = rotated.data()["application"]["secrets"].as_array().unwrap().clone();
    assert_eq!(secrets.len(), 2);
    assert!(secrets.iter().filter(|s| s["expiresAt"].is_string()).count() == 1, "{secrets:?}");

    app.send(app.client.delete(app.url(&format!("/api/admin/applications/{id}")))).await.expect(200, "OK");
    app.get(&format!("/api/admin/applications/{id}")).await.expect(404, "NOT_FOUND");
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_events WHERE action LIKE 'application.%'").fetch_all(&app.db).await.unwrap();
    for a in ["application.create", "application.update", "application.secret.rotate", "application.delete"] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
});
