//! Domains against a real BIND `named` changed with `nsupdate`: validation, every DNS finding, one org per
//! domain, the background worker, lapse, email-first discovery, auto-join and join requests.
use crate::dns_server::Bind;
use crate::helpers::*;
use crate::sso_login::{finish, signed_in, start};
use crate::sso_settings::{configure, forge};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// Runs `$body(app, bind)` on SQLite and PostgreSQL, each with its own `named`, schedule unit `$unit` ms.
macro_rules! with_dns {
    ($name:ident, $unit:expr, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let bind = Bind::start().await;
                if let Some(app) = spawn_dns(Backend::Sqlite, &bind.addr, $unit).await {
                    ($body)(app, bind).await;
                }
            }
            #[tokio::test]
            async fn postgres() {
                let bind = Bind::start().await;
                if let Some(app) = spawn_dns(Backend::Postgres, &bind.addr, $unit).await {
                    ($body)(app, bind).await;
                }
            }
        }
    };
}

const SLOW: i64 = 3_600_000;

fn domains(org: &str) -> String {
    format!("/api/user/organizations/{org}/domains")
}

async fn add(app: &TestApp, org: &str, domain: &str) -> Value {
    app.post(&domains(org), json!({ "domain": domain })).await.expect(201, "OK").data().clone()
}

async fn verify(app: &TestApp, org: &str, id: &str) -> Value {
    app.post(&format!("{}/{id}/verify", domains(org)), json!(null)).await.expect(200, "OK").data().clone()
}

/// Adds `domain`, publishes its record and verifies it.
async fn add_verified(app: &TestApp, bind: &Bind, org: &str, domain: &str) -> Value {
    let d = add(app, org, domain).await;
    bind.set_txt(d["txtRecord"]["name"].as_str().unwrap(), &[d["txtRecord"]["value"].as_str().unwrap()]).await;
    let v = verify(app, org, d["id"].as_str().unwrap()).await;
    assert_eq!(v["status"], "verified", "{v}");
    v
}

