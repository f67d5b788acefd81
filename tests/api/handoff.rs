//! The hand-off to a registered application: sign-in through the IdP ends at the app's redirect URI with a
//! one-time token; the app redeems it (HTTP Basic) for a session token and a session JWT verified by an
//! independent library (npm jose) against the JWKS; every refusal; MFA handled by Latchkey or by the app.
use crate::applications::{make_operator, register};
use crate::both;
use crate::helpers::*;
use crate::security::totp_code;
use crate::sso_settings::{configure, forge};
use base64::Engine;
use reqwest::{Client, Method};
use serde_json::{json, Value};

const REDIRECT: &str = "http://127.0.0.1:9/app/callback";

fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

struct App {
    client_id: String,
    secret: String,
}

impl App {
    fn basic(&self) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.client_id, self.secret)))
    }
}

async fn registered(app: &TestApp, mfa: &str) -> App {
    let c = register(app, &app.client, REDIRECT, mfa).await;
    App { client_id: c["application"]["clientId"].as_str().unwrap().into(), secret: c["clientSecret"].as_str().unwrap().into() }
}

/// Starts a sign-in for `a` in `browser`, follows the forging IdP back, and returns where the callback sends it.
async fn sign_in(app: &TestApp, browser: &Client, slug: &str, a: &App, redirect: &str, state: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &a.client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", state)
        .finish();
    let r = browser.get(app.url(&format!("/api/auth/sso/{slug}/login?{q}"))).send().await.unwrap();
    let to_idp = location(&r);
    if to_idp.starts_with('/') {
        return to_idp; // refused before the IdP
    }
    let back = location(&browser.get(&to_idp).send().await.unwrap());
    location(&browser.get(&back).send().await.unwrap())
}

fn token_of(landing: &str, state: &str) -> String {
    assert!(landing.starts_with(REDIRECT), "landed at {landing}");
    let q: std::collections::HashMap<String, String> = url::Url::parse(landing).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q.get("token_type").map(String::as_str), Some("sso"));
    assert_eq!(q.get("state").map(String::as_str), Some(state));
    q["token"].clone()
}

async fn call(app: &TestApp, a: &App, path: &str, body: Value) -> Answer {
    call_at(&app.base, a, path, body).await
}

/// Like `call`, against the server at `base` (another node).
async fn call_at(base: &str, a: &App, path: &str, body: Value) -> Answer {
    Answer::from(client().post(format!("{base}{path}")).header("Authorization", a.basic()).json(&body).send().await.unwrap()).await
}

/// Starts the `latchkey` binary as a second server process on `config`'s database and key file; returns its URL.
async fn second_process(config: &latchkey::config::Config) -> (String, tokio::process::Child) {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    cmd.args(["--bind", "127.0.0.1:0", "--database-url", &config.database_url, "--allow-private-idp"])
        .arg("--key-file")
        .arg(&config.key_file)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(public) = &config.public_url {
        cmd.args(["--public-url", public]);
    }
    let mut child = cmd.spawn().expect("the latchkey binary runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(i) = line.find("listening on ") {
                return line[i + "listening on ".len()..].trim().to_string();
            }
        }
        panic!("the second node exited before listening")
    })
    .await
    .expect("the second node listens within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (base, child)
}

/// jose (npm) verifies the JWT against our JWKS: an independent implementation.
async fn jose_verify(app: &TestApp, a: &App, jwt: &str) -> Value {
    jose_verify_as(app, &app.base, a, jwt).await
}

/// Like `jose_verify`, with the issuer (the public URL) given.
async fn jose_verify_as(app: &TestApp, issuer: &str, a: &App, jwt: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/end2end/peers/verify-jwt.mjs");
    let out = tokio::process::Command::new("node")
        .args([script, &app.url("/.well-known/jwks.json"), issuer, &a.client_id, jwt])
        .output()
        .await
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("verify-jwt: {}", String::from_utf8_lossy(&out.stderr)))
}

async fn setup(app: &TestApp) -> (String, crate::peers::Peer) {
    let idp = forge().await;
    app.sign_up("ops@example.com").await;
    make_operator(app, "ops@example.com").await;
    let org = app.create_org("Acme", "acme").await;
    configure(app, &org, &idp.url).await;
    app.arrange_verified_domain(&org, "example.com").await;
    (org, idp)
}

