//! Regression tests for the hostile review (issue 10): each reproduces an attack over HTTP and fails on the code
//! before the fix. Attackers: another tenant (and its own IdP), a stolen or pinned key, an anonymous client.
use crate::both;
use crate::helpers::*;
use crate::sso_login::{finish, signed_in, start};
use crate::sso_settings::{configure, forge};
use reqwest::Method;
use serde_json::json;

const PW: &str = "correct horse battery";

async fn tested_connection(app: &TestApp, org: &str, issuer: &str) {
    configure(app, org, issuer).await;
    app.post(&format!("/api/user/organizations/{org}/settings/sso/test"), json!(null)).await.expect(200, "OK");
}

async fn key_of(app: &TestApp, c: &reqwest::Client, body: serde_json::Value) -> String {
    let a = app.as_client(c, Method::POST, "/api/user/api-keys", Some(body)).await.expect(201, "OK");
    a.data()["key"].as_str().unwrap().to_string()
}

async fn with_key(app: &TestApp, method: Method, key: &str, path: &str, body: Option<serde_json::Value>) -> Answer {
    let mut req = app.browser().request(method, app.url(path)).header("X-Api-Key", key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    app.send(req).await
}

// Finding 2: another org's IdP (here: the same multi-tenant issuer, configured by an evil org) asserts an address
// at a domain the victim org verified. Nothing is created, and the real user later signs in untouched.
both!(sso another_orgs_idp_cannot_squat_a_verified_domain, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@victim.test").await;
    let victim = app.create_org("Victim", "victim").await;
    tested_connection(&app, &victim, &idp.url).await;
    app.arrange_verified_domain(&victim, "victim.test").await;
    let (evil_owner, _) = app.other_user("mallory@evil.test").await;
    let evil = app.as_client(&evil_owner, Method::POST, "/api/user/organizations", Some(json!({"name": "Evil", "slug": "evil"}))).await.expect(201, "OK");
    let evil = evil.data()["id"].as_str().unwrap().to_string();
    let body = json!({"provider": "oidc", "issuerUrl": idp.url, "clientId": "latchkey-test", "clientSecret": crate::sso_settings::SECRET});
    app.as_client(&evil_owner, Method::PUT, &format!("/api/user/organizations/{evil}/settings/sso"), Some(body)).await.expect(200, "OK");
    app.arrange_verified_domain(&evil, "evil.test").await;

    idp.post("/scenario", json!({"sub": "bob-at-evil", "email": "bob@victim.test"})).await;
    let b = app.browser();
    let cb = start(&app, &b, "evil").await;
    assert_eq!(finish(&b, &cb).await, "/auth/error?code=sso_email_domain_not_allowed");
    assert!(signed_in(&app, &b).await.is_none());
    assert!(app::repo::users::by_email(&app.db, "bob@victim.test").await.unwrap().is_none(), "no user was created");
    // A domain nobody verified: refused too (a multi-tenant issuer is no open door).
    idp.post("/scenario", json!({"sub": "rando", "email": "rando@gmail-like.test"})).await;
    let cb = start(&app, &b, "evil").await;
    assert_eq!(finish(&b, &cb).await, "/auth/error?code=sso_domain_not_verified");
    // The evil org's IdP still works for its own domain.
    idp.post("/scenario", json!({"sub": "eve", "email": "eve@evil.test"})).await;
    let cb = start(&app, &b, "evil").await;
    assert_eq!(finish(&b, &cb).await, format!("/orgs/{evil}"));

    // The real Bob signs in through Victim's IdP; the evil IdP's subject never reaches him.
    idp.post("/scenario", json!({"sub": "bob-at-victim", "email": "bob@victim.test"})).await;
    let bob = app.browser();
    let cb = start(&app, &bob, "victim").await;
    assert_eq!(finish(&bob, &cb).await, format!("/orgs/{victim}"));
    idp.post("/scenario", json!({"sub": "bob-at-victim", "email": "eve2@evil.test"})).await;
    let again = app.browser();
    let cb = start(&app, &again, "evil").await;
    assert!(finish(&again, &cb).await.starts_with("/orgs/"), "a fresh identity of the evil org");
    assert_ne!(signed_in(&app, &again).await.unwrap()["email"], "bob@victim.test");

    // A returning subject (eve, above) is judged by the same domain rules, read with her identity: her IdP now
    // asserting an address at the victim's domain is refused, and nothing of Bob's is touched.
    idp.post("/scenario", json!({"sub": "eve", "email": "bob@victim.test"})).await;
    let e = app.browser();
    let cb = start(&app, &e, "evil").await;
    assert_eq!(finish(&e, &cb).await, "/auth/error?code=sso_email_domain_not_allowed");
    assert!(signed_in(&app, &e).await.is_none());
    // Once the evil org's own domain lapsed past its grace, its returning people are refused too.
    let lapsed = app::service::now_ms() - app::service::domains::LAPSE_GRACE_MS - 60_000;
    sqlx::query("UPDATE domains SET lapsed_at = $1 WHERE name = 'evil.test'").bind(lapsed).execute(&app.db).await.unwrap();
    idp.post("/scenario", json!({"sub": "eve", "email": "eve@evil.test"})).await;
    let cb = start(&app, &e, "evil").await;
    assert_eq!(finish(&e, &cb).await, "/auth/error?code=sso_domain_not_verified");
    assert!(signed_in(&app, &e).await.is_none());
    // Within the grace, she signs in as before.
    sqlx::query("UPDATE domains SET lapsed_at = $1 WHERE name = 'evil.test'").bind(app::service::now_ms() - 60_000).execute(&app.db).await.unwrap();
    let cb = start(&app, &e, "evil").await;
    assert_eq!(finish(&e, &cb).await, format!("/orgs/{evil}"));
    // Her address's domain now verified by another org (the victim), in force: her unchanged identity is refused.
    sqlx::query("UPDATE domains SET org_id = $1, lapsed_at = NULL WHERE name = 'evil.test'").bind(&victim).execute(&app.db).await.unwrap();
    let cb = start(&app, &e, "evil").await;
    assert_eq!(finish(&e, &cb).await, "/auth/error?code=sso_email_domain_not_allowed");
});

