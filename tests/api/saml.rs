//! SAML 2.0 against a real IdP: pysaml2 (end2end/peers/saml-idp.py, signing with Debian's xmlsec1) for genuine
//! SP- and IdP-initiated sign-ins, and an attack corpus it forges at run time with lxml + python-xmlsec (the
//! assertions expire, so nothing is stored). Each refusal must come with its code and write nothing but the audit
//! event.
use crate::both;
use crate::helpers::*;
use crate::peers::Peer;
use reqwest::Client;
use serde_json::{json, Value};

struct Setup {
    idp: Peer,
    org_id: String,
    conn_id: String,
    entity_id: String,
    acs: String,
    sp_cert_pem: String,
}

/// An org `acme` with the verified domain example.com, a SAML connection made from the IdP's metadata URL, the SP
/// registered at the IdP, and alice@example.com as the IdP's current user.
async fn setup(app: &TestApp, extra: Value) -> Setup {
    app.sign_up("owner@owner-co.test").await;
    let org_id = app.create_org("Acme", "acme").await;
    app.arrange_verified_domain(&org_id, "example.com").await;
    let idp = Peer::start("saml-idp.py", &[]).await;
    let mut body = json!({"name": "pysaml2", "protocol": "saml", "metadataUrl": format!("{}/metadata", idp.url)});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let a = app.post(&format!("/api/user/organizations/{org_id}/sso/connections"), body).await.expect(201, "OK");
    let c = a.data().clone();
    let conn_id = c["id"].as_str().unwrap().to_string();
    let saml = &c["saml"];
    let metadata = app.client.get(saml["spMetadataUrl"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    let r = Client::new().post(format!("{}/sp", idp.url)).header("content-type", "application/xml").body(metadata).send().await.unwrap();
    assert!(r.status().is_success(), "the IdP takes our SP metadata: {}", r.text().await.unwrap());
    set_user(&idp, "u-1001", "alice@example.com").await;
    let b64 = saml["spCertificate"].as_str().unwrap();
    let lines: Vec<String> = b64.as_bytes().chunks(64).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
    Setup {
        sp_cert_pem: format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n")),
        entity_id: saml["entityId"].as_str().unwrap().to_string(),
        acs: saml["assertionConsumerServiceUrl"].as_str().unwrap().to_string(),
        idp,
        org_id,
        conn_id,
    }
}

async fn set_user(idp: &Peer, name_id: &str, email: &str) {
    idp.post("/user", json!({"name_id": name_id, "name_id_format": "persistent", "email": email, "given_name": "Alice", "family_name": "Liddell", "groups": ["eng"]})).await;
}

fn location(r: &reqwest::Response) -> String {
    assert!(r.status().is_redirection(), "expected a redirect, got {}", r.status());
    r.headers()["location"].to_str().unwrap().to_string()
}

/// The hidden inputs and action of the IdP's auto-submitting form.
fn form_of(html: &str) -> (String, String, Option<String>) {
    let attr = |name: &str| {
        let at = html.find(&format!("name=\"{name}\" value=\""))?;
        let rest = &html[at + name.len() + 15..];
        Some(rest[..rest.find('"')?].replace("&amp;", "&").replace("&quot;", "\""))
    };
    let action = html.split("action=\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_string();
    (action, attr("SAMLResponse").expect("SAMLResponse in the form"), attr("RelayState"))
}

/// Posts a SAMLResponse to the ACS as the IdP's page would (cross-site), then follows to `finish` as the browser
/// would. Returns where the browser lands.
async fn post_acs(app: &TestApp, browser: &Client, idp: &Peer, response: &str, relay: Option<&str>) -> String {
    let mut form = vec![("SAMLResponse", response.to_string())];
    if let Some(r) = relay {
        form.push(("RelayState", r.to_string()));
    }
    let r = browser.post(app.url("/api/auth/sso/saml/acs")).header("origin", &idp.url).form(&form).send().await.unwrap();
    let to = location(&r);
    if !to.starts_with("/api/auth/sso/saml/finish") {
        return to;
    }
    location(&browser.get(app.url(&to)).send().await.unwrap())
}

/// Starts an SP-initiated sign-in; returns the IdP URL it redirects to, its RelayState and the AuthnRequest ID.
async fn start(app: &TestApp, browser: &Client, s: &Setup) -> (String, String, String) {
    let r = browser.get(app.url(&format!("/api/auth/sso/acme/login?connection_id={}", s.conn_id))).send().await.unwrap();
    let idp_url = location(&r);
    assert!(idp_url.starts_with(&format!("{}/sso/redirect?SAMLRequest=", s.idp.url)), "to the IdP: {idp_url}");
    assert!(idp_url.contains("&SigAlg=") && idp_url.contains("&Signature="), "the AuthnRequest is signed: {idp_url}");
    let relay = url::Url::parse(&idp_url).unwrap().query_pairs().find(|(k, _)| k == "RelayState").unwrap().1.to_string();
    let id: String = sqlx::query_scalar("SELECT nonce FROM sso_flows WHERE connection_id = $1 ORDER BY created_at DESC LIMIT 1")
        .bind(&s.conn_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    (idp_url, relay, id)
}

/// A response of `kind` that the IdP forges for alice (u-1001), answering `request_id` (`None`: unsolicited); the
/// SP's certificate goes along for the encrypted kinds. The answer has `SAMLResponse` (base64) and `xml`.
async fn forge_for_alice(s: &Setup, kind: &str, request_id: Option<&str>) -> Value {
    let body = json!({"kind": kind, "sp_entity_id": s.entity_id, "acs_url": s.acs, "in_response_to": request_id, "name_id": "u-1001",
        "email": "alice@example.com", "sp_cert_pem": s.sp_cert_pem});
    s.idp.call("/forge", body).await
}

fn code_of(to: &str) -> &str {
    to.split("code=").nth(1).unwrap_or("(signed in)")
}

async fn counts(app: &TestApp) -> (i64, i64) {
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&app.db).await.unwrap();
    let ids: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM identities").fetch_one(&app.db).await.unwrap();
    (users, ids)
}

both!(sso an_sp_initiated_sign_in_through_pysaml2_makes_a_member_and_activates_the_connection, |app: TestApp| async move {
    let s = setup(&app, json!({})).await;
    let browser = app.browser();
    let (idp_url, _, _) = start(&app, &browser, &s).await;
    // The real IdP verifies our signed AuthnRequest and answers its auto-submitting form.
    let r = browser.get(&idp_url).send().await.unwrap();
    assert_eq!(r.status(), 200, "pysaml2 accepts the signed AuthnRequest");
    let (action, response, relay) = form_of(&r.text().await.unwrap());
    assert_eq!(action, s.acs);
    let to = post_acs(&app, &browser, &s.idp, &response, relay.as_deref()).await;
    assert_eq!(to, format!("/orgs/{}", s.org_id), "signed in to the console");
    let me = app.as_client(&browser, reqwest::Method::GET, "/api/user/me", None).await.expect(200, "OK");
    assert_eq!(me.data()["email"], "alice@example.com");
    let conn = app.get(&format!("/api/user/organizations/{}/sso/connections/{}", s.org_id, s.conn_id)).await.expect(200, "OK");
    assert_eq!(conn.data()["status"], "active", "a successful test sign-in activates the connection");
    assert!(app.audit_actions(&s.org_id).await.contains(&"sso.login".to_string()));

    // Now email-first routing sends example.com to this SAML connection.
    let d = app.post("/api/auth/discover", json!({"email": "bob@example.com"})).await.expect(200, "OK");
    assert_eq!(d.data()["method"], "sso");
    // The same response again: its sign-in is finished, and the assertion id is spent.
    let again = post_acs(&app, &app.browser(), &s.idp, &response, relay.as_deref()).await;
    assert_eq!(code_of(&again), "saml_in_response_to_invalid");
});

both!(sso idp_initiated_is_refused_until_allowed_and_never_replays, |app: TestApp| async move {
    let s = setup(&app, json!({})).await;
    let f = forge_for_alice(&s, "valid", None).await;
    let to = post_acs(&app, &app.browser(), &s.idp, f["SAMLResponse"].as_str().unwrap(), None).await;
    assert_eq!(code_of(&to), "saml_idp_initiated_disabled");
    assert_eq!(counts(&app).await.0, 1, "nothing but the owner");

    app.send(app.client.patch(app.url(&format!("/api/user/organizations/{}/sso/connections/{}", s.org_id, s.conn_id))).json(&json!({"allowIdpInitiated": true})))
        .await
        .expect(200, "OK");
    // Still refused while the connection is not active: a test sign-in (SP-initiated) activates it.
    let f = forge_for_alice(&s, "valid", None).await;
    assert_eq!(code_of(&post_acs(&app, &app.browser(), &s.idp, f["SAMLResponse"].as_str().unwrap(), None).await), "saml_idp_initiated_disabled");
    let b = app.browser();
    let (idp_url, relay, request_id) = start(&app, &b, &s).await;
    let (_, response, _) = form_of(&b.get(&idp_url).send().await.unwrap().text().await.unwrap());
    assert!(!post_acs(&app, &b, &s.idp, &response, Some(&relay)).await.contains("code="));
    // A solicited assertion with the Response's InResponseTo stripped is not an unsolicited one.
    let f = forge_for_alice(&s, "valid_assertion_signed", Some(&request_id)).await;
    let xml = f["xml"].as_str().unwrap().replacen(&format!(" InResponseTo=\"{request_id}\""), "", 1);
    assert_eq!(xml.matches(&request_id).count(), 1, "only the signed SubjectConfirmationData still names the request");
    use base64::Engine;
    let stripped = base64::engine::general_purpose::STANDARD.encode(xml);
    assert_eq!(code_of(&post_acs(&app, &app.browser(), &s.idp, &stripped, None).await), "saml_in_response_to_invalid");
    let r = app.browser().get(format!("{}/idp-initiated?sp={}", s.idp.url, s.entity_id)).send().await.unwrap();
    let (_, response, relay) = form_of(&r.text().await.unwrap());
    let browser = app.browser();
    let to = post_acs(&app, &browser, &s.idp, &response, relay.as_deref()).await;
    assert_eq!(to, format!("/orgs/{}", s.org_id), "an allowed IdP-initiated sign-in: {to}");
    let again = post_acs(&app, &app.browser(), &s.idp, &response, relay.as_deref()).await;
    assert_eq!(code_of(&again), "saml_replayed", "the same assertion twice");
    // The same for an Assertion signed only inside its ciphertext (unsigned Response, AES-GCM): the id that is
    // remembered is the decrypted one's.
    let f = forge_for_alice(&s, "encrypted_assertion_signed_gcm", None).await;
    let encrypted = f["SAMLResponse"].as_str().unwrap();
    let to = post_acs(&app, &app.browser(), &s.idp, encrypted, None).await;
    assert_eq!(to, format!("/orgs/{}", s.org_id), "an IdP-initiated encrypted sign-in: {to}");
    assert_eq!(code_of(&post_acs(&app, &app.browser(), &s.idp, encrypted, None).await), "saml_replayed", "the same encrypted assertion twice");
});

// An encrypted IdP-initiated response hides its audience in the ciphertext, so the ACS picks the connection by the
// Response's Issuer. Another org that registers the same IdP does not take the response away (its connection
// cannot be active: the IdP does not know its SP) and gets nothing from it; when two connections that take
// IdP-initiated sign-ins share the Issuer, the response is refused (fail closed) and nobody is signed in.
both!(sso an_encrypted_idp_initiated_response_goes_to_the_one_open_connection_of_its_issuer, |app: TestApp| async move {
    let s = setup(&app, json!({"allowIdpInitiated": true})).await;
    // A test sign-in (SP-initiated) activates the connection; IdP-initiated sign-ins need it active.
    let b = app.browser();
    let (idp_url, relay, _) = start(&app, &b, &s).await;
    let (_, response, _) = form_of(&b.get(&idp_url).send().await.unwrap().text().await.unwrap());
    assert_eq!(post_acs(&app, &b, &s.idp, &response, Some(&relay)).await, format!("/orgs/{}", s.org_id));

    let other = app.create_org("Beta", "beta").await;
    let body = json!({"name": "same IdP", "protocol": "saml", "metadataUrl": format!("{}/metadata", s.idp.url), "allowIdpInitiated": true});
    let other_conn = app.post(&format!("/api/user/organizations/{other}/sso/connections"), body).await.expect(201, "OK").data()["id"].as_str().unwrap().to_string();
    let identities = |app: &TestApp, conn: String| {
        let db = app.db.clone();
        async move { sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM identities WHERE connection_id = $1").bind(conn).fetch_one(&db).await.unwrap() }
    };
    // The other org's connection is not active: the response still goes to the connection its IdP knows.
    let f = forge_for_alice(&s, "encrypted_assertion_signed_gcm", None).await;
    let to = post_acs(&app, &app.browser(), &s.idp, f["SAMLResponse"].as_str().unwrap(), None).await;
    assert_eq!(to, format!("/orgs/{}", s.org_id), "the one open connection for the Issuer: {to}");
    assert_eq!(identities(&app, other_conn.clone()).await, 0, "nothing for the other org");

    // Both open (arranged: an IdP that trusts both SPs): the Issuer names no one connection.
    sqlx::query("UPDATE connections SET status = 'active' WHERE id = $1").bind(&other_conn).execute(&app.db).await.unwrap();
    let before = counts(&app).await;
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM auth_sessions").fetch_one(&app.db).await.unwrap();
    let parked_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sso_flows WHERE result IS NOT NULL AND used_at IS NULL").fetch_one(&app.db).await.unwrap();
    let f = forge_for_alice(&s, "encrypted_assertion_signed_gcm", None).await;
    let to = post_acs(&app, &app.browser(), &s.idp, f["SAMLResponse"].as_str().unwrap(), None).await;
    assert_eq!(code_of(&to), "saml_audience_mismatch", "two open connections share the Issuer: {to}");
    assert_eq!(counts(&app).await, before, "no user or identity written");
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM auth_sessions").fetch_one(&app.db).await.unwrap();
    assert_eq!(after, sessions, "no session for either org");
    let parked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sso_flows WHERE result IS NOT NULL AND used_at IS NULL").fetch_one(&app.db).await.unwrap();
    assert_eq!(parked, parked_before, "no sign-in parked for either org");
});

/// Every forged response, each answering a real pending request; expected codes ("ok": signs in).
const CORPUS: &[(&str, &[&str])] = &[
    ("valid", &["ok"]),
    ("valid_assertion_signed", &["ok"]),
    ("valid_response_signed", &["ok"]),
    ("xsw1", &["saml_signature_invalid", "saml_malformed_response", "saml_multiple_assertions"]),
    ("xsw2", &["saml_signature_invalid", "saml_malformed_response", "saml_multiple_assertions"]),
    ("xsw3", &["saml_signature_invalid", "saml_malformed_response", "saml_multiple_assertions"]),
    ("xsw4", &["saml_signature_invalid", "saml_malformed_response", "saml_multiple_assertions"]),
    ("xsw5", &["saml_signature_invalid", "saml_malformed_response", "saml_multiple_assertions"]),
    ("xsw6", &["saml_signature_invalid", "saml_malformed_response", "saml_multiple_assertions"]),
    ("xsw7", &["saml_signature_invalid", "saml_malformed_response", "saml_multiple_assertions"]),
    ("xsw8", &["saml_signature_invalid", "saml_malformed_response", "saml_multiple_assertions"]),
    ("comment_in_nameid", &["saml_malformed_response"]),
    ("pi_in_nameid", &["saml_malformed_response"]),
    ("unsigned", &["saml_signature_invalid"]),
    ("signature_removed", &["saml_signature_invalid"]),
    ("tampered", &["saml_signature_invalid"]),
    ("foreign_key", &["saml_signature_invalid"]),
    // Only the IdP can make it: its Response signature covers the Assertion (see the next test for the setting).
    ("inner_foreign_key", &["ok"]),
    ("wrong_audience", &["saml_audience_mismatch"]),
    ("no_audience", &["saml_audience_mismatch"]),
    ("wrong_destination", &["saml_destination_mismatch"]),
    ("wrong_recipient", &["saml_recipient_mismatch"]),
    ("wrong_issuer", &["saml_issuer_mismatch"]),
    ("expired", &["saml_expired"]),
    ("not_yet_valid", &["saml_not_yet_valid"]),
    ("sha1", &["saml_sha1_refused"]),
    ("two_assertions", &["saml_multiple_assertions"]),
    ("status_failure", &["saml_status_not_success"]),
    ("xxe", &["saml_dtd_forbidden"]),
    ("xxe_http", &["saml_dtd_forbidden"]),
    ("billion_laughs", &["saml_dtd_forbidden"]),
    ("dtd_internal_entity", &["saml_dtd_forbidden"]),
    ("reference_uri_http", &["saml_signature_invalid"]),
    ("reference_uri_file", &["saml_signature_invalid"]),
    ("encrypted_aes128_cbc", &["ok"]),
    ("encrypted_aes128_gcm", &["ok"]),
    ("encrypted_tampered", &["saml_signature_invalid", "saml_decryption_failed"]),
    ("encrypted_unsigned_response", &["saml_signature_invalid"]),
    // AES-256 (ADFS's and Entra ID's choice), and an Assertion signed only inside its ciphertext (what they send
    // with encryption on): accepted with AES-GCM, refused with unauthenticated CBC before anything is decrypted.
    ("encrypted_aes256_gcm", &["ok"]),
    ("encrypted_aes256_cbc", &["ok"]),
    ("encrypted_assertion_signed_gcm", &["ok"]),
    ("encrypted_assertion_signed_cbc", &["saml_signature_invalid"]),
    ("encrypted_inner_foreign_key", &["saml_signature_invalid"]),
    ("encrypted_inner_tampered", &["saml_signature_invalid"]),
    ("encrypted_gcm_tampered", &["saml_decryption_failed"]),
    ("encrypted_inner_dtd", &["saml_dtd_forbidden"]),
    ("encrypted_rsa15", &["saml_decryption_failed"]),
    ("encrypted_signed_response_unsigned_assertion", &["ok"]),
    // As ADFS writes them: the assertion namespace as the default one, KeyInfo too; the plaintext of the first
    // relies on the EncryptedAssertion's declaration.
    ("encrypted_default_ns_signed_response", &["ok"]),
    ("encrypted_default_ns_assertion_signed_gcm", &["ok"]),
];

both!(sso the_attack_corpus_is_refused_each_with_its_code_and_writes_nothing, |app: TestApp| async move {
    let s = setup(&app, json!({})).await;
    // A first genuine sign-in makes alice; after it, a refusal must change nothing but the audit log.
    let browser = app.browser();
    let (idp_url, _, _) = start(&app, &browser, &s).await;
    let (_, response, relay) = form_of(&browser.get(&idp_url).send().await.unwrap().text().await.unwrap());
    assert!(!post_acs(&app, &browser, &s.idp, &response, relay.as_deref()).await.contains("code="));
    let before = counts(&app).await;
    let mut wrong = Vec::new();
    for (kind, expected) in CORPUS {
        let browser = app.browser();
        let (_, relay, request_id) = start(&app, &browser, &s).await;
        let audit_before = app.audit_actions(&s.org_id).await.len();
        let f = forge_for_alice(&s, kind, Some(&request_id)).await;
        let to = post_acs(&app, &browser, &s.idp, f["SAMLResponse"].as_str().unwrap(), Some(&relay)).await;
        let got = if to.contains("code=") { code_of(&to).to_string() } else { "ok".to_string() };
        if !expected.contains(&got.as_str()) {
            wrong.push(format!("{kind}: expected {expected:?}, got {got} ({to})"));
        }
        if got != "ok" {
            assert_eq!(counts(&app).await, before, "{kind}: a refusal writes no user or identity");
            assert!(app.audit_actions(&s.org_id).await.len() > audit_before, "{kind}: the refusal is audited");
        }
    }
    assert!(wrong.is_empty(), "corpus mismatches:\n{}", wrong.join("\n"));
    let evil: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email LIKE 'evil%' OR email LIKE '%evil.%'").fetch_one(&app.db).await.unwrap();
    assert_eq!(evil, 0, "no forged identity ever got in");
    let hits = reqwest::get(format!("{}/probe-hits", s.idp.url)).await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(hits, json!({"xxe": 0, "ref": 0}), "Latchkey fetched nothing a response pointed at");
});

// "Require signed assertion": the Assertion must carry its own signature, by the IdP's key, whatever the Response's.
// Without the setting, a genuine Response signature is enough (the corpus above: inner_foreign_key signs in).
both!(sso a_connection_that_requires_the_assertion_signed_verifies_its_signature_too, |app: TestApp| async move {
    let s = setup(&app, json!({"requireSignedAssertion": true})).await;
    let expected = [
        ("valid", "ok"),
        ("valid_assertion_signed", "ok"),
        ("valid_response_signed", "saml_assertion_unsigned"),
        ("inner_foreign_key", "saml_signature_invalid"),
        // Inside an EncryptedAssertion, the Assertion's own signature is checked once decrypted.
        ("encrypted_aes128_cbc", "ok"),
        ("encrypted_assertion_signed_gcm", "ok"),
        ("encrypted_signed_response_unsigned_assertion", "saml_assertion_unsigned"),
        ("encrypted_inner_foreign_key", "saml_signature_invalid"),
    ];
    for (kind, want) in expected {
        let browser = app.browser();
        let (_, relay, request_id) = start(&app, &browser, &s).await;
        let f = forge_for_alice(&s, kind, Some(&request_id)).await;
        let to = post_acs(&app, &browser, &s.idp, f["SAMLResponse"].as_str().unwrap(), Some(&relay)).await;
        let got = if to.contains("code=") { code_of(&to) } else { "ok" };
        assert_eq!(got, want, "{kind}: {to}");
    }
});

both!(sso a_connection_without_an_idp_certificate_refuses_every_response, |app: TestApp| async move {
    let s = setup(&app, json!({})).await;
    // Replace the IdP settings by hand with no certificate at all.
    app.send(app.client.patch(app.url(&format!("/api/user/organizations/{}/sso/connections/{}", s.org_id, s.conn_id))).json(&json!({"idpCertificates": []})))
        .await
        .expect(200, "OK");
    for kind in ["valid", "unsigned"] {
        let browser = app.browser();
        let (_, relay, request_id) = start(&app, &browser, &s).await;
        let f = forge_for_alice(&s, kind, Some(&request_id)).await;
        let to = post_acs(&app, &browser, &s.idp, f["SAMLResponse"].as_str().unwrap(), Some(&relay)).await;
        assert_eq!(code_of(&to), "saml_no_idp_certificate", "{kind}: fail closed");
    }
    assert_eq!(counts(&app).await.0, 1);
});

both!(sso connections_are_owner_only_tenant_isolated_and_keep_their_secrets, |app: TestApp| async move {
    let s = setup(&app, json!({"domains": ["example.com"]})).await;
    let path = format!("/api/user/organizations/{}/sso/connections", s.org_id);
    let list = app.get(&path).await.expect(200, "OK");
    let text = list.data().to_string();
    assert!(!text.contains("PRIVATE KEY") && !text.to_lowercase().contains("secret\":\""), "no secret in the answer: {text}");
    // Another tenant's owner: a 404, never the connection.
    let (other, _) = app.other_user("mallory@other.test").await;
    app.as_client(&other, reqwest::Method::GET, &format!("{path}/{}", s.conn_id), None).await.expect(404, "NOT_FOUND");
    app.as_client(&other, reqwest::Method::DELETE, &format!("{path}/{}", s.conn_id), None).await.expect(404, "NOT_FOUND");
    // A domain of another org (or of nobody) cannot be listed.
    let bad = app.post(&path, json!({"name": "x", "protocol": "saml", "metadataUrl": format!("{}/metadata", s.idp.url), "domains": ["other.test"]})).await;
    assert_eq!(bad.code(), "VALIDATION_ERROR");
    // Deleting is audited and the connection is gone.
    app.send(app.client.delete(app.url(&format!("{path}/{}", s.conn_id)))).await.expect(200, "OK");
    app.get(&format!("{path}/{}", s.conn_id)).await.expect(404, "NOT_FOUND");
    assert!(app.audit_actions(&s.org_id).await.contains(&"connection.delete".to_string()));
    app.get(&format!("/api/auth/sso/saml/metadata/{}", s.conn_id)).await.expect(404, "NOT_FOUND");
});

both!(sso the_console_lists_connections_with_the_values_to_paste_and_adds_saml_without_javascript, |app: TestApp| async move {
    let s = setup(&app, json!({})).await;
    let sso_page = format!("/orgs/{}/sso", s.org_id);
    let html = app.client.get(app.url(&sso_page)).send().await.unwrap().text().await.unwrap();
    for needle in [s.acs.as_str(), s.entity_id.as_str(), "Download SP metadata", "Test sign-in", "Add a SAML connection", "data-confirm="] {
        assert!(html.contains(needle), "the Identity provider page shows {needle:?}");
    }
    // A plain form post, as a browser without JavaScript sends it.
    let r = app
        .client
        .post(app.url("/sfn/create_saml_connection"))
        .header("origin", &app.base)
        .header("referer", app.url(&sso_page))
        .header("accept", "text/html")
        .form(&[("org_id", s.org_id.as_str()), ("name", "Second IdP"), ("metadata_url", &format!("{}/metadata?extra_cert=1", s.idp.url)), ("metadata_xml", ""), ("domains", "example.com")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let list = app.get(&format!("/api/user/organizations/{}/sso/connections", s.org_id)).await.expect(200, "OK");
    let second = list.data().as_array().unwrap().iter().find(|c| c["name"] == "Second IdP").cloned().expect("created from the console");
    assert_eq!(second["saml"]["idpCertificates"].as_array().unwrap().len(), 2, "both certificates of a rollover are pinned");
    assert_eq!(second["domains"], json!(["example.com"]));
});

both!(sso metadata_is_fetched_again_for_a_certificate_rollover_and_expiry_is_warned_once, |app: TestApp| async move {
    let s = setup(&app, json!({})).await;
    // The IdP starts publishing a second signing certificate (rollover); the saved copy is 12 hours old.
    let settings: String = sqlx::query_scalar("SELECT settings FROM connections WHERE id = $1").bind(&s.conn_id).fetch_one(&app.db).await.unwrap();
    let mut v: Value = serde_json::from_str(&settings).unwrap();
    v["metadataUrl"] = json!(format!("{}/metadata?extra_cert=1", s.idp.url));
    v["metadataFetchedAt"] = json!(0);
    sqlx::query("UPDATE connections SET settings = $2 WHERE id = $1").bind(&s.conn_id).bind(v.to_string()).execute(&app.db).await.unwrap();
    assert_eq!(app::service::sso_connections::saml_upkeep(&app.state).await.unwrap(), 1);
    let c = app.get(&format!("/api/user/organizations/{}/sso/connections/{}", s.org_id, s.conn_id)).await.expect(200, "OK");
    assert_eq!(c.data()["saml"]["idpCertificates"].as_array().unwrap().len(), 2, "the new certificate is pinned without an admin");
    assert!(app.audit_actions(&s.org_id).await.contains(&"connection.metadata_refresh".to_string()));
    // Fresh metadata is not fetched again, and nothing changes.
    assert_eq!(app::service::sso_connections::saml_upkeep(&app.state).await.unwrap(), 0);

    // A certificate that expires within 30 days is recorded in the org's audit log, once.
    let pem = reqwest::get(format!("{}/cert", s.idp.url)).await.unwrap().text().await.unwrap();
    let soon = std::process::Command::new("sh")
        .arg("-c")
        .arg("openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -subj /CN=soon -days 10 2>/dev/null")
        .output()
        .unwrap();
    let soon = String::from_utf8(soon.stdout).unwrap();
    assert!(soon.contains("BEGIN CERTIFICATE"), "openssl made a certificate");
    app.send(app.client.patch(app.url(&format!("/api/user/organizations/{}/sso/connections/{}", s.org_id, s.conn_id))).json(&json!({"idpCertificates": [pem, soon]})))
        .await
        .expect(200, "OK");
    let c = app.get(&format!("/api/user/organizations/{}/sso/connections/{}", s.org_id, s.conn_id)).await.expect(200, "OK");
    let soon_flags: Vec<bool> = c.data()["saml"]["idpCertificates"].as_array().unwrap().iter().map(|c| c["expiresSoon"].as_bool().unwrap()).collect();
    assert_eq!(soon_flags, vec![false, true], "the console's expiry warning");
    sqlx::query("UPDATE connections SET settings = replace(settings, '\"metadataUrl\"', '\"unusedMetadataUrl\"') WHERE id = $1").bind(&s.conn_id).execute(&app.db).await.unwrap();
    app::service::sso_connections::saml_upkeep(&app.state).await.unwrap();
    app::service::sso_connections::saml_upkeep(&app.state).await.unwrap();
    let warned = app.audit_actions(&s.org_id).await.iter().filter(|a| *a == "connection.certificate_expiring").count();
    assert_eq!(warned, 1, "warned once");
});

/// A full SP-initiated sign-in by the IdP's current user in a new browser; where it lands.
async fn sign_in_once(app: &TestApp, s: &Setup) -> String {
    let b = app.browser();
    let (idp_url, _, _) = start(app, &b, s).await;
    let (_, response, relay) = form_of(&b.get(&idp_url).send().await.unwrap().text().await.unwrap());
    post_acs(app, &b, &s.idp, &response, relay.as_deref()).await
}

both!(sso groups_map_to_roles_at_every_sign_in_and_required_groups_keep_others_out, |app: TestApp| async move {
    let rules = json!([{"group": "eng", "role": "member"}, {"group": "eng-admins", "role": "admin"}]);
    let s = setup(&app, json!({"groupRoles": rules, "groupsRequired": true})).await;
    let path = format!("/api/user/organizations/{}/sso/connections/{}", s.org_id, s.conn_id);
    let c = app.get(&path).await.expect(200, "OK");
    assert_eq!(c.data()["groupRoles"], rules);
    assert_eq!(c.data()["groupsRequired"], true);
    let user = |groups: Value| json!({"name_id": "u-1001", "name_id_format": "persistent", "email": "alice@example.com", "groups": groups});

    s.idp.post("/user", user(json!(["eng"]))).await;
    assert_eq!(sign_in_once(&app, &s).await, format!("/orgs/{}", s.org_id));
    assert_eq!(app.role_of(&s.org_id, "alice@example.com").await.as_deref(), Some("member"));
    // Added to the admins group at the IdP: admin at the next sign-in, audited.
    s.idp.post("/user", user(json!(["eng", "eng-admins"]))).await;
    assert_eq!(sign_in_once(&app, &s).await, format!("/orgs/{}", s.org_id));
    assert_eq!(app.role_of(&s.org_id, "alice@example.com").await.as_deref(), Some("admin"));
    assert!(app.audit_actions(&s.org_id).await.contains(&"member.role_mapped".to_string()));
    // Moved out of every mapped group: refused, and the membership ends.
    s.idp.post("/user", user(json!(["sales"]))).await;
    assert_eq!(code_of(&sign_in_once(&app, &s).await), "saml_not_in_allowed_group");
    assert_eq!(app.role_of(&s.org_id, "alice@example.com").await, None, "the membership ended");
    assert!(app.audit_actions(&s.org_id).await.contains(&"member.removed_by_groups".to_string()));

    // A newcomer in no mapped group gets nothing at all.
    let before = counts(&app).await;
    s.idp.post("/user", json!({"name_id": "u-2002", "name_id_format": "persistent", "email": "carol@example.com", "groups": []})).await;
    assert_eq!(code_of(&sign_in_once(&app, &s).await), "saml_not_in_allowed_group");
    assert_eq!(counts(&app).await, before, "no user and no identity for a refused newcomer");

    // Rules are checked: owner is never granted by a group, and a rule needs a group name.
    for bad in [json!([{"group": "x", "role": "owner"}]), json!([{"group": "", "role": "member"}]), json!([{"group": "x"}])] {
        app.send(app.client.patch(app.url(&path)).json(&json!({"groupRoles": bad}))).await.expect(422, "VALIDATION_ERROR");
    }
    // Without the requirement, someone in no mapped group gets the default role.
    app.send(app.client.patch(app.url(&path)).json(&json!({"groupsRequired": false}))).await.expect(200, "OK");
    assert_eq!(sign_in_once(&app, &s).await, format!("/orgs/{}", s.org_id));
    assert_eq!(app.role_of(&s.org_id, "carol@example.com").await.as_deref(), Some("member"));
});

// The ACS burns the assertion id before it parks the result (one transaction on SQLite, one statement on
// PostgreSQL): the same genuine response posted twice at once is accepted once (one parked result, one id
// remembered) and the other post is refused.
both!(sso the_same_response_posted_twice_at_once_is_accepted_once, |app: TestApp| async move {
    let s = setup(&app, json!({})).await;
    let browser = app.browser();
    let (idp_url, relay, _) = start(&app, &browser, &s).await;
    let (_, response, _) = form_of(&browser.get(&idp_url).send().await.unwrap().text().await.unwrap());
    let form = [("SAMLResponse", response.clone()), ("RelayState", relay.clone())];
    let post = |c: Client| c.post(app.url("/api/auth/sso/saml/acs")).header("origin", &s.idp.url).form(&form).send();
    let (a, b) = tokio::join!(post(app.browser()), post(app.browser()));
    let (a, b) = (location(&a.unwrap()), location(&b.unwrap()));
    let accepted: Vec<&String> = [&a, &b].into_iter().filter(|to| to.starts_with("/api/auth/sso/saml/finish")).collect();
    assert_eq!(accepted.len(), 1, "exactly one of the two is accepted: {a} / {b}");
    let refused = if accepted[0] == &a { &b } else { &a };
    assert!(["saml_replayed", "saml_in_response_to_invalid"].contains(&code_of(refused)), "the other is refused: {refused}");
    let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM saml_assertions_seen WHERE connection_id = $1").bind(&s.conn_id).fetch_one(&app.db).await.unwrap();
    assert_eq!(seen, 1);
    let parked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sso_flows WHERE connection_id = $1 AND result IS NOT NULL").bind(&s.conn_id).fetch_one(&app.db).await.unwrap();
    assert_eq!(parked, 1);
    let to = location(&browser.get(app.url(accepted[0])).send().await.unwrap());
    assert_eq!(to, format!("/orgs/{}", s.org_id), "the browser that started it finishes it");
});

// A signed Response may only be the root: one nested in the Extensions of a response whose Assertion is signed
// would be a second signed reference for the verifier to choose from. And a response to a sign-in whose
// connection was deleted meanwhile is refused before any signature work.
both!(sso a_nested_signed_response_and_a_deleted_connection_are_refused, |app: TestApp| async move {
    let s = setup(&app, json!({})).await;
    async fn forge(s: &Setup, kind: &str, request_id: String) -> String {
        forge_for_alice(s, kind, Some(&request_id)).await["xml"].as_str().unwrap().to_string()
    }
    let browser = app.browser();
    let (_, relay, request_id) = start(&app, &browser, &s).await;
    let outer = forge(&s, "valid_assertion_signed", request_id.clone()).await;
    let inner = forge(&s, "status_failure", request_id).await;
    let inner = match inner.find("?>") {
        Some(end) if inner.starts_with("<?xml") => inner[end + 2..].trim().to_string(),
        _ => inner,
    };
    assert!(inner.contains("Signature"), "the nested Response is signed");
    let issuer_end = outer.find("</saml:Issuer>").expect("the outer Response has an Issuer") + "</saml:Issuer>".len();
    let nested = format!("{}<samlp:Extensions>{inner}</samlp:Extensions>{}", &outer[..issuer_end], &outer[issuer_end..]);
    use base64::Engine;
    let to = post_acs(&app, &browser, &s.idp, &base64::engine::general_purpose::STANDARD.encode(&nested), Some(&relay)).await;
    assert_eq!(code_of(&to), "saml_signature_invalid", "{to}");
    // The same outer response without the nested one signs in: the refusal was for the nesting. Its base64 comes
    // wrapped at 76 characters with CRLF, as MIME encoders write it (the ACS drops the line breaks).
    let browser = app.browser();
    let (_, relay, request_id) = start(&app, &browser, &s).await;
    let plain = base64::engine::general_purpose::STANDARD.encode(forge(&s, "valid_assertion_signed", request_id).await);
    let wrapped = plain.as_bytes().chunks(76).map(|l| std::str::from_utf8(l).unwrap()).collect::<Vec<_>>().join("\r\n");
    let to = post_acs(&app, &browser, &s.idp, &wrapped, Some(&relay)).await;
    assert!(!to.contains("code="), "signed in: {to}");

    let browser = app.browser();
    let (idp_url, relay, _) = start(&app, &browser, &s).await;
    let (_, response, _) = form_of(&browser.get(&idp_url).send().await.unwrap().text().await.unwrap());
    app.send(app.client.delete(app.url(&format!("/api/user/organizations/{}/sso/connections/{}", s.org_id, s.conn_id)))).await.expect(200, "OK");
    let seen = || sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM saml_assertions_seen").fetch_one(&app.db);
    let before = seen().await.unwrap();
    let to = post_acs(&app, &browser, &s.idp, &response, Some(&relay)).await;
    assert_eq!(code_of(&to), "saml_in_response_to_invalid", "{to}");
    assert_eq!(seen().await.unwrap(), before, "nothing was remembered for a deleted connection");
});

/// 120 genuine pysaml2 responses (signed Response and Assertion) all verify, one by one and on four threads at once.
/// (This found libxml 0.3.3 handing libxml2 a dropped encoding name: a few genuine responses in a hundred failed
/// their digest, at random.)
#[tokio::test]
async fn pysaml2_responses_verify_on_several_threads_at_once() {
    use app::service::saml::{dsig, parse_idp_metadata};
    let idp = Peer::start("saml-idp.py", &[]).await;
    let metadata = Client::new().get(format!("{}/metadata", idp.url)).send().await.unwrap().text().await.unwrap();
    let certs = parse_idp_metadata(&metadata).unwrap().certificates;
    let (entity, acs) = ("https://sso.test/api/auth/sso/saml/metadata/c1", "https://sso.test/api/auth/sso/saml/acs");
    let mut responses = Vec::new();
    for i in 0..120 {
        let f = idp.call("/forge", json!({"kind": "valid", "sp_entity_id": entity, "acs_url": acs, "in_response_to": null, "name_id": format!("u{i}"), "email": format!("u{i}@example.com")})).await;
        responses.push(f["xml"].as_str().unwrap().to_string());
    }
    // One by one with both signatures verified (as for a connection that requires the Assertion signed)...
    let sequential: Vec<_> = responses.iter().map(|x| dsig::verify(x, &certs, false, true).map(|s| s.response.is_some() && s.assertion.is_some())).collect();
    assert!(sequential.iter().all(|r| r == &Ok(true)), "one by one: {:?}", sequential.iter().filter(|r| r != &&Ok(true)).collect::<Vec<_>>());
    let responses = std::sync::Arc::new(responses);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (responses, certs) = (responses.clone(), certs.clone());
            std::thread::spawn(move || {
                // ...and at once with the Response's alone, which covers the Assertion (its own is then not checked).
                let ok = |i: &usize| dsig::verify(&responses[*i], &certs, false, false).map(|s| s.response.is_some() && s.assertion.is_none()) == Ok(true);
                (0..responses.len()).filter(|i| i % 4 == t).filter(|i| !ok(i)).count()
            })
        })
        .collect();
    let failed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(failed, 0, "responses that verified one by one failed on several threads at once");
}
