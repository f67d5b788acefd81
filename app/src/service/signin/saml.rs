//! SAML 2.0 sign-in, translated into the common ending (`signin::complete`):
//! - `begin`: a signed HTTP-Redirect AuthnRequest with a random 128-bit ID and RelayState; the flow row (any node
//!   finishes it) keeps the request ID and is bound to this browser by a cookie, as for OIDC.
//! - `acs`: the IdP's POST (cross-site, so no cookie is read). The Response passes the guard, then `saml::verify`'s
//!   checks against the connection's pinned certificates; its assertion id is remembered until it expires. The
//!   verified person is sealed into the flow row, and the browser is sent on to `finish`.
//! - `finish`: a same-site GET that carries the binding cookie: the flow is claimed once by its own browser, and
//!   the sign-in ends as every other one does.
//!
//! IdP-initiated responses (off by default per connection) get a fresh flow and binding at the ACS, and every other
//! check still applies.
use super::handoff::AppTarget;
use super::{Assertion, Ending, SsoFailure};
use crate::repo::{self, connections::ConnectionRow, flows::FlowRow};
use crate::service::crypto::{random_token, sha256_hex};
use crate::service::domain::Email;
use crate::service::oidc::{binding_cookie_name, client_limit, LoginRedirect, FLOW_TTL_MS};
use crate::service::saml::{self, guard, SamlSettings};
use crate::service::{now_ms, RequestMeta};
use crate::state::AppState;
use base64::Engine;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

/// Responses being verified at once on this node (libxmlsec work is CPU-bound).
static VERIFYING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The verified person, sealed in the flow row between the ACS and `finish`.
#[derive(Serialize, Deserialize)]
struct Verified {
    issuer: String,
    subject: String,
    email: String,
    name: Option<String>,
    groups: Vec<String>,
}

fn result_aad(state_hash: &str) -> String {
    format!("saml-result:{state_hash}")
}

pub fn settings_of(conn: &ConnectionRow) -> Result<SamlSettings, SsoFailure> {
    serde_json::from_str(&conn.settings).map_err(|e| SsoFailure::new("server_error", format!("SAML settings: {e}"), Some(&conn.org_id)))
}

fn sp_key(state: &AppState, conn: &ConnectionRow) -> Result<openssl::pkey::PKey<openssl::pkey::Private>, SsoFailure> {
    let sealed = conn.secret.as_deref().ok_or_else(|| SsoFailure::new("server_error", "the SAML connection has no SP key", Some(&conn.org_id)))?;
    Ok(saml::sp_private_key(&conn.id, sealed, || state.secrets.open(sealed, &saml::key_aad(&conn.id)))?)
}

/// Starts an SP-initiated sign-in at `conn`.
pub async fn begin(state: &AppState, conn: &ConnectionRow, return_to: Option<String>, target: Option<AppTarget>, _meta: &RequestMeta) -> Result<LoginRedirect, SsoFailure> {
    let s = settings_of(conn)?;
    let key = sp_key(state, conn)?;
    let public = &state.settings.public_url;
    let relay = random_token(32);
    let (url, request_id) = saml::authn_request_url(&s, &saml::sp_entity_id(public, &conn.id), &saml::acs_url(public), key, &relay)?;
    let browser_token = random_token(32);
    let flow = FlowRow { nonce: request_id, ..super::new_flow(conn, sha256_hex(&relay), &browser_token, return_to, target, FLOW_TTL_MS) };
    repo::flows::insert(&state.db, &flow).await?;
    Ok(LoginRedirect { url, cookie_name: binding_cookie_name(state.settings.secure_cookies, &relay), browser_token })
}

/// Where the ACS sends the browser: `finish` with this relay, and for an IdP-initiated sign-in the binding cookie
/// to set (name, value).
pub struct Accepted {
    pub relay: String,
    pub binding: Option<(String, String)>,
}