both!(sso an_application_receives_the_signed_in_member, |app: TestApp| async move {
    let (org, idp) = setup(&app).await;
    let a = registered(&app, "latchkey").await;
    idp.post("/scenario", json!({"sub": "alice-sub", "email": "alice@example.com"})).await;
    let b = app.browser();
    let token = token_of(&sign_in(&app, &b, "acme", &a, REDIRECT, "xyz 1/2").await, "xyz 1/2");
    assert!(token.len() >= 40);

    let body = json!({"ssoToken": token, "sessionDurationMinutes": 30, "sessionCustomClaims": {"plan": "gold"}});
    let r = call(&app, &a, "/api/auth/sso/authenticate", body.clone()).await.expect(200, "OK");
    let d = r.data().clone();
    assert_eq!(d["memberAuthenticated"], true);
    assert!(d["sessionToken"].as_str().unwrap().starts_with("lkst_"));
    assert!(d["intermediateSessionToken"].is_null());
    assert_eq!(d["member"]["email"], "alice@example.com");
    assert_eq!((d["member"]["role"].as_str(), d["member"]["status"].as_str()), (Some("member"), Some("active")));
    assert_eq!(d["organization"], json!({"id": org, "slug": "acme", "name": "Acme"}));
    assert_eq!((d["protocol"].as_str(), d["subject"].as_str(), d["provisioned"].as_bool()), (Some("oidc"), Some("alice-sub"), Some(true)));
    assert!(d["connectionId"].is_string());

    // The JWT, checked by jose against /.well-known/jwks.json.
    let v = jose_verify(&app, &a, d["sessionJwt"].as_str().unwrap()).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["header"]["alg"], "EdDSA");
    let p = &v["payload"];
    assert_eq!((p["sub"].as_str(), p["aud"].as_str(), p["iss"].as_str()), (d["member"]["id"].as_str(), Some(a.client_id.as_str()), Some(app.base.as_str())));
    assert_eq!((p["org_id"].as_str(), p["org_slug"].as_str(), p["role"].as_str()), (Some(org.as_str()), Some("acme"), Some("member")));
    assert_eq!(p["amr"], json!(["sso"]));
    assert_eq!(p["plan"], "gold");
    assert_eq!(p["exp"].as_i64().unwrap() - p["iat"].as_i64().unwrap(), 300);
    let jwks = app.client.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert!(jwks.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    // Another audience is refused by jose too.
    let other = App { client_id: "app_other".into(), secret: String::new() };
    assert_eq!(jose_verify(&app, &other, d["sessionJwt"].as_str().unwrap()).await["ok"], false);

    // The token is single use; the first session is unaffected.
    call(&app, &a, "/api/auth/sso/authenticate", body).await.expect(401, "INVALID_TOKEN");
    let s = call(&app, &a, "/api/auth/sessions/authenticate", json!({"sessionToken": d["sessionToken"]})).await.expect(200, "OK");
    assert_eq!(s.data()["member"]["email"], "alice@example.com");
    call(&app, &a, "/api/auth/sessions/authenticate", json!({"sessionJwt": d["sessionJwt"]})).await.expect(200, "OK");
    // The session is a row of the org's Sessions page; an owner revoking it ends it for the app at once.
    let sessions = app.get(&format!("/api/user/organizations/{org}/sso/sessions")).await.expect(200, "OK");
    let sid = p["sid"].as_str().unwrap();
    let row = sessions.data().as_array().unwrap().iter().find(|s| s["id"] == sid).cloned().unwrap_or_else(|| panic!("{}", sessions.body));
    assert_eq!(row["application"], "Acme CRM", "the Sessions page names the application");
    app.send(app.client.delete(app.url(&format!("/api/user/organizations/{org}/sso/sessions/{sid}")))).await.expect(200, "OK");
    call(&app, &a, "/api/auth/sessions/authenticate", json!({"sessionToken": d["sessionToken"]})).await.expect(401, "INVALID_TOKEN");
    call(&app, &a, "/api/auth/sessions/authenticate", json!({"sessionJwt": d["sessionJwt"]})).await.expect(401, "INVALID_TOKEN");

    // The app revokes a session itself.
    let t2 = token_of(&sign_in(&app, &app.browser(), "acme", &a, REDIRECT, "s2").await, "s2");
    let d2 = call(&app, &a, "/api/auth/sso/authenticate", json!({"ssoToken": t2})).await.expect(200, "OK").data().clone();
    assert_eq!(d2["provisioned"], false, "the same subject returns");
    call(&app, &a, "/api/auth/sessions/revoke", json!({"sessionToken": d2["sessionToken"]})).await.expect(200, "OK");
    call(&app, &a, "/api/auth/sessions/authenticate", json!({"sessionToken": d2["sessionToken"]})).await.expect(401, "INVALID_TOKEN");
});

