//! OIDC single sign-on: `begin_login` (authorization code + PKCE S256, state, nonce; the flow is a database row
//! bound to the browser) and `finish_login` at the one shared callback (state claimed once, code exchange with
//! client_secret_basic, ID token fully verified, email checks, identity by (connection, sub), JIT, session).
use super::audit::{self, Event, Outcome};
use super::connections::{callback_url, secret_aad, OidcSettings};
use super::crypto::{constant_time_eq, random_token, sha256_hex};
use super::domain::{Email, Role};
use super::safe_http::SafeHttp;
use super::{new_id, now_ms, sessions, RequestMeta};
use crate::repo::{self, connections::ConnectionRow, flows::FlowRow, orgs::OrgRow, users::UserRow};
use crate::state::AppState;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl, JsonWebKeySet, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError, TokenResponse,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower_sessions::Session;

/// How long a started sign-in may take.
pub const FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// Allowed clock difference with the IdP for `exp` and `iat`.
const CLOCK_SKEW: i64 = 60;
/// How long discovery (and the JWKS it brought) is reused before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(600);
/// The cookie that binds a flow to the browser that started it.
pub const BROWSER_COOKIE: &str = "latchkey_sso";

/// Asymmetric algorithms only: `none` and HS* (which would make the client secret a signing key) are refused.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Per-node runtime for SSO: the guarded HTTP client and a discovery/JWKS cache. The cache is only a cache:
/// another node that lacks an entry fetches its own.
pub struct SsoRuntime {
    pub http: SafeHttp,
    pub allow_private: bool,
    cache: Mutex<HashMap<String, (Instant, Arc<CoreProviderMetadata>)>>,
}

impl SsoRuntime {
    pub fn new(allow_private: bool) -> Result<Self, String> {
        Ok(Self { http: SafeHttp::new(allow_private)?, allow_private, cache: Mutex::new(HashMap::new()) })
    }
}

impl std::fmt::Debug for SsoRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SsoRuntime(allow_private={})", self.allow_private)
    }
}

/// A sign-in failure: a stable code for the error page, and a detail for the audit log and server log only.
#[derive(Debug)]
pub struct SsoFailure {
    pub code: &'static str,
    pub detail: String,
    pub org_id: Option<String>,
}

impl SsoFailure {
    fn new(code: &'static str, detail: impl Into<String>, org_id: Option<&str>) -> Self {
        Self { code, detail: detail.into(), org_id: org_id.map(str::to_string) }
    }
}

impl From<sqlx::Error> for SsoFailure {
    fn from(e: sqlx::Error) -> Self {
        Self::new("server_error", format!("database: {e}"), None)
    }
}

impl From<super::ServiceError> for SsoFailure {
    fn from(e: super::ServiceError) -> Self {
        Self::new("server_error", e.to_string(), None)
    }
}

pub fn forget_metadata(state: &AppState, connection_id: &str) {
    if let Ok(mut cache) = state.sso.cache.lock() {
        cache.retain(|k, _| !k.starts_with(connection_id));
    }
}

async fn metadata(state: &AppState, conn: &ConnectionRow, issuer: &str, refresh: bool) -> Result<Arc<CoreProviderMetadata>, SsoFailure> {
    let key = format!("{}|{issuer}", conn.id);
    if !refresh {
        if let Ok(cache) = state.sso.cache.lock() {
            if let Some((at, m)) = cache.get(&key) {
                if at.elapsed() < METADATA_TTL {
                    return Ok(m.clone());
                }
            }
        }
    }
    let issuer_url = IssuerUrl::new(issuer.to_string())
        .map_err(|e| SsoFailure::new("sso_idp_unreachable", format!("issuer URL: {e}"), Some(&conn.org_id)))?;
    let m = CoreProviderMetadata::discover_async(issuer_url, &state.sso.http)
        .await
        .map_err(|e| SsoFailure::new("sso_idp_unreachable", format!("discovery failed: {}", error_chain(&e)), Some(&conn.org_id)))?;
    let m = Arc::new(m);
    if let Ok(mut cache) = state.sso.cache.lock() {
        cache.insert(key, (Instant::now(), m.clone()));
    }
    Ok(m)
}