with_dns!(domains_are_validated_and_scoped, SLOW, |app: TestApp, _bind: Bind| async move {
    let owner = app.sign_up("owner@acme.test").await;
    let _ = owner;
    let org = app.create_org("Acme", "acme").await;
    let d = add(&app, &org, "  Acme.TEST. ").await;
    assert_eq!(d["domain"], "acme.test");
    assert_eq!(d["status"], "pending");
    assert_eq!(d["autoJoin"], "off");
    assert_eq!(d["txtRecord"]["name"], "_latchkey-challenge.acme.test");
    let value = d["txtRecord"]["value"].as_str().unwrap();
    assert!(value.starts_with("latchkey-verification=") && value.len() > 40, "{value}");
    assert_eq!(add(&app, &org, "bücher.test").await["domain"], "xn--bcher-kva.test");

    for (bad, says) in [("com", "public suffix"), ("co.uk", "public suffix"), ("10.0.0.1", "IP address"), ("a..b.test", "not a valid"), ("https://acme.test/x", "only the domain"), ("", "Enter a domain")] {
        let a = app.post(&domains(&org), json!({ "domain": bad })).await.expect(422, "VALIDATION_ERROR");
        assert!(a.message().contains(says), "{bad}: {}", a.message());
    }
    app.post(&domains(&org), json!({ "domain": "acme.test" })).await.expect(409, "CONFLICT");
    app.post(&domains(&org), json!({ "name": "acme.test" })).await.expect(422, "VALIDATION_ERROR");

    let id = d["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("{}/{id}", domains(&org))).await.expect(200, "OK").data()["domain"], "acme.test");
    assert_eq!(app.get(&domains(&org)).await.expect(200, "OK").data().as_array().unwrap().len(), 2);

    // A member may not manage domains (403); a stranger does not learn the org exists (404).
    let (member, member_id) = app.other_user("member@acme.test").await;
    app.add_member(&org, &member_id, "member").await;
    app.as_client(&member, Method::GET, &domains(&org), None).await.expect(403, "FORBIDDEN");
    let (stranger, _) = app.other_user("stranger@else.test").await;
    app.as_client(&stranger, Method::GET, &domains(&org), None).await.expect(404, "NOT_FOUND");
    app.as_client(&stranger, Method::POST, &format!("{}/{id}/verify", domains(&org)), Some(json!(null))).await.expect(404, "NOT_FOUND");
    let other_org = {
        let a = app.as_client(&stranger, Method::POST, "/api/user/organizations", Some(json!({"name": "Else", "slug": "else"}))).await;
        a.data()["id"].as_str().unwrap().to_string()
    };
    // Someone else's domain id under their own org is a 404 too.
    app.as_client(&stranger, Method::GET, &format!("{}/{id}", domains(&other_org)), None).await.expect(404, "NOT_FOUND");

    app.send(app.client.put(app.url(&format!("{}/{id}/settings", domains(&org)))).json(&json!({"autoJoin": "sometimes"}))).await.expect(422, "VALIDATION_ERROR");
    let s = app.send(app.client.put(app.url(&format!("{}/{id}/settings", domains(&org)))).json(&json!({"autoJoin": "approval"}))).await.expect(200, "OK");
    assert_eq!(s.data()["autoJoin"], "approval");
    app.send(app.client.delete(app.url(&format!("{}/{id}", domains(&org))))).await.expect(200, "OK");
    app.get(&format!("{}/{id}", domains(&org))).await.expect(404, "NOT_FOUND");
    let actions = app.audit_actions(&org).await;
    for a in ["domain.add", "domain.auto_join", "domain.delete"] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
});

with_dns!(verify_reports_what_dns_holds, SLOW, |app: TestApp, bind: Bind| async move {
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let d = add(&app, &org, "acme.test").await;
    let id = d["id"].as_str().unwrap();
    let name = d["txtRecord"]["name"].as_str().unwrap();
    let value = d["txtRecord"]["value"].as_str().unwrap();

    let v = verify(&app, &org, id).await;
    assert_eq!((v["status"].as_str(), v["lastResult"].as_str()), (Some("pending"), Some("nxdomain")), "{v}");
    assert!(v["lastCheckedAt"].is_string());
    // A domain that failed (7 days without its record) gets a new 7-day window from "Verify now".
    sqlx::query("UPDATE domains SET status = 'failed', pending_since = 0").execute(&app.db).await.unwrap();
    let v = verify(&app, &org, id).await;
    assert_eq!((v["status"].as_str(), v["lastResult"].as_str()), (Some("pending"), Some("nxdomain")), "{v}");
    let since: i64 = sqlx::query_scalar("SELECT pending_since FROM domains").fetch_one(&app.db).await.unwrap();
    assert!(since > 0, "the window restarted");
    bind.clear(name, true).await;
    assert_eq!(verify(&app, &org, id).await["lastResult"], "no_record");
    bind.set_txt(name, &["latchkey-verification=not-yours"]).await;
    let v = verify(&app, &org, id).await;
    assert_eq!(v["lastResult"], "wrong_value");
    assert!(v["lastMessage"].as_str().unwrap().contains("not-yours"), "{v}");
    bind.set_txt(name, &["one", "two"]).await;
    assert_eq!(verify(&app, &org, id).await["lastResult"], "multiple_values");
    bind.set_txt(name, &["v=spf1 -all", value]).await;
    let v = verify(&app, &org, id).await;
    assert_eq!((v["status"].as_str(), v["lastResult"].as_str()), (Some("verified"), Some("verified")), "{v}");
    assert!(v["verifiedAt"].is_string() && v["lapsedAt"].is_null());

    // The record goes away: still verified during the grace period, but flagged as lapsed with the time.
    bind.clear(name, false).await;
    let v = verify(&app, &org, id).await;
    assert_eq!((v["status"].as_str(), v["lastResult"].as_str()), (Some("verified"), Some("nxdomain")), "{v}");
    assert!(v["lapsedAt"].is_string(), "{v}");
    assert!(v["lastMessage"].as_str().unwrap().contains("72 hours"), "{v}");
    // It comes back: the lapse is cleared.
    bind.set_txt(name, &[value]).await;
    let v = verify(&app, &org, id).await;
    assert_eq!((v["status"].as_str(), v["lapsedAt"].is_null()), (Some("verified"), true), "{v}");
    let actions = app.audit_actions(&org).await;
    for a in ["domain.verified", "domain.lapsed", "domain.restored", "domain.verify"] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
});

with_dns!(a_domain_is_verified_by_one_org, SLOW, |app: TestApp, bind: Bind| async move {
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    add_verified(&app, &bind, &org, "acme.test").await;

    let (rival, _) = app.other_user("rival@rival.test").await;
    let rival_org = app.as_client(&rival, Method::POST, "/api/user/organizations", Some(json!({"name": "Rival", "slug": "rival"}))).await;
    let rival_org = rival_org.data()["id"].as_str().unwrap().to_string();
    let d = app.as_client(&rival, Method::POST, &domains(&rival_org), Some(json!({"domain": "acme.test"}))).await.expect(201, "OK");
    let d = d.data().clone();
    // Both tokens are published; the rival's is correct, yet the domain is taken.
    let name = d["txtRecord"]["name"].as_str().unwrap();
    let acme_value = app.get(&domains(&org)).await.data()[0]["txtRecord"]["value"].as_str().unwrap().to_string();
    bind.set_txt(name, &[&acme_value, d["txtRecord"]["value"].as_str().unwrap()]).await;
    let a = app.as_client(&rival, Method::POST, &format!("{}/{}/verify", domains(&rival_org), d["id"].as_str().unwrap()), Some(json!(null))).await;
    let a = a.expect(409, "CONFLICT");
    assert!(a.message().contains("already verified by another organization"), "{}", a.message());
    let again = app.as_client(&rival, Method::GET, &format!("{}/{}", domains(&rival_org), d["id"].as_str().unwrap()), None).await;
    assert_eq!((again.data()["status"].as_str(), again.data()["lastResult"].as_str()), (Some("pending"), Some("held_elsewhere")));

    // A subdomain is a separate domain.
    let sub = app.as_client(&rival, Method::POST, &domains(&rival_org), Some(json!({"domain": "eng.acme.test"}))).await.expect(201, "OK");
    let sub = sub.data().clone();
    bind.set_txt(sub["txtRecord"]["name"].as_str().unwrap(), &[sub["txtRecord"]["value"].as_str().unwrap()]).await;
    let v = app.as_client(&rival, Method::POST, &format!("{}/{}/verify", domains(&rival_org), sub["id"].as_str().unwrap()), Some(json!(null))).await;
    assert_eq!(v.expect(200, "OK").data()["status"], "verified");
});

with_dns!(the_worker_verifies_in_the_background, 150, |app: TestApp, bind: Bind| async move {
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let d = add(&app, &org, "acme.test").await;
    let id = d["id"].as_str().unwrap();
    // Checked without anyone asking: the first finding appears by itself.
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = app.get(&format!("{}/{id}", domains(&org))).await.data().clone();
        if seen["lastResult"] == "nxdomain" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((seen["status"].as_str(), seen["lastResult"].as_str()), (Some("pending"), Some("nxdomain")), "{seen}");
    bind.set_txt(d["txtRecord"]["name"].as_str().unwrap(), &[d["txtRecord"]["value"].as_str().unwrap()]).await;
    for _ in 0..200 {
        seen = app.get(&format!("{}/{id}", domains(&org))).await.data().clone();
        if seen["status"] == "verified" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen["status"], "verified", "the worker verified the domain: {seen}");
    assert!(app.audit_actions(&org).await.contains(&"domain.verified".to_string()));
});

/// A DNS server that never answers: the lookup times out, which is reported and changes nothing.
#[tokio::test]
async fn a_silent_dns_server_is_a_timeout() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let app = spawn_dns(Backend::Sqlite, &addr, SLOW).await.unwrap();
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let d = add(&app, &org, "acme.test").await;
    let v = verify(&app, &org, d["id"].as_str().unwrap()).await;
    assert_eq!((v["status"].as_str(), v["lastResult"].as_str()), (Some("pending"), Some("timeout")), "{v}");
    drop(silent);
}