both!(sso every_refusal_of_the_hand_off, |app: TestApp| async move {
    let (_org, idp) = setup(&app).await;
    let a = registered(&app, "latchkey").await;
    let other = registered(&app, "latchkey").await;
    idp.post("/scenario", json!({"sub": "bob-sub", "email": "bob@example.com"})).await;
    // Unknown client and near-miss redirect URIs: Latchkey's error page, never a redirect to them.
    let unknown = App { client_id: "app_nope".into(), secret: "lks_x".into() };
    assert_eq!(sign_in(&app, &app.browser(), "acme", &unknown, REDIRECT, "s").await, "/auth/error?code=application_invalid");
    for near in ["http://127.0.0.1:9/app/callback/", "http://127.0.0.1:9/app/callback/x", "http://127.0.0.1:9/app/callback?x=1",
        "http://127.0.0.1:10/app/callback", "http://127.0.0.1:9/APP/callback", "http://localhost:9/app/callback", "https://evil.example/cb"] {
        assert_eq!(sign_in(&app, &app.browser(), "acme", &a, near, "s").await, "/auth/error?code=application_invalid", "{near}");
    }
    // Another app's token: refused, and not burned for its owner.
    let t = token_of(&sign_in(&app, &app.browser(), "acme", &a, REDIRECT, "s").await, "s");
    call(&app, &other, "/api/auth/sso/authenticate", json!({"ssoToken": t})).await.expect(401, "INVALID_TOKEN");
    // Wrong or missing client credentials.
    let wrong = App { client_id: a.client_id.clone(), secret: other.secret.clone() };
    call(&app, &wrong, "/api/auth/sso/authenticate", json!({"ssoToken": t})).await.expect(401, "INVALID_CLIENT");
    app.send(app.browser().post(app.url("/api/auth/sso/authenticate")).json(&json!({"ssoToken": t}))).await.expect(401, "INVALID_CLIENT");
    // A reserved claim, an oversized set, a duration past the app's maximum: 422 naming the field; nothing burned.
    let r = call(&app, &a, "/api/auth/sso/authenticate", json!({"ssoToken": t, "sessionCustomClaims": {"sub": "admin"}})).await.expect(422, "VALIDATION_ERROR");
    assert!(r.message().contains("\"sub\""), "{}", r.message());
    call(&app, &a, "/api/auth/sso/authenticate", json!({"ssoToken": t, "sessionCustomClaims": {"big": "x".repeat(5000)}})).await.expect(422, "VALIDATION_ERROR");
    call(&app, &a, "/api/auth/sso/authenticate", json!({"ssoToken": t, "sessionDurationMinutes": 999999})).await.expect(422, "VALIDATION_ERROR");
    let s = call(&app, &a, "/api/auth/sso/authenticate", json!({"ssoToken": t})).await.expect(200, "OK").data().clone();
    // A session token (or JWT) used by another application: unknown to it.
    call(&app, &other, "/api/auth/sessions/authenticate", json!({"sessionToken": s["sessionToken"]})).await.expect(401, "INVALID_TOKEN");
    call(&app, &other, "/api/auth/sessions/authenticate", json!({"sessionJwt": s["sessionJwt"]})).await.expect(401, "INVALID_TOKEN");
    call(&app, &other, "/api/auth/sessions/revoke", json!({"sessionToken": s["sessionToken"]})).await.expect(401, "INVALID_TOKEN");
    call(&app, &a, "/api/auth/sessions/authenticate", json!({"sessionToken": s["sessionToken"]})).await.expect(200, "OK");
    // The session check reads the client's secret with the session: a wrong secret, a made-up client id or none at
    // all is INVALID_CLIENT whatever the body says (a live session, its JWT, nothing, or not JSON at all).
    let made_up = App { client_id: "app_nope".into(), secret: a.secret.clone() };
    for bad in [&wrong, &made_up] {
        for body in [json!({"sessionToken": s["sessionToken"]}), json!({"sessionJwt": s["sessionJwt"]}), json!({}), json!({"sessionJwt": "not.a.jwt"})] {
            call(&app, bad, "/api/auth/sessions/authenticate", body).await.expect(401, "INVALID_CLIENT");
        }
        let raw = client().post(app.url("/api/auth/sessions/authenticate")).header("Authorization", bad.basic()).header("content-type", "application/json").body("{");
        Answer::from(raw.send().await.unwrap()).await.expect(401, "INVALID_CLIENT");
    }
    app.send(app.browser().post(app.url("/api/auth/sessions/authenticate")).json(&json!({"sessionToken": s["sessionToken"]}))).await.expect(401, "INVALID_CLIENT");
    // The right client with a body it must fix: told so.
    call(&app, &a, "/api/auth/sessions/authenticate", json!({})).await.expect(422, "VALIDATION_ERROR");
    // Expired.
    let t = token_of(&sign_in(&app, &app.browser(), "acme", &a, REDIRECT, "s").await, "s");
    sqlx::query("UPDATE sso_tokens SET expires_at = 1").execute(&app.db).await.unwrap();
    call(&app, &a, "/api/auth/sso/authenticate", json!({"ssoToken": t})).await.expect(401, "INVALID_TOKEN");
    // A rotated secret works during its grace, not after.
    let id: String = sqlx::query_scalar("SELECT id FROM applications WHERE client_id = $1").bind(&a.client_id).fetch_one(&app.db).await.unwrap();
    let rotated = app.post(&format!("/api/admin/applications/{id}/secrets"), json!(null)).await.expect(201, "OK");
    let fresh = App { client_id: a.client_id.clone(), secret: rotated.data()["clientSecret"].as_str().unwrap().into() };
    let t = token_of(&sign_in(&app, &app.browser(), "acme", &a, REDIRECT, "s").await, "s");
    call(&app, &a, "/api/auth/sessions/authenticate", json!({"sessionToken": "lkst_unknown"})).await.expect(401, "INVALID_TOKEN");
    sqlx::query("UPDATE application_secrets SET expires_at = 1 WHERE expires_at IS NOT NULL").execute(&app.db).await.unwrap();
    call(&app, &a, "/api/auth/sso/authenticate", json!({"ssoToken": t})).await.expect(401, "INVALID_CLIENT");
    let s = call(&app, &fresh, "/api/auth/sso/authenticate", json!({"ssoToken": t})).await.expect(200, "OK").data().clone();
    // The session check takes the new secret, and not the old one once its grace is over.
    call(&app, &fresh, "/api/auth/sessions/authenticate", json!({"sessionToken": s["sessionToken"]})).await.expect(200, "OK");
    call(&app, &a, "/api/auth/sessions/authenticate", json!({"sessionToken": s["sessionToken"]})).await.expect(401, "INVALID_CLIENT");
});

