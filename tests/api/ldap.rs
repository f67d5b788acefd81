//! LDAP connections against a real OpenLDAP `slapd` (end2end/peers/ldap-directory.py: its own config and data,
//! memberOf, StartTLS and LDAPS with a CA it makes), on SQLite and PostgreSQL. Attacks first: a wrong or empty
//! password, filter injection, an unknown or ambiguous name, a directory that never answers, a CA that is not the
//! directory's, another tenant.
use crate::both;
use crate::helpers::*;
use crate::peers::Peer;
use reqwest::Client;
use serde_json::{json, Value};

struct Dir {
    peer: Peer,
    info: Value,
    org_id: String,
    conn_id: String,
}

impl Dir {
    fn s(&self, k: &str) -> String {
        self.info[k].as_str().unwrap_or_default().to_string()
    }
    fn path(&self) -> String {
        format!("/api/user/organizations/{}/sso/connections/{}", self.org_id, self.conn_id)
    }
}

/// An org `acme` with the verified domain example.com and an LDAP connection to a new directory over StartTLS
/// (its CA pinned), groups mapped by CN: engineers -> member, admins -> admin.
async fn setup(app: &TestApp, extra: Value) -> Dir {
    app.sign_up("owner@owner-co.test").await;
    let org_id = app.create_org("Acme", "acme").await;
    app.arrange_verified_domain(&org_id, "example.com").await;
    let peer = Peer::start("ldap-directory.py", &[]).await;
    let info: Value = reqwest::get(format!("{}/info", peer.url)).await.unwrap().json().await.unwrap();
    let mut body = json!({
        "name": "Company directory", "protocol": "ldap",
        "serverUrl": info["ldap_url"], "caCertificate": info["ca_pem"],
        "bindDn": info["bind_dn"], "bindPassword": info["bind_password"], "userBaseDn": info["people_dn"],
        "groupRoles": [{"group": "engineers", "role": "member"}, {"group": "admins", "role": "admin"}],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let c = app.post(&format!("/api/user/organizations/{org_id}/sso/connections"), body).await.expect(201, "OK");
    let conn_id = c.data()["id"].as_str().unwrap().to_string();
    Dir { peer, info, org_id, conn_id }
}

/// Signs in through the JSON API in a new browser; the answer and that browser.
async fn sign_in(app: &TestApp, d: &Dir, username: &str, password: &str) -> (Answer, Client) {
    let b = app.browser();
    let body = json!({"connectionId": d.conn_id, "username": username, "password": password});
    let a = app.as_client(&b, reqwest::Method::POST, "/api/auth/sso/ldap", Some(body)).await;
    (a, b)
}

async fn users(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&app.db).await.unwrap()
}

both!(sso ldap_sign_in_over_starttls_maps_groups_at_every_sign_in, |app: TestApp| async move {
    let d = setup(&app, json!({})).await;
    // The owner's test: every step, with the sample name found.
    let t = app.post(&format!("{}/test", d.path()), json!({"username": "alice"})).await.expect(200, "OK");
    let steps: Vec<&str> = t.data()["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["dns", "connect", "starttls", "bind", "search"], "{}", t.body);
    assert_eq!(t.data()["success"], true, "{}", t.body);
    assert!(t.data()["message"].as_str().unwrap().contains("uid=alice"), "{}", t.body);
    let c = app.get(&d.path()).await.expect(200, "OK");
    assert_eq!(c.data()["status"], "active");
    assert_eq!(c.data()["ldap"]["tls"], "starttls");
    assert_eq!(c.data()["ldap"]["bindPasswordSet"], true);
    assert!(!c.body.to_string().contains(&d.s("bind_password")), "the bind password never comes back");

    // alice is in engineers and admins: admin. Signed in for real (the session works).
    let (a, browser) = sign_in(&app, &d, "alice", "alice-pw").await;
    assert_eq!(a.expect(200, "OK").data()["redirectTo"], format!("/orgs/{}", d.org_id));
    let me = app.as_client(&browser, reqwest::Method::GET, "/api/user/me", None).await.expect(200, "OK");
    assert_eq!(me.data()["email"], "alice@example.com");
    assert_eq!(app.role_of(&d.org_id, "alice@example.com").await.as_deref(), Some("admin"));
    // bob (engineers) by his email: member. Then moved to admins in the directory: admin at the next sign-in.
    sign_in(&app, &d, "bob@example.com", "bob-pw").await.0.expect(200, "OK");
    assert_eq!(app.role_of(&d.org_id, "bob@example.com").await.as_deref(), Some("member"));
    d.peer.call("/group", json!({"group": "admins", "add": ["bob"]})).await;
    sign_in(&app, &d, "bob", "bob-pw").await.0.expect(200, "OK");
    assert_eq!(app.role_of(&d.org_id, "bob@example.com").await.as_deref(), Some("admin"));
    // Groups by a group search instead of memberOf: the same roles (entries' DNs match the rules by CN).
    let search = json!({"groupAttribute": "", "groupBaseDn": d.s("groups_dn"), "groupFilter": "(member={dn})"});
    app.send(app.client.patch(app.url(&d.path())).json(&search)).await.expect(200, "OK");
    app.send(app.client.patch(app.url(&d.path())).json(&json!({"groupRoles": [{"group": "admins", "role": "admin"}], "defaultRole": "member"}))).await.expect(200, "OK");
    sign_in(&app, &d, "bob", "bob-pw").await.0.expect(200, "OK");
    assert_eq!(app.role_of(&d.org_id, "bob@example.com").await.as_deref(), Some("admin"), "the group search finds admins");
    // A group base that does not exist is not "no groups": nobody is demoted on an incomplete answer.
    app.send(app.client.patch(app.url(&d.path())).json(&json!({"groupBaseDn": "ou=nowhere,dc=example,dc=com"}))).await.expect(200, "OK");
    sign_in(&app, &d, "bob", "bob-pw").await.0.expect(503, "ldap_unavailable");
    assert_eq!(app.role_of(&d.org_id, "bob@example.com").await.as_deref(), Some("admin"));
    // A group filter cannot use what the person typed.
    app.send(app.client.patch(app.url(&d.path())).json(&json!({"groupFilter": "(memberUid={username})"}))).await.expect(422, "VALIDATION_ERROR");
    let identities: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM identities WHERE connection_id = $1").bind(&d.conn_id).fetch_one(&app.db).await.unwrap();
    assert_eq!(identities, 2, "one identity per person (entryUUID), whatever name they typed");

    // Email-first routing: example.com now goes to the LDAP form, with the address typed.
    let disc = app.post("/api/auth/discover", json!({"email": "carol@example.com"})).await.expect(200, "OK");
    assert_eq!(disc.data()["protocol"], "ldap");
    let r = app.browser().get(app.url(disc.data()["url"].as_str().unwrap())).send().await.unwrap();
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(&format!("/signin/ldap?connection_id={}&username=carol%40example.com", d.conn_id)), "{to}");
    let page = app.browser().get(app.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("action=\"/api/auth/sso/ldap\"") && page.contains("carol@example.com"), "the LDAP form");
});

both!(sso wrong_empty_injected_unknown_and_ambiguous_names_get_one_answer, |app: TestApp| async move {
    let d = setup(&app, json!({})).await;
    let before = users(&app).await;
    let mut messages = Vec::new();
    for (name, password) in [
        ("alice", "wrong"),
        ("alice", ""),
        ("*)(uid=*", "alice-pw"),
        ("*", "alice-pw"),
        ("alic*", "alice-pw"),
        ("alice)(|(uid=*", "alice-pw"),
        ("nobody", "alice-pw"),
        ("shared@example.com", "dup-pw"),
    ] {
        let (a, _) = sign_in(&app, &d, name, password).await;
        let a = a.expect(401, "ldap_invalid_credentials");
        messages.push(a.message().to_string());
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "an unknown name and a wrong password read the same: {messages:?}");
    assert_eq!(users(&app).await, before, "nothing created");
    assert!(app.audit_actions(&d.org_id).await.contains(&"sso.login".to_string()), "failures are audited for the org");
    // Two entries with one address: the first signs in; the second never reaches that account.
    sign_in(&app, &d, "dup1", "dup-pw").await.0.expect(200, "OK");
    sign_in(&app, &d, "dup2", "dup-pw").await.0.expect(403, "sso_account_conflict");
    // An entry without an email cannot sign in.
    sign_in(&app, &d, "nomail", "nomail-pw").await.0.expect(403, "ldap_user_attribute_missing");
    // The password is in no log line and no audit row.
    let details: Vec<String> = sqlx::query_scalar("SELECT COALESCE(detail, '') FROM audit_events").fetch_all(&app.db).await.unwrap();
    assert!(!details.iter().any(|d| d.contains("alice-pw") || d.contains("dup-pw")), "{details:?}");

    // Ten attempts per name in the window, then the same answer for everyone: rate limited.
    let mut last = 0;
    for _ in 0..12 {
        last = sign_in(&app, &d, "carol", "nope").await.0.status.as_u16();
    }
    assert_eq!(last, 429, "guessing one name is rate limited");
    sign_in(&app, &d, "carol", "carol-pw").await.0.expect(429, "rate_limited");
});

both!(sso required_groups_refuse_others_and_ldaps_needs_the_right_ca, |app: TestApp| async move {
    let d = setup(&app, json!({"groupsRequired": true})).await;
    sign_in(&app, &d, "carol", "carol-pw").await.0.expect(403, "ldap_not_in_allowed_group");
    sign_in(&app, &d, "bob", "bob-pw").await.0.expect(200, "OK");
    d.peer.call("/group", json!({"group": "engineers", "remove": ["bob"]})).await;
    sign_in(&app, &d, "bob", "bob-pw").await.0.expect(403, "ldap_not_in_allowed_group");
    assert_eq!(app.role_of(&d.org_id, "bob@example.com").await, None, "removed from every mapped group: no longer a member");

    // LDAPS with the directory's CA works; with another CA nothing is sent (TLS error).
    let patch = |body: Value| app.client.patch(app.url(&d.path())).json(&body);
    app.send(patch(json!({"serverUrl": d.s("ldaps_url"), "bindPassword": d.s("bind_password")}))).await.expect(200, "OK");
    sign_in(&app, &d, "alice", "alice-pw").await.0.expect(200, "OK");
    // A new CA (or plaintext) needs the password again: a stored password never goes to a server trusted otherwise.
    app.send(patch(json!({"caCertificate": d.s("other_ca_pem")}))).await.expect(422, "VALIDATION_ERROR");
    app.send(patch(json!({"caCertificate": d.s("other_ca_pem"), "bindPassword": d.s("bind_password")}))).await.expect(200, "OK");
    sign_in(&app, &d, "alice", "alice-pw").await.0.expect(503, "ldap_tls_error");
    let t = app.post(&format!("{}/test", d.path()), json!({})).await.expect(200, "OK");
    assert_eq!(t.data()["success"], false);
    let last = t.data()["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["step"].as_str(), last["ok"].as_bool()), (Some("tls"), Some(false)), "{}", t.body);
    // Same with StartTLS: no bind happens over an unverified channel.
    app.send(patch(json!({"serverUrl": d.s("ldap_url"), "bindPassword": d.s("bind_password")}))).await.expect(200, "OK");
    sign_in(&app, &d, "alice", "alice-pw").await.0.expect(503, "ldap_tls_error");
    // Turning TLS off needs the password again too.
    app.send(patch(json!({"allowPlaintext": true}))).await.expect(422, "VALIDATION_ERROR");

    // Settings are checked: a URL of another scheme, a filter without {username}, a password changed silently.
    app.send(patch(json!({"serverUrl": "http://127.0.0.1:1", "bindPassword": "x"}))).await.expect(422, "VALIDATION_ERROR");
    app.send(patch(json!({"userFilter": "(uid=alice)"}))).await.expect(422, "VALIDATION_ERROR");
    app.send(patch(json!({"bindDn": "cn=other,dc=example,dc=com"}))).await.expect(422, "VALIDATION_ERROR");
});

both!(sso a_directory_that_never_answers_times_out_and_another_tenant_sees_nothing, |app: TestApp| async move {
    let d = setup(&app, json!({})).await;
    // Accepts TCP connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let patch = json!({"serverUrl": format!("ldaps://127.0.0.1:{port}"), "bindPassword": "x", "connectTimeoutSeconds": 1, "operationTimeoutSeconds": 1});
    app.send(app.client.patch(app.url(&d.path())).json(&patch)).await.expect(200, "OK");
    let started = std::time::Instant::now();
    let (a, _) = sign_in(&app, &d, "alice", "alice-pw").await;
    a.expect(503, "ldap_unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "bounded by the timeouts, not hanging");
    let t = app.post(&format!("{}/test", d.path()), json!({"username": "alice"})).await.expect(200, "OK");
    assert_eq!(t.data()["success"], false);
    assert!(t.data()["message"].as_str().unwrap().contains("did not answer"), "{}", t.body);
    hold.abort();

    // A hostile directory answers with 100,000 nested SEQUENCEs (a recursive decoder would overflow the stack and
    // take the whole server down): refused as unavailable, and the server keeps serving.
    let hostile = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = hostile.local_addr().unwrap().port();
    let serve = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut deep = vec![0x05u8, 0x00];
        for _ in 0..100_000 {
            let mut outer = vec![0x30u8, 0x84];
            outer.extend_from_slice(&(deep.len() as u32).to_be_bytes());
            outer.extend_from_slice(&deep);
            deep = outer;
        }
        while let Ok((mut s, _)) = hostile.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(&deep).await;
        }
    });
    let patch = json!({"serverUrl": format!("ldap://127.0.0.1:{port}"), "allowPlaintext": true, "bindPassword": "x"});
    app.send(app.client.patch(app.url(&d.path())).json(&patch)).await.expect(200, "OK");
    sign_in(&app, &d, "alice", "alice-pw").await.0.expect(503, "ldap_unavailable");
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200, "the server is still up");
    serve.abort();

    // Another org's owner: the connection does not exist for them, and they cannot sign in through it to their org.
    let (other, _) = app.other_user("mallory@evil.test").await;
    let path = d.path();
    app.as_client(&other, reqwest::Method::GET, &path, None).await.expect(404, "NOT_FOUND");
    app.as_client(&other, reqwest::Method::POST, &format!("{path}/test"), Some(json!({}))).await.expect(404, "NOT_FOUND");
    // Unknown connection id: not found, and no directory is contacted.
    let body = json!({"connectionId": "01JAAAAAAAAAAAAAAAAAAAAAAA", "username": "alice", "password": "alice-pw"});
    app.as_client(&app.browser(), reqwest::Method::POST, "/api/auth/sso/ldap", Some(body)).await.expect(404, "sso_connection_not_found");
});

