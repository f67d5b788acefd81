//! The console's forms are plain HTML posts (the pages render on the server and work without JavaScript). A result
//! shown once (here a new API key) travels to the page in the session: sealed at rest, shown once, and only to the
//! browser that asked for it. A failure comes back to the form in the redirect.
use crate::both;
use crate::helpers::*;
use reqwest::Client;

/// Posts a console form the way a browser without JavaScript does; answers the redirect's target.
pub async fn post_form(app: &TestApp, c: &Client, action: &str, fields: &[(&str, &str)], from: &str) -> String {
    let r = c
        .post(app.url(action))
        .header("origin", &app.base)
        .header("referer", app.url(from))
        .header("accept", "text/html")
        .form(fields)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{action}: {} {}", r.status(), r.text().await.unwrap_or_default());
    r.headers()["location"].to_str().unwrap().to_string()
}

pub async fn page(app: &TestApp, c: &Client, path: &str) -> String {
    let r = c.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

both!(a_new_key_is_sealed_in_the_session_and_shown_once_to_its_browser, |app: TestApp| async move {
    app.sign_up("owner@example.com").await;
    let to = post_form(&app, &app.client, "/sfn/create_api_key", &[("name", "deploy"), ("organization_id", "")], "/account").await;
    assert_eq!(to.trim_end_matches('?'), app.url("/account"), "back to the page the form was on");

    // At rest, the session row holds the key only sealed.
    let rows: Vec<String> = sqlx::query_scalar("SELECT data FROM http_sessions").fetch_all(&app.db).await.unwrap();
    assert!(rows.iter().any(|d| d.contains("notice:api_key")), "the notice is in the session: {rows:?}");
    assert!(rows.iter().all(|d| !d.contains("lk_")), "no plaintext key in the session store");

    // Another browser signed in as someone else never sees it.
    let (other, _) = app.other_user("other@example.com").await;
    assert!(!page(&app, &other, "/account").await.contains("new-key"));

    let html = page(&app, &app.client, "/account").await;
    let at = html.find("id=\"new-key\"").expect("the new key is shown on the page it returns to");
    let key = html[at..].split("lk_").nth(1).and_then(|s| s.split('<').next()).map(|s| format!("lk_{s}")).unwrap();
    let with_key = app.send(app.client.get(app.url("/api/user/me")).header("x-api-key", &key)).await;
    with_key.expect(200, "OK");

    // Shown once: the next render has no notice, and the session no longer holds it.
    let again = page(&app, &app.client, "/account").await;
    assert!(!again.contains("new-key") && !again.contains(&key), "shown only once");
    let rows: Vec<String> = sqlx::query_scalar("SELECT data FROM http_sessions").fetch_all(&app.db).await.unwrap();
    assert!(rows.iter().all(|d| !d.contains("notice:api_key")), "taken out of the session: {rows:?}");
});

both!(a_refused_form_comes_back_with_its_error, |app: TestApp| async move {
    app.sign_up("owner@example.com").await;
    let to = post_form(&app, &app.client, "/sfn/create_org", &[("name", ""), ("slug", "")], "/orgs").await;
    assert!(to.starts_with(&app.url("/orgs?")) && to.contains("__err="), "the error rides in the redirect: {to}");
    let html = page(&app, &app.client, to.trim_start_matches(&app.base)).await;
    assert!(html.contains("role=\"alert\"") && html.contains("VALIDATION_ERROR"), "the form shows why: {html}");
});

both!(a_crafted_error_link_shows_no_attacker_words, |app: TestApp| async move {
    app.sign_up("owner@example.com").await;
    // What leptos_axum would put in the link for a plain JSON error: base64url of {"code":…,"message":…}.
    let forged = br#"{"code":"VALIDATION_ERROR","message":"Your account is locked. Call +1 555 0100 to unlock it."}"#;
    let b64 = base64_url(forged);
    let html = page(&app, &app.client, &format!("/orgs?__path=%2Fsfn%2Fcreate_org&__err={b64}")).await;
    assert!(!html.contains("555 0100"), "a crafted link must not put its words on a Latchkey page: {html}");
    // A genuine refusal still shows its message.
    let to = post_form(&app, &app.client, "/sfn/create_org", &[("name", ""), ("slug", "")], "/orgs").await;
    let html = page(&app, &app.client, to.trim_start_matches(&app.base)).await;
    assert!(html.contains("VALIDATION_ERROR"), "the real error is shown: {html}");
});

fn base64_url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE.encode(data)
}

/// The key the console's MFA page shows (`/mfa`), read from the server-rendered HTML.
async fn shown_key(app: &TestApp, c: &Client) -> String {
    let html = page(app, c, "/mfa").await;
    let at = html.find("aria-label=\"authenticator key\"").unwrap_or_else(|| panic!("the enrolment key is on the page: {html}"));
    html[at..].split('>').nth(1).and_then(|s| s.split('<').next()).unwrap().to_string()
}

both!(a_pending_second_factor_is_never_shown_to_another_browser, |app: TestApp| async move {
    // Someone who knows the password opens the enrolment page first and copies its key...
    app.sign_up("victim@example.com").await;
    let attacker = app.browser();
    let signed = app
        .as_client(&attacker, reqwest::Method::POST, "/api/auth/signin", Some(serde_json::json!({"email": "victim@example.com", "password": "correct horse battery"})))
        .await;
    signed.expect(200, "OK");
    let planted = shown_key(&app, &attacker).await;
    // ...the owner's own browser gets another key, and keeps it when the page is shown again (a mistyped code).
    let own = shown_key(&app, &app.client).await;
    assert_ne!(own, planted, "a key begun in another session is replaced, not shown");
    assert_eq!(shown_key(&app, &app.client).await, own, "the same browser sees its key again");
    // The planted key does not turn the factor on; the owner's does.
    let code = crate::security::totp_code(&planted, 0);
    let to = post_form(&app, &attacker, "/sfn/confirm_mfa_enrollment", &[("code", &code)], "/mfa").await;
    assert!(to.contains("__err="), "the planted key's code is refused: {to}");
    let code = crate::security::totp_code(&own, 0);
    let to = post_form(&app, &app.client, "/sfn/confirm_mfa_enrollment", &[("code", &code)], "/mfa").await;
    assert!(!to.contains("__err="), "the owner's key turns it on: {to}");
    assert!(page(&app, &app.client, "/mfa").await.contains("id=\"recovery-codes\""), "recovery codes shown once");
});

both!(a_notice_is_only_for_the_person_who_caused_it, |app: TestApp| async move {
    app.sign_up("first@example.com").await;
    app.other_user("second@example.com").await;
    post_form(&app, &app.client, "/sfn/create_api_key", &[("name", "mine"), ("organization_id", "")], "/account").await;
    // Someone else signs in on the same browser before the page was shown: the key is not theirs to see, neither
    // on the page nor by asking for the notice directly.
    app.post("/api/auth/signin", serde_json::json!({"email": "second@example.com", "password": "correct horse battery"})).await.expect(200, "OK");
    let r = app.client.post(app.url("/sfn/take_notice")).header("origin", &app.base).form(&[("kind", "api_key")]).send().await.unwrap();
    let body = r.text().await.unwrap();
    assert!(!body.contains("lk_"), "another user's notice: {body}");
    let html = page(&app, &app.client, "/account").await;
    assert!(html.contains("second@example.com") && !html.contains("new-key"), "the page is the second user's, without the key");
});
