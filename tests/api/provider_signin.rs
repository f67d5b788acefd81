//! Signing in through instance providers (issue 15): "Continue with …" against the real oidc-provider (discovery
//! and explicit endpoints), the forging IdP for every refusal (unverified email, allowed domains, Google's `hd`,
//! autoRegister off, an org's domain), the clean takeover of an unproven squat, and workspace SSO (an org adopts a
//! provider: auto-provisioning only at its verified domains, enforcement through the policy with its lockout
//! guard, the provider that cannot be deleted while in use, other tenants refused).
use crate::applications::make_operator;
use crate::both;
use crate::helpers::*;
use crate::peers::Peer;
use crate::sso_login::{form_action, hidden_inputs, location, signed_in};
use crate::sso_settings::{forge, SECRET};
use reqwest::Client;
use serde_json::{json, Value};

/// Adds provider `slug` as an operator (the caller becomes one); returns its id.
async fn add_provider(app: &TestApp, body: Value) -> String {
    let me = app.get("/api/user/me").await.data().clone();
    if me["operator"] != true {
        make_operator(app, me["email"].as_str().unwrap()).await;
    }
    let r = app.post("/api/admin/oauth/providers", body).await.expect(201, "OK");
    r.data()["id"].as_str().unwrap().to_string()
}

