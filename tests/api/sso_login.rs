//! OIDC sign-in through the shared callback: the happy path against the real oidc-provider, and every
//! negative case against the forging IdP, each with its stable code and no session.
use crate::both;
use crate::helpers::*;
use crate::peers::Peer;
use crate::sso_settings::{configure, forge};
use reqwest::{Client, Method};
use serde_json::json;

pub fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// Starts SSO for `slug` in `browser` and follows the forging IdP straight back: returns the callback URL.
pub async fn start(app: &TestApp, browser: &Client, slug: &str) -> String {
    let login = browser.get(app.url(&format!("/api/auth/sso/{slug}/login"))).send().await.unwrap();
    assert_eq!(login.status(), 303, "login redirects to the IdP");
    let to_idp = location(&login);
    let q: std::collections::HashMap<String, String> = url::Url::parse(&to_idp).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].split(' ').collect::<std::collections::HashSet<_>>() == ["openid", "profile", "email"].into());
    assert_eq!(q["redirect_uri"], format!("{}/api/auth/sso/callback", app.base));
    assert!(q["state"].len() >= 16 && q["nonce"].len() >= 16);
    let back = browser.get(&to_idp).send().await.unwrap();
    location(&back)
}

/// Presents the callback; returns where Latchkey sends the browser.
pub async fn finish(browser: &Client, callback: &str) -> String {
    let r = browser.get(callback).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    location(&r)
}

async fn setup(app: &TestApp, idp: &Peer) -> String {
    app.sign_up("owner@example.com").await;
    let org = app.create_org("Forge Org", "forge-org").await;
    configure(app, &org, &idp.url).await;
    app.arrange_verified_domain(&org, "example.com").await;
    org
}

pub async fn signed_in(app: &TestApp, browser: &Client) -> Option<serde_json::Value> {
    let a = app.as_client(browser, Method::GET, "/api/user/me", None).await;
    (a.status == 200).then(|| a.data().clone())
}

async fn expect_failure(app: &TestApp, idp: &Peer, scenario: serde_json::Value, code: &str) {
    idp.post("/scenario", scenario.clone()).await;
    let browser = app.browser();
    let callback = start(app, &browser, "forge-org").await;
    assert_eq!(finish(&browser, &callback).await, format!("/auth/error?code={code}"), "scenario {scenario}");
    assert!(signed_in(app, &browser).await.is_none(), "no session after {scenario}");
}

both!(sso jit_user_signs_in_and_returns_by_subject, |app: TestApp| async move {
    let idp = forge().await;
    let org = setup(&app, &idp).await;
    idp.post("/scenario", json!({"sub": "s-1", "email": "jit@example.com"})).await;
    let browser = app.browser();
    let callback = start(&app, &browser, "forge-org").await;
    assert_eq!(finish(&browser, &callback).await, format!("/orgs/{org}"));
    let me = signed_in(&app, &browser).await.expect("signed in");
    assert_eq!(me["email"], "jit@example.com");
    assert_eq!(me["authMethod"], "sso");
    let members = app.get(&format!("/api/user/organizations/{org}/members")).await.expect(200, "OK");
    let jit = members.data().as_array().unwrap().iter().find(|m| m["email"] == "jit@example.com").cloned().unwrap();
    assert_eq!((jit["role"].as_str(), jit["status"].as_str()), (Some("member"), Some("active")));
    assert!(app.audit_actions(&org).await.contains(&"member.jit_provision".into()));

    // The email changes at the IdP; the subject does not: the same user signs in.
    idp.post("/scenario", json!({"sub": "s-1", "email": "renamed@example.com"})).await;
    let again = app.browser();
    let callback = start(&app, &again, "forge-org").await;
    assert_eq!(finish(&again, &callback).await, format!("/orgs/{org}"));
    assert_eq!(signed_in(&app, &again).await.unwrap()["id"], me["id"]);

    // A validated relative return path is honoured; another origin is not.
    let b3 = app.browser();
    b3.get(app.url("/api/auth/sso/forge-org/login?returnTo=/account")).send().await.unwrap();
    let r = b3.get(app.url("/api/auth/sso/forge-org/login?returnTo=/account")).send().await.unwrap();
    let back = location(&b3.get(location(&r)).send().await.unwrap());
    assert_eq!(finish(&b3, &back).await, "/account");
    let b4 = app.browser();
    let r = b4.get(app.url("/api/auth/sso/forge-org/login?returnTo=//evil.example/x")).send().await.unwrap();
    let back = location(&b4.get(location(&r)).send().await.unwrap());
    assert_eq!(finish(&b4, &back).await, format!("/orgs/{org}"));
});