/// The ACS. `saml_response` is the field's base64 text, without whitespace. Failures are audited for the
/// connection's org when it is known.
pub async fn acs(state: &AppState, saml_response: &[u8], relay_state: Option<&str>, meta: &RequestMeta) -> Result<Accepted, SsoFailure> {
    let result = acs_inner(state, saml_response, relay_state, meta).await;
    if let Err(f) = &result {
        super::audit_failure(state, meta, f, "saml").await;
    }
    result
}

async fn acs_inner(state: &AppState, saml_response: &[u8], relay_state: Option<&str>, meta: &RequestMeta) -> Result<Accepted, SsoFailure> {
    client_limit(state, "callback", meta).await?;
    let relay = relay_state.map(str::trim).filter(|r| !r.is_empty() && r.len() <= 512);
    // The flow the RelayState names, read first so that every refusal of a response to a real request is
    // recorded in that org's audit log (a response with no flow is anonymous junk until a connection is found).
    let flow = match relay {
        Some(r) => repo::flows::lookup_with_connection(&state.db, &sha256_hex(r)).await?,
        None => None,
    };
    let flow_org = flow.as_ref().map(|(f, _)| f.org_id.clone());
    let anon = |code: &'static str, detail: String| SsoFailure::new(code, detail, flow_org.as_deref());
    if saml_response.len() > guard::MAX_RESPONSE_BYTES * 4 / 3 + 4 {
        return Err(anon("saml_malformed_response", format!("SAMLResponse of {} characters, over the limit", saml_response.len())));
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(saml_response).map_err(|_| anon("saml_malformed_response", "SAMLResponse is not base64".into()))?;
    let xml = String::from_utf8(bytes).map_err(|_| anon("saml_malformed_response", "the response is not UTF-8".into()))?;
    let u = guard::inspect(&xml).map_err(|(code, detail)| anon(code, detail))?;
    let now = now_ms();

    // Which connection: the flow the RelayState names (a response to our request), else, for an unsolicited
    // response, the connection whose SP entity ID is the audience. Only that connection's certificates verify it.
    let solicited = u.in_response_to.is_some();
    let (conn, flow) = match flow {
        Some((f, conn)) => {
            let fail = |detail: &str| SsoFailure::new("saml_in_response_to_invalid", detail.to_string(), Some(&f.org_id));
            if f.used_at.is_some() || f.result.is_some() {
                return Err(fail("the sign-in this response answers was already finished (replayed response)"));
            }
            if f.expires_at <= now {
                return Err(fail("the sign-in this response answers has expired; start again"));
            }
            // The RelayState of another protocol's flow names no SAML connection.
            let conn = conn.filter(|c| c.protocol == "saml").ok_or_else(|| fail("the connection was deleted during sign-in"))?;
            (conn, Some(f))
        }
        None if solicited && relay.is_none() => {
            return Err(anon("saml_response_relaystate_missing", "a response to a request came without its RelayState".into()));
        }
        None if solicited => return Err(anon("saml_in_response_to_invalid", "no sign-in is waiting for this RelayState (unknown or expired)".into())),
        None => (unsolicited_connection(state, &u).await?.ok_or_else(|| anon("saml_audience_mismatch", format!("an unsolicited response for audiences {:?}, none of ours", u.audiences)))?, None),
    };
    let org_id = conn.org_id.clone();
    let fail = |code: &'static str, detail: String| SsoFailure::new(code, detail, Some(&org_id));
    let s = settings_of(&conn)?;
    if u.uses_sha1 && !s.allow_sha1 {
        return Err(fail("saml_sha1_refused", "the IdP signed with SHA-1, which this connection does not allow".into()));
    }
    if flow.is_none() && !takes_idp_initiated(&conn, &s) {
        return Err(fail("saml_idp_initiated_disabled", "an IdP-initiated response, and this connection accepts only sign-ins started here (or is not active)".into()));
    }
    if u.encrypted && !u.response_signed && !u.encrypted_gcm {
        // Refused before any decryption (see `saml::xmlenc`): unauthenticated CBC outside a signature is an oracle.
        return Err(fail("saml_signature_invalid", saml::xmlenc::CBC_OUTSIDE_A_SIGNATURE.into()));
    }
    // An encrypted assertion's own signature is inside its ciphertext: `saml::verify` checks it after decryption.
    if s.require_signed_assertion && !u.assertion_signed && !u.encrypted {
        return Err(fail("saml_assertion_unsigned", "the connection requires the Assertion itself to be signed".into()));
    }
    let key = if u.encrypted { Some(sp_key(state, &conn)?) } else { None };
    let public = &state.settings.public_url;
    let (entity, acs) = (saml::sp_entity_id(public, &conn.id), saml::acs_url(public));
    let request_id = flow.as_ref().map(|f| f.nonce.clone());
    // Signature work runs on the blocking pool, at most two at once (`VERIFYING`: the cores of the machine it was
    // sized on).
    // The permit goes with the work: a client that hangs up does not free it while the thread still verifies.
    let permit = VERIFYING.acquire().await.map_err(|e| fail("server_error", e.to_string()))?;
    let assertion = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        saml::verify(&s, &entity, &acs, key, &xml, request_id.as_deref())
    })
    .await
    .map_err(|e| fail("server_error", format!("verification task: {e}")))?
    .map_err(|(code, detail)| fail(code, detail))?;
    let confirmations = assertion.subject.iter().flat_map(|s| s.subject_confirmations.iter().flatten()).filter_map(|c| c.subject_confirmation_data.as_ref());
    // An unsolicited response is only one the IdP never tied to a request: an assertion whose signed confirmation
    // answers a request of ours cannot be replayed as IdP-initiated by stripping the Response's InResponseTo.
    if flow.is_none() && confirmations.clone().any(|d| d.in_response_to.is_some()) {
        return Err(fail("saml_in_response_to_invalid", "an IdP-initiated response whose assertion answers a request".into()));
    }

    let verified = identity_of(&conn, &assertion).map_err(|(code, detail)| fail(code, detail))?;
    // Remembered until the assertion could no longer be accepted anyway: past every deadline it carries (and the
    // issue-time limit), plus the largest skew.
    let deadlines = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.not_on_or_after)
        .into_iter()
        .chain(confirmations.filter_map(|d| d.not_on_or_after))
        .map(|t| t.timestamp_millis());
    let issue_limit = assertion.issue_instant.timestamp_millis() + (180 + saml::MAX_CLOCK_SKEW_SECS) * 1000;
    let keep_until = deadlines.fold(issue_limit.max(now + FLOW_TTL_MS), i64::max) + saml::MAX_CLOCK_SKEW_SECS * 1000;
    // The assertion id is burned, then the result parked (or the new flow written) only when it was not spent
    // already: one transaction on SQLite, one statement on PostgreSQL (see `Db::write_chain`). Where they run as two
    // (SQLite while the pool holds the write lock) and the second fails, the assertion stays spent, which refuses
    // nothing an honest IdP sends (a response answers one request; a new IdP-initiated sign-in brings a new
    // assertion).
    let plain = serde_json::to_vec(&verified).map_err(|e| fail("server_error", e.to_string()))?;
    let mut writes = repo::batch::Batch::default();
    repo::connections::remember_assertion(&mut writes, &conn.id, &assertion.id, keep_until).await?;
    let accepted = match &flow {
        Some(f) => {
            let sealed = state.secrets.seal(&plain, &result_aad(&f.state_hash))?;
            repo::flows::park_result(&mut writes, &f.state_hash, &sealed, now).await?;
            Accepted { relay: relay.unwrap_or_default().to_string(), binding: None }
        }
        None => {
            // An unsolicited sign-in: a new flow, bound to the browser that brought the response.
            let (relay, browser_token) = (random_token(32), random_token(32));
            let state_hash = sha256_hex(&relay);
            let return_to = crate::model::safe_return_to(relay_state);
            let flow = FlowRow {
                result: Some(state.secrets.seal(&plain, &result_aad(&state_hash))?),
                ..super::new_flow(&conn, state_hash, &browser_token, return_to, None, 60_000)
            };
            repo::flows::insert(&mut writes, &flow).await?;
            let cookie = binding_cookie_name(state.settings.secure_cookies, &relay);
            Accepted { relay, binding: Some((cookie, browser_token)) }
        }
    };
    match state.db.write_chain(writes).await?[..] {
        [0, _] => return Err(fail("saml_replayed", format!("the assertion {} was already used", assertion.id))),
        [_, 0] => return Err(fail("saml_in_response_to_invalid", "the sign-in this response answers was already answered".into())),
        _ => {}
    }
    Ok(accepted)
}