fn forged(slug: &str, issuer: &str, extra: Value) -> Value {
    let mut body = json!({"name": slug, "slug": slug, "type": "oidc", "issuer": issuer, "clientId": "latchkey-test", "clientSecret": SECRET});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

/// "Continue with `slug`" in `browser` against the forging IdP, which answers at once: where Latchkey lands.
async fn continue_with(app: &TestApp, browser: &Client, slug: &str) -> String {
    let login = browser.get(app.url(&format!("/api/auth/oauth/{slug}/login"))).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let to_idp = location(&login);
    assert!(!to_idp.starts_with("/auth/error"), "did not start: {to_idp}");
    let q: std::collections::HashMap<String, String> = url::Url::parse(&to_idp).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{}/api/auth/sso/callback", app.base), "the one shared callback");
    let callback = location(&browser.get(&to_idp).send().await.unwrap());
    let r = browser.get(&callback).send().await.unwrap();
    location(&r)
}

/// The same against the real oidc-provider: its login and consent forms, as `login`.
async fn continue_with_real(app: &TestApp, browser: &Client, slug: &str, login: &str) -> String {
    let mut next = app.url(&format!("/api/auth/oauth/{slug}/login"));
    let app_port = url::Url::parse(&app.base).unwrap().port();
    for _ in 0..20 {
        let r = browser.get(&next).send().await.unwrap();
        if r.status().is_redirection() {
            let to = location(&r);
            if to.starts_with('/') && url::Url::parse(&next).unwrap().port() == app_port && !next.contains("/api/auth/oauth/") {
                return to;
            }
            if to.starts_with("/auth/error") {
                return to;
            }
            next = url::Url::parse(&next).unwrap().join(&to).unwrap().to_string();
            continue;
        }
        let page = next.clone();
        let html = r.text().await.unwrap();
        let target = url::Url::parse(&page).unwrap().join(&form_action(&html).expect("a form on the IdP page")).unwrap().to_string();
        let mut form = hidden_inputs(&html);
        if html.contains("name=\"login\"") {
            form.push(("login".into(), login.into()));
            form.push(("password".into(), "any password".into()));
        }
        let r = browser.post(&target).form(&form).send().await.unwrap();
        next = url::Url::parse(&target).unwrap().join(&location(&r)).unwrap().to_string();
    }
    panic!("the sign-in did not end");
}

async fn real_op(app: &TestApp) -> Peer {
    let clients = json!([{"client_id": "latchkey", "client_secret": "op-secret", "redirect_uris": [format!("{}/api/auth/sso/callback", app.base)]}]).to_string();
    Peer::start("oidc-idp.mjs", &[("OIDC_CLIENTS", &clients)]).await
}

// The real OpenID Provider, by discovery and by explicit endpoints: a new person registers, comes back by subject,
// and is listed on the public buttons; neither the client id nor the secret is in the buttons.
both!(sso continue_with_a_real_provider_by_discovery_and_by_endpoints, |app: TestApp| async move {
    app.sign_up("ops@example.com").await;
    let op = real_op(&app).await;
    let base = json!({"type": "oidc", "clientId": "latchkey", "clientSecret": "op-secret"});
    let mut disc = base.clone();
    disc.as_object_mut().unwrap().extend(json!({"name": "Company OP", "slug": "company", "issuer": op.url}).as_object().unwrap().clone());
    add_provider(&app, disc).await;
    let mut expl = base.clone();
    expl.as_object_mut().unwrap().extend(
        json!({"name": "By endpoints", "slug": "endpoints", "authUrl": format!("{}/auth", op.url), "tokenUrl": format!("{}/token", op.url), "userinfoUrl": format!("{}/me", op.url)})
            .as_object()
            .unwrap()
            .clone(),
    );
    add_provider(&app, expl).await;

    let buttons = app.as_client(&app.browser(), reqwest::Method::GET, "/api/auth/oauth/providers", None).await.expect(200, "OK");
    let slugs: Vec<&str> = buttons.data().as_array().unwrap().iter().map(|b| b["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs.len(), 2, "{}", buttons.body);
    assert!(!buttons.body.to_string().contains("op-secret") && !buttons.body.to_string().contains("\"latchkey\""), "no credentials: {}", buttons.body);
    assert_eq!(buttons.data()[0]["loginUrl"].as_str().unwrap(), format!("{}/api/auth/oauth/{}/login", app.base, slugs[0]));

    let b = app.browser();
    assert_eq!(continue_with_real(&app, &b, "company", "alice@personal.test").await, "/orgs");
    let me = signed_in(&app, &b).await.expect("signed in");
    assert_eq!(me["email"], "alice@personal.test");
    // Back again: the same account, found by subject.
    let b2 = app.browser();
    assert_eq!(continue_with_real(&app, &b2, "company", "alice@personal.test").await, "/orgs");
    assert_eq!(signed_in(&app, &b2).await.unwrap()["id"], me["id"]);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM provider_identities").fetch_one(&app.db).await.unwrap();
    assert_eq!(n, 1);

    // Explicit endpoints: userinfo is the source of the person.
    let b3 = app.browser();
    assert_eq!(continue_with_real(&app, &b3, "endpoints", "bob@personal.test").await, "/orgs");
    assert_eq!(signed_in(&app, &b3).await.unwrap()["email"], "bob@personal.test");

    // An unknown provider is the error page, not a redirect anywhere.
    let r = app.browser().get(app.url("/api/auth/oauth/nope/login")).send().await.unwrap();
    assert_eq!(location(&r), "/auth/error?code=oauth_provider_not_found");
});

// The provider's own rules, each with its code and no session: an unverified address, one outside allowedDomains,
// autoRegister off for a new person, and an address at a domain an org verified (that org did not adopt it).
both!(sso provider_rules_refuse_with_their_codes, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("ops@example.com").await;
    add_provider(&app, forged("open", &idp.url, json!({}))).await;
    add_provider(&app, forged("narrow", &idp.url, json!({"allowedDomains": ["partner.test"]}))).await;
    add_provider(&app, forged("closed", &idp.url, json!({"autoRegister": false}))).await;
    let org = app.create_org("Acme", "acme").await;
    app.arrange_verified_domain(&org, "acme.test").await;

    let refused = |scenario: Value, slug: &'static str, code: &'static str| {
        let (app, idp) = (&app, &idp);
        async move {
            idp.post("/scenario", scenario.clone()).await;
            let b = app.browser();
            assert_eq!(continue_with(app, &b, slug).await, format!("/auth/error?code={code}"), "{scenario} at {slug}");
            assert!(signed_in(app, &b).await.is_none());
        }
    };
    refused(json!({"sub": "u1", "email": "u1@personal.test", "email_verified": false}), "open", "oauth_email_unverified").await;
    refused(json!({"sub": "u2", "email": "u2@elsewhere.test"}), "narrow", "oauth_email_domain_mismatch").await;
    refused(json!({"sub": "u3", "email": "u3@personal.test"}), "closed", "oauth_user_not_registered").await;
    refused(json!({"sub": "u4", "email": "u4@acme.test"}), "open", "oauth_domain_uses_other_sign_in").await;
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&app.db).await.unwrap();
    assert_eq!(users, 1, "nobody was created");

    // Allowed: inside the domains; and autoRegister off still lets an existing account in (see the takeover test).
    idp.post("/scenario", json!({"sub": "u5", "email": "u5@partner.test"})).await;
    let b = app.browser();
    assert_eq!(continue_with(&app, &b, "narrow").await, "/orgs");
    assert_eq!(signed_in(&app, &b).await.unwrap()["email"], "u5@partner.test");
});

// Someone signed up with a password at an address they do not own; its owner, proven by a provider that speaks
// with authority for the domain (allowedDomains lists it), takes the account over: the password and sessions are
// gone, and it is audited. A provider without that authority never takes an account over. Linking from the
// account's own session keeps everything.
both!(sso a_provider_proven_owner_takes_over_an_unproven_squat, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("ops@example.com").await;
    add_provider(&app, forged("authority", &idp.url, json!({"autoRegister": false, "allowedDomains": ["personal.test"]}))).await;
    add_provider(&app, forged("open", &idp.url, json!({}))).await;
    let (squatter, _) = app.other_user("victim@personal.test").await;

    // Some other IdP added as a provider asserts the address: refused, the account keeps everything.
    idp.post("/scenario", json!({"sub": "not-the-owner", "email": "victim@personal.test"})).await;
    assert_eq!(continue_with(&app, &app.browser(), "open").await, "/auth/error?code=sso_email_in_use");
    assert!(signed_in(&app, &squatter).await.is_some(), "nothing was revoked");

    idp.post("/scenario", json!({"sub": "real-owner", "email": "victim@personal.test"})).await;
    let b = app.browser();
    assert_eq!(continue_with(&app, &b, "authority").await, "/account?notice=account_secured");
    assert_eq!(signed_in(&app, &b).await.unwrap()["email"], "victim@personal.test");
    assert!(signed_in(&app, &squatter).await.is_none(), "the squatter's session ended");
    let hash: Option<String> = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'victim@personal.test'").fetch_one(&app.db).await.unwrap();
    assert!(hash.is_none(), "the password is gone");
    let takeovers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'identity.takeover'").fetch_one(&app.db).await.unwrap();
    assert_eq!(takeovers, 1);
    // Proven now: not even another provider with authority takes it over again.
    add_provider(&app, forged("authority2", &idp.url, json!({"allowedDomains": ["personal.test"]}))).await;
    idp.post("/scenario", json!({"sub": "someone-else", "email": "victim@personal.test"})).await;
    assert_eq!(continue_with(&app, &app.browser(), "authority2").await, "/auth/error?code=sso_email_in_use");

    // The operator links their own account from their own session: nothing is revoked.
    idp.post("/scenario", json!({"sub": "ops-sub", "email": "ops@example.com"})).await;
    assert_eq!(continue_with(&app, &app.client, "open").await, "/orgs");
    assert_eq!(signed_in(&app, &app.client).await.unwrap()["email"], "ops@example.com");
    let linked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'identity.link'").fetch_one(&app.db).await.unwrap();
    assert_eq!(linked, 1);
});