both!(sso an_application_started_sign_in_goes_through_the_ldap_form_and_gets_its_token, |app: TestApp| async move {
    let d = setup(&app, json!({})).await;
    app.post(&format!("{}/test", d.path()), json!({})).await.expect(200, "OK");
    crate::applications::make_operator(&app, "owner@owner-co.test").await;
    const REDIRECT: &str = "http://127.0.0.1:9/app/callback";
    let reg = crate::applications::register(&app, &app.client, REDIRECT, "latchkey").await;
    let (client_id, secret) = (reg["application"]["clientId"].as_str().unwrap().to_string(), reg["clientSecret"].as_str().unwrap().to_string());
    let browser = app.browser();
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "st-42")
        .append_pair("login_hint", "alice@example.com")
        .finish();
    let r = browser.get(app.url(&format!("/api/auth/sso/acme/login?{q}"))).send().await.unwrap();
    let form = r.headers()["location"].to_str().unwrap().to_string();
    assert!(form.starts_with("/signin/ldap?") && form.contains(&client_id) && form.contains("state=st-42"), "{form}");
    // The page carries the application's parameters into the form, as hidden fields.
    let html = browser.get(app.url(&form)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("name=\"clientId\" value=\"{client_id}\"")), "hidden clientId in the form");
    // A wrong password comes back to the form with the code, the application's parameters kept, no password in the URL.
    let fields = |pw: &str| {
        vec![("connectionId", d.conn_id.clone()), ("username", "alice".to_string()), ("password", pw.to_string()),
             ("clientId", client_id.clone()), ("redirectUri", REDIRECT.to_string()), ("state", "st-42".to_string())]
    };
    let r = browser.post(app.url("/api/auth/sso/ldap")).form(&fields("wrong")).send().await.unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with("/signin/ldap?") && back.contains("error=ldap_invalid_credentials") && back.contains(&client_id) && !back.contains("wrong"), "{back}");
    // The right one: straight to the application with a one-time token it redeems.
    let r = browser.post(app.url("/api/auth/sso/ldap")).form(&fields("alice-pw")).send().await.unwrap();
    let landing = r.headers()["location"].to_str().unwrap().to_string();
    assert!(landing.starts_with(REDIRECT) && landing.contains("state=st-42"), "{landing}");
    let token = url::Url::parse(&landing).unwrap().query_pairs().find(|(k, _)| k == "token").unwrap().1.to_string();
    let a = app
        .send(client().post(app.url("/api/auth/sso/authenticate")).basic_auth(&client_id, Some(&secret)).json(&json!({"ssoToken": token})))
        .await
        .expect(200, "OK");
    assert_eq!(a.data()["memberAuthenticated"], true);
    assert_eq!(a.data()["protocol"], "ldap");
    assert_eq!(a.data()["connectionId"], d.conn_id.as_str());
    assert_eq!(a.data()["member"]["email"], "alice@example.com");
    assert_eq!(a.data()["member"]["role"], "admin", "the role the directory's groups give");
});

both!(an_org_has_at_most_25_connections, |app: TestApp| async move {
    app.sign_up("owner@cap.test").await;
    let org = app.create_org("Cap", "cap").await;
    let path = format!("/api/user/organizations/{org}/sso/connections");
    let body = |i: usize| json!({"name": format!("dir {i}"), "protocol": "ldap", "serverUrl": "ldaps://ldap.cap.example", "bindDn": "cn=svc,dc=cap",
        "bindPassword": "pw", "userBaseDn": "ou=people,dc=cap"});
    for i in 0..25 {
        app.post(&path, body(i)).await.expect(201, "OK");
    }
    let refused = app.post(&path, body(25)).await.expect(409, "CONFLICT");
    assert!(refused.message().contains("at most 25"), "{}", refused.body);
    assert_eq!(app.get(&path).await.expect(200, "OK").data().as_array().unwrap().len(), 25);
});
