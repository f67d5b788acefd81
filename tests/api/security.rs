//! The security policy and its enforcement: every combination of policy × sign-in method × exempt role × MFA
//! state over HTTP, the lockout guard, TOTP (enrol, challenge, replay, recovery codes, rate limit, disable),
//! and the org's sessions (list, revoke signs the browser out).
use crate::both;
use crate::helpers::*;
use crate::sso_login::{finish, start};
use crate::sso_settings::{configure, forge};
use reqwest::{Client, Method};
use serde_json::{json, Value};

/// The current TOTP code (or the next step's with `ahead = 1`) for a base32 secret.
pub fn totp_code(secret: &str, ahead: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).unwrap();
    let t = totp_rs::Builder::new().with_secret(bytes).with_account_name("t").build().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    t.generate(now + 30 * ahead).to_string()
}

fn security(org: &str) -> String {
    format!("/api/user/organizations/{org}/settings/security")
}

async fn put_policy(app: &TestApp, org: &str, body: Value) -> Answer {
    app.send(app.client.put(app.url(&security(org))).json(&body)).await
}

async fn call(app: &TestApp, c: &Client, path: &str) -> Answer {
    app.as_client(c, Method::GET, path, None).await
}

async fn with_key(app: &TestApp, key: &str, path: &str) -> Answer {
    app.send(app.browser().get(app.url(path)).header("X-Api-Key", key)).await
}

async fn password_browser(app: &TestApp, email: &str) -> Client {
    let c = app.browser();
    app.as_client(&c, Method::POST, "/api/auth/signin", Some(json!({"email": email, "password": "correct horse battery"}))).await.expect(200, "OK");
    c
}

async fn new_key(app: &TestApp, c: &Client) -> String {
    let a = app.as_client(c, Method::POST, "/api/user/api-keys", Some(json!({"name": "k"}))).await.expect(201, "OK");
    a.data()["key"].as_str().unwrap().to_string()
}

/// Enrols TOTP in browser `c` (which becomes verified); returns the secret.
pub async fn enrol(app: &TestApp, c: &Client) -> String {
    let e = app.as_client(c, Method::POST, "/api/auth/mfa/enroll", Some(json!(null))).await.expect(200, "OK");
    let secret = e.data()["secret"].as_str().unwrap().to_string();
    assert!(e.data()["qrSvg"].as_str().unwrap().starts_with("<?xml") || e.data()["qrSvg"].as_str().unwrap().contains("<svg"));
    assert!(e.data()["otpauthUri"].as_str().unwrap().starts_with("otpauth://totp/Latchkey:"));
    let codes = app.as_client(c, Method::POST, "/api/auth/mfa/enroll/confirm", Some(json!({"code": totp_code(&secret, 0)}))).await.expect(200, "OK");
    assert_eq!(codes.data().as_array().unwrap().len(), 10);
    secret
}