/// The connection an unsolicited response is for: the one whose SP entity ID is its audience; for an encrypted
/// assertion (the audience is inside the ciphertext), the one SAML connection whose IdP is the Response's Issuer.
/// Either way only that connection's certificates then verify it, and its own SP entity ID must be the audience.
///
/// When several connections name that IdP, only one that takes IdP-initiated sign-ins (allowed, and active) can be
/// it; none is chosen when two do. An org cannot activate a connection to an IdP that does not know its SP (a
/// test sign-in must succeed), so registering another org's IdP does not take that org's responses away.
async fn unsolicited_connection(state: &AppState, u: &guard::Unverified) -> Result<Option<ConnectionRow>, SsoFailure> {
    let prefix = saml::sp_entity_id(&state.settings.public_url, "");
    if let Some(id) = u.audiences.iter().find_map(|a| a.strip_prefix(&prefix)) {
        return Ok(repo::connections::by_id(&state.db, id).await?.filter(|c| c.protocol == "saml"));
    }
    let Some(issuer) = u.issuer.as_deref().filter(|_| u.encrypted) else { return Ok(None) };
    let found: Vec<(ConnectionRow, bool)> = repo::connections::all_of_protocol(&state.db, "saml")
        .await?
        .into_iter()
        .filter_map(|c| {
            let s = serde_json::from_str::<SamlSettings>(&c.settings).ok().filter(|s| s.idp_entity_id == issuer)?;
            let open = takes_idp_initiated(&c, &s);
            Some((c, open))
        })
        .collect();
    let several = found.len() > 1;
    let mut candidates = found.into_iter().filter(|(_, open)| *open || !several).map(|(c, _)| c);
    Ok(match (candidates.next(), candidates.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    })
}