// Finding 1, the refusal half: a password sign-up at a domain that routes to SSO is refused, pointing to SSO.
both!(sso sign_up_at_an_sso_domain_is_refused_with_the_way_in, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@corp.test").await;
    let org = app.create_org("Corp", "corp").await;
    tested_connection(&app, &org, &idp.url).await;
    app.arrange_verified_domain(&org, "corp.test").await;
    let r = app.post("/api/auth/signup", json!({"email": "Bob@Corp.test", "password": PW, "name": "Bob"})).await.expect(403, "SSO_REQUIRED");
    assert!(r.message().contains("/api/auth/sso/corp/login"), "{}", r.message());
    assert!(app::repo::users::by_email(&app.db, "bob@corp.test").await.unwrap().is_none());
    // Another domain still signs up; a duplicate does not say "already exists".
    app.post("/api/auth/signup", json!({"email": "x@elsewhere.test", "password": PW, "name": "X"})).await.expect(201, "OK");
    let dup = app.post("/api/auth/signup", json!({"email": "x@elsewhere.test", "password": PW, "name": "X"})).await.expect(409, "CONFLICT");
    assert!(!dup.message().contains("exists"), "{}", dup.message());
});

// Finding 13: an internationalized domain is one domain, however it is typed.
both!(sso idna_addresses_route_and_link_like_their_punycode, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@corp.test").await;
    let org = app.create_org("Bücher", "buecher").await;
    tested_connection(&app, &org, &idp.url).await;
    app.arrange_verified_domain(&org, "xn--bcher-kva.example").await;
    let d = app.post("/api/auth/discover", json!({"email": "anna@BÜCHER.example"})).await.expect(200, "OK");
    assert_eq!(d.data()["method"], "sso", "{}", d.body);
    app.post("/api/auth/signup", json!({"email": "anna@bücher.example", "password": PW, "name": "A"})).await.expect(403, "SSO_REQUIRED");
    idp.post("/scenario", json!({"sub": "anna", "email": "anna@bücher.example"})).await;
    let b = app.browser();
    let cb = start(&app, &b, "buecher").await;
    assert_eq!(finish(&b, &cb).await, format!("/orgs/{org}"));
    assert_eq!(signed_in(&app, &b).await.unwrap()["email"], "anna@xn--bcher-kva.example");
});