async fn discover(app: &TestApp, email: &str) -> Value {
    app.as_client(&app.browser(), Method::POST, "/api/auth/discover", Some(json!({ "email": email }))).await.expect(200, "OK").data().clone()
}

with_dns!(email_first_routes_verified_domains_to_sso, SLOW, |app: TestApp, bind: Bind| async move {
    let idp = forge().await;
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let d = add(&app, &org, "acme.test").await;
    configure(&app, &org, &idp.url).await;

    // Not verified yet, and then no tested connection: password.
    assert_eq!(discover(&app, "alice@acme.test").await, json!({"method": "password", "url": null, "protocol": null, "connectionId": null}));
    bind.set_txt(d["txtRecord"]["name"].as_str().unwrap(), &[d["txtRecord"]["value"].as_str().unwrap()]).await;
    verify(&app, &org, d["id"].as_str().unwrap()).await;
    assert_eq!(discover(&app, "alice@acme.test").await["method"], "password", "the connection is untested");
    app.post(&format!("/api/user/organizations/{org}/settings/sso/test"), json!(null)).await.expect(200, "OK");

    let sso = discover(&app, "Alice@ACME.test").await;
    assert_eq!(sso["method"], "sso");
    let conn = sso["connectionId"].as_str().expect("the connection it routes to");
    assert_eq!(sso["protocol"], "oidc");
    assert_eq!(sso["url"], format!("/api/auth/sso/acme/login?login_hint=alice%40acme.test&connection_id={conn}"));
    // The answer depends on the domain only: a known account and an unknown one look the same.
    let known = discover(&app, "owner@acme.test").await;
    let unknown = discover(&app, "nobody@acme.test").await;
    assert_eq!(known["url"].as_str().unwrap().replace("owner", "nobody"), unknown["url"].as_str().unwrap());
    assert_eq!(known["method"], unknown["method"]);
    assert_eq!(discover(&app, "owner@other.test").await, discover(&app, "nobody@other.test").await);
    app.as_client(&app.browser(), Method::POST, "/api/auth/discover", Some(json!({"email": "not-an-email"}))).await.expect(422, "VALIDATION_ERROR");

    // The console's email step follows the same rule.
    let r = app.browser().get(app.url("/signin/continue?email=alice%40acme.test")).send().await.unwrap();
    assert_eq!(r.headers()["location"], format!("/api/auth/sso/acme/login?login_hint=alice%40acme.test&connection_id={conn}").as_str());
    let r = app.browser().get(app.url("/signin/continue?email=bob%40other.test")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/signin?email=bob%40other.test");
    // The login URL passes the hint on to the IdP.
    let r = app.browser().get(app.url("/api/auth/sso/acme/login?login_hint=alice%40acme.test")).send().await.unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("login_hint=alice%40acme.test"));

    let page = app.get(&domains(&org)).await;
    assert_eq!(page.data()[0]["routesToSso"], true);
});