/// Whether `conn` accepts IdP-initiated responses at all: allowed in its settings, and active.
fn takes_idp_initiated(conn: &ConnectionRow, s: &SamlSettings) -> bool {
    s.allow_idp_initiated && conn.status == "active"
}

/// Subject, email, name and groups from a verified assertion, by the connection's attribute mapping.
fn identity_of(conn: &ConnectionRow, a: &samael::schema::Assertion) -> Result<Verified, guard::Refusal> {
    let mapping: serde_json::Value = serde_json::from_str(&conn.attribute_mapping).unwrap_or_default();
    let name_id = a.subject.as_ref().and_then(|s| s.name_id.as_ref()).map(|n| n.value.trim().to_string()).filter(|v| !v.is_empty());
    let subject = name_id.clone().ok_or(("saml_user_attribute_missing", "the assertion has no NameID".to_string()))?;
    let email = saml::attribute_values(a, &mapping, "email")
        .into_iter()
        .next()
        .or_else(|| name_id.filter(|n| Email::parse(n).is_ok()))
        .ok_or(("saml_user_attribute_missing", "no email attribute, and the NameID is not an email address".to_string()))?;
    Email::parse(&email).map_err(|_| ("saml_user_attribute_missing", format!("the email attribute {email:?} is not an address")))?;
    let first = saml::attribute_values(a, &mapping, "firstName").into_iter().next();
    let last = saml::attribute_values(a, &mapping, "lastName").into_iter().next();
    let name = match (first, last) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (f, l) => f.or(l),
    };
    Ok(Verified { issuer: a.issuer.value.clone().unwrap_or_default(), subject, email, name, groups: saml::attribute_values(a, &mapping, "groups") })
}

