//! Sign-up, sign-in, sessions and cookies.
use crate::both;
use crate::helpers::*;
use reqwest::Method;
use serde_json::json;

both!(sign_up_signs_in_and_me_answers, |app: TestApp| async move {
    let id = app.sign_up("Ann@Example.com").await;
    let me = app.get("/api/user/me").await.expect(200, "OK");
    assert_eq!(me.data()["id"], id);
    assert_eq!(me.data()["email"], "ann@example.com", "email is normalized");
    assert_eq!(me.data()["authMethod"], "password");
});

both!(sign_up_refuses_bad_input_and_duplicates, |app: TestApp| async move {
    let bad_email = app.post("/api/auth/signup", json!({"email": "not-an-email", "password": "correct horse battery", "name": "A"})).await;
    let bad_email = bad_email.expect(422, "VALIDATION_ERROR");
    assert!(bad_email.message().starts_with("email:"), "{}", bad_email.message());
    let short = app.post("/api/auth/signup", json!({"email": "a@example.com", "password": "short", "name": "A"})).await;
    assert!(short.expect(422, "VALIDATION_ERROR").message().contains("10 characters"));
    app.sign_up("dup@example.com").await;
    let again = app.browser();
    app.as_client(&again, Method::POST, "/api/auth/signup", Some(json!({"email": "DUP@example.com", "password": "another long password", "name": "B"})))
        .await
        .expect(409, "CONFLICT");
    app.as_client(&again, Method::GET, "/api/user/me", None).await.expect(401, "UNAUTHORIZED");
});

both!(wrong_password_and_unknown_email_look_the_same, |app: TestApp| async move {
    app.sign_up("bob@example.com").await;
    let c = app.browser();
    let wrong = app.as_client(&c, Method::POST, "/api/auth/signin", Some(json!({"email": "bob@example.com", "password": "wrong password"}))).await;
    let unknown = app.as_client(&c, Method::POST, "/api/auth/signin", Some(json!({"email": "nobody@example.com", "password": "wrong password"}))).await;
    assert_eq!(wrong.expect(401, "INVALID_CREDENTIALS").body, unknown.expect(401, "INVALID_CREDENTIALS").body);
    app.as_client(&c, Method::GET, "/api/user/me", None).await.expect(401, "UNAUTHORIZED");
    let ok = app.as_client(&c, Method::POST, "/api/auth/signin", Some(json!({"email": "bob@example.com", "password": "correct horse battery"}))).await;
    ok.expect(200, "OK");
    app.as_client(&c, Method::GET, "/api/user/me", None).await.expect(200, "OK");
});

both!(password_guessing_is_rate_limited, |app: TestApp| async move {
    app.sign_up("carol@example.com").await;
    let c = app.browser();
    let guess = json!({"email": "carol@example.com", "password": "guess guess guess"});
    for _ in 0..app::service::auth::SIGNIN_LIMIT_PER_EMAIL {
        app.as_client(&c, Method::POST, "/api/auth/signin", Some(guess.clone())).await.expect(401, "INVALID_CREDENTIALS");
    }
    let limited = app.as_client(&c, Method::POST, "/api/auth/signin", Some(guess)).await.expect(429, "RATE_LIMITED");
    assert!(limited.headers.contains_key("retry-after"));
    // Even the right password waits: the limiter runs before the check.
    let right = json!({"email": "carol@example.com", "password": "correct horse battery"});
    app.as_client(&c, Method::POST, "/api/auth/signin", Some(right)).await.expect(429, "RATE_LIMITED");
});

both!(session_cookie_is_httponly_lax_and_rotated_at_sign_in, |app: TestApp| async move {
    app.sign_up("dan@example.com").await;
    let body = json!({"email": "dan@example.com", "password": "correct horse battery"});
    let first = app.client.post(app.url("/api/auth/signin")).json(&body).send().await.unwrap();
    let cookie1 = first.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie1.starts_with("latchkey_session="), "{cookie1}");
    assert!(cookie1.contains("HttpOnly") && cookie1.contains("SameSite=Lax"), "{cookie1}");
    assert!(!cookie1.contains("Secure"), "plain http on loopback: no Secure flag ({cookie1})");
    let second = app.client.post(app.url("/api/auth/signin")).json(&body).send().await.unwrap();
    let cookie2 = second.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    let id = |c: &str| c.split(';').next().unwrap().to_string();
    assert_ne!(id(&cookie1), id(&cookie2), "the session id changes at every sign-in");
    // The old cookie no longer signs anyone in.
    let old = reqwest::Client::new().get(app.url("/api/user/me")).header("cookie", id(&cookie1)).send().await.unwrap();
    assert_eq!(old.status(), 401);
    let new = reqwest::Client::new().get(app.url("/api/user/me")).header("cookie", id(&cookie2)).send().await.unwrap();
    assert_eq!(new.status(), 200);
});

both!(sign_out_ends_the_session, |app: TestApp| async move {
    app.sign_up("erin@example.com").await;
    app.post("/api/auth/signout", json!({})).await.expect(200, "OK");
    app.get("/api/user/me").await.expect(401, "UNAUTHORIZED");
});

both!(a_restart_signs_no_one_out, |app: TestApp| async move {
    app.sign_up("fay@example.com").await;
    // A second server on the same database and key file stands in for a restart (or another node).
    let (config, dir) = (app.config.clone(), tempfile::tempdir().unwrap());
    let second = spawn_with(config, dir).await;
    let direct = app.client.get(format!("{}/api/user/me", second.base)).send().await.unwrap();
    assert_eq!(direct.status(), 200, "the session lives in the database, not in the first process");
});

both!(sessions_are_listed_and_revocable, |app: TestApp| async move {
    app.sign_up("gus@example.com").await;
    let other = app.browser();
    app.as_client(&other, Method::POST, "/api/auth/signin", Some(json!({"email": "gus@example.com", "password": "correct horse battery"})))
        .await
        .expect(200, "OK");
    let list = app.get("/api/user/sessions").await.expect(200, "OK");
    let sessions = list.data().as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    let theirs = sessions.iter().find(|s| s["current"] == false).unwrap();
    app.send(app.client.delete(app.url(&format!("/api/user/sessions/{}", theirs["id"].as_str().unwrap())))).await.expect(200, "OK");
    app.as_client(&other, Method::GET, "/api/user/me", None).await.expect(401, "UNAUTHORIZED");
    app.get("/api/user/me").await.expect(200, "OK");
});

#[tokio::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let (mut config, dir) = config(Backend::Sqlite).await.unwrap();
    config.public_url = Some("https://sso.example.com".into());
    let app = spawn_with(config, dir).await;
    let r = app
        .client
        .post(app.url("/api/auth/signup"))
        .header("origin", "https://sso.example.com")
        .json(&json!({"email": "h@example.com", "password": "correct horse battery", "name": "H"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn plain_http_public_url_is_refused_off_loopback() {
    let (mut config, _dir) = config(Backend::Sqlite).await.unwrap();
    config.public_url = Some("http://sso.example.com".into());
    let err = latchkey::startup::build(config).await.err().expect("must refuse");
    assert!(err.to_string().contains("https"), "{err}");
}