both!(sso policy_is_validated_owner_only_and_guarded, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let a = app.get(&security(&org)).await.expect(200, "OK");
    assert_eq!(a.data(), &json!({"authRequired": "any", "requireMfa": false, "exemptRoles": []}));

    let bad = put_policy(&app, &org, json!({"authRequired": "always", "requireMfa": false})).await.expect(422, "VALIDATION_ERROR");
    assert!(bad.message().contains("authRequired"), "{}", bad.message());
    let bad = put_policy(&app, &org, json!({"authRequired": "any", "requireMfa": false, "exemptRoles": ["boss"]})).await.expect(422, "VALIDATION_ERROR");
    assert!(bad.message().contains("boss"), "{}", bad.message());
    put_policy(&app, &org, json!({"authRequired": "any"})).await.expect(422, "VALIDATION_ERROR");

    let (admin, admin_id) = app.other_user("admin@acme.test").await;
    app.add_member(&org, &admin_id, "admin").await;
    app.as_client(&admin, Method::GET, &security(&org), None).await.expect(403, "FORBIDDEN");
    let (stranger, _) = app.other_user("x@else.test").await;
    app.as_client(&stranger, Method::GET, &security(&org), None).await.expect(404, "NOT_FOUND");

    // Lockout guard: no tested connection.
    let g = put_policy(&app, &org, json!({"authRequired": "sso", "requireMfa": false, "exemptRoles": ["owner"]})).await.expect(409, "CONFLICT");
    assert!(g.message().contains("passed its test"), "{}", g.message());
    configure(&app, &org, &idp.url).await;
    app.post(&format!("/api/user/organizations/{org}/settings/sso/test"), json!(null)).await.expect(200, "OK");
    // Tested, but no owner could get in: not exempt, and no owner has signed in through SSO.
    let g = put_policy(&app, &org, json!({"authRequired": "sso", "requireMfa": false, "exemptRoles": []})).await.expect(409, "CONFLICT");
    assert!(g.message().contains("no owner has signed in"), "{}", g.message());
    let ok = put_policy(&app, &org, json!({"authRequired": "sso", "requireMfa": false, "exemptRoles": ["owner", "owner"]})).await.expect(200, "OK");
    assert_eq!(ok.data()["exemptRoles"], json!(["owner"]));
    let e = app.get(&format!("/api/user/organizations/{org}/sso/enforcement")).await.expect(200, "OK");
    assert_eq!(e.data(), &json!({"enforced": true, "exemptRoles": ["owner"]}));
    // Lowering is always allowed, through either view.
    let off = app.send(app.client.put(app.url(&format!("/api/user/organizations/{org}/sso/enforcement"))).json(&json!({"enforced": false, "exemptRoles": []}))).await.expect(200, "OK");
    assert_eq!(off.data()["enforced"], false);
    assert_eq!(app.get(&security(&org)).await.data()["authRequired"], "any");
    assert!(app.audit_actions(&org).await.contains(&"security.policy.update".to_string()));
});