async fn my_requests(app: &TestApp, c: &reqwest::Client) -> Vec<Value> {
    app.as_client(c, Method::GET, "/api/user/join-requests", None).await.expect(200, "OK").data().as_array().unwrap().clone()
}

async fn password_sign_in(app: &TestApp, email: &str) -> reqwest::Client {
    let c = app.browser();
    app.as_client(&c, Method::POST, "/api/auth/signin", Some(json!({"email": email, "password": "correct horse battery"}))).await.expect(200, "OK");
    c
}

with_dns!(password_sign_ins_file_join_requests, SLOW, |app: TestApp, bind: Bind| async move {
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let d = add_verified(&app, &bind, &org, "acme.test").await;
    let id = d["id"].as_str().unwrap();
    let (_, bob_id) = app.other_user("bob@acme.test").await;
    app.other_user("carol@acme.test").await;
    app.other_user("dave@acme.test").await;

    // off: nothing happens.
    let bob = password_sign_in(&app, "bob@acme.test").await;
    assert!(my_requests(&app, &bob).await.is_empty());
    // auto: a password account is not a proven address, so it gets a request, not a membership.
    app.send(app.client.put(app.url(&format!("{}/{id}/settings", domains(&org)))).json(&json!({"autoJoin": "auto"}))).await.expect(200, "OK");
    let bob = password_sign_in(&app, "bob@acme.test").await;
    let mine = my_requests(&app, &bob).await;
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0]["status"].as_str(), mine[0]["organizationName"].as_str(), mine[0]["via"].as_str()), (Some("pending"), Some("Acme"), Some("password")));
    app.as_client(&bob, Method::GET, &format!("/api/user/organizations/{org}"), None).await.expect(404, "NOT_FOUND");
    // Signing in again does not file a second one.
    let bob = password_sign_in(&app, "bob@acme.test").await;
    assert_eq!(my_requests(&app, &bob).await.len(), 1);

    app.send(app.client.put(app.url(&format!("{}/{id}/settings", domains(&org)))).json(&json!({"autoJoin": "approval"}))).await.expect(200, "OK");
    let carol = password_sign_in(&app, "carol@acme.test").await;
    let dave = password_sign_in(&app, "dave@acme.test").await;
    let list = app.get(&format!("/api/user/organizations/{org}/join-requests")).await.expect(200, "OK");
    let pending: Vec<&Value> = list.data().as_array().unwrap().iter().filter(|r| r["status"] == "pending").collect();
    assert_eq!(pending.len(), 3);

    let bob_req = mine[0]["id"].as_str().unwrap();
    let a = app.post(&format!("/api/user/organizations/{org}/join-requests/{bob_req}/approve"), json!(null)).await.expect(200, "OK");
    assert_eq!(a.data()["status"], "approved");
    app.post(&format!("/api/user/organizations/{org}/join-requests/{bob_req}/deny"), json!(null)).await.expect(409, "CONFLICT");
    let members = app.get(&format!("/api/user/organizations/{org}/members")).await;
    let b = members.data().as_array().unwrap().iter().find(|m| m["userId"] == bob_id.as_str() || m["id"] == bob_id.as_str()).cloned().expect("bob is a member");
    assert_eq!((b["role"].as_str(), b["status"].as_str()), (Some("member"), Some("active")));
    app.as_client(&bob, Method::GET, &format!("/api/user/organizations/{org}"), None).await.expect(200, "OK");

    let carol_req = my_requests(&app, &carol).await[0]["id"].as_str().unwrap().to_string();
    app.post(&format!("/api/user/organizations/{org}/join-requests/{carol_req}/deny"), json!(null)).await.expect(200, "OK");
    assert_eq!(my_requests(&app, &carol).await[0]["status"], "denied");
    app.as_client(&carol, Method::GET, &format!("/api/user/organizations/{org}"), None).await.expect(404, "NOT_FOUND");

    // Only owners and admins decide, and only within their org.
    let dave_req = my_requests(&app, &dave).await[0]["id"].as_str().unwrap().to_string();
    app.as_client(&bob, Method::POST, &format!("/api/user/organizations/{org}/join-requests/{dave_req}/approve"), Some(json!(null))).await.expect(403, "FORBIDDEN");
    app.as_client(&dave, Method::POST, &format!("/api/user/organizations/{org}/join-requests/{dave_req}/approve"), Some(json!(null))).await.expect(404, "NOT_FOUND");
    let actions = app.audit_actions(&org).await;
    for a in ["join_request.create", "join_request.approve", "join_request.deny"] {
        assert!(actions.contains(&a.to_string()), "{a} in {actions:?}");
    }
});

