//! Bad input: always the envelope with a clear code, never a 500 or plain text.
use crate::both;
use crate::helpers::*;
use serde_json::json;

both!(framework_rejections_use_the_envelope, |app: TestApp| async move {
    let c = &app.client;
    let signup = app.url("/api/auth/signup");
    let r = app.send(c.post(&signup).header("content-type", "application/json").body("{\"email\": ")).await.expect(400, "MALFORMED_JSON");
    assert!(r.message().contains("JSON"));
    let r = app.send(c.post(&signup).body("email=a@b.c")).await.expect(415, "UNSUPPORTED_MEDIA_TYPE");
    assert!(r.message().contains("application/json"));
    let r = app.post("/api/auth/signup", json!({"email": "a@example.com", "password": "correct horse battery", "name": "A", "admin": true})).await;
    assert!(r.expect(422, "VALIDATION_ERROR").message().contains("unknown field `admin`"));
    let r = app.post("/api/auth/signup", json!({"email": "a@example.com", "name": "A"})).await;
    assert!(r.expect(422, "VALIDATION_ERROR").message().contains("missing field `password`"));
    let r = app.post("/api/auth/signup", json!({"email": 5, "password": "x", "name": "A"})).await;
    r.expect(422, "VALIDATION_ERROR");
    let huge = json!({"email": "a@example.com", "password": "x".repeat(200_000), "name": "A"});
    app.post("/api/auth/signup", huge).await.expect(413, "PAYLOAD_TOO_LARGE");
    app.get("/api/no/such/route").await.expect(404, "NOT_FOUND");
    app.send(c.delete(app.url("/api/user/organizations"))).await.expect(405, "METHOD_NOT_ALLOWED");
    app.get("/api/user/organizations").await.expect(401, "UNAUTHORIZED");

});

both!(cross_site_writes_with_the_cookie_are_refused, |app: TestApp| async move {
    app.sign_up("csrf@example.com").await;
    let evil = app.client.post(app.url("/api/user/organizations")).header("origin", "https://evil.example").json(&json!({"name": "Evil"}));
    app.send(evil).await.expect(403, "CSRF_REJECTED");
    let cross = app.client.post(app.url("/api/user/organizations")).header("sec-fetch-site", "cross-site").json(&json!({"name": "Evil"}));
    app.send(cross).await.expect(403, "CSRF_REJECTED");
    let own = app.client.post(app.url("/api/user/organizations")).header("origin", app.base.clone()).json(&json!({"name": "Fine Org"}));
    app.send(own).await.expect(201, "OK");
    let orgs = app.get("/api/user/organizations").await;
    assert_eq!(orgs.data().as_array().unwrap().len(), 1, "nothing was created by the refused requests");
});

both!(health_and_readiness, |app: TestApp| async move {
    app.get("/healthz").await.expect(200, "OK");
    let r = app.get("/readyz").await.expect(200, "OK");
    assert_eq!(r.data()["status"], "ready");
});

#[tokio::test]
async fn console_pages_render_without_javascript() {
    let app = spawn(Backend::Sqlite).await.unwrap();
    let page = app.client.get(app.url("/signin")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign in to Latchkey") && html.contains("name=\"email\""), "{html}");
    let step2 = app.client.get(app.url("/signin?email=ann%40example.com")).send().await.unwrap().text().await.unwrap();
    assert!(step2.contains("type=\"password\"") && step2.contains("ann@example.com"));
    // Signed-out visitors of a console page are sent to sign-in.
    let orgs = app.client.get(app.url("/orgs")).header("accept", "text/html").send().await.unwrap();
    assert!(orgs.status().is_redirection(), "{}", orgs.status());
    assert_eq!(orgs.headers()["location"], "/signin");
    let missing = app.client.get(app.url("/no-such-page")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    // Signed in, the org page is server-rendered with its data.
    app.sign_up("ssr@example.com").await;
    let id = app.create_org("Rendered Org", "rendered").await;
    let html = app.client.get(app.url(&format!("/orgs/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Rendered Org") && html.contains("/api/auth/sso/rendered/login"), "{html}");
}