// Finding 3: a session that owes the org's second factor cannot mint a key that gets around it.
both!(a_key_minted_before_mfa_does_not_satisfy_the_mfa_policy, |app: TestApp| async move {
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let (member, member_id) = app.other_user("m@acme.test").await;
    app.add_member(&org, &member_id, "member").await;
    let secret_owner = crate::security::enrol(&app, &app.client).await;
    let _ = secret_owner;
    app.send(app.client.put(app.url(&format!("/api/user/organizations/{org}/settings/security"))).json(&json!({"authRequired": "mfa", "requireMfa": false, "exemptRoles": []}))).await.expect(200, "OK");
    let path = format!("/api/user/organizations/{org}");
    app.as_client(&member, Method::GET, &path, None).await.expect(403, "MFA_REQUIRED");
    let key = key_of(&app, &member, json!({"name": "escape"})).await;
    let a = with_key(&app, Method::GET, &key, &path, None).await.expect(403, "MFA_REQUIRED");
    assert!(a.message().contains("had not passed"), "{}", a.message());
    let keys = app.as_client(&member, Method::GET, "/api/user/api-keys", None).await.expect(200, "OK");
    assert_eq!(keys.data()[0]["mfaVerified"], false);
    // After enrolling (which passes the factor), a new key works.
    crate::security::enrol(&app, &member).await;
    let key = key_of(&app, &member, json!({"name": "good"})).await;
    with_key(&app, Method::GET, &key, &path, None).await.expect(200, "OK");
});

// Finding 10: a key pinned to one org reaches no account-wide endpoint but `me` and its own keys.
both!(a_pinned_key_cannot_reach_account_wide_endpoints, |app: TestApp| async move {
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let key = key_of(&app, &app.client, json!({"name": "pinned", "organizationId": org})).await;
    with_key(&app, Method::GET, &key, "/api/user/me", None).await.expect(200, "OK");
    with_key(&app, Method::GET, &key, "/api/user/api-keys", None).await.expect(200, "OK");
    with_key(&app, Method::GET, &key, "/api/user/sessions", None).await.expect(403, "FORBIDDEN");
    let mine = app.get("/api/user/sessions").await.expect(200, "OK");
    let sid = mine.data()[0]["id"].as_str().unwrap().to_string();
    with_key(&app, Method::DELETE, &key, &format!("/api/user/sessions/{sid}"), None).await.expect(403, "FORBIDDEN");
    app.get("/api/user/me").await.expect(200, "OK"); // the browser was not signed out
    with_key(&app, Method::GET, &key, "/api/user/join-requests", None).await.expect(403, "FORBIDDEN");
    with_key(&app, Method::GET, &key, "/api/auth/mfa", None).await.expect(403, "FORBIDDEN");
    with_key(&app, Method::POST, &key, "/api/user/organizations", Some(json!({"name": "New"}))).await.expect(403, "FORBIDDEN");
});