with_dns!(sso_sign_ins_follow_the_domain, SLOW, |app: TestApp, bind: Bind| async move {
    let idp = forge().await;
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    // Two password accounts made before the org proved the domain: their addresses were never proven.
    let (heidi_browser, heidi_id) = app.other_user("heidi@acme.test").await;
    let (frank_old, frank_id) = app.other_user("frank@acme.test").await;
    let frank_key = app.as_client(&frank_old, Method::POST, "/api/user/api-keys", Some(json!({"name": "old"}))).await.expect(201, "OK");
    let frank_key = frank_key.data()["key"].as_str().unwrap().to_string();
    let d = add_verified(&app, &bind, &org, "acme.test").await;
    configure(&app, &org, &idp.url).await;
    app.post(&format!("/api/user/organizations/{org}/settings/sso/test"), json!(null)).await.expect(200, "OK");

    // approval beats just-in-time provisioning: the IdP user is not let in, and a request waits.
    app.send(app.client.put(app.url(&format!("{}/{}/settings", domains(&org), d["id"].as_str().unwrap()))).json(&json!({"autoJoin": "approval"}))).await.expect(200, "OK");
    idp.post("/scenario", json!({"sub": "s-eve", "email": "eve@acme.test"})).await;
    let eve = app.browser();
    let callback = start(&app, &eve, "acme").await;
    assert_eq!(finish(&eve, &callback).await, "/auth/error?code=join_request_pending");
    assert!(signed_in(&app, &eve).await.is_none());
    let list = app.get(&format!("/api/user/organizations/{org}/join-requests")).await;
    let req = list.data().as_array().unwrap().iter().find(|r| r["email"] == "eve@acme.test").cloned().expect("a request for eve");
    assert_eq!((req["via"].as_str(), req["status"].as_str()), (Some("sso"), Some("pending")));
    app.post(&format!("/api/user/organizations/{org}/join-requests/{}/approve", req["id"].as_str().unwrap()), json!(null)).await.expect(200, "OK");
    let callback = start(&app, &eve, "acme").await;
    assert_eq!(finish(&eve, &callback).await, format!("/orgs/{org}"));

    app.send(app.client.put(app.url(&format!("{}/{}/settings", domains(&org), d["id"].as_str().unwrap()))).json(&json!({"autoJoin": "auto"}))).await.expect(200, "OK");
    // Heidi holds both the account (signed in with its password) and the address (her IdP): linked as she is.
    idp.post("/scenario", json!({"sub": "s-heidi", "email": "heidi@acme.test"})).await;
    let callback = start(&app, &heidi_browser, "acme").await;
    assert_eq!(finish(&heidi_browser, &callback).await, format!("/orgs/{org}"));
    assert_eq!(signed_in(&app, &heidi_browser).await.unwrap()["id"], heidi_id.as_str());
    assert!(app.audit_actions(&org).await.contains(&"identity.link".to_string()));
    app.as_client(&app.browser(), Method::POST, "/api/auth/signin", Some(json!({"email": "heidi@acme.test", "password": "correct horse battery"}))).await.expect(200, "OK");

    // Frank's address was typed by someone, never proven: the first sign-in through the org's IdP takes the
    // account over cleanly. Whoever held the password, its sessions and its keys keeps nothing.
    idp.post("/scenario", json!({"sub": "s-frank", "email": "frank@acme.test"})).await;
    let frank = app.browser();
    let callback = start(&app, &frank, "acme").await;
    assert_eq!(finish(&frank, &callback).await, "/account?notice=account_secured");
    assert_eq!(signed_in(&app, &frank).await.unwrap()["id"], frank_id.as_str());
    assert!(signed_in(&app, &frank_old).await.is_none(), "the old session is gone");
    app.send(app.browser().get(app.url("/api/user/me")).header("X-Api-Key", &frank_key)).await.expect(401, "INVALID_API_KEY");
    app.as_client(&app.browser(), Method::POST, "/api/auth/signin", Some(json!({"email": "frank@acme.test", "password": "correct horse battery"}))).await.expect(401, "INVALID_CREDENTIALS");
    let takeover = app::repo::audit::list_for_org(&app.db, &org, 100).await.unwrap().into_iter().find(|e| e.action == "identity.takeover").expect("audited");
    assert!(takeover.detail.unwrap().contains("password_removed=true sessions_ended=1 api_keys_revoked=1"));

    // No new password account can squat an address at a domain that signs in with SSO.
    let r = app.as_client(&app.browser(), Method::POST, "/api/auth/signup", Some(json!({"email": "ivan@ACME.test", "password": "correct horse battery", "name": "Ivan"}))).await;
    let r = r.expect(403, "SSO_REQUIRED");
    assert!(r.message().contains("/api/auth/sso/acme/login"), "{}", r.message());

    // An address outside the org's verified domains is never linked or created.
    app.other_user("grace@other.test").await;
    idp.post("/scenario", json!({"sub": "s-grace", "email": "grace@other.test"})).await;
    let grace = app.browser();
    let callback = start(&app, &grace, "acme").await;
    assert_eq!(finish(&grace, &callback).await, "/auth/error?code=sso_domain_not_verified");
});