// Google: with allowedDomains, the account's hosted domain (`hd`) must be one of them; a consumer account with an
// address at the domain is refused. Google's issuer is the forging IdP here (`--google-issuer`, tests only).
async fn google_hd(backend: Backend) {
    let idp = forge().await;
    let issuer = idp.url.clone();
    let Some(app) = spawn_adjusted(backend, |c| {
        c.allow_private_idp = true;
        c.google_issuer = issuer;
    })
    .await
    else {
        return;
    };
    app.sign_up("ops@example.com").await;
    let body = json!({"name": "Google", "slug": "google", "type": "google", "clientId": "latchkey-test", "clientSecret": SECRET, "allowedDomains": "acme.test"});
    add_provider(&app, body).await;
    for (scenario, code) in [
        (json!({"sub": "g1", "email": "g1@acme.test"}), "oauth_hosted_domain_mismatch"),
        (json!({"sub": "g2", "email": "g2@acme.test", "hd": "evil.test"}), "oauth_hosted_domain_mismatch"),
        (json!({"sub": "g3", "email": "g3@gmail.com", "hd": "acme.test"}), "oauth_email_domain_mismatch"),
        (json!({"sub": "g4", "email": "g4@acme.test", "hd": "acme.test", "email_verified": false}), "oauth_email_unverified"),
    ] {
        idp.post("/scenario", scenario.clone()).await;
        assert_eq!(continue_with(&app, &app.browser(), "google").await, format!("/auth/error?code={code}"), "{scenario}");
    }
    idp.post("/scenario", json!({"sub": "g5", "email": "g5@acme.test", "hd": "acme.test"})).await;
    let b = app.browser();
    assert_eq!(continue_with(&app, &b, "google").await, "/orgs");
    assert_eq!(signed_in(&app, &b).await.unwrap()["email"], "g5@acme.test");

    // An org that verified acme.test and adopted Google: a personal Google account with an acme.test address
    // (no hd) is not its member, even without allowedDomains on the provider.
    let open = json!({"name": "Google open", "slug": "google-open", "type": "google", "clientId": "latchkey-test", "clientSecret": SECRET});
    let provider = add_provider(&app, open).await;
    let org = app.create_org("Acme", "acme").await;
    app.arrange_verified_domain(&org, "acme.test").await;
    let body = json!({"providerId": provider, "autoProvision": true});
    app.send(app.client.put(app.url(&format!("/api/user/organizations/{org}/sso/provider"))).json(&body)).await.expect(200, "OK");
    idp.post("/scenario", json!({"sub": "g6", "email": "g6@acme.test"})).await;
    assert_eq!(continue_with(&app, &app.browser(), "google-open").await, "/auth/error?code=oauth_hosted_domain_mismatch");
    idp.post("/scenario", json!({"sub": "g7", "email": "g7@acme.test", "hd": "acme.test"})).await;
    assert_eq!(continue_with(&app, &app.browser(), "google-open").await, format!("/orgs/{org}"));
    assert_eq!(app.role_of(&org, "g7@acme.test").await.as_deref(), Some("member"));
}