/// Ends the sign-in for the browser that started it. Returns where the browser goes.
pub async fn finish(state: &AppState, session: &Session, relay: &str, browser_token: Option<&str>, meta: &RequestMeta) -> Result<String, SsoFailure> {
    let result = finish_inner(state, session, relay, browser_token, meta).await;
    if let Err(f) = &result {
        super::audit_failure(state, meta, f, "saml").await;
    }
    result
}

async fn finish_inner(state: &AppState, session: &Session, relay: &str, browser_token: Option<&str>, meta: &RequestMeta) -> Result<String, SsoFailure> {
    let now = now_ms();
    let state_hash = sha256_hex(relay);
    let browser_hash = sha256_hex(browser_token.unwrap_or_default());
    let Some(flow) = repo::flows::claim(&state.db, &state_hash, &browser_hash, now).await? else {
        let org = repo::flows::lookup(&state.db, &state_hash).await?.map(|f| f.org_id);
        return Err(SsoFailure::new("sso_state_invalid", "no SAML sign-in to finish for this browser (unknown, used, expired, or another browser's)", org.as_deref()));
    };
    let fail = |code: &'static str, detail: String| SsoFailure::new(code, detail, Some(&flow.org_id));
    let sealed = flow.result.as_deref().ok_or_else(|| fail("sso_state_invalid", "the IdP's response has not arrived for this sign-in".into()))?;
    let v: Verified = serde_json::from_slice(&state.secrets.open(sealed, &result_aad(&state_hash))?).map_err(|e| fail("server_error", e.to_string()))?;
    let (conn, org) = repo::connections::with_org(&state.db, &flow.connection_id)
        .await?
        .filter(|(_, org)| org.id == flow.org_id)
        .ok_or_else(|| fail("sso_connection_not_found", "the connection was deleted".into()))?;
    let email = Email::parse(&v.email).map_err(|_| fail("saml_user_attribute_missing", "email".into()))?;
    let signed_in_as = crate::service::oidc::signed_in_user(state, session).await?;
    let app = match &flow.application_id {
        Some(app_id) => {
            let app = repo::applications::by_id(&state.db, app_id).await?.ok_or_else(|| fail("application_invalid", "the application was deleted during sign-in".into()))?;
            Some(AppTarget { app, redirect_uri: flow.redirect_uri.clone().unwrap_or_default(), state: flow.app_state.clone() })
        }
        None => None,
    };
    let a = Assertion { issuer: &v.issuer, subject: &v.subject, email: &email, name: v.name.as_deref(), groups: Some(&v.groups), signed_in_as: signed_in_as.as_deref() };
    let end = Ending { method: "sso", protocol: "saml", return_to: flow.return_to.clone(), app, clear_limits: Vec::new() };
    let to = super::complete(state, session, &org, &conn, &a, end, meta).await.map_err(|mut f| {
        if f.code == "oauth_email_domain_mismatch" {
            f.code = "saml_email_address_domain_mismatch";
        }
        f
    })?;
    // A real sign-in through the connection is its test: success makes it active.
    if conn.status != "active" {
        let msg = format!("Test sign-in succeeded: the IdP signed in {} (groups: {}).", email.as_str(), v.groups.len());
        repo::connections::record_test(&state.db, &conn.id, "active", &msg, now).await?;
    }
    Ok(to)
}