both!(sso a_second_factor_is_passed_before_the_member_is_authenticated, |app: TestApp| async move {
    let (org, idp) = setup(&app).await;
    // Carol signs in once and enrols TOTP in her console session.
    idp.post("/scenario", json!({"sub": "carol-sub", "email": "carol@example.com"})).await;
    let carol = app.browser();
    let cb = crate::sso_login::start(&app, &carol, "acme").await;
    assert_eq!(crate::sso_login::finish(&carol, &cb).await, format!("/orgs/{org}"));
    let e = app.as_client(&carol, Method::POST, "/api/auth/mfa/enroll", Some(json!(null))).await.expect(200, "OK");
    let secret = e.data()["secret"].as_str().unwrap().to_string();
    let codes = app.as_client(&carol, Method::POST, "/api/auth/mfa/enroll/confirm", Some(json!({"code": totp_code(&secret, 0)}))).await.expect(200, "OK");
    let recovery = codes.data()[0].as_str().unwrap().to_string();

    // mfaHandling = latchkey: Latchkey's /mfa first, then the hand-off continues to the app.
    let a = registered(&app, "latchkey").await;
    let b = app.browser();
    let landing = sign_in(&app, &b, "acme", &a, REDIRECT, "m1").await;
    assert!(landing.starts_with("/mfa?next="), "{landing}");
    let next = url::Url::parse(&format!("http://x{landing}")).unwrap().query_pairs().find(|(k, _)| k == "next").unwrap().1.to_string();
    assert!(next.starts_with("/api/auth/sso/handoff?h="), "{next}");
    // Not before the factor.
    assert_eq!(location(&b.get(app.url(&next)).send().await.unwrap()), "/auth/error?code=sso_state_invalid");
    let landing = sign_in(&app, &b, "acme", &a, REDIRECT, "m1").await;
    let next = url::Url::parse(&format!("http://x{landing}")).unwrap().query_pairs().find(|(k, _)| k == "next").unwrap().1.to_string();
    // (A recovery code here; the current TOTP step went to enrolment and the next one is kept for the app below.)
    app.as_client(&b, Method::POST, "/api/auth/mfa/challenge", Some(json!({"code": recovery}))).await.expect(200, "OK");
    let token = token_of(&location(&b.get(app.url(&next)).send().await.unwrap()), "m1");
    let d = call(&app, &a, "/api/auth/sso/authenticate", json!({"ssoToken": token})).await.expect(200, "OK").data().clone();
    assert_eq!(d["memberAuthenticated"], true);
    assert_eq!(jose_verify(&app, &a, d["sessionJwt"].as_str().unwrap()).await["payload"]["amr"], json!(["sso", "otp"]));
    // Another browser cannot resume that hand-off.
    assert_eq!(location(&app.browser().get(app.url(&next)).send().await.unwrap()), "/auth/error?code=sso_state_invalid");

    // mfaHandling = app: an intermediate session at once; the app runs the TOTP step through the API.
    let m = registered(&app, "app").await;
    let token = token_of(&sign_in(&app, &app.browser(), "acme", &m, REDIRECT, "m2").await, "m2");
    let d = call(&app, &m, "/api/auth/sso/authenticate", json!({"ssoToken": token})).await.expect(200, "OK").data().clone();
    assert_eq!(d["memberAuthenticated"], false);
    assert!(d["sessionToken"].is_null() && d["sessionJwt"].is_null());
    let inter = d["intermediateSessionToken"].as_str().unwrap().to_string();
    call(&app, &m, "/api/auth/sessions/authenticate", json!({"sessionToken": inter})).await.expect(401, "INVALID_TOKEN");
    call(&app, &m, "/api/auth/mfa/totp/authenticate", json!({"intermediateSessionToken": inter, "code": "000000"})).await.expect(422, "VALIDATION_ERROR");
    let done = call(&app, &m, "/api/auth/mfa/totp/authenticate", json!({"intermediateSessionToken": inter, "code": totp_code(&secret, 1)})).await.expect(200, "OK");
    assert_eq!(done.data()["memberAuthenticated"], true);
    assert_eq!(jose_verify(&app, &m, done.data()["sessionJwt"].as_str().unwrap()).await["ok"], true);
    call(&app, &m, "/api/auth/sessions/authenticate", json!({"sessionToken": inter})).await.expect(200, "OK");
});

