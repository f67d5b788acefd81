//! What an anonymous client, or many clients behind one load balancer, can do to the server (issue 10, findings
//! 7, 8 and 14): no unbounded writes, limits per real client address, argon2 off the async workers, and the
//! headers that keep pages out of frames and secrets out of caches.
use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

const PW: &str = "correct horse battery";

async fn spawn_custom(adjust: impl FnOnce(&mut latchkey::config::Config)) -> TestApp {
    let (mut config, dir) = config(Backend::Sqlite).await.unwrap();
    config.allow_private_idp = true;
    adjust(&mut config);
    spawn_with(config, dir).await
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&app.db).await.unwrap()
}

#[tokio::test]
async fn junk_callbacks_and_logins_leave_nothing_that_grows() {
    let app = spawn_custom(|c| c.sso_rate_limit = 5).await;
    let idp = crate::sso_settings::forge().await;
    app.sign_up("owner@example.com").await;
    let org = app.create_org("Org", "org").await;
    crate::sso_settings::configure(&app, &org, &idp.url).await;
    // Unknown states are counted in the log, not written one audit row each.
    let before = count(&app, "audit_events").await;
    for i in 0..20 {
        let r = app.browser().get(app.url(&format!("/api/auth/sso/callback?code=x&state=junk-{i}"))).send().await.unwrap();
        assert!(r.headers()["location"].to_str().unwrap().starts_with("/auth/error?code="), "{:?}", r.headers());
    }
    assert_eq!(count(&app, "audit_events").await, before, "junk states wrote audit rows");
    // Logins are limited per client: the sixth start within a minute is refused and stores no flow.
    for _ in 0..5 {
        let r = app.browser().get(app.url("/api/auth/sso/org/login")).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert!(!r.headers()["location"].to_str().unwrap().starts_with("/auth/error"));
    }
    let flows = count(&app, "sso_flows").await;
    let r = app.browser().get(app.url("/api/auth/sso/org/login")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/auth/error?code=rate_limited");
    assert_eq!(count(&app, "sso_flows").await, flows);

    // Housekeeping purges expired flows and stale counters; a lease lets one node at a time do it.
    sqlx::query("UPDATE sso_flows SET expires_at = 1").execute(&app.db).await.unwrap();
    sqlx::query("UPDATE rate_limits SET window_start = 1").execute(&app.db).await.unwrap();
    let typed = count(&app, "rate_limits").await;
    assert!(typed >= 2, "login and callback counters exist");
    // (The app's own loop took the lease at start; it is released here as if that pass had ended long ago.)
    sqlx::query("UPDATE leases SET until_ms = 0").execute(&app.db).await.unwrap();
    let purged = app::service::housekeeping::run_once(&app.db, "node-a", 60_000).await.unwrap().expect("node a holds the lease");
    assert_eq!(purged.flows, flows as u64);
    assert_eq!(purged.rate_limits, typed as u64);
    assert_eq!(count(&app, "sso_flows").await + count(&app, "rate_limits").await, 0);
    assert!(app::service::housekeeping::run_once(&app.db, "node-b", 60_000).await.unwrap().is_none(), "node b waits for the lease");
    assert!(app::service::housekeeping::run_once(&app.db, "node-a", 60_000).await.unwrap().is_none(), "one pass per lease");
}

#[tokio::test]
async fn behind_a_trusted_proxy_limits_and_sessions_use_the_forwarded_client() {
    let app = spawn_custom(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    for i in 0..11 {
        app.sign_up(&format!("u{i}@example.com")).await;
    }
    let signin = |xff: &str, email: String, pw: &str| {
        app.browser().post(app.url("/api/auth/signin")).header("X-Forwarded-For", xff).json(&json!({"email": email, "password": pw}))
    };
    // One abusive client behind the proxy: 100 wrong guesses over 11 addresses, then it is refused...
    for n in 0..100 {
        let a = app.send(signin("198.51.100.1, 203.0.113.7", format!("u{}@example.com", n % 11), "wrong password!")).await;
        assert_eq!(a.code(), "INVALID_CREDENTIALS", "guess {n}: {}", a.body);
    }
    // (u10 had 9 guesses: its own per-address limit of 10 is not what refuses here; the client's 100 is.)
    let a = app.send(signin("203.0.113.7", "u10@example.com".into(), PW)).await.expect(429, "RATE_LIMITED");
    assert!(a.headers.get("retry-after").is_some());
    // ... while another client behind the same proxy signs in (before: everyone shared the proxy's address).
    let b = app.browser();
    let ok = app.send(b.post(app.url("/api/auth/signin")).header("X-Forwarded-For", "203.0.113.8").json(&json!({"email": "u1@example.com", "password": PW}))).await;
    ok.expect(200, "OK");
    let sessions = app.as_client(&b, Method::GET, "/api/user/sessions", None).await.expect(200, "OK");
    assert_eq!(sessions.data()[0]["ip"], "203.0.113.8");

    // Without trusted proxies the header is the client's own claim and is ignored.
    let direct = spawn_custom(|_| {}).await;
    direct.sign_up("d@example.com").await;
    let s = direct.send(direct.client.get(direct.url("/api/user/sessions")).header("X-Forwarded-For", "203.0.113.9")).await.expect(200, "OK");
    assert_eq!(s.data()[0]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn pages_refuse_framing_and_secrets_are_never_cached() {
    let app = spawn_custom(|_| {}).await;
    app.sign_up("h@example.com").await;
    let created = app.client.post(app.url("/api/user/api-keys")).json(&json!({"name": "k"})).send().await.unwrap();
    let enrol = app.client.post(app.url("/api/auth/mfa/enroll")).json(&json!(null)).send().await.unwrap();
    let page = app.client.get(app.url("/account")).header("Accept", "text/html").send().await.unwrap();
    for r in [&created, &enrol, &page] {
        let h = r.headers();
        assert_eq!(h["cache-control"], "no-store", "{}", r.url());
        assert_eq!(h["x-frame-options"], "DENY", "{}", r.url());
        assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"), "{}", r.url());
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
}

// Several counters in one statement (an LDAP sign-in counts its name and its client address at once): each key
// keeps its own window and count, an expired window starts again at 1 for that key only, and one DELETE clears
// several keys.
crate::both!(rate_limit_counters_keep_their_own_windows, |app: TestApp| async move {
    use app::repo::rate_limits::{clear, hit_all};
    // Real times: housekeeping running meanwhile purges counters whose window is long past.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (short, long) = ("test:short", "test:long");
    assert_eq!(hit_all(&app.db, &[(short, 1_000), (long, 60_000)], now).await.unwrap(), vec![(1, now), (1, now)]);
    // Given in the other order, answered in that order.
    assert_eq!(hit_all(&app.db, &[(long, 60_000), (short, 1_000)], now + 10).await.unwrap(), vec![(2, now), (2, now)]);
    // 2 s later the short window is over (the count starts again), the long one is not.
    let later = now + 2_000;
    assert_eq!(hit_all(&app.db, &[(short, 1_000), (long, 60_000)], later).await.unwrap(), vec![(1, later), (3, now)]);
    assert_eq!(hit_all(&app.db, &[(short, 1_000)], later).await.unwrap(), vec![(2, later)]);
    clear(&app.db, &[short, long]).await.unwrap();
    assert_eq!(count(&app, "rate_limits").await, 0);
});

/// The callback's per-client limit: a successful sign-in counts once, junk counts before its answer, and a
/// valid flow presented by a client over its limit is refused without being burned.
#[tokio::test]
async fn the_callback_limit_counts_each_attempt_once_and_burns_no_flow() {
    use crate::sso_login::{finish, signed_in, start};
    let app = spawn_custom(|c| c.sso_rate_limit = 3).await;
    let idp = crate::sso_settings::forge().await;
    app.sign_up("owner@example.com").await;
    let org = app.create_org("Org", "org").await;
    crate::sso_settings::configure(&app, &org, &idp.url).await;
    app.arrange_verified_domain(&org, "example.com").await;
    idp.post("/scenario", json!({"sub": "lim-1", "email": "lim@example.com"})).await;
    let hits = || async {
        sqlx::query_scalar::<_, i64>("SELECT hits FROM rate_limits WHERE key LIKE 'sso:callback:ip:%'").fetch_optional(&app.db).await.unwrap()
    };
    let first = app.browser();
    let callback = start(&app, &first, "org").await;
    assert_eq!(finish(&first, &callback).await, format!("/orgs/{org}"));
    assert_eq!(hits().await, Some(1), "a success counts once");
    // A replay of that callback is junk now: counted before its answer.
    assert_eq!(finish(&first, &callback).await, "/auth/error?code=sso_state_invalid");
    assert_eq!(hits().await, Some(2));
    let r = app.browser().get(app.url("/api/auth/sso/callback?code=x&state=junk")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/auth/error?code=sso_state_invalid");
    assert_eq!(hits().await, Some(3));
    // Over the limit: a genuine flow is refused and stays unused.
    let second = app.browser();
    let callback = start(&app, &second, "org").await;
    assert_eq!(finish(&second, &callback).await, "/auth/error?code=rate_limited");
    assert!(signed_in(&app, &second).await.is_none());
    let unused: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sso_flows WHERE used_at IS NULL").fetch_one(&app.db).await.unwrap();
    assert_eq!(unused, 1, "the refused flow was not burned");
    // Once the window has passed, the client signs in again (the refused flow's binding cookie went with its
    // answer, as for any failed callback).
    sqlx::query("UPDATE rate_limits SET window_start = 1").execute(&app.db).await.unwrap();
    let third = app.browser();
    let callback = start(&app, &third, "org").await;
    assert_eq!(finish(&third, &callback).await, format!("/orgs/{org}"));
    assert_eq!(signed_in(&app, &third).await.unwrap()["email"], "lim@example.com");
    assert_eq!(hits().await, Some(1), "a new window, counted once");
}