/// Re-fetches only the JWKS (after a key rotation) and caches the updated metadata.
async fn refresh_jwks(state: &AppState, conn: &ConnectionRow, issuer: &str, m: &CoreProviderMetadata) -> Result<Arc<CoreProviderMetadata>, SsoFailure> {
    let jwks = JsonWebKeySet::fetch_async(m.jwks_uri(), &state.sso.http)
        .await
        .map_err(|e| SsoFailure::new("oauth_id_token_invalid", format!("JWKS refresh failed: {}", error_chain(&e)), Some(&conn.org_id)))?;
    let updated = Arc::new(m.clone().set_jwks(jwks));
    if let Ok(mut cache) = state.sso.cache.lock() {
        cache.insert(format!("{}|{issuer}", conn.id), (Instant::now(), updated.clone()));
    }
    Ok(updated)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

fn settings_of(conn: &ConnectionRow) -> Result<OidcSettings, SsoFailure> {
    serde_json::from_str(&conn.settings).map_err(|e| SsoFailure::new("server_error", format!("settings: {e}"), Some(&conn.org_id)))
}

fn client_for(state: &AppState, conn: &ConnectionRow, s: &OidcSettings, m: &CoreProviderMetadata) -> Result<OidcClient, SsoFailure> {
    let sealed = conn.secret.as_deref().ok_or_else(|| SsoFailure::new("sso_connection_not_found", "no client secret", Some(&conn.org_id)))?;
    let secret = state.secrets.open(sealed, &secret_aad(&conn.id))?;
    let secret = String::from_utf8(secret).map_err(|_| SsoFailure::new("server_error", "secret is not UTF-8", Some(&conn.org_id)))?;
    let redirect = RedirectUrl::new(callback_url(state)).map_err(|e| SsoFailure::new("server_error", format!("callback URL: {e}"), None))?;
    Ok(CoreClient::from_provider_metadata(m.clone(), ClientId::new(s.client_id.clone()), Some(ClientSecret::new(secret)))
        .set_redirect_uri(redirect))
}

type OidcClient = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// A relative path on this site, or nothing: never another origin (`//host`, `/\host`, schemes).
pub fn safe_return_to(raw: Option<&str>) -> Option<String> {
    let s = raw?.trim();
    let ok = s.starts_with('/')
        && !s.starts_with("//")
        && !s.starts_with("/\\")
        && s.len() <= 512
        && !s.chars().any(|c| c.is_control() || c == '\\');
    ok.then(|| s.to_string())
}

pub struct LoginRedirect {
    pub url: String,
    pub browser_token: String,
}

/// Starts SSO for the org `slug`: records the flow and answers where to send the browser.
pub async fn begin_login(
    state: &AppState,
    slug: &str,
    return_to: Option<&str>,
    login_hint: Option<&str>,
    browser_token: Option<&str>,
    meta: &RequestMeta,
) -> Result<LoginRedirect, SsoFailure> {
    let org = repo::orgs::by_slug(&state.db, slug.trim())
        .await?
        .ok_or_else(|| SsoFailure::new("sso_connection_not_found", format!("no organization with slug {slug:?}"), None))?;
    let conn = repo::connections::primary(&state.db, &org.id, "oidc")
        .await?
        .ok_or_else(|| SsoFailure::new("sso_connection_not_found", "the organization has no OIDC connection", Some(&org.id)))?;
    let s = settings_of(&conn)?;
    let m = metadata(state, &conn, &s.issuer_url, false).await?;
    let client = client_for(state, &conn, &s, &m)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge);
    // The address typed at email-first sign-in, so the IdP can skip asking for it again.
    if let Some(hint) = login_hint.and_then(|h| Email::parse(h).ok()) {
        request = request.add_extra_param("login_hint", hint.as_str().to_string());
    }
    let (url, csrf, nonce) = request.url();
    let browser_token = browser_token.filter(|t| t.len() >= 32 && t.len() <= 64).map(str::to_string).unwrap_or_else(|| random_token(32));
    let state_hash = sha256_hex(csrf.secret());
    let now = now_ms();
    let flow = FlowRow {
        pkce_verifier: state.secrets.seal(verifier.secret().as_bytes(), &format!("flow:{state_hash}"))?,
        state_hash,
        org_id: org.id.clone(),
        connection_id: conn.id.clone(),
        browser_hash: sha256_hex(&browser_token),
        nonce: nonce.secret().clone(),
        return_to: safe_return_to(return_to),
        created_at: now,
        expires_at: now + FLOW_TTL_MS,
        used_at: None,
    };
    repo::flows::insert(&state.db, &flow).await?;
    let _ = meta;
    Ok(LoginRedirect { url: url.to_string(), browser_token })
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Finishes SSO at the shared callback. Success: the browser is signed in and gets the path to go to.
/// Failure: nothing is signed in; the failure is audited for the org (when known) and returned.
pub async fn finish_login(
    state: &AppState,
    session: &Session,
    params: CallbackParams,
    browser_token: Option<&str>,
    meta: &RequestMeta,
) -> Result<String, SsoFailure> {
    let result = finish_inner(state, session, params, browser_token, meta).await;
    if let Err(f) = &result {
        tracing::warn!(code = f.code, detail = %f.detail, "SSO sign-in failed");
        let _ = audit::record_anonymous(&state.db, None, "sso", meta, Event {
            org_id: f.org_id.as_deref(),
            action: "sso.login",
            target: None,
            outcome: Outcome::Failure,
            detail: Some(format!("{}: {}", f.code, f.detail)),
        })
        .await;
    }
    result
}

async fn finish_inner(
    state: &AppState,
    session: &Session,
    params: CallbackParams,
    browser_token: Option<&str>,
    meta: &RequestMeta,
) -> Result<String, SsoFailure> {
    let now = now_ms();
    let raw_state = params.state.as_deref().filter(|s| !s.is_empty() && s.len() <= 512)
        .ok_or_else(|| SsoFailure::new("sso_state_invalid", "callback without state", None))?;
    let state_hash = sha256_hex(raw_state);
    let Some(flow) = repo::flows::claim(&state.db, &state_hash, now).await? else {
        return Err(match repo::flows::exists(&state.db, &state_hash).await? {
            Some((org, _)) => SsoFailure::new("sso_state_invalid", "state replayed (already used)", Some(&org)),
            None => SsoFailure::new("sso_state_invalid", "unknown state", None),
        });
    };
    let org_id = flow.org_id.clone();
    let fail = |code: &'static str, detail: String| SsoFailure::new(code, detail, Some(&org_id));
    if flow.expires_at <= now {
        return Err(fail("sso_state_invalid", "state expired".into()));
    }
    let bound = browser_token.is_some_and(|t| constant_time_eq(sha256_hex(t).as_bytes(), flow.browser_hash.as_bytes()));
    if !bound {
        return Err(fail("sso_state_invalid", "state presented by a different browser (binding cookie missing or wrong)".into()));
    }
    if let Some(err) = params.error.as_deref() {
        let desc = params.error_description.unwrap_or_default().chars().take(300).collect::<String>();
        return Err(if err == "access_denied" {
            fail("oauth_access_denied", format!("IdP answered access_denied: {desc}"))
        } else {
            fail("oauth_provider_error", format!("IdP answered error={}: {desc}", err.chars().take(64).collect::<String>()))
        });
    }
    let code = params.code.filter(|c| !c.is_empty()).ok_or_else(|| fail("oauth_provider_error", "callback without code".into()))?;
    let conn = repo::connections::by_id(&state.db, &flow.connection_id)
        .await?
        .ok_or_else(|| fail("sso_connection_not_found", "the connection was deleted during sign-in".into()))?;
    let s = settings_of(&conn)?;
    let mut m = metadata(state, &conn, &s.issuer_url, false).await?;
    let client = client_for(state, &conn, &s, &m)?;
    let verifier = state.secrets.open(&flow.pkce_verifier, &format!("flow:{}", flow.state_hash))?;
    let verifier = PkceCodeVerifier::new(String::from_utf8(verifier).unwrap_or_default());

    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| fail("oauth_token_exchange_error", format!("no token endpoint: {e}")))?
        .set_pkce_verifier(verifier)
        .request_async(&state.sso.http)
        .await
        .map_err(|e| fail("oauth_token_exchange_error", error_chain(&e)))?;
    let id_token = token.id_token().ok_or_else(|| fail("oauth_token_exchange_error", "the token response has no id_token".into()))?;
    let nonce = Nonce::new(flow.nonce.clone());

    // Verify; on an unknown key id, fetch the JWKS once more (the IdP may have rotated keys) and retry.
    let mut refreshed = false;
    let claims = loop {
        let c = client_for(state, &conn, &s, &m)?;
        let v = c
            .id_token_verifier()
            .set_allowed_algs(ALLOWED_ALGS)
            .set_time_fn(|| chrono::Utc::now() - chrono::Duration::seconds(CLOCK_SKEW))
            .set_issue_time_verifier_fn(|iat| {
                if iat > chrono::Utc::now() + chrono::Duration::seconds(CLOCK_SKEW) {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            });
        match id_token.claims(&v, &nonce) {
            Ok(claims) => break claims.clone(),
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) if !refreshed => {
                refreshed = true;
                m = refresh_jwks(state, &conn, &s.issuer_url, &m).await?;
            }
            Err(e) => return Err(fail("oauth_id_token_invalid", error_chain(&e))),
        }
    };
    if let Some(azp) = claims.authorized_party() {
        if azp.as_str() != s.client_id {
            return Err(fail("oauth_id_token_invalid", format!("azp {} is not our client id", azp.as_str())));
        }
    } else if claims.audiences().len() > 1 {
        return Err(fail("oauth_id_token_invalid", "several audiences and no azp".into()));
    }
    let subject = claims.subject().as_str().to_string();
    let mut email = claims.email().map(|e| e.as_str().to_string());
    let mut verified = claims.email_verified();
    let mut name = claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string());
    if email.is_none() {
        let access = openidconnect::OAuth2TokenResponse::access_token(&token).clone();
        let info: openidconnect::core::CoreUserInfoClaims = client
            .user_info(access, Some(claims.subject().clone()))
            .map_err(|e| fail("oauth_fetch_user_error", format!("no userinfo endpoint: {e}")))?
            .request_async(&state.sso.http)
            .await
            .map_err(|e| fail("oauth_fetch_user_error", error_chain(&e)))?;
        email = info.email().map(|e| e.as_str().to_string());
        verified = info.email_verified().or(verified);
        name = name.or_else(|| info.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string()));
    }
    let email = email.ok_or_else(|| fail("oauth_fetch_user_error", "neither the ID token nor userinfo has an email".into()))?;
    let email = Email::parse(&email).map_err(|_| fail("oauth_fetch_user_error", format!("the IdP's email {email:?} is not valid")))?;
    if verified == Some(false) {
        return Err(fail("oauth_email_unverified", format!("{} is not verified at the IdP", email.as_str())));
    }
    let domains: Vec<String> = serde_json::from_str(&conn.domains).unwrap_or_default();
    if !domains.is_empty() && !domains.iter().any(|d| d.eq_ignore_ascii_case(email.domain())) {
        return Err(fail("oauth_email_domain_mismatch", format!("{} is outside {domains:?}", email.as_str())));
    }
    let org = repo::orgs::by_id(&state.db, &org_id).await?.ok_or_else(|| fail("sso_connection_not_found", "org deleted".into()))?;
    let user = provision(state, &org, &conn, &subject, &email, name.as_deref(), meta).await?;
    sessions::establish(state, session, &user, "sso", Some(&conn.id), meta).await?;
    audit::record_anonymous(&state.db, Some(&user.id), &user.email, meta, Event {
        org_id: Some(&org.id),
        action: "sso.login",
        target: Some(&conn.id),
        outcome: Outcome::Success,
        detail: Some(format!("sub={subject}")),
    })
    .await?;
    let next = flow.return_to.unwrap_or_else(|| format!("/orgs/{}", org.id));
    // The session is intermediate until the second factor when the user has one, or the org requires one.
    let policy = repo::policies::get(&state.db, &org.id).await?;
    let org_requires_mfa = policy.is_some_and(|p| p.auth_required == "mfa" || p.require_mfa != 0);
    if org_requires_mfa || super::mfa::enrolled(state, &user.id).await.map_err(SsoFailure::from)? {
        let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        return Ok(format!("/mfa?next={enc}"));
    }
    Ok(next)
}