fn kid(jwt: &str) -> String {
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_string()
}

both!(sso login_url_routes_by_domain_and_a_rotated_key_keeps_its_tokens_valid, |app: TestApp| async move {
    let (org, idp) = setup(&app).await;
    let a = registered(&app, "latchkey").await;
    // The connection is untested (not active): no route yet.
    call(&app, &a, "/api/auth/sso/login-url", json!({"domain": "example.com"})).await.expect(404, "NOT_FOUND");
    app.post(&format!("/api/user/organizations/{org}/settings/sso/test"), json!(null)).await.expect(200, "OK");
    call(&app, &a, "/api/auth/sso/login-url", json!({"domain": "nobody.example"})).await.expect(404, "NOT_FOUND");
    call(&app, &a, "/api/auth/sso/login-url", json!({"domain": "example.com", "redirectUri": "https://evil.example/cb"})).await.expect(422, "VALIDATION_ERROR");
    app.send(app.browser().post(app.url("/api/auth/sso/login-url")).json(&json!({"domain": "example.com"}))).await.expect(401, "INVALID_CLIENT");
    let r = call(&app, &a, "/api/auth/sso/login-url", json!({"domain": "EXAMPLE.com", "state": "st"})).await.expect(200, "OK");
    assert_eq!(r.data()["protocol"], "oidc");
    assert!(r.data()["connectionId"].is_string());
    let authorize = r.data()["authorizeUrl"].as_str().unwrap().to_string();
    assert!(authorize.starts_with(&format!("{}/api/auth/sso/acme/login?client_id={}", app.base, a.client_id)), "{authorize}");
    // Following it ends in a hand-off.
    idp.post("/scenario", json!({"sub": "erin-sub", "email": "erin@example.com"})).await;
    let b = app.browser();
    let to_idp = location(&b.get(&authorize).send().await.unwrap());
    let back = location(&b.get(&to_idp).send().await.unwrap());
    let token = token_of(&location(&b.get(&back).send().await.unwrap()), "st");
    let d = call(&app, &a, "/api/auth/sso/authenticate", json!({"ssoToken": token})).await.expect(200, "OK").data().clone();
    let old_jwt = d["sessionJwt"].as_str().unwrap().to_string();

    // Rotation from the command line: new tokens use the new key, the old key stays listed for its tokens.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("--database-url").arg(&app.config.database_url).arg("--key-file").arg(&app.config.key_file)
        .args(["keys", "rotate"]).env("RUST_LOG", "error").output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jwks: Value = app.client.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids.len(), 2, "{jwks}");
    assert!(kids.contains(&kid(&old_jwt).as_str()));
    assert_eq!(jose_verify(&app, &a, &old_jwt).await["ok"], true, "a token of the retired key still verifies");
    let fresh = call(&app, &a, "/api/auth/sessions/authenticate", json!({"sessionJwt": old_jwt})).await.expect(200, "OK");
    let new_jwt = fresh.data()["sessionJwt"].as_str().unwrap();
    assert_ne!(kid(new_jwt), kid(&old_jwt));
    assert_eq!(jose_verify(&app, &a, new_jwt).await["ok"], true);
});