#[tokio::test]
async fn google_hosted_domain_sqlite() {
    google_hd(Backend::Sqlite).await;
}

#[tokio::test]
async fn google_hosted_domain_postgres() {
    google_hd(Backend::Postgres).await;
}

// Workspace SSO: the owner adopts the provider for the org. New people at its verified domain become members only
// with autoProvision; enforcement is the policy's `sso` with its lockout guard; the provider cannot be deleted while
// in use; another org's owner and a plain member are refused.
both!(sso workspace_sso_provisions_enforces_and_guards, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@acme.test").await;
    let provider = add_provider(&app, forged("company", &idp.url, json!({}))).await;
    let org = app.create_org("Acme", "acme").await;
    app.arrange_verified_domain(&org, "acme.test").await;
    let path = format!("/api/user/organizations/{org}/sso/provider");
    app.get(&path).await.expect(404, "NOT_FOUND");
    let put = |body: Value| app.send(app.client.put(app.url(&path)).json(&body));

    put(json!({"providerId": "01NOTAPROVIDER00000000000"})).await.expect(422, "VALIDATION_ERROR");
    let r = put(json!({"providerId": provider, "allowedDomains": ["other.test"]})).await.expect(422, "VALIDATION_ERROR");
    assert!(r.message().contains("other.test"), "{}", r.body);
    // Enforcement before any owner signed in through it: the lockout guard refuses, the link itself is kept.
    put(json!({"provider_id": provider, "enforce_sso": true})).await.expect(409, "CONFLICT");
    let w = app.get(&path).await.expect(200, "OK");
    assert_eq!(w.data()["status"], "active", "the forging IdP answered discovery: {}", w.body);
    assert_eq!(w.data()["enforceSso"], false);
    assert_eq!(w.data()["autoProvision"], false);

    // autoProvision off: a new person at the verified domain is not added.
    idp.post("/scenario", json!({"sub": "n1", "email": "new1@acme.test"})).await;
    assert_eq!(continue_with(&app, &app.browser(), "company").await, "/auth/error?code=sso_user_not_provisioned");
    put(json!({"autoProvision": true})).await.expect(200, "OK");
    let b = app.browser();
    assert_eq!(continue_with(&app, &b, "company").await, format!("/orgs/{org}"));
    assert_eq!(app.role_of(&org, "new1@acme.test").await.as_deref(), Some("member"));

    // The owner signs in through it from their own session (linked, not taken over); then enforcement passes.
    idp.post("/scenario", json!({"sub": "owner-sub", "email": "owner@acme.test"})).await;
    assert_eq!(continue_with(&app, &app.client, "company").await, format!("/orgs/{org}"));
    let w = put(json!({"enforceSso": true})).await.expect(200, "OK");
    assert_eq!(w.data()["enforceSso"], true);
    let policy = app.get(&format!("/api/user/organizations/{org}/settings/security")).await.expect(200, "OK");
    assert_eq!(policy.data()["authRequired"], "sso", "one source of truth: {}", policy.body);

    // The provider is in use: the operator cannot delete it, and is told by whom.
    let r = app.send(app.client.delete(app.url(&format!("/api/admin/oauth/providers/{provider}")))).await.expect(409, "CONFLICT");
    assert!(r.message().contains("Acme"), "{}", r.body);

    // Another tenant's owner sees nothing; a member may not change it.
    let (other, _) = app.other_user("boss@other.test").await;
    let r = app.as_client(&other, reqwest::Method::GET, &path, None).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = app.as_client(&b, reqwest::Method::PUT, &path, Some(json!({"autoProvision": false}))).await;
    assert!(r.status == 403 || r.status == 404, "{}", r.body);

    // Removing it while it is the only way in under `sso` is refused by the lockout guard.
    app.send(app.client.delete(app.url(&path))).await.expect(409, "CONFLICT");
    put(json!({"enforceSso": false})).await.expect(200, "OK");
    app.send(app.client.delete(app.url(&path))).await.expect(200, "OK");
    // The sessions signed in through it ended: the member's, and the owner's own.
    assert!(signed_in(&app, &b).await.is_none(), "sessions through it ended");
    assert_eq!(app.get(&path).await.status, 401);
    let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM connections WHERE instance_provider_id IS NOT NULL").fetch_one(&app.db).await.unwrap();
    assert_eq!(links, 0);
});