both!(sso state_must_be_known_fresh_unused_and_from_this_browser, |app: TestApp| async move {
    let idp = forge().await;
    setup(&app, &idp).await;
    // Replayed: the same callback twice.
    let b = app.browser();
    let callback = start(&app, &b, "forge-org").await;
    assert!(finish(&b, &callback).await.starts_with("/orgs/"));
    app.as_client(&b, Method::POST, "/api/auth/signout", None).await.expect(200, "OK");
    assert_eq!(finish(&b, &callback).await, "/auth/error?code=sso_state_invalid");
    assert!(signed_in(&app, &b).await.is_none());
    // Unknown state.
    let forged = format!("{}/api/auth/sso/callback?code=abc&state=made-up-state-value", app.base);
    assert_eq!(finish(&b, &forged).await, "/auth/error?code=sso_state_invalid");
    // Expired: the flow's deadline has passed.
    let callback = start(&app, &b, "forge-org").await;
    let state = url::Url::parse(&callback).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.to_string();
    app::repo::flows::set_expiry(&app.db, &app::service::crypto::sha256_hex(&state), app::service::now_ms() - 1).await.unwrap();
    assert_eq!(finish(&b, &callback).await, "/auth/error?code=sso_state_invalid");
    assert!(signed_in(&app, &b).await.is_none());
    // Foreign browser: a valid, fresh callback presented by another browser (no binding cookie).
    let callback = start(&app, &b, "forge-org").await;
    let attacker = app.browser();
    assert_eq!(finish(&attacker, &callback).await, "/auth/error?code=sso_state_invalid");
    assert!(signed_in(&app, &attacker).await.is_none());
    assert!(signed_in(&app, &b).await.is_none());
    // ... and the leaked state was not burned: the browser that started the flow still finishes it.
    assert!(finish(&b, &callback).await.starts_with("/orgs/"), "the foreign attempt must not consume the flow");
    assert!(signed_in(&app, &b).await.is_some());
    // A binding per flow: two tabs of one browser sign in at once, each with its own fresh cookie.
    let c = app.browser();
    let first = c.get(app.url("/api/auth/sso/forge-org/login")).send().await.unwrap();
    let second = c.get(app.url("/api/auth/sso/forge-org/login")).send().await.unwrap();
    let cookie = |r: &reqwest::Response| r.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    let (c1, c2) = (cookie(&first), cookie(&second));
    assert!(c1.starts_with("latchkey_sso_") && c1.contains("HttpOnly") && c1.contains("SameSite=Lax"), "{c1}");
    assert_ne!(c1.split('=').next(), c2.split('=').next(), "each flow has its own binding cookie");
    let cb1 = location(&c.get(location(&first)).send().await.unwrap());
    let cb2 = location(&c.get(location(&second)).send().await.unwrap());
    assert!(finish(&c, &cb2).await.starts_with("/orgs/"));
    assert!(finish(&c, &cb1).await.starts_with("/orgs/"), "starting a second flow does not break the first");
});

both!(sso the_issuer_parameter_must_name_the_connections_issuer, |app: TestApp| async move {
    // RFC 9207: an `iss` in the authorization response that is not the connection's issuer is a mix-up attack.
    let idp = forge().await;
    setup(&app, &idp).await;
    idp.post("/scenario", json!({"sub": "iss-1", "email": "iss@example.com"})).await;
    let b = app.browser();
    let callback = start(&app, &b, "forge-org").await;
    let evil = format!("{callback}&iss={}", url::form_urlencoded::byte_serialize(b"https://evil.example").collect::<String>());
    assert_eq!(finish(&b, &evil).await, "/auth/error?code=oauth_issuer_mismatch");
    assert!(signed_in(&app, &b).await.is_none());
    // The right issuer passes.
    let callback = start(&app, &b, "forge-org").await;
    let good = format!("{callback}&iss={}", url::form_urlencoded::byte_serialize(idp.url.as_bytes()).collect::<String>());
    assert!(finish(&b, &good).await.starts_with("/orgs/"));
});

