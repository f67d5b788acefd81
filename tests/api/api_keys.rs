//! API keys: shown once, stored hashed, act as their user, pinnable, revocable.
use crate::both;
use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

both!(key_is_shown_once_and_authenticates_like_the_cookie, |app: TestApp| async move {
    app.sign_up("k@example.com").await;
    let org = app.create_org("Keys Co", "keys-co").await;
    let created = app.post("/api/user/api-keys", json!({"name": "CI"})).await.expect(201, "OK");
    let key = created.data()["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("lk_") && key.len() >= 40, "{key}");
    let list = app.get("/api/user/api-keys").await.expect(200, "OK");
    assert!(!list.body.to_string().contains(&key), "the key is never listed");
    assert_eq!(list.data()[0]["prefix"], key[..10]);
    // Stored hashed: the database does not hold the key.
    let stored: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM api_keys").fetch_all(&app.db).await.unwrap();
    assert!(stored.iter().all(|h| h != &key && h.len() == 64));

    let anon = app.browser();
    let orgs = app.send(anon.get(app.url("/api/user/organizations")).header("x-api-key", &key)).await.expect(200, "OK");
    assert_eq!(orgs.data()[0]["id"], org);
    let me = app.send(anon.get(app.url("/api/user/me")).header("x-api-key", &key)).await.expect(200, "OK");
    assert_eq!(me.data()["authMethod"], "api_key");
    // A write with the key needs no cookie and no Origin.
    app.send(anon.post(app.url("/api/user/organizations")).header("x-api-key", &key).json(&json!({"name": "Made By Key"})))
        .await
        .expect(201, "OK");

    let id = created.data()["apiKey"]["id"].as_str().unwrap();
    app.send(app.client.delete(app.url(&format!("/api/user/api-keys/{id}")))).await.expect(200, "OK");
    let revoked = app.send(anon.get(app.url("/api/user/organizations")).header("x-api-key", &key)).await;
    revoked.expect(401, "INVALID_API_KEY");
});

both!(bad_keys_are_refused_even_with_a_cookie, |app: TestApp| async move {
    app.sign_up("bad@example.com").await;
    for bad in ["nope", "lk_", "lk_0000000000000000000000000000000000000000000"] {
        // The header wins over the cookie: a wrong key never falls back to the session.
        let r = app.send(app.client.get(app.url("/api/user/me")).header("x-api-key", bad)).await;
        r.expect(401, "INVALID_API_KEY");
    }
});

both!(pinned_key_reaches_only_its_org, |app: TestApp| async move {
    app.sign_up("pin@example.com").await;
    let a = app.create_org("Pinned A", "pinned-a").await;
    let b = app.create_org("Pinned B", "pinned-b").await;
    let created = app.post("/api/user/api-keys", json!({"name": "only A", "organizationId": a})).await.expect(201, "OK");
    let key = created.data()["key"].as_str().unwrap().to_string();
    let anon = app.browser();
    let with_key = |path: String| anon.get(app.url(&path)).header("x-api-key", key.clone());
    let list = app.send(with_key("/api/user/organizations".into())).await.expect(200, "OK");
    assert_eq!(list.data().as_array().unwrap().len(), 1);
    app.send(with_key(format!("/api/user/organizations/{a}"))).await.expect(200, "OK");
    app.send(with_key(format!("/api/user/organizations/{b}"))).await.expect(404, "NOT_FOUND");
    // A pinned key cannot mint a wider key.
    app.send(anon.post(app.url("/api/user/api-keys")).header("x-api-key", &key).json(&json!({"name": "wider"})))
        .await
        .expect(403, "FORBIDDEN");
    // Pinning to an org you are not in is a 404.
    let (other, _) = app.other_user("other@example.com").await;
    app.as_client(&other, Method::POST, "/api/user/api-keys", Some(json!({"name": "x", "organizationId": a}))).await.expect(404, "NOT_FOUND");
    let api_key_events = app.audit_actions(&a).await;
    assert!(api_key_events.contains(&"api_key.create".into()), "{api_key_events:?}");
});

both!(keys_of_others_cannot_be_revoked, |app: TestApp| async move {
    app.sign_up("own@example.com").await;
    let created = app.post("/api/user/api-keys", json!({"name": "mine"})).await.expect(201, "OK");
    let id = created.data()["apiKey"]["id"].as_str().unwrap().to_string();
    let (other, _) = app.other_user("thief@example.com").await;
    app.as_client(&other, Method::DELETE, &format!("/api/user/api-keys/{id}"), None).await.expect(404, "NOT_FOUND");
    let key = created.data()["key"].as_str().unwrap();
    app.send(app.browser().get(app.url("/api/user/me")).header("x-api-key", key)).await.expect(200, "OK");
});