// An application's sign-in through a provider: a person of the org that adopted it comes back to the app's
// redirect URI with a token that redeems for a member of that org; an unregistered redirect URI is never followed;
// a person of no org is refused with its code.
both!(sso an_application_gets_the_member_of_the_org_that_adopted_the_provider, |app: TestApp| async move {
    use base64::Engine;
    const REDIRECT: &str = "http://127.0.0.1:9/app/callback";
    let idp = forge().await;
    app.sign_up("owner@acme.test").await;
    let provider = add_provider(&app, forged("company", &idp.url, json!({}))).await;
    let reg = crate::applications::register(&app, &app.client, REDIRECT, "latchkey").await;
    let (client_id, secret) = (reg["application"]["clientId"].as_str().unwrap().to_string(), reg["clientSecret"].as_str().unwrap().to_string());
    let org = app.create_org("Acme", "acme").await;
    app.arrange_verified_domain(&org, "acme.test").await;
    let path = format!("/api/user/organizations/{org}/sso/provider");
    app.send(app.client.put(app.url(&path)).json(&json!({"providerId": provider, "autoProvision": true}))).await.expect(200, "OK");

    let start = |redirect: &str| {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "app-state-1")
            .finish();
        app.url(&format!("/api/auth/oauth/company/login?{q}"))
    };
    let r = app.browser().get(start("https://evil.example/steal")).send().await.unwrap();
    assert_eq!(location(&r), "/auth/error?code=application_invalid", "never a redirect to an unregistered URI");

    let follow = |url: String| {
        let b = app.browser();
        async move {
            let to_idp = location(&b.get(&url).send().await.unwrap());
            let back = location(&b.get(&to_idp).send().await.unwrap());
            location(&b.get(&back).send().await.unwrap())
        }
    };
    idp.post("/scenario", json!({"sub": "m1", "email": "m1@acme.test"})).await;
    let landing = follow(start(REDIRECT)).await;
    assert!(landing.starts_with(REDIRECT), "back at the application: {landing}");
    let q: std::collections::HashMap<String, String> = url::Url::parse(&landing).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["state"], "app-state-1");
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}")));
    let redeemed = Answer::from(client().post(app.url("/api/auth/sso/authenticate")).header("Authorization", basic).json(&json!({"ssoToken": q["token"]})).send().await.unwrap()).await;
    let redeemed = redeemed.expect(200, "OK");
    assert_eq!(redeemed.data()["organization"]["slug"], "acme", "{}", redeemed.body);
    assert_eq!(redeemed.data()["member"]["email"], "m1@acme.test");
    assert_eq!(redeemed.data()["connectionId"], app.get(&path).await.data()["connectionId"]);

    idp.post("/scenario", json!({"sub": "p1", "email": "p1@personal.test"})).await;
    assert_eq!(follow(start(REDIRECT)).await, "/auth/error?code=oauth_no_organization");
});