both!(sso every_policy_method_role_and_mfa_combination, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    configure(&app, &org, &idp.url).await;
    app.post(&format!("/api/user/organizations/{org}/settings/sso/test"), json!(null)).await.expect(200, "OK");
    let path = format!("/api/user/organizations/{org}");

    // Callers: password member / admin, an SSO member, keys minted in each kind of session, and MFA states.
    let (_, member_id) = app.other_user("member@acme.test").await;
    app.add_member(&org, &member_id, "member").await;
    let (_, admin_id) = app.other_user("admin@acme.test").await;
    app.add_member(&org, &admin_id, "admin").await;
    let (_, mfa_id) = app.other_user("mfa@acme.test").await;
    app.add_member(&org, &mfa_id, "member").await;
    let pw_member = password_browser(&app, "member@acme.test").await;
    let pw_admin = password_browser(&app, "admin@acme.test").await;
    let key_pw = new_key(&app, &pw_member).await;
    // The owner passes MFA, so it may change the policy while `mfa` applies to it too.
    enrol(&app, &app.client).await;
    // The org proves acme.test (after the password accounts above were made), so its IdP speaks for it.
    app.arrange_verified_domain(&org, "acme.test").await;
    idp.post("/scenario", json!({"sub": "s-sso", "email": "sso@acme.test"})).await;
    let sso = app.browser();
    let cb = start(&app, &sso, "acme").await;
    assert_eq!(finish(&sso, &cb).await, format!("/orgs/{org}"));
    let key_sso = new_key(&app, &sso).await;
    let mfa_browser = password_browser(&app, "mfa@acme.test").await;
    let secret = enrol(&app, &mfa_browser).await; // this browser passed MFA
    let key_mfa = new_key(&app, &mfa_browser).await; // minted after the second factor
    let partial = app.browser();
    let a = app.as_client(&partial, Method::POST, "/api/auth/signin", Some(json!({"email": "mfa@acme.test", "password": "correct horse battery"}))).await.expect(200, "OK");
    assert_eq!(a.data()["mfaPending"], true);
    let _ = secret;

    // (policy, caller, expected code)
    // Keys carry the second factor of the session that minted them: only `key_mfa` satisfies an MFA policy.
    let table: &[(Value, &[(&str, &str)])] = &[
        (json!({"authRequired": "any", "requireMfa": false, "exemptRoles": []}),
         &[("pw_member", "OK"), ("pw_admin", "OK"), ("sso", "OK"), ("key_pw", "OK"), ("key_sso", "OK"), ("key_mfa", "OK"), ("mfa_done", "OK"), ("mfa_partial", "MFA_REQUIRED")]),
        (json!({"authRequired": "mfa", "requireMfa": false, "exemptRoles": []}),
         &[("pw_member", "MFA_REQUIRED"), ("pw_admin", "MFA_REQUIRED"), ("sso", "MFA_REQUIRED"), ("key_pw", "MFA_REQUIRED"), ("key_sso", "MFA_REQUIRED"), ("key_mfa", "OK"), ("mfa_done", "OK"), ("mfa_partial", "MFA_REQUIRED")]),
        (json!({"authRequired": "any", "requireMfa": true, "exemptRoles": []}),
         &[("pw_member", "MFA_REQUIRED"), ("pw_admin", "MFA_REQUIRED"), ("sso", "MFA_REQUIRED"), ("key_pw", "MFA_REQUIRED"), ("key_sso", "MFA_REQUIRED"), ("key_mfa", "OK"), ("mfa_done", "OK"), ("mfa_partial", "MFA_REQUIRED")]),
        (json!({"authRequired": "sso", "requireMfa": false, "exemptRoles": ["owner", "admin"]}),
         &[("pw_member", "SSO_REQUIRED"), ("pw_admin", "OK"), ("sso", "OK"), ("key_pw", "SSO_REQUIRED"), ("key_sso", "OK"), ("key_mfa", "SSO_REQUIRED"), ("mfa_done", "SSO_REQUIRED"), ("mfa_partial", "MFA_REQUIRED")]),
        (json!({"authRequired": "sso", "requireMfa": true, "exemptRoles": ["owner"]}),
         &[("pw_member", "SSO_REQUIRED"), ("pw_admin", "SSO_REQUIRED"), ("sso", "MFA_REQUIRED"), ("key_pw", "SSO_REQUIRED"), ("key_sso", "MFA_REQUIRED"), ("key_mfa", "SSO_REQUIRED"), ("mfa_done", "SSO_REQUIRED"), ("mfa_partial", "MFA_REQUIRED")]),
    ];
    for (policy, expectations) in table {
        // The owner is exempt or signed in with a password under `any`; lowering first keeps the guard quiet.
        put_policy(&app, &org, json!({"authRequired": "any", "requireMfa": false, "exemptRoles": ["owner"]})).await.expect(200, "OK");
        put_policy(&app, &org, policy.clone()).await.expect(200, "OK");
        for (who, want) in expectations.iter() {
            let a = match *who {
                "pw_member" => call(&app, &pw_member, &path).await,
                "pw_admin" => call(&app, &pw_admin, &path).await,
                "sso" => call(&app, &sso, &path).await,
                "key_pw" => with_key(&app, &key_pw, &path).await,
                "key_sso" => with_key(&app, &key_sso, &path).await,
                "key_mfa" => with_key(&app, &key_mfa, &path).await,
                "mfa_done" => call(&app, &mfa_browser, &path).await,
                _ => call(&app, &partial, &path).await,
            };
            assert_eq!(a.code(), *want, "policy {policy}, caller {who}: {}", a.body);
            if *want == "SSO_REQUIRED" {
                assert!(a.message().contains("/api/auth/sso/acme/login"), "{}", a.message());
            }
        }
    }

    // Password sign-in under `sso`: refused for a member with a pointer to SSO, allowed for an exempt role.
    put_policy(&app, &org, json!({"authRequired": "any", "requireMfa": false, "exemptRoles": ["owner"]})).await.expect(200, "OK");
    put_policy(&app, &org, json!({"authRequired": "sso", "requireMfa": false, "exemptRoles": ["owner", "admin"]})).await.expect(200, "OK");
    let r = app.as_client(&app.browser(), Method::POST, "/api/auth/signin", Some(json!({"email": "member@acme.test", "password": "correct horse battery"}))).await;
    let r = r.expect(403, "SSO_REQUIRED");
    assert!(r.message().contains("/api/auth/sso/acme/login"), "{}", r.message());
    password_browser(&app, "admin@acme.test").await;
    // A wrong password never learns about the policy.
    app.as_client(&app.browser(), Method::POST, "/api/auth/signin", Some(json!({"email": "member@acme.test", "password": "wrong password!!"}))).await.expect(401, "INVALID_CREDENTIALS");

    // An SSO member under sso + requireMfa enrols in that session and gets in.
    put_policy(&app, &org, json!({"authRequired": "sso", "requireMfa": true, "exemptRoles": ["owner"]})).await.expect(200, "OK");
    call(&app, &sso, &path).await.expect(403, "MFA_REQUIRED");
    enrol(&app, &sso).await;
    call(&app, &sso, &path).await.expect(200, "OK");
});