// Findings 4 and 12: a changed issuer or client id needs the secret again; a new issuer unlinks identities.
both!(sso the_stored_secret_never_follows_a_new_issuer, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@example.com").await;
    let org = app.create_org("Org", "org").await;
    tested_connection(&app, &org, &idp.url).await;
    app.arrange_verified_domain(&org, "example.com").await;
    idp.post("/scenario", json!({"sub": "s-1", "email": "jit@example.com"})).await;
    let b = app.browser();
    let cb = start(&app, &b, "org").await;
    assert!(finish(&b, &cb).await.starts_with("/orgs/"));
    let path = format!("/api/user/organizations/{org}/settings/sso");
    assert_eq!(app.get(&path).await.data()["linkedIdentities"], 1);
    // The console form keeps the secret when it is left empty: only for the same issuer and client id.
    let a = app.send(app.client.put(app.url(&path)).json(&json!({"provider": "oidc", "issuerUrl": "https://attacker.example", "clientId": "latchkey-test", "clientSecret": ""}))).await;
    let a = a.expect(422, "VALIDATION_ERROR");
    assert!(a.message().contains("clientSecret"), "{}", a.message());
    // Changing the issuer (with a secret) unlinks the identities: subjects mean nothing at another issuer.
    let other = format!("{}/", idp.url);
    app.send(app.client.put(app.url(&path)).json(&json!({"provider": "oidc", "issuerUrl": other, "clientId": "latchkey-test", "clientSecret": "another"}))).await.expect(200, "OK");
    assert_eq!(app.get(&path).await.data()["linkedIdentities"], 0);
    let audit = app::repo::audit::list_for_org(&app.db, &org, 50).await.unwrap();
    assert!(audit.iter().any(|e| e.detail.as_deref().is_some_and(|d| d.contains("identities_unlinked=1"))));
});

// Finding 6: a credential the policy rejects cannot lower it; the lockout guard runs on every `sso` write and on
// deleting the connection `sso` depends on.
both!(sso only_credentials_that_satisfy_the_policy_may_change_it, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    tested_connection(&app, &org, &idp.url).await;
    let pw_key = key_of(&app, &app.client, json!({"name": "old"})).await;
    app.arrange_verified_domain(&org, "acme.test").await;
    // The owner links SSO in the browser signed in with the password (holds both): same account.
    idp.post("/scenario", json!({"sub": "owner", "email": "owner@acme.test"})).await;
    let cb = start(&app, &app.client, "acme").await;
    assert_eq!(finish(&app.client, &cb).await, format!("/orgs/{org}"));
    let sec = format!("/api/user/organizations/{org}/settings/security");
    let sso = json!({"authRequired": "sso", "requireMfa": false, "exemptRoles": []});
    app.send(app.client.put(app.url(&sec)).json(&sso)).await.expect(200, "OK");
    // The old password-made key is refused everywhere in the org, including the policy itself.
    with_key(&app, Method::GET, &pw_key, &format!("/api/user/organizations/{org}"), None).await.expect(403, "SSO_REQUIRED");
    with_key(&app, Method::PUT, &pw_key, &sec, Some(json!({"authRequired": "any", "requireMfa": false, "exemptRoles": []}))).await.expect(403, "SSO_REQUIRED");
    // The guard runs on re-saving `sso`, not only on the transition: the connection's last test failed.
    sqlx::query("UPDATE connections SET status = 'error'").execute(&app.db).await.unwrap();
    app.send(app.client.put(app.url(&sec)).json(&sso)).await.expect(409, "CONFLICT");
    sqlx::query("UPDATE connections SET status = 'active'").execute(&app.db).await.unwrap();
    // Deleting the only connection `sso` depends on is refused, with the way out.
    let d = app.send(app.client.delete(app.url(&format!("/api/user/organizations/{org}/settings/sso")))).await.expect(409, "CONFLICT");
    assert!(d.message().contains("Security page"), "{}", d.message());
    // The SSO session lowers the policy; then the connection can go.
    app.send(app.client.put(app.url(&sec)).json(&json!({"authRequired": "any", "requireMfa": false, "exemptRoles": []}))).await.expect(200, "OK");
    app.send(app.client.delete(app.url(&format!("/api/user/organizations/{org}/settings/sso")))).await.expect(200, "OK");
});