// The console without JavaScript: the operator tests a provider from its card and sees the outcome after the
// redirect; the owner adopts it on the Identity providers page, and the page shows it in use.
both!(sso the_console_tests_a_provider_and_adopts_it_without_javascript, |app: TestApp| async move {
    use crate::console::{page, post_form};
    let idp = forge().await;
    app.sign_up("owner@acme.test").await;
    let provider = add_provider(&app, forged("company", &idp.url, json!({}))).await;
    let to = post_form(&app, &app.client, "/sfn/test_provider", &[("id", &provider)], "/admin/providers").await;
    assert!(to.contains("/admin/providers") && !to.contains("__err"), "{to}");
    let html = page(&app, &app.client, "/admin/providers").await;
    assert!(html.contains("The provider is reachable") && html.contains(" ms)"), "the outcome is on the card");
    let org = app.create_org("Acme", "acme").await;
    app.arrange_verified_domain(&org, "acme.test").await;
    let from = format!("/orgs/{org}/sso");
    let html = page(&app, &app.client, &from).await;
    assert!(html.contains("Use an instance provider") && html.contains(">company</option>"), "the provider is offered");
    let to = post_form(&app, &app.client, "/sfn/save_workspace_sso", &[
        ("org_id", &org), ("provider_id", &provider), ("allowed_domains", "acme.test"), ("auto_provision", "on"),
    ], &from).await;
    assert!(to.contains(&from) && !to.contains("__err"), "{to}");
    let w = app.get(&format!("/api/user/organizations/{org}/sso/provider")).await.expect(200, "OK");
    assert_eq!(w.data()["allowedDomains"], json!(["acme.test"]));
    assert_eq!(w.data()["autoProvision"], true);
    assert_eq!(w.data()["enforceSso"], false);
    assert!(page(&app, &app.client, &from).await.contains("In use: company (active)"));
});

// Workspace SSO from outside: an anonymous client gets 401, a key pinned to another org of the same owner gets
// 404, and a made-up key 401; the org's own key reaches it.
both!(sso workspace_sso_refuses_anonymous_and_foreign_keys, |app: TestApp| async move {
    let idp = forge().await;
    app.sign_up("owner@acme.test").await;
    let provider = add_provider(&app, forged("company", &idp.url, json!({}))).await;
    let org = app.create_org("Acme", "acme").await;
    let other = app.create_org("Other", "other").await;
    let path = format!("/api/user/organizations/{org}/sso/provider");
    let body = json!({"providerId": provider});
    let anon = client();
    app.send(anon.get(app.url(&path))).await.expect(401, "UNAUTHORIZED");
    app.send(anon.put(app.url(&path)).json(&body)).await.expect(401, "UNAUTHORIZED");
    app.send(anon.get(app.url(&path)).header("x-api-key", "lk_madeup")).await.expect(401, "INVALID_API_KEY");
    let key_of = |org: String| {
        let app = &app;
        async move { app.post("/api/user/api-keys", json!({"name": "k", "organizationId": org})).await.expect(201, "OK").data()["key"].as_str().unwrap().to_string() }
    };
    let foreign = key_of(other).await;
    app.send(anon.put(app.url(&path)).header("x-api-key", &foreign).json(&body)).await.expect(404, "NOT_FOUND");
    let own = key_of(org.clone()).await;
    app.send(anon.put(app.url(&path)).header("x-api-key", &own).json(&body)).await.expect(200, "OK");
});