both!(sso forged_and_broken_id_tokens_are_refused, |app: TestApp| async move {
    let idp = forge().await;
    setup(&app, &idp).await;
    for name in ["wrong_nonce", "bad_signature", "alg_none", "hs256", "wrong_iss", "wrong_aud", "expired", "future_iat", "azp_mismatch"] {
        expect_failure(&app, &idp, json!({"name": name}), "oauth_id_token_invalid").await;
    }
});

both!(sso idp_errors_map_to_stable_codes, |app: TestApp| async move {
    let idp = forge().await;
    let org = setup(&app, &idp).await;
    expect_failure(&app, &idp, json!({"name": "denied"}), "oauth_access_denied").await;
    expect_failure(&app, &idp, json!({"name": "token_error"}), "oauth_token_exchange_error").await;
    expect_failure(&app, &idp, json!({"name": "userinfo_error"}), "oauth_fetch_user_error").await;
    expect_failure(&app, &idp, json!({"name": "unverified", "sub": "u-2", "email": "u2@example.com"}), "oauth_email_unverified").await;
    // Email outside the connection's domains.
    sqlx::query("UPDATE connections SET domains = '[\"corp.example\"]'").execute(&app.db).await.unwrap();
    expect_failure(&app, &idp, json!({"sub": "u-3", "email": "u3@elsewhere.example"}), "oauth_email_domain_mismatch").await;
    sqlx::query("UPDATE connections SET domains = '[]'").execute(&app.db).await.unwrap();
    // JIT off: a new user is told to ask the admin.
    sqlx::query("UPDATE connections SET jit_provisioning = 0").execute(&app.db).await.unwrap();
    expect_failure(&app, &idp, json!({"sub": "u-4", "email": "u4@example.com"}), "sso_user_not_provisioned").await;
    sqlx::query("UPDATE connections SET jit_provisioning = 1").execute(&app.db).await.unwrap();
    // An address at a domain the org has not verified is refused: the IdP does not speak for it.
    expect_failure(&app, &idp, json!({"sub": "u-5", "email": "u5@unverified.example"}), "sso_domain_not_verified").await;
    // Every failure is in the org's audit log.
    let failures: Vec<String> = app::repo::audit::list_for_org(&app.db, &org, 100).await.unwrap().into_iter()
        .filter(|e| e.action == "sso.login" && e.outcome == "failure").filter_map(|e| e.detail).collect();
    for code in ["oauth_access_denied", "oauth_token_exchange_error", "oauth_fetch_user_error", "oauth_email_unverified",
        "oauth_email_domain_mismatch", "sso_user_not_provisioned", "sso_domain_not_verified"] {
        assert!(failures.iter().any(|d| d.starts_with(code)), "{code} audited: {failures:?}");
    }
    assert!(failures.iter().all(|d| !d.contains(crate::sso_settings::SECRET)), "no secret in the audit log");
});

both!(sso email_from_userinfo_and_key_rotation, |app: TestApp| async move {
    let idp = forge().await;
    setup(&app, &idp).await;
    // The ID token lacks the email: userinfo supplies it.
    idp.post("/scenario", json!({"name": "no_email", "sub": "ui-1", "email": "fromuserinfo@example.com"})).await;
    let b = app.browser();
    let cb = start(&app, &b, "forge-org").await;
    assert!(finish(&b, &cb).await.starts_with("/orgs/"));
    assert_eq!(signed_in(&app, &b).await.unwrap()["email"], "fromuserinfo@example.com");
    // The IdP rotates its key: the cached JWKS lacks the new kid, so it is fetched once more.
    idp.post("/rotate", json!({})).await;
    idp.post("/scenario", json!({"sub": "rot-1", "email": "rotated@example.com"})).await;
    let b = app.browser();
    let cb = start(&app, &b, "forge-org").await;
    assert!(finish(&b, &cb).await.starts_with("/orgs/"), "unknown kid after rotation triggers one JWKS refresh");
});