/// Two server processes on one database (sharing the key file and public URL, as several nodes must): a sign-in
/// started on one finishes on the other, the token is redeemed there, and a session revoked on one node fails on
/// the other at once.
async fn two_nodes(backend: Backend) {
    let Some((mut config, dir)) = config(backend).await else { return };
    config.allow_private_idp = true;
    // Both nodes sit behind one public URL (the load balancer's); the test plays the balancer.
    const PUBLIC: &str = "http://localhost:1";
    config.public_url = Some(PUBLIC.into());
    let a_node = spawn_with(config.clone(), dir).await;
    let (b_base, _b_process) = second_process(&config).await;
    let (org, idp) = setup(&a_node).await;
    let _ = org;
    let a = registered(&a_node, "latchkey").await;
    idp.post("/scenario", json!({"sub": "nina-sub", "email": "nina@example.com"})).await;
    let browser = a_node.browser();
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &a.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "two")
        .finish();
    let to_idp = location(&browser.get(a_node.url(&format!("/api/auth/sso/acme/login?{q}"))).send().await.unwrap());
    let callback = location(&browser.get(&to_idp).send().await.unwrap());
    // The load balancer sends the callback to the other node.
    let on_b = callback.replacen(PUBLIC, &b_base, 1);
    assert_ne!(on_b, callback);
    let token = token_of(&location(&browser.get(&on_b).send().await.unwrap()), "two");
    let d = call_at(&b_base, &a, "/api/auth/sso/authenticate", json!({"ssoToken": token})).await.expect(200, "OK").data().clone();
    call(&a_node, &a, "/api/auth/sso/authenticate", json!({"ssoToken": token})).await.expect(401, "INVALID_TOKEN");
    call(&a_node, &a, "/api/auth/sessions/authenticate", json!({"sessionJwt": d["sessionJwt"]})).await.expect(200, "OK");
    assert_eq!(jose_verify_as(&a_node, PUBLIC, &a, d["sessionJwt"].as_str().unwrap()).await["ok"], true, "one key for every node");
    call_at(&b_base, &a, "/api/auth/sessions/revoke", json!({"sessionToken": d["sessionToken"]})).await.expect(200, "OK");
    call(&a_node, &a, "/api/auth/sessions/authenticate", json!({"sessionToken": d["sessionToken"]})).await.expect(401, "INVALID_TOKEN");
    call(&a_node, &a, "/api/auth/sessions/authenticate", json!({"sessionJwt": d["sessionJwt"]})).await.expect(401, "INVALID_TOKEN");
}