/// Finds the user by (connection, sub); a new subject becomes a user and, with JIT, a member.
async fn provision(
    state: &AppState,
    org: &OrgRow,
    conn: &ConnectionRow,
    subject: &str,
    email: &Email,
    name: Option<&str>,
    meta: &RequestMeta,
) -> Result<UserRow, SsoFailure> {
    let now = now_ms();
    let fail = |code: &'static str, detail: String| SsoFailure::new(code, detail, Some(&org.id));
    let jit = conn.jit_provisioning != 0;
    let default_role = Role::parse(&conn.default_role).unwrap_or(Role::Member);
    // This org's verified domain for the address, if any: it proves the IdP speaks for the address, and its
    // auto-join setting decides membership (see service::domains).
    let own_domain = super::domains::governing(state, email).await.map_err(SsoFailure::from)?.filter(|d| d.org_id == org.id);
    let mut tx = crate::repo::begin(&state.db).await?;
    let user = match repo::connections::identity(&mut *tx, &conn.id, subject).await? {
        Some(identity) => {
            repo::connections::touch_identity(&mut *tx, &conn.id, subject, email.as_str(), now).await?;
            repo::users::by_id(&mut *tx, &identity.user_id).await?.ok_or_else(|| fail("server_error", "identity without user".into()))?
        }
        None => {
            let user = match repo::users::by_email(&mut *tx, email.as_str()).await? {
                Some(existing) => {
                    // Never link by email alone: an org's IdP could assert anyone's address. Only the IdP of
                    // the org that proved the domain with DNS speaks for addresses at that domain.
                    let Some(d) = &own_domain else {
                        return Err(fail("sso_email_in_use", format!("{} already has an account not linked to this connection", email.as_str())));
                    };
                    audit::record_anonymous(&mut *tx, Some(&existing.id), &existing.email, meta, Event {
                        org_id: Some(&org.id),
                        action: "identity.link",
                        target: Some(&existing.id),
                        outcome: Outcome::Success,
                        detail: Some(format!("connection={} sub={subject} verified_domain={}", conn.id, d.name)),
                    })
                    .await?;
                    existing
                }
                None => {
                    if !jit {
                        return Err(fail("sso_user_not_provisioned", format!("{} is new and JIT provisioning is off", email.as_str())));
                    }
                    let user = UserRow {
                        id: new_id(),
                        email: email.as_str().to_string(),
                        name: name.map(|n| n.trim().chars().take(100).collect()).filter(|n: &String| !n.is_empty()).unwrap_or_else(|| email.as_str().to_string()),
                        password_hash: None,
                        created_at: now,
                    };
                    repo::users::insert(&mut *tx, &user).await?;
                    user
                }
            };
            let identity = repo::connections::IdentityRow {
                connection_id: conn.id.clone(),
                subject: subject.to_string(),
                user_id: user.id.clone(),
                email: email.as_str().to_string(),
            };
            repo::connections::insert_identity(&mut *tx, &identity, now).await?;
            user
        }
    };
    let auto_join = own_domain.as_ref().map(|d| d.auto_join.as_str()).unwrap_or("off");
    let membership = repo::orgs::with_membership(&mut *tx, &org.id, &user.id).await?;
    // The stricter setting wins: a domain that wants approval overrides just-in-time provisioning.
    if let (false, Some(d)) = (membership.as_ref().is_some_and(|m| m.status == "active"), own_domain.as_ref().filter(|d| d.auto_join == "approval")) {
        tx.commit().await?;
        super::domains::file_join_request(state, d, &user, "sso", meta).await.map_err(SsoFailure::from)?;
        return Err(fail("join_request_pending", format!("{} asked to join; the domain {} needs approval", user.email, d.name)));
    }
    match membership {
        Some(m) if m.status == "active" => {}
        _ if !jit && auto_join != "auto" => return Err(fail("sso_user_not_provisioned", format!("{} is not a member and JIT provisioning is off", user.email))),
        Some(_) => return Err(fail("sso_user_not_provisioned", format!("{}'s membership is pending approval", user.email))),
        None => {
            repo::orgs::insert_membership(&mut *tx, &org.id, &user.id, default_role.as_str(), "active", now).await?;
            audit::record_anonymous(&mut *tx, Some(&user.id), &user.email, meta, Event {
                org_id: Some(&org.id),
                action: "member.jit_provision",
                target: Some(&user.id),
                outcome: Outcome::Success,
                detail: Some(format!("role={} connection={}", default_role.as_str(), conn.id)),
            })
            .await?;
        }
    }
    tx.commit().await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(safe_return_to(Some("/orgs/1")), Some("/orgs/1".into()));
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", "orgs", "/a\nb"] {
            assert_eq!(safe_return_to(Some(bad)), None, "{bad}");
        }
    }
}