both!(sso unknown_org_and_idp_down_show_the_error_page, |app: TestApp| async move {
    let r = app.client.get(app.url("/api/auth/sso/no-such-org/login")).send().await.unwrap();
    assert_eq!(location(&r), "/auth/error?code=sso_connection_not_found");
    app.sign_up("down@example.com").await;
    let org = app.create_org("Down", "down-org").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    configure(&app, &org, &format!("http://127.0.0.1:{port}")).await;
    let r = app.browser().get(app.url("/api/auth/sso/down-org/login")).send().await.unwrap();
    assert_eq!(location(&r), "/auth/error?code=sso_idp_unreachable");
    // The error page explains the code to a person.
    let page = app.client.get(app.url("/auth/error?code=sso_idp_unreachable")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("sso_idp_unreachable") && page.contains("Test connection"), "{page}");
});

/// The real OpenID Provider: login form, consent, code, and back; PKCE is required by the provider.
#[tokio::test]
async fn real_openid_provider_signs_a_new_member_in() {
    let app = spawn_sso(Backend::Sqlite).await.unwrap();
    let callback = format!("{}/api/auth/sso/callback", app.base);
    let clients = json!([{"client_id": "latchkey", "client_secret": "op-secret", "redirect_uris": [callback]}]).to_string();
    let op = Peer::start("oidc-idp.mjs", &[("OIDC_CLIENTS", &clients)]).await;
    app.sign_up("boss@example.com").await;
    let org = app.create_org("Real OP", "real-op").await;
    app.arrange_verified_domain(&org, "example.com").await;
    let body = json!({"provider": "oidc", "issuerUrl": op.url, "clientId": "latchkey", "clientSecret": "op-secret"});
    app.send(app.client.put(app.url(&format!("/api/user/organizations/{org}/settings/sso"))).json(&body)).await.expect(200, "OK");
    let t = app.post(&format!("/api/user/organizations/{org}/settings/sso/test"), json!(null)).await;
    assert_eq!(t.data()["success"], true, "{}", t.body);

    let b = app.browser();
    let mut next = app.url("/api/auth/sso/real-op/login");
    let mut landed = None;
    let mut iss_sent = false;
    for _ in 0..20 {
        if next.contains("/api/auth/sso/callback?") {
            iss_sent |= url::Url::parse(&next).unwrap().query_pairs().any(|(k, v)| k == "iss" && v == op.url.as_str());
        }
        let r = b.get(&next).send().await.unwrap();
        if r.status().is_redirection() {
            let to = location(&r);
            assert!(!to.starts_with("/auth/error"), "sign-in failed: {to}");
            if to.starts_with('/') && !to.starts_with("/interaction") && !to.starts_with("/auth/") && url::Url::parse(&next).unwrap().port() == url::Url::parse(&app.base).unwrap().port() {
                landed = Some(to);
                break;
            }
            next = url::Url::parse(&next).unwrap().join(&to).unwrap().to_string();
            continue;
        }
        // An HTML page of the IdP with a form: the login form or the consent form.
        let page_url = next.clone();
        let html = r.text().await.unwrap();
        let action = form_action(&html).expect("a form on the IdP page");
        let target = url::Url::parse(&page_url).unwrap().join(&action).unwrap().to_string();
        let mut form = hidden_inputs(&html);
        if html.contains("name=\"login\"") {
            form.push(("login".into(), "jit.member@example.com".into()));
            form.push(("password".into(), "any password".into()));
        }
        let r = b.post(&target).form(&form).send().await.unwrap();
        assert!(r.status().is_redirection(), "{} from {target}", r.status());
        next = url::Url::parse(&target).unwrap().join(&location(&r)).unwrap().to_string();
    }
    assert_eq!(landed.as_deref(), Some(format!("/orgs/{org}").as_str()));
    assert!(iss_sent, "oidc-provider sends the RFC 9207 iss parameter, and it was accepted");
    assert_eq!(signed_in(&app, &b).await.unwrap()["email"], "jit.member@example.com");
    let members = app.get(&format!("/api/user/organizations/{org}/members")).await;
    assert!(members.body.to_string().contains("jit.member@example.com"));
}

/// The hidden inputs of an HTML page, as (name, value).
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| {
        let key = format!("{name}=\"");
        let start = tag.find(&key)? + key.len();
        Some(tag[start..start + tag[start..].find('"')?].to_string())
    };
    html.split("<input")
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
        .collect()
}

/// The `action` of the first form on an HTML page.
pub fn form_action(haystack: &str) -> Option<String> {
    let start = haystack.find("action=\"")? + "action=\"".len();
    let end = haystack[start..].find('"')? + start;
    Some(haystack[start..end].replace("&amp;", "&"))
}
