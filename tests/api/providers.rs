//! Instance sign-in providers (issue 15, reference 004) as operators manage them: google and generic OIDC
//! (discovery or explicit endpoints), reference 004's snake_case body, validation, the client id and secret never
//! returned and the secret sealed at rest, updates of any subset, a unique slug, audit, and everyone who is not an
//! operator refused. The sign-in through a provider is not built yet (issue 15 stays open).
use crate::applications::make_operator;
use crate::both;
use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

both!(operators_manage_providers_and_secrets_never_come_back, |app: TestApp| async move {
    let ops = app.sign_up("ops@example.com").await;
    make_operator(&app, "ops@example.com").await;
    let p = "/api/admin/oauth/providers";

    // reference 004's own Google example, snake_case and a comma-separated allowed_domains.
    let google = app
        .post(p, json!({"name": "Google", "slug": "google", "type": "google", "client_id": "google-client-id-123",
            "client_secret": "google-secret-value-456", "auto_register": true, "allowed_domains": "Example.com, company.org"}))
        .await
        .expect(201, "OK");
    let g = google.data().clone();
    assert_eq!(g["type"], "google");
    assert_eq!(g["issuer"], "https://accounts.google.com");
    assert_eq!(g["allowedDomains"], json!(["example.com", "company.org"]));
    assert_eq!(g["scopes"], "openid email profile");
    assert_eq!(g["clientSecretSet"], true);
    assert!(g["callbackUrl"].as_str().unwrap().ends_with("/api/auth/sso/callback"));

    // Generic OIDC with explicit endpoints (camelCase), and one with only its issuer (discovery).
    let kc = app
        .post(p, json!({"name": "Keycloak", "slug": "keycloak", "type": "oidc", "clientId": "posta", "clientSecret": "kc-secret-789",
            "authUrl": "https://kc.example.com/realms/main/protocol/openid-connect/auth",
            "tokenUrl": "https://kc.example.com/realms/main/protocol/openid-connect/token",
            "userinfoUrl": "https://kc.example.com/realms/main/protocol/openid-connect/userinfo", "autoRegister": false}))
        .await
        .expect(201, "OK")
        .data()
        .clone();
    assert_eq!(kc["autoRegister"], false);
    assert_eq!(kc["issuer"], serde_json::Value::Null);
    app.post(p, json!({"name": "Authentik", "slug": "authentik", "type": "oidc", "clientId": "a", "clientSecret": "b", "issuer": "https://auth.example.com/application/o/latchkey/"}))
        .await
        .expect(201, "OK");

    // Neither the client id nor the secret in any answer; the secret sealed in the database.
    let listed = app.get(p).await.expect(200, "OK");
    let text = listed.data().to_string() + &google.data().to_string() + &app.get(&format!("{p}/{}", kc["id"].as_str().unwrap())).await.data().to_string();
    for secret in ["google-client-id-123", "google-secret-value-456", "posta", "kc-secret-789"] {
        assert!(!text.contains(secret), "{secret} was returned");
    }
    assert_eq!(listed.data().as_array().unwrap().len(), 3);
    let stored: Vec<u8> = sqlx::query_scalar("SELECT client_secret FROM oauth_providers WHERE slug = 'google'").fetch_one(&app.db).await.unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("google-secret-value-456"), "sealed at rest");
    let row = app::repo::providers::by_id(&app.db, g["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(app::service::providers::client_secret(&app.state, &row).unwrap(), "google-secret-value-456");

    // Validation: each refusal names its field.
    for (body, field) in [
        (json!({"name": "X", "slug": "x1", "type": "oidc", "clientId": "a", "clientSecret": "b"}), "issuer"),
        (json!({"name": "X", "slug": "x2", "type": "oidc", "clientId": "a", "clientSecret": "b", "issuer": "http://idp.example.com"}), "issuer"),
        (json!({"name": "X", "slug": "x3", "type": "google", "clientId": "a", "clientSecret": "b", "authUrl": "https://evil.example.com/auth"}), "type"),
        (json!({"name": "X", "slug": "Bad Slug", "type": "google", "clientId": "a", "clientSecret": "b"}), "slug"),
        (json!({"name": "X", "slug": "x4", "type": "saml", "clientId": "a", "clientSecret": "b"}), "type"),
        (json!({"name": "X", "slug": "x5", "type": "google", "clientSecret": "b"}), "clientId"),
        (json!({"name": "X", "slug": "x6", "type": "google", "clientId": "a", "clientSecret": "b", "allowedDomains": ["not a domain"]}), "allowedDomains"),
        (json!({"name": "X", "slug": "x7", "type": "google", "clientId": "a", "clientSecret": "b", "scopes": ""}), "scopes"),
    ] {
        let r = app.post(p, body.clone()).await.expect(422, "VALIDATION_ERROR");
        assert!(r.message().starts_with(&format!("{field}:")), "{body}: {}", r.message());
    }
    app.post(p, json!({"name": "Google 2", "slug": "google", "type": "google", "clientId": "a", "clientSecret": "b"})).await.expect(409, "CONFLICT");
    app.post(p, json!({"name": "X", "slug": "x8", "type": "google", "clientId": "a", "clientSecret": "b", "colour": "red"})).await.expect(422, "VALIDATION_ERROR");

    // Updates take any subset; a new secret replaces the sealed one; the slug stays unique.
    let url = format!("{p}/{}", kc["id"].as_str().unwrap());
    let c = app.client.clone();
    let up = app.as_client(&c, Method::PUT, &url, Some(json!({"scopes": "openid email", "allowed_domains": ["kc.example.com"], "clientSecret": "rotated-secret"}))).await.expect(200, "OK");
    assert_eq!(up.data()["scopes"], "openid email");
    assert_eq!(up.data()["allowedDomains"], json!(["kc.example.com"]));
    assert_eq!(up.data()["name"], "Keycloak");
    let row = app::repo::providers::by_id(&app.db, kc["id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(app::service::providers::client_secret(&app.state, &row).unwrap(), "rotated-secret");
    app.as_client(&c, Method::PUT, &url, Some(json!({"slug": "google"}))).await.expect(409, "CONFLICT");
    app.as_client(&c, Method::PUT, &url, Some(json!({"authUrl": ""}))).await.expect(422, "VALIDATION_ERROR");
    // Switching to google drops the custom endpoints.
    let switched = app.as_client(&c, Method::PUT, &url, Some(json!({"type": "google"}))).await.expect(200, "OK");
    assert_eq!(switched.data()["authUrl"], serde_json::Value::Null);
    assert_eq!(switched.data()["issuer"], "https://accounts.google.com");

    app.as_client(&c, Method::DELETE, &url, None).await.expect(200, "OK");
    app.get(&url).await.expect(404, "NOT_FOUND");
    app.get(&format!("{p}/not-an-id")).await.expect(404, "NOT_FOUND");

    let actions: Vec<String> = app::repo::audit::list_for_actor(&app.db, &ops, 50).await.unwrap().into_iter().map(|e| e.action).collect();
    for a in ["provider.create", "provider.update", "provider.delete"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
    let details: Vec<String> = app::repo::audit::list_for_actor(&app.db, &ops, 50).await.unwrap().into_iter().filter_map(|e| e.detail).collect();
    assert!(!details.concat().contains("secret-value") && !details.concat().contains("google-client-id"), "no credentials in the audit log");
});

both!(only_operators_reach_providers, |app: TestApp| async move {
    app.sign_up("ops@example.com").await;
    make_operator(&app, "ops@example.com").await;
    let created = app
        .post("/api/admin/oauth/providers", json!({"name": "Google", "slug": "google", "type": "google", "clientId": "a", "clientSecret": "b"}))
        .await
        .expect(201, "OK");
    let url = format!("/api/admin/oauth/providers/{}", created.data()["id"].as_str().unwrap());
    // Another account (not an operator): 403 on every route; an anonymous client: 401.
    let (owner, _) = app.other_user("owner@example.com").await;
    for (m, path) in [(Method::GET, "/api/admin/oauth/providers".to_string()), (Method::GET, url.clone()), (Method::PUT, url.clone()), (Method::DELETE, url.clone())] {
        let body = (m == Method::PUT).then(|| json!({"name": "Hijacked"}));
        app.as_client(&owner, m.clone(), &path, body.clone()).await.expect(403, "FORBIDDEN");
        app.as_client(&client(), m, &path, body).await.expect(401, "UNAUTHORIZED");
    }
    app.as_client(&owner, Method::POST, "/api/admin/oauth/providers", Some(json!({"name": "Evil", "slug": "evil", "type": "google", "clientId": "a", "clientSecret": "b"})))
        .await
        .expect(403, "FORBIDDEN");
    // The operator's own key pinned to an org never acts as an operator (nor reaches the provider test); an
    // unpinned one does.
    let org = app.create_org("Ops", "ops").await;
    for (body, want) in [(json!({"name": "pinned", "organizationId": org}), 403), (json!({"name": "unpinned"}), 200)] {
        let key = app.post("/api/user/api-keys", body).await.expect(201, "OK").data()["key"].as_str().unwrap().to_string();
        let a = app.send(app.browser().get(app.url(&url)).header("X-Api-Key", &key)).await;
        assert_eq!(a.status.as_u16(), want, "{}", a.body);
        let a = app.send(app.browser().put(app.url(&url)).header("X-Api-Key", &key).json(&json!({"name": "Renamed by key"}))).await;
        assert_eq!(a.status.as_u16(), want, "{}", a.body);
    }
    let t = app.send(app.browser().post(app.url(&format!("{url}/test"))).header("X-Api-Key", "lk_stolen-or-made-up")).await;
    assert_eq!(t.status.as_u16(), 401, "{}", t.body);
    assert_eq!(app.get(&url).await.data()["name"], "Renamed by key", "only the unpinned key's change landed");
});

both!(the_console_adds_and_deletes_providers_without_javascript, |app: TestApp| async move {
    use crate::console::{page, post_form};
    app.sign_up("ops@example.com").await;
    // Before the operator role: the page says how it is granted and lists nothing.
    let html = page(&app, &app.client, "/admin/providers").await;
    assert!(html.contains("latchkey operators add EMAIL") && !html.contains("Add a provider"), "{html}");
    make_operator(&app, "ops@example.com").await;
    let to = post_form(&app, &app.client, "/sfn/create_provider", &[
        ("kind", "google"), ("name", "Google"), ("slug", "google"), ("client_id", "console-client-id"), ("client_secret", "console-secret-value"),
        ("issuer", ""), ("auth_url", ""), ("token_url", ""), ("userinfo_url", ""), ("scopes", "openid email profile"),
        ("allowed_domains", "example.com, company.org"), ("auto_register", "on"),
    ], "/admin/providers").await;
    assert!(!to.contains("__err="), "created: {to}");
    let html = page(&app, &app.client, "/admin/providers").await;
    assert!(html.contains("data-provider=\"google\"") && html.contains("example.com, company.org") && html.contains("/api/auth/sso/callback"), "{html}");
    assert!(!html.contains("console-secret-value") && !html.contains("console-client-id"), "credentials never on the page");
    let listed = app.get("/api/admin/oauth/providers").await.expect(200, "OK");
    assert_eq!(listed.data()[0]["autoRegister"], true);
    // A refused form comes back with its error (an oidc provider with neither issuer nor endpoints).
    let to = post_form(&app, &app.client, "/sfn/create_provider", &[
        ("kind", "oidc"), ("name", "Keycloak"), ("slug", "keycloak"), ("client_id", "a"), ("client_secret", "b"),
        ("issuer", ""), ("auth_url", ""), ("token_url", ""), ("userinfo_url", ""), ("scopes", "openid"), ("allowed_domains", ""),
    ], "/admin/providers").await;
    assert!(to.contains("__err="), "refused: {to}");
    let id = listed.data()[0]["id"].as_str().unwrap().to_string();
    post_form(&app, &app.client, "/sfn/delete_provider", &[("id", &id)], "/admin/providers").await;
    assert_eq!(app.get("/api/admin/oauth/providers").await.data().as_array().unwrap().len(), 0);
    // Another account cannot add one through the console's endpoint either.
    let (other, _) = app.other_user("other@example.com").await;
    let to = post_form(&app, &other, "/sfn/create_provider", &[
        ("kind", "google"), ("name", "Evil"), ("slug", "evil"), ("client_id", "a"), ("client_secret", "b"), ("allowed_domains", ""),
    ], "/admin/providers").await;
    assert!(to.contains("__err="), "refused: {to}");
    assert_eq!(app.get("/api/admin/oauth/providers").await.data().as_array().unwrap().len(), 0);
});

// The provider test, through the SSRF guard: the real oidc-provider by discovery, explicit endpoints that answer,
// an issuer mismatch from the forging IdP, and a provider that is down.
both!(sso the_provider_test_says_what_answered, |app: TestApp| async move {
    use crate::peers::Peer;
    app.sign_up("ops@example.com").await;
    make_operator(&app, "ops@example.com").await;
    let clients = json!([{"client_id": "latchkey", "client_secret": "op-secret", "redirect_uris": [format!("{}/api/auth/sso/callback", app.base)]}]).to_string();
    let op = Peer::start("oidc-idp.mjs", &[("OIDC_CLIENTS", &clients)]).await;
    let forge = crate::sso_settings::forge().await;
    let add = |slug: &str, extra: serde_json::Value| {
        let mut body = json!({"name": slug, "slug": slug, "type": "oidc", "clientId": "latchkey", "clientSecret": "op-secret"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let test = |id: String| {
        let app = &app;
        async move { app.post(&format!("/api/admin/oauth/providers/{id}/test"), json!(null)).await.expect(200, "OK") }
    };
    let id = |a: Answer| a.data()["id"].as_str().unwrap().to_string();

    let real = id(app.post("/api/admin/oauth/providers", add("real-op", json!({"issuer": op.url}))).await.expect(201, "OK"));
    let r = test(real).await;
    assert_eq!(r.data()["success"], true, "{}", r.body);
    assert!(r.data()["message"].as_str().unwrap().contains("issuer matches") && r.data()["responseTimeMs"].is_u64(), "{}", r.body);

    let explicit = id(app
        .post("/api/admin/oauth/providers", add("explicit", json!({"authUrl": format!("{}/auth", op.url), "tokenUrl": format!("{}/token", op.url), "userinfoUrl": format!("{}/me", op.url)})))
        .await
        .expect(201, "OK"));
    let r = test(explicit).await;
    assert_eq!(r.data()["success"], true, "{}", r.body);

    forge.post("/scenario", json!({"discovery_issuer": "https://someone-else.example"})).await;
    let mismatch = id(app.post("/api/admin/oauth/providers", add("mismatch", json!({"issuer": forge.url}))).await.expect(201, "OK"));
    let r = test(mismatch).await;
    assert_eq!(r.data()["success"], false);
    assert!(r.data()["message"].as_str().unwrap().starts_with("Issuer mismatch"), "{}", r.body);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = id(app.post("/api/admin/oauth/providers", add("down", json!({"issuer": format!("http://127.0.0.1:{port}")}))).await.expect(201, "OK"));
    let r = test(down).await;
    assert!(r.data()["message"].as_str().unwrap().starts_with("Connect"), "{}", r.body);
    let actions: Vec<String> = app::repo::audit::list_for_actor(&app.db, &app.get("/api/user/me").await.data()["id"].as_str().unwrap().to_string(), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "provider.test")
        .map(|e| e.outcome)
        .collect();
    assert!(actions.contains(&"success".to_string()) && actions.contains(&"failure".to_string()), "{actions:?}");
});

// Without --allow-private-idp, an operator cannot point a provider test at the machine's own network.
both!(a_provider_test_never_fetches_a_private_address, |app: TestApp| async move {
    app.sign_up("ops@example.com").await;
    make_operator(&app, "ops@example.com").await;
    let body = json!({"name": "Inside", "slug": "inside", "type": "oidc", "clientId": "a", "clientSecret": "b", "issuer": "http://127.0.0.1:9"});
    let created = app.post("/api/admin/oauth/providers", body).await.expect(201, "OK");
    let id = created.data()["id"].as_str().unwrap();
    let r = app.post(&format!("/api/admin/oauth/providers/{id}/test"), json!(null)).await.expect(200, "OK");
    assert_eq!(r.data()["success"], false);
    assert!(r.data()["message"].as_str().unwrap().starts_with("Refused to fetch"), "{}", r.body);
});