#[tokio::test]
async fn a_sign_in_started_on_one_node_finishes_on_another_sqlite() {
    two_nodes(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_sign_in_started_on_one_node_finishes_on_another_postgres() {
    two_nodes(Backend::Postgres).await;
}

both!(sso a_password_sign_in_hands_off_and_the_policy_still_holds, |app: TestApp| async move {
    let (org, _idp) = setup(&app).await;
    let a = registered(&app, "latchkey").await;
    let (_, pat_id) = app.other_user("pat@elsewhere.test").await;
    app.add_member(&org, &pat_id, "member").await;
    let signin = |client_id: &str, redirect: &str| {
        json!({"email": "pat@elsewhere.test", "password": "correct horse battery", "clientId": client_id, "redirectUri": redirect, "state": "pw"})
    };
    // The hosted sign-in page carries the application's parameters from the email step to the password step.
    let q = format!("email=pat%40elsewhere.test&client_id={}&redirect_uri={}&state=pw", a.client_id, url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>());
    let r = app.browser().get(app.url(&format!("/signin/continue?{q}"))).send().await.unwrap();
    assert_eq!(location(&r), format!("/signin?{q}"));

    let r = app.as_client(&app.browser(), Method::POST, "/api/auth/signin", Some(signin(&a.client_id, REDIRECT))).await.expect(200, "OK");
    let token = token_of(r.data()["redirectTo"].as_str().unwrap(), "pw");
    let d = call(&app, &a, "/api/auth/sso/authenticate", json!({"ssoToken": token})).await.expect(200, "OK").data().clone();
    assert_eq!((d["member"]["email"].as_str(), d["organization"]["slug"].as_str()), (Some("pat@elsewhere.test"), Some("acme")));
    assert_eq!(d["amr"], json!(["pwd"]));
    assert!(d["connectionId"].is_null());
    // Unknown application or unregistered redirect: 422, no hand-off.
    app.as_client(&app.browser(), Method::POST, "/api/auth/signin", Some(signin("app_nope", REDIRECT))).await.expect(422, "VALIDATION_ERROR");
    app.as_client(&app.browser(), Method::POST, "/api/auth/signin", Some(signin(&a.client_id, "https://evil.example/cb"))).await.expect(422, "VALIDATION_ERROR");
    // An organization the user is not a member of: 422, no hand-off into it.
    let mut other_org = signin(&a.client_id, REDIRECT);
    other_org["organization"] = json!("someone-elses-org");
    app.as_client(&app.browser(), Method::POST, "/api/auth/signin", Some(other_org)).await.expect(422, "VALIDATION_ERROR");

    // An sso-only org never hands back a password session of a non-exempt member.
    app.post(&format!("/api/user/organizations/{org}/settings/sso/test"), json!(null)).await.expect(200, "OK");
    let sec = format!("/api/user/organizations/{org}/settings/security");
    app.send(app.client.put(app.url(&sec)).json(&json!({"authRequired": "sso", "requireMfa": false, "exemptRoles": ["owner"]}))).await.expect(200, "OK");
    app.as_client(&app.browser(), Method::POST, "/api/auth/signin", Some(signin(&a.client_id, REDIRECT))).await.expect(403, "SSO_REQUIRED");
    // An MFA org never authenticates the member before the factor: Latchkey's /mfa comes first.
    app.send(app.client.put(app.url(&sec)).json(&json!({"authRequired": "mfa", "requireMfa": false, "exemptRoles": []}))).await.expect(200, "OK");
    let r = app.as_client(&app.browser(), Method::POST, "/api/auth/signin", Some(signin(&a.client_id, REDIRECT))).await.expect(200, "OK");
    assert!(r.data()["redirectTo"].as_str().unwrap().starts_with("/mfa?next=%2Fapi%2Fauth%2Fsso%2Fhandoff"), "{}", r.body);
});
