//! The org's audit log API: filters, cursor pages that stay stable while events are written, the failed sign-in's
//! code and fix, exports, and who may read it (owners and admins; another tenant gets a 404).
use crate::both;
use crate::helpers::*;
use serde_json::{json, Value};

/// Adds `n` domains (each audited as `domain.add`), named d<i>-<tag>.example.
async fn add_domains(app: &TestApp, org_id: &str, tag: &str, n: usize) {
    for i in 0..n {
        app.post(&format!("/api/user/organizations/{org_id}/domains"), json!({"domain": format!("d{i}-{tag}.example")})).await.expect(201, "OK");
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
}

both!(pages_walk_every_event_once_newest_first_while_events_are_written, |app: TestApp| async move {
    app.sign_up("owner@acme.test").await;
    let org_id = app.create_org("Acme", "acme").await;
    add_domains(&app, &org_id, "a", 7).await;
    let path = format!("/api/user/organizations/{org_id}/audit-events");
    let all = app.get(&format!("{path}?limit=200")).await.expect(200, "OK");
    let total = ids(all.data()).len();
    assert!(total >= 8, "organization.create and 7 domain.add: {}", all.body);
    assert!(all.data()["nextCursor"].is_null(), "one page holds them all");

    // Pages of 3; new events written between pages never show up in a later (older) page.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut first = true;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=3&cursor={c}"),
            None => format!("{path}?limit=3"),
        };
        let page = app.get(&url).await.expect(200, "OK");
        seen.extend(ids(page.data()));
        if first {
            add_domains(&app, &org_id, "late", 2).await;
            first = false;
        }
        match page.data()["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), total, "every event of the first listing exactly once: {seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    let expected: Vec<String> = ids(all.data());
    assert_eq!(seen, expected, "the same order as one big page: newest first");

    // Filters: action, target, time range; each event says who, what, when, from where.
    let f = app.get(&format!("{path}?action=domain.add&target=d3-a.example")).await.expect(200, "OK");
    let ev = &f.data()["events"].as_array().unwrap()[..];
    assert_eq!(ev.len(), 1, "{}", f.body);
    assert_eq!(ev[0]["actor"], "owner@acme.test");
    assert_eq!(ev[0]["outcome"], "success");
    assert!(ev[0]["ip"].as_str().is_some_and(|ip| ip == "127.0.0.1"), "{}", f.body);
    assert!(ev[0]["userAgent"].is_null(), "this client sends no user agent");
    let req = app.client.post(app.url(&format!("/api/user/organizations/{org_id}/domains"))).header("user-agent", "latchkey-tests/1");
    app.send(req.json(&json!({"domain": "ua.example"}))).await.expect(201, "OK");
    let ua = app.get(&format!("{path}?target=ua.example")).await.expect(200, "OK");
    assert_eq!(ua.data()["events"][0]["userAgent"], "latchkey-tests/1", "the user agent is recorded");
    let future = app.get(&format!("{path}?since=2999-01-01T00:00:00Z")).await.expect(200, "OK");
    assert_eq!(ids(future.data()).len(), 0);
    let by_actor = app.get(&format!("{path}?actor=OWNER@acme.test&limit=200")).await.expect(200, "OK");
    let owners = all.data()["events"].as_array().unwrap().iter().filter(|e| e["actor"] == "owner@acme.test").count();
    assert_eq!(ids(by_actor.data()).len(), owners + 3, "the actor filter ignores case (and sees the three later events)");

    // The console page: filtered, newest first, with the next page and the exports of the same filter.
    let html = app.client.get(app.url(&format!("/orgs/{org_id}/audit?action=domain.add"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("d1-late.example") && html.contains("<code>domain.add</code>"), "the events are listed");
    assert!(!html.contains("organization.create"), "the filter applies");
    assert!(html.contains("export?format=csv&amp;action=domain.add"), "the export keeps the filter");
    // Bad input: a clear 422 naming the field, never a 500.
    for bad in ["limit=0", "limit=201", "since=yesterday", "outcome=maybe", "cursor=not-a-cursor", "unknown=1"] {
        let r = app.get(&format!("{path}?{bad}")).await;
        assert!(r.status == 422 || r.status == 400, "{bad}: {}", r.body);
    }
});

both!(failed_sign_ins_carry_their_code_and_fix_and_exports_match, |app: TestApp| async move {
    app.sign_up("owner@acme.test").await;
    let org_id = app.create_org("Acme", "acme").await;
    // A failed SAML sign-in as the SAML module records it (arranged: the SAML tests make real ones).
    sqlx::query(
        "INSERT INTO audit_events (id, org_id, actor_user_id, actor, action, target, outcome, detail, ip, created_at, user_agent) \
         VALUES ($1, $2, NULL, 'sso', 'sso.login', NULL, 'failure', 'saml_expired: the assertion expired at ... (protocol=saml)', '203.0.113.9', $3, 'curl/8')",
    )
    .bind(ulid::Ulid::new().to_string())
    .bind(&org_id)
    .bind(app::service::now_ms())
    .execute(&app.db)
    .await
    .unwrap();
    let path = format!("/api/user/organizations/{org_id}/audit-events");
    let f = app.get(&format!("{path}?outcome=failure")).await.expect(200, "OK");
    let ev = f.data()["events"].as_array().unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["errorCode"], "saml_expired");
    assert!(ev[0]["errorText"].as_str().unwrap().len() > 20, "what to fix: {}", f.body);

    let csv = app.client.get(app.url(&format!("{path}/export?format=csv"))).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.trim_end().split("\r\n").collect();
    assert!(lines[0].starts_with("createdAt,action,outcome"));
    assert_eq!(lines.len(), 1 + ids(app.get(&format!("{path}?limit=200")).await.data()).len());
    assert!(text.contains("\"saml_expired\""));
    let jsonl = app.client.get(app.url(&format!("{path}/export?format=jsonl&outcome=failure"))).send().await.unwrap().text().await.unwrap();
    let rows: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["errorCode"], "saml_expired");
    app.get(&format!("{path}/export?format=xml")).await.expect(422, "VALIDATION_ERROR");
});

both!(only_owners_and_admins_read_it_and_another_tenant_gets_404, |app: TestApp| async move {
    app.sign_up("owner@acme.test").await;
    let org_id = app.create_org("Acme", "acme").await;
    let path = format!("/api/user/organizations/{org_id}/audit-events");
    let (member, member_id) = app.other_user("member@acme.test").await;
    app.add_member(&org_id, &member_id, "member").await;
    app.as_client(&member, reqwest::Method::GET, &path, None).await.expect(403, "FORBIDDEN");
    let (admin, admin_id) = app.other_user("admin@acme.test").await;
    app.add_member(&org_id, &admin_id, "admin").await;
    app.as_client(&admin, reqwest::Method::GET, &path, None).await.expect(200, "OK");
    let (stranger, _) = app.other_user("mallory@evil.test").await;
    app.as_client(&stranger, reqwest::Method::GET, &path, None).await.expect(404, "NOT_FOUND");
    app.as_client(&stranger, reqwest::Method::GET, &format!("{path}/export"), None).await.expect(404, "NOT_FOUND");
    app.as_client(&app.browser(), reqwest::Method::GET, &path, None).await.expect(401, "UNAUTHORIZED");
});

both!(events_past_the_retention_are_purged, |app: TestApp| async move {
    app.sign_up("owner@acme.test").await;
    let org_id = app.create_org("Acme", "acme").await;
    let old = app::service::now_ms() - 400 * 86_400_000;
    sqlx::query("INSERT INTO audit_events (id, org_id, actor, action, outcome, created_at) VALUES ($1, $2, 'x', 'old.event', 'success', $3)")
        .bind(ulid::Ulid::new().to_string())
        .bind(&org_id)
        .bind(old)
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(app::service::housekeeping::purge_audit(&app.db, 365).await.unwrap(), 1, "only the 400-day-old event");
    let actions = app.audit_actions(&org_id).await;
    assert!(!actions.contains(&"old.event".to_string()) && actions.contains(&"organization.create".to_string()), "{actions:?}");
});