/// Two nodes on one database both run the background worker; claims make each transition happen once.
async fn two_nodes(backend: Backend) {
    let bind = Bind::start().await;
    let Some((mut config, dir)) = config(backend).await else { return };
    config.allow_private_idp = true;
    config.dns_server = Some(bind.addr.clone());
    config.domain_check_unit_ms = 100;
    let second = spawn_with(config.clone(), tempfile::tempdir().unwrap()).await;
    let app = spawn_with(config, dir).await;
    app.sign_up("owner@acme.test").await;
    let org = app.create_org("Acme", "acme").await;
    let mut records = Vec::new();
    for i in 0..6 {
        records.push(add(&app, &org, &format!("d{i}.acme.test")).await);
    }
    for d in &records {
        bind.set_txt(d["txtRecord"]["name"].as_str().unwrap(), &[d["txtRecord"]["value"].as_str().unwrap()]).await;
    }
    let mut verified = 0;
    for _ in 0..200 {
        let list = app.get(&domains(&org)).await;
        verified = list.data().as_array().unwrap().iter().filter(|d| d["status"] == "verified").count();
        if verified == records.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(verified, records.len(), "both workers together verified every domain");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let transitions = app.audit_actions(&org).await.into_iter().filter(|a| a == "domain.verified").count();
    assert_eq!(transitions, records.len(), "each domain was verified exactly once across the two nodes");
    drop(second);
}

#[tokio::test]
async fn two_nodes_check_each_domain_once_sqlite() {
    two_nodes(Backend::Sqlite).await;
}

#[tokio::test]
async fn two_nodes_check_each_domain_once_postgres() {
    two_nodes(Backend::Postgres).await;
}