both!(totp_enrolment_challenge_replay_recovery_and_disable, |app: TestApp| async move {
    app.sign_up("me@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let st = app.get("/api/auth/mfa").await.expect(200, "OK");
    assert_eq!(st.data()["enabled"], false);
    let e = app.post("/api/auth/mfa/enroll", json!(null)).await.expect(200, "OK");
    let secret = e.data()["secret"].as_str().unwrap().to_string();
    let wrong = app.post("/api/auth/mfa/enroll/confirm", json!({"code": "000000"})).await;
    if wrong.status != 200 {
        wrong.expect(422, "VALIDATION_ERROR");
    }
    let first = totp_code(&secret, 0);
    let codes = app.post("/api/auth/mfa/enroll/confirm", json!({"code": first})).await.expect(200, "OK");
    let codes: Vec<String> = codes.data().as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
    app.post("/api/auth/mfa/enroll", json!(null)).await.expect(409, "CONFLICT");
    // The secret is sealed at rest: its bytes are nowhere in the stored row.
    let raw: Vec<u8> = sqlx::query_scalar("SELECT secret FROM mfa_totp").fetch_one(&app.db).await.unwrap();
    let plain = totp_rs::Secret::try_from_base32(&secret).unwrap().as_bytes().to_vec();
    assert!(!raw.windows(plain.len()).any(|w| w == plain.as_slice()));

    // A new sign-in is intermediate until the challenge.
    let b = app.browser();
    let a = app.as_client(&b, Method::POST, "/api/auth/signin", Some(json!({"email": "me@acme.test", "password": "correct horse battery"}))).await.expect(200, "OK");
    assert_eq!(a.data()["mfaPending"], true);
    assert_eq!(call(&app, &b, "/api/user/me").await.expect(200, "OK").data()["mfaPending"], true);
    call(&app, &b, &format!("/api/user/organizations/{org}")).await.expect(403, "MFA_REQUIRED");
    call(&app, &b, "/api/user/api-keys").await.expect(403, "MFA_REQUIRED");
    // The code used at enrolment is spent (same step): refused.
    let r = app.as_client(&b, Method::POST, "/api/auth/mfa/challenge", Some(json!({"code": first}))).await.expect(422, "VALIDATION_ERROR");
    assert!(r.message().contains("already used"), "{}", r.message());
    let next = totp_code(&secret, 1);
    app.as_client(&b, Method::POST, "/api/auth/mfa/challenge", Some(json!({"code": next}))).await.expect(200, "OK");
    call(&app, &b, &format!("/api/user/organizations/{org}")).await.expect(200, "OK");
    // Replay of the same code in another browser: refused.
    let b2 = app.browser();
    app.as_client(&b2, Method::POST, "/api/auth/signin", Some(json!({"email": "me@acme.test", "password": "correct horse battery"}))).await.expect(200, "OK");
    app.as_client(&b2, Method::POST, "/api/auth/mfa/challenge", Some(json!({"code": next}))).await.expect(422, "VALIDATION_ERROR");
    // A recovery code works once.
    app.as_client(&b2, Method::POST, "/api/auth/mfa/challenge", Some(json!({"code": codes[0].to_uppercase()}))).await.expect(200, "OK");
    let b3 = app.browser();
    app.as_client(&b3, Method::POST, "/api/auth/signin", Some(json!({"email": "me@acme.test", "password": "correct horse battery"}))).await.expect(200, "OK");
    app.as_client(&b3, Method::POST, "/api/auth/mfa/challenge", Some(json!({"code": codes[0]}))).await.expect(422, "VALIDATION_ERROR");
    assert_eq!(app.as_client(&b2, Method::GET, "/api/auth/mfa", None).await.data()["recoveryCodesLeft"], 9);
    // Guessing is rate limited (per user, in the database).
    let mut limited = false;
    for _ in 0..8 {
        let a = app.as_client(&b3, Method::POST, "/api/auth/mfa/challenge", Some(json!({"code": "123456"}))).await;
        if a.status == 429 {
            assert_eq!(a.code(), "RATE_LIMITED");
            limited = true;
            break;
        }
    }
    assert!(limited, "wrong codes are rate limited");
    // Disable needs a code; afterwards sign-in is complete at once.
    app.as_client(&b2, Method::POST, "/api/auth/mfa/disable", Some(json!({"code": "999999"}))).await.expect(429, "RATE_LIMITED");
    sqlx::query("DELETE FROM rate_limits").execute(&app.db).await.unwrap();
    app.as_client(&b2, Method::POST, "/api/auth/mfa/disable", Some(json!({"code": codes[1]}))).await.expect(200, "OK");
    let b4 = app.browser();
    let a = app.as_client(&b4, Method::POST, "/api/auth/signin", Some(json!({"email": "me@acme.test", "password": "correct horse battery"}))).await.expect(200, "OK");
    assert_eq!(a.data()["mfaPending"], false);
    // API keys manage no second factor.
    let key = new_key(&app, &b4).await;
    app.send(app.browser().post(app.url("/api/auth/mfa/enroll")).header("X-Api-Key", key)).await.expect(403, "FORBIDDEN");
    let actions: Vec<String> = app::repo::audit::list_for_actor(&app.db, a.data()["id"].as_str().unwrap(), 200).await.unwrap().into_iter().map(|e| e.action).collect();
    for a in ["mfa.enable", "mfa.challenge", "mfa.disable"] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
});

both!(owners_list_and_revoke_member_sessions, |app: TestApp| async move {
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let (_, member_id) = app.other_user("member@acme.test").await;
    app.add_member(&org, &member_id, "member").await;
    let member = app.browser();
    app.send(
        member
            .post(app.url("/api/auth/signin"))
            .header("User-Agent", "MemberBrowser/1.0")
            .json(&json!({"email": "member@acme.test", "password": "correct horse battery"})),
    )
    .await
    .expect(200, "OK");
    let list = app.get(&format!("/api/user/organizations/{org}/sso/sessions")).await.expect(200, "OK");
    let s = list.data().as_array().unwrap().iter().find(|s| s["email"] == "member@acme.test" && s["userAgent"] == "MemberBrowser/1.0").cloned().expect("the member's session");
    assert_eq!((s["method"].as_str(), s["ip"].as_str(), s["mfaDone"].as_bool()), (Some("password"), Some("127.0.0.1"), Some(false)));
    for f in ["createdAt", "expiresAt", "lastSeenAt"] {
        assert!(s[f].is_string(), "{f}");
    }
    call(&app, &member, &format!("/api/user/organizations/{org}/sso/sessions")).await.expect(403, "FORBIDDEN");
    let id = s["id"].as_str().unwrap();
    // Another org's owner cannot touch it.
    let (other, _) = app.other_user("boss@else.test").await;
    let other_org = app.as_client(&other, Method::POST, "/api/user/organizations", Some(json!({"name": "Else", "slug": "else"}))).await;
    let other_org = other_org.data()["id"].as_str().unwrap().to_string();
    app.as_client(&other, Method::DELETE, &format!("/api/user/organizations/{other_org}/sso/sessions/{id}"), None).await.expect(404, "NOT_FOUND");
    call(&app, &member, "/api/user/me").await.expect(200, "OK");
    app.send(app.client.delete(app.url(&format!("/api/user/organizations/{org}/sso/sessions/{id}")))).await.expect(200, "OK");
    call(&app, &member, "/api/user/me").await.expect(401, "UNAUTHORIZED");
    assert!(app.audit_actions(&org).await.contains(&"session.revoke".to_string()));
});
