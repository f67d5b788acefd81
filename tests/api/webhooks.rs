//! Webhooks against a real receiver (end2end/peers/webhook-receiver.py) that verifies every message with PyPI's
//! `standardwebhooks`, an implementation independent of Latchkey's: owner-only management, the secret shown once,
//! deliveries written with the event, retries after a 500 and after the endpoint was down, the give-up at the end
//! of the schedule, secret rotation (old and new secret both verify during the grace), resend, a slow endpoint
//! that holds nothing, and two nodes that never send the same attempt twice.
use crate::both;
use crate::helpers::*;
use crate::peers::Peer;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

async fn received(peer: &Peer) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/received", peer.url)).await.unwrap().json().await.unwrap();
    v["messages"].as_array().unwrap().clone()
}

/// Polls `f` every 50 ms for up to `secs` seconds until it answers `Some`.
async fn until<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Setup {
    org: String,
    path: String,
    member_id: String,
}

/// An org with a second member whose role the tests change (`member.role_changed` events).
async fn setup(app: &TestApp) -> Setup {
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let (_, member_id) = app.other_user("member@acme.test").await;
    app.add_member(&org, &member_id, "member").await;
    Setup { path: format!("/api/user/organizations/{org}/webhooks"), org, member_id }
}

async fn create_hook(app: &TestApp, s: &Setup, url: &str, events: &[&str]) -> (String, String) {
    let a = app.post(&s.path, json!({"url": url, "eventTypes": events, "description": "test receiver"})).await.expect(201, "OK");
    let secret = a.data()["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    (a.data()["webhook"]["id"].as_str().unwrap().to_string(), secret)
}

async fn set_role(app: &TestApp, s: &Setup, role: &str) {
    app.send(app.client.patch(app.url(&format!("/api/user/organizations/{}/members/{}", s.org, s.member_id))).json(&json!({"role": role})))
        .await
        .expect(200, "OK");
}

async fn deliveries(app: &TestApp, s: &Setup, id: &str) -> Vec<Value> {
    app.get(&format!("{}/{id}/deliveries", s.path)).await.expect(200, "OK").data().as_array().unwrap().clone()
}

both!(only_owners_manage_webhooks_and_input_is_checked, |app: TestApp| async move {
    let s = setup(&app).await;
    // No private, loopback or plain-http endpoint on an instance that does not allow private addresses.
    for (url, why) in [
        ("http://hooks.example.com/x", "https"),
        ("https://127.0.0.1/hook", "private"),
        ("https://10.1.2.3/hook", "private"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("not a url", "full URL"),
    ] {
        let a = app.post(&s.path, json!({"url": url, "eventTypes": ["signin.failed"]})).await.expect(422, "VALIDATION_ERROR");
        assert!(a.message().contains(why) || a.body.to_string().contains(why), "{url}: {}", a.body);
    }
    app.post(&s.path, json!({"url": "https://hooks.example.com/x", "eventTypes": ["user.deleted"]})).await.expect(422, "VALIDATION_ERROR");
    app.post(&s.path, json!({"url": "https://hooks.example.com/x", "eventTypes": []})).await.expect(422, "VALIDATION_ERROR");
    app.post(&s.path, json!({"url": "https://hooks.example.com/x", "eventTypes": ["signin.failed"], "secret": "mine"})).await.expect(422, "VALIDATION_ERROR");

    let (id, secret) = create_hook(&app, &s, "https://hooks.example.com/latchkey", &["signin.failed", "member.added"]).await;
    let one = app.get(&format!("{}/{id}", s.path)).await.expect(200, "OK");
    assert_eq!(one.data()["eventTypes"], json!(["signin.failed", "member.added"]));
    let listed = app.get(&s.path).await.expect(200, "OK");
    assert!(!listed.body.to_string().contains(&secret[6..]) && !one.body.to_string().contains(&secret[6..]), "the secret is never shown again");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret FROM webhooks WHERE id = $1").bind(&id).fetch_one(&app.db).await.unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(&secret[6..]), "the secret is sealed at rest");

    // An admin is not an owner; another tenant sees nothing.
    let (admin, admin_id) = app.other_user("admin@acme.test").await;
    app.add_member(&s.org, &admin_id, "admin").await;
    app.as_client(&admin, Method::GET, &s.path, None).await.expect(403, "FORBIDDEN");
    app.as_client(&admin, Method::POST, &format!("{}/{id}/test", s.path), None).await.expect(403, "FORBIDDEN");
    let (stranger, _) = app.other_user("eve@evil.test").await;
    let evil = app.as_client(&stranger, Method::POST, "/api/user/organizations", Some(json!({"name": "Evil", "slug": "evil"}))).await.expect(201, "OK");
    let evil_org = evil.data()["id"].as_str().unwrap().to_string();
    app.as_client(&stranger, Method::GET, &s.path, None).await.expect(404, "NOT_FOUND");
    app.as_client(&stranger, Method::DELETE, &format!("{}/{id}", s.path), None).await.expect(404, "NOT_FOUND");
    let theirs = format!("/api/user/organizations/{evil_org}/webhooks/{id}");
    app.as_client(&stranger, Method::GET, &theirs, None).await.expect(404, "NOT_FOUND");
    app.as_client(&stranger, Method::POST, &format!("{theirs}/secrets"), None).await.expect(404, "NOT_FOUND");

    // Updates take any subset; delete is audited.
    let patched = app.send(app.client.patch(app.url(&format!("{}/{id}", s.path))).json(&json!({"enabled": false}))).await.expect(200, "OK");
    assert_eq!((patched.data()["enabled"].as_bool(), patched.data()["url"].as_str()), (Some(false), Some("https://hooks.example.com/latchkey")));
    app.post(&format!("{}/{id}/test", s.path), json!({})).await.expect(409, "CONFLICT");
    app.send(app.client.delete(app.url(&format!("{}/{id}", s.path)))).await.expect(200, "OK");
    app.get(&format!("{}/{id}", s.path)).await.expect(404, "NOT_FOUND");
    let actions = app.audit_actions(&s.org).await;
    assert!(actions.contains(&"webhook.create".to_string()) && actions.contains(&"webhook.delete".to_string()), "{actions:?}");
    let details: Vec<String> = sqlx::query_scalar("SELECT detail FROM audit_events WHERE action = 'webhook.create'").fetch_all(&app.db).await.unwrap();
    assert!(details.iter().all(|d| d.contains("url=https://hooks.example.com ") && !d.contains("/latchkey")), "only the origin is audited: {details:?}");
});

both!(webhooks deliveries_are_signed_retried_and_logged, |app: TestApp| async move {
    let s = setup(&app).await;
    let receiver = Peer::start("webhook-receiver.py", &[]).await;
    let (id, secret) = create_hook(&app, &s, &format!("{}/hook", receiver.url), &["member.role_changed"]).await;
    receiver.call("/config", json!({"secret": secret, "fail": 1})).await;

    // An event the endpoint did not subscribe to is not sent; one it did is, and a 500 is retried.
    app.post(&format!("/api/user/organizations/{}/domains", s.org), json!({"domain": "acme-hooks.example"})).await.expect(201, "OK");
    set_role(&app, &s, "admin").await;
    let got = until(20, "a 500, then the retry", || async {
        let m = received(&receiver).await;
        (m.len() >= 2).then_some(m)
    })
    .await;
    assert_eq!(got.len(), 2, "one message, two attempts: {got:?}");
    assert_eq!((got[0]["answered"].as_i64(), got[1]["answered"].as_i64()), (Some(500), Some(204)));
    assert!(got.iter().all(|m| m["verified"] == true), "standardwebhooks verifies every attempt: {got:?}");
    assert_eq!(got[0]["webhookId"], got[1]["webhookId"], "a retry carries the same webhook-id");
    let p = &got[1]["payload"];
    assert_eq!((p["type"].as_str(), p["data"]["action"].as_str(), p["data"]["target"].as_str()), (Some("member.role_changed"), Some("member.role_change"), Some(s.member_id.as_str())));

    let log = until(10, "the delivery recorded", || async {
        let d = deliveries(&app, &s, &id).await;
        d.first().filter(|d| d["status"] == "delivered").cloned()
    })
    .await;
    assert_eq!((log["attempts"].as_i64(), log["lastStatusCode"].as_i64()), (Some(2), Some(204)), "{log}");
    assert_eq!(log["id"], got[1]["webhookId"]);

    // Resend: a new delivery of the same message, verified again.
    let d = app.post(&format!("{}/{id}/deliveries/{}/resend", s.path, log["id"].as_str().unwrap()), json!({})).await.expect(202, "OK");
    assert_ne!(d.data()["id"], log["id"]);
    until(10, "the resend", || async { (received(&receiver).await.len() == 3).then_some(()) }).await;
    let third = received(&receiver).await[2].clone();
    assert_eq!((third["verified"].as_bool(), third["payload"]["type"].as_str()), (Some(true), Some("member.role_changed")));

    // Rotation: during the grace, receivers holding the old secret and the new one both verify.
    let rotated = app.post(&format!("{}/{id}/secrets", s.path), json!({})).await.expect(201, "OK");
    let new_secret = rotated.data()["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert!(rotated.data()["webhook"]["previousSecretExpiresAt"].is_string());
    app.post(&format!("{}/{id}/test", s.path), json!({})).await.expect(202, "OK");
    until(10, "the test with the old secret", || async { (received(&receiver).await.len() == 4).then_some(()) }).await;
    receiver.call("/config", json!({"secret": new_secret})).await;
    app.post(&format!("{}/{id}/test", s.path), json!({})).await.expect(202, "OK");
    until(10, "the test with the new secret", || async { (received(&receiver).await.len() == 5).then_some(()) }).await;
    let m = received(&receiver).await;
    assert!(m[3]["verified"] == true && m[4]["verified"] == true, "{:?}", &m[3..]);
    assert_eq!(m[4]["payload"]["type"], "webhook.test");
    assert_eq!(m[4]["signature"].as_str().unwrap().split(' ').count(), 2, "two signatures during the grace");

    // A receiver with an unrelated secret refuses the message: the check can fail.
    receiver.call("/config", json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})).await;
    app.post(&format!("{}/{id}/test", s.path), json!({})).await.expect(202, "OK");
    until(10, "the refused test", || async { (received(&receiver).await.len() == 6).then_some(()) }).await;
    assert_eq!(received(&receiver).await[5]["verified"], false);
});

both!(webhooks a_down_endpoint_is_retried_and_the_schedule_ends_in_failed, |app: TestApp| async move {
    let s = setup(&app).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (id, secret) = create_hook(&app, &s, &format!("http://127.0.0.1:{port}/hook"), &["member.role_changed"]).await;
    set_role(&app, &s, "admin").await;
    let failed_once = until(10, "a refused attempt", || async {
        deliveries(&app, &s, &id).await.first().filter(|d| d["attempts"].as_i64() >= Some(1)).cloned()
    })
    .await;
    assert_eq!(failed_once["status"], "pending", "{failed_once}");
    assert!(failed_once["lastError"].as_str().unwrap_or_default().contains("unreachable"), "{failed_once}");

    // The endpoint comes up: a later attempt delivers (the third waits 300 units, 6 s in tests).
    let receiver = Peer::start("webhook-receiver.py", &[("PORT", &port.to_string())]).await;
    receiver.call("/config", json!({"secret": secret})).await;
    let m = until(20, "the delivery after the endpoint came up", || async { received(&receiver).await.first().cloned() }).await;
    assert_eq!(m["verified"], true);
    until(10, "delivered", || async { deliveries(&app, &s, &id).await.first().filter(|d| d["status"] == "delivered").map(|_| ()) }).await;

    // At the end of the schedule a failing delivery is marked failed, not retried forever.
    receiver.call("/config", json!({"fail": 1000})).await;
    set_role(&app, &s, "member").await;
    let newest = until(10, "an attempt answered 500", || async {
        deliveries(&app, &s, &id).await.first().filter(|d| d["lastStatusCode"].as_i64() == Some(500)).cloned()
    })
    .await;
    let last = app::service::webhooks::send::SCHEDULE.len() as i64;
    sqlx::query("UPDATE webhook_deliveries SET attempts = $1, next_attempt_at = 0 WHERE id = $2")
        .bind(last)
        .bind(newest["id"].as_str().unwrap())
        .execute(&app.db)
        .await
        .unwrap();
    let gave_up = until(10, "the give-up", || async {
        deliveries(&app, &s, &id).await.into_iter().find(|d| d["id"] == newest["id"] && d["status"] == "failed")
    })
    .await;
    assert_eq!((gave_up["attempts"].as_i64(), gave_up["lastStatusCode"].as_i64()), (Some(last + 1), Some(500)));
    assert!(gave_up["nextAttemptAt"].is_null());
});

both!(webhooks a_slow_endpoint_holds_no_request, |app: TestApp| async move {
    let s = setup(&app).await;
    let receiver = Peer::start("webhook-receiver.py", &[]).await;
    let (id, secret) = create_hook(&app, &s, &format!("{}/hook", receiver.url), &["member.role_changed"]).await;
    receiver.call("/config", json!({"secret": secret, "delay_ms": 4000})).await;
    set_role(&app, &s, "admin").await;
    // The receiver holds the message (it records it on arrival) while the API goes on answering, and the delivery
    // is still in flight.
    until(10, "the slow endpoint to get the message", || async { (!received(&receiver).await.is_empty()).then_some(()) }).await;
    let d = deliveries(&app, &s, &id).await;
    assert_eq!((d[0]["status"].as_str(), d[0]["attempts"].as_i64()), (Some("pending"), Some(0)), "{d:?}");
    set_role(&app, &s, "member").await;
    until(15, "both delivered", || async {
        let d = deliveries(&app, &s, &id).await;
        (d.len() == 2 && d.iter().all(|d| d["status"] == "delivered")).then_some(())
    })
    .await;
});

/// Two nodes on one PostgreSQL database: every message reaches the receiver exactly once.
#[tokio::test]
async fn two_nodes_never_send_the_same_attempt_twice() {
    let Some(first) = spawn_adjusted(Backend::Postgres, |c| c.allow_private_webhooks = true).await else { return };
    let mut config = first.config.clone();
    config.bind = "127.0.0.1:0".into();
    let second = spawn_with(config, tempfile::tempdir().unwrap()).await;
    let s = setup(&first).await;
    let receiver = Peer::start("webhook-receiver.py", &[]).await;
    let (id, secret) = create_hook(&first, &s, &format!("{}/hook", receiver.url), &["member.role_changed"]).await;
    receiver.call("/config", json!({"secret": secret})).await;
    // The second node is a real second server: it sees the first node's org.
    second.send(second.client.post(second.url("/api/auth/signin")).json(&json!({"email": "owner@acme.test", "password": "correct horse battery"}))).await.expect(200, "OK");
    const N: usize = 30;
    for i in 0..N {
        let node = if i % 2 == 0 { &first } else { &second };
        node.post(&format!("{}/{id}/test", s.path), json!({})).await.expect(202, "OK");
    }
    let m = until(30, "every message", || async {
        let m = received(&receiver).await;
        (m.len() >= N).then_some(m)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m2 = received(&receiver).await;
    assert_eq!(m2.len(), N, "no message twice: {} arrived", m2.len());
    let mut ids: Vec<&str> = m.iter().map(|x| x["webhookId"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N);
    assert!(m.iter().all(|x| x["verified"] == true));
}
