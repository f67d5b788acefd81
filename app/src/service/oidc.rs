//! OIDC single sign-on: `begin_login` (authorization code + PKCE S256, state, nonce; the flow is a database row
//! bound to the browser) and `finish_login` at the one shared callback (state claimed once, code exchange with
//! client_secret_basic, ID token fully verified, email checks, identity by (connection, sub), JIT, session).
use super::connections::{callback_url, secret_aad, OidcSettings};
use super::crypto::{random_token, sha256_hex};
use super::domain::Email;
use super::safe_http::SafeHttp;
use super::signin::{self, Assertion};
use super::{now_ms, sessions, RequestMeta};
use crate::repo::{self, connections::ConnectionRow, flows::FlowRow, providers::ProviderRow};
use crate::state::AppState;
use super::oidc_key::IdpKey;
use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm};
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
/// The cookie that binds a flow to the browser that started it: one per flow (so two tabs can sign in at once),
/// named after the flow's state, `__Host-` prefixed on https.
pub fn binding_cookie_name(secure: bool, state: &str) -> String {
    let tag = &sha256_hex(&format!("cookie:{state}"))[..16];
    if secure { format!("__Host-latchkey_sso_{tag}") } else { format!("latchkey_sso_{tag}") }
}

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
    /// Webhook deliveries: the same guard, no redirects.
    pub webhook_http: SafeHttp,
    /// Pooled directory connections of LDAP connections (this node's; nothing another node needs).
    pub ldap: crate::service::ldap::pool::Pools,
    pub allow_private: bool,
    pub allow_private_webhooks: bool,
    cache: Mutex<HashMap<String, (Instant, Arc<CoreProviderMetadata>)>>,
    /// Callbacks with a state no flow ever had, counted (and logged) instead of one audit row each.
    pub unknown_states: std::sync::atomic::AtomicU64,
    /// The JWT signing key this node last opened, by key id (the database says which key is current).
    pub jwt_key: Mutex<Option<(String, ed25519_dalek::SigningKey)>>,
}

impl SsoRuntime {
    pub fn new(allow_private: bool, allow_private_webhooks: bool) -> Result<Self, String> {
        Ok(Self {
            http: SafeHttp::new(allow_private)?,
            webhook_http: SafeHttp::build(allow_private_webhooks, 0)?,
            allow_private_webhooks,
            allow_private,
            cache: Mutex::new(HashMap::new()),
            unknown_states: std::sync::atomic::AtomicU64::new(0),
            jwt_key: Mutex::new(None),
            ldap: Default::default(),
        })
    }
}

impl std::fmt::Debug for SsoRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SsoRuntime(allow_private={})", self.allow_private)
    }
}

pub use super::signin::SsoFailure;

pub fn forget_metadata(state: &AppState, connection_id: &str) {
    if let Ok(mut cache) = state.sso.cache.lock() {
        cache.retain(|k, _| !k.starts_with(connection_id));
    }
}

/// The relying-party side of one OIDC sign-in: an org's own connection, or an instance provider (adopted by an org
/// as its workspace SSO, or "Continue with …" for everyone).
pub(crate) struct Rp {
    /// Key of the discovery cache (the connection's or the provider's id).
    key: String,
    org_id: Option<String>,
    /// Discovery from this issuer; `None`: the provider's explicit endpoints (authorization, token, userinfo).
    issuer: Option<String>,
    endpoints: Option<[String; 3]>,
    client_id: String,
    secret: String,
    /// Asked for besides `openid`.
    scopes: Vec<String>,
    /// The instance provider behind this sign-in, whose own rules (verified email, domains, `hd`) apply too.
    pub provider: Option<ProviderRow>,
}

impl Rp {
    fn fail(&self, code: &'static str, detail: impl Into<String>) -> SsoFailure {
        SsoFailure::new(code, detail, self.org_id.as_deref())
    }
}

/// The relying party of connection `conn`: its own settings, or those of the instance provider it adopts.
pub(crate) async fn rp_for_connection(state: &AppState, conn: &ConnectionRow) -> Result<Rp, SsoFailure> {
    let fail = |code: &'static str, d: String| SsoFailure::new(code, d, Some(&conn.org_id));
    if let Some(pid) = &conn.instance_provider_id {
        let row = repo::providers::by_id(&state.db, pid).await?.ok_or_else(|| fail("sso_connection_not_found", "the instance provider is gone".into()))?;
        return rp_for_provider(state, row, Some(&conn.org_id));
    }
    let s: OidcSettings = serde_json::from_str(&conn.settings).map_err(|e| fail("server_error", format!("settings: {e}")))?;
    let sealed = conn.secret.as_deref().ok_or_else(|| fail("sso_connection_not_found", "no client secret".into()))?;
    let secret = String::from_utf8(state.secrets.open(sealed, &secret_aad(&conn.id))?).map_err(|_| fail("server_error", "secret is not UTF-8".into()))?;
    Ok(Rp {
        key: conn.id.clone(),
        org_id: Some(conn.org_id.clone()),
        issuer: Some(s.issuer_url),
        endpoints: None,
        client_id: s.client_id,
        secret,
        scopes: vec!["email".into(), "profile".into()],
        provider: None,
    })
}

/// The relying party of an instance provider: Google's discovery for `google`, else the issuer or the endpoints.
pub(crate) fn rp_for_provider(state: &AppState, row: ProviderRow, org_id: Option<&str>) -> Result<Rp, SsoFailure> {
    let issuer = if row.kind == "google" { Some(state.settings.google_issuer.clone()) } else { row.issuer.clone() };
    let endpoints = match (&issuer, &row.auth_url, &row.token_url, &row.userinfo_url) {
        (None, Some(a), Some(t), Some(u)) => Some([a.clone(), t.clone(), u.clone()]),
        (None, ..) => return Err(SsoFailure::new("sso_connection_not_found", format!("provider {} has neither issuer nor endpoints", row.slug), org_id)),
        _ => None,
    };
    Ok(Rp {
        key: format!("provider:{}", row.id),
        org_id: org_id.map(str::to_string),
        issuer,
        endpoints,
        client_id: row.client_id.clone(),
        secret: super::providers::client_secret(state, &row)?,
        scopes: row.scopes.split(' ').filter(|s| !s.is_empty() && *s != "openid").map(str::to_string).collect(),
        provider: Some(row),
    })
}

async fn metadata(state: &AppState, rp: &Rp, refresh: bool) -> Result<Arc<CoreProviderMetadata>, SsoFailure> {
    let Some(issuer) = &rp.issuer else { return explicit_metadata(rp).map(Arc::new) };
    let key = format!("{}|{issuer}", rp.key);
    if !refresh {
        if let Ok(cache) = state.sso.cache.lock() {
            if let Some((at, m)) = cache.get(&key) {
                if at.elapsed() < METADATA_TTL {
                    return Ok(m.clone());
                }
            }
        }
    }
    let issuer_url = IssuerUrl::new(issuer.to_string()).map_err(|e| rp.fail("sso_idp_unreachable", format!("issuer URL: {e}")))?;
    let m = CoreProviderMetadata::discover_async(issuer_url, &state.sso.http)
        .await
        .map_err(|e| rp.fail("sso_idp_unreachable", format!("discovery failed: {}", error_chain(&e))))?;
    let m = Arc::new(m);
    if let Ok(mut cache) = state.sso.cache.lock() {
        cache.insert(key, (Instant::now(), m.clone()));
    }
    Ok(m)
}

/// A provider configured by its endpoints: no discovery and no JWKS, so no ID token can be verified. Its nominal
/// issuer is the authorization endpoint's origin; the person is who the userinfo endpoint says (over TLS, with the
/// access token the token endpoint gave for our client secret and PKCE verifier).
fn explicit_metadata(rp: &Rp) -> Result<CoreProviderMetadata, SsoFailure> {
    use openidconnect::core::{CoreResponseType, CoreSubjectIdentifierType};
    use openidconnect::{AuthUrl, EmptyAdditionalProviderMetadata, JsonWebKeySetUrl, ResponseTypes, TokenUrl, UserInfoUrl};
    let [auth, token, userinfo] = rp.endpoints.clone().ok_or_else(|| rp.fail("server_error", "no endpoints"))?;
    let bad = |e: &dyn std::fmt::Display| rp.fail("sso_idp_unreachable", format!("endpoint URL: {e}"));
    let origin = url::Url::parse(&auth).map_err(|e| bad(&e))?.origin().ascii_serialization();
    Ok(CoreProviderMetadata::new(
        IssuerUrl::new(origin).map_err(|e| bad(&e))?,
        AuthUrl::new(auth).map_err(|e| bad(&e))?,
        JsonWebKeySetUrl::new(userinfo.clone()).map_err(|e| bad(&e))?,
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
        EmptyAdditionalProviderMetadata {},
    )
    .set_token_endpoint(Some(TokenUrl::new(token).map_err(|e| bad(&e))?))
    .set_userinfo_endpoint(Some(UserInfoUrl::new(userinfo).map_err(|e| bad(&e))?)))
}

/// Re-fetches only the JWKS (after a key rotation) and caches the updated metadata.
async fn refresh_jwks(state: &AppState, rp: &Rp, m: &CoreProviderMetadata) -> Result<Arc<CoreProviderMetadata>, SsoFailure> {
    let jwks = JsonWebKeySet::fetch_async(m.jwks_uri(), &state.sso.http)
        .await
        .map_err(|e| rp.fail("oauth_id_token_invalid", format!("JWKS refresh failed: {}", error_chain(&e))))?;
    let updated = Arc::new(m.clone().set_jwks(jwks));
    if let (Some(issuer), Ok(mut cache)) = (&rp.issuer, state.sso.cache.lock()) {
        cache.insert(format!("{}|{issuer}", rp.key), (Instant::now(), updated.clone()));
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

fn client_for(state: &AppState, rp: &Rp, m: &CoreProviderMetadata) -> Result<OidcClient, SsoFailure> {
    let redirect = RedirectUrl::new(callback_url(state)).map_err(|e| SsoFailure::new("server_error", format!("callback URL: {e}"), None))?;
    Ok(openidconnect::Client::from_provider_metadata(m.clone(), ClientId::new(rp.client_id.clone()), Some(ClientSecret::new(rp.secret.clone())))
        .set_redirect_uri(redirect))
}

/// openidconnect's core metadata, with the IdP's keys as [`IdpKey`] (RS256 verified by ring).
type CoreProviderMetadata = openidconnect::ProviderMetadata<
    openidconnect::EmptyAdditionalProviderMetadata,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreClientAuthMethod,
    openidconnect::core::CoreClaimName,
    openidconnect::core::CoreClaimType,
    openidconnect::core::CoreGrantType,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJweKeyManagementAlgorithm,
    IdpKey,
    openidconnect::core::CoreResponseMode,
    openidconnect::core::CoreResponseType,
    openidconnect::core::CoreSubjectIdentifierType,
>;

type OidcClient = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    IdpKey,
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

pub use crate::model::safe_return_to;

pub struct LoginRedirect {
    pub url: String,
    /// The binding cookie to set: its name (per flow) and value.
    pub cookie_name: String,
    pub browser_token: String,
}

/// Counts one SSO request (`what`: login or callback) from the client; refuses past the per-minute limit.
pub(crate) async fn client_limit(state: &AppState, what: &str, meta: &RequestMeta) -> Result<(), SsoFailure> {
    let Some(ip) = &meta.ip else { return Ok(()) };
    super::auth::limit(state, &format!("sso:{what}:ip:{ip}"), state.settings.sso_rate_limit_per_minute, 60_000)
        .await
        .map_err(|e| match e {
            super::ServiceError::RateLimited { retry_after_secs } => {
                SsoFailure::new("rate_limited", format!("{what} from {ip}: over the limit, retry in {retry_after_secs} s"), None)
            }
            other => other.into(),
        })
}

/// Starts SSO for the org `slug`: picks the connection (an explicit `connection_id` of that org, else the one that
/// serves the email's domain, else the org's default), records the flow and answers where to send the browser.
pub async fn begin_login(
    state: &AppState,
    slug: &str,
    start: &signin::Start<'_>,
    meta: &RequestMeta,
) -> Result<LoginRedirect, SsoFailure> {
    client_limit(state, "login", meta).await?;
    // An application's sign-in: checked before anything else, and never a redirect when it is wrong.
    let target = match start.app {
        Some(req) => Some(signin::handoff::validate(state, req).await?),
        None => None,
    };
    // The org and its connections in one read; the choice among them is made in memory.
    let (org, conns) = repo::connections::of_org_by_slug(&state.db, slug.trim())
        .await?
        .ok_or_else(|| SsoFailure::new("sso_connection_not_found", format!("no organization with slug {slug:?}"), None))?;
    let conn = signin::choose_connection(&org, &conns, start.connection_id, start.login_hint)?;
    if conn.protocol == "saml" {
        return signin::saml::begin(state, &conn, safe_return_to(start.return_to), target, meta).await;
    }
    if conn.protocol == "ldap" {
        // No redirect protocol: Latchkey's own form asks for the directory name and password.
        return Ok(LoginRedirect { url: signin::ldap::form_url(&conn, start), cookie_name: String::new(), browser_token: String::new() });
    }
    let rp = rp_for_connection(state, &conn).await?;
    let return_to = safe_return_to(start.return_to);
    redirect(state, &rp, start.login_hint, |state_hash, browser_token| signin::new_flow(&conn, state_hash, browser_token, return_to, target, FLOW_TTL_MS)).await
}

/// The authorization request (code + PKCE S256, state, nonce) to `rp`, and its flow row (`base`, then the nonce and
/// the sealed verifier) recorded in the database.
pub(crate) async fn redirect(
    state: &AppState,
    rp: &Rp,
    login_hint: Option<&str>,
    base: impl FnOnce(String, &str) -> FlowRow,
) -> Result<LoginRedirect, SsoFailure> {
    let m = metadata(state, rp, false).await?;
    let client = client_for(state, rp, &m)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scopes(rp.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    // The address typed at email-first sign-in, so the IdP can skip asking for it again.
    if let Some(hint) = login_hint.and_then(|h| Email::parse(h).ok()) {
        request = request.add_extra_param("login_hint", hint.as_str().to_string());
    }
    let (url, csrf, nonce) = request.url();
    // A fresh binding for every flow: a value the browser brings is never reused.
    let browser_token = random_token(32);
    let cookie_name = binding_cookie_name(state.settings.secure_cookies, csrf.secret());
    let state_hash = sha256_hex(csrf.secret());
    let flow = FlowRow {
        pkce_verifier: state.secrets.seal(verifier.secret().as_bytes(), &format!("flow:{state_hash}"))?,
        nonce: nonce.secret().clone(),
        ..base(state_hash, &browser_token)
    };
    repo::flows::insert(&state.db, &flow).await?;
    Ok(LoginRedirect { url: url.to_string(), cookie_name, browser_token })
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207: the issuer of the authorization response, checked when the IdP sends it.
    pub iss: Option<String>,
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
        signin::audit_failure(state, meta, f, "oidc").await;
    }
    result
}

/// What the IdP proved, once every check passed.
pub(crate) struct Verified {
    pub issuer: String,
    pub subject: String,
    pub email: Email,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    /// Google's hosted domain (`hd`) from the verified ID token: which Workspace the account belongs to.
    pub hosted_domain: Option<String>,
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
    client_limit(state, "callback", meta).await?;
    let state_hash = sha256_hex(raw_state);
    // One statement claims the flow only for the browser that started it, unused and unexpired: a leaked state
    // presented elsewhere burns nothing.
    let browser_hash = sha256_hex(browser_token.unwrap_or_default());
    let Some(flow) = repo::flows::claim(&state.db, &state_hash, &browser_hash, now).await? else {
        return Err(match repo::flows::lookup(&state.db, &state_hash).await? {
            Some(f) if f.used_at.is_some() => SsoFailure::new("sso_state_invalid", "state replayed (already used)", Some(&f.org_id)),
            Some(f) if f.expires_at <= now => SsoFailure::new("sso_state_invalid", "state expired", Some(&f.org_id)),
            Some(f) => SsoFailure::new(
                "sso_state_invalid",
                "state presented by a different browser (binding cookie missing or wrong); the flow stays usable by its own browser",
                Some(&f.org_id),
            ),
            None => {
                let n = state.sso.unknown_states.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                SsoFailure::new("sso_state_invalid", format!("unknown state ({n} since start on this node)"), None)
            }
        });
    };
    let org_id = flow.org_id.clone();
    let fail = |code: &'static str, detail: String| SsoFailure::new(code, detail, Some(&org_id));
    if let Some(err) = params.error.as_deref() {
        let desc = params.error_description.unwrap_or_default().chars().take(300).collect::<String>();
        return Err(if err == "access_denied" {
            fail("oauth_access_denied", format!("IdP answered access_denied: {desc}"))
        } else {
            fail("oauth_provider_error", format!("IdP answered error={}: {desc}", err.chars().take(64).collect::<String>()))
        });
    }
    let code = params.code.filter(|c| !c.is_empty()).ok_or_else(|| fail("oauth_provider_error", "callback without code".into()))?;
    // "Continue with …" has no connection yet; every other flow is at a connection of its org.
    let (rp, conn) = match &flow.provider_id {
        Some(pid) => {
            let row = repo::providers::by_id(&state.db, pid).await?.ok_or_else(|| fail("oauth_provider_not_found", "the provider was deleted during sign-in".into()))?;
            (rp_for_provider(state, row, None)?, None)
        }
        None => {
            let found = repo::connections::with_org(&state.db, &flow.connection_id)
                .await?
                .filter(|(_, org)| org.id == org_id)
                .ok_or_else(|| fail("sso_connection_not_found", "the connection was deleted during sign-in".into()))?;
            (rp_for_connection(state, &found.0).await?, Some(found))
        }
    };
    let who = verify(state, &rp, &flow, code, params.iss.as_deref()).await?;
    if let Some(provider) = &rp.provider {
        signin::provider::check(provider, &who, rp.org_id.as_deref())?;
    } else if who.email_verified == Some(false) {
        return Err(fail("oauth_email_unverified", format!("{} is not verified at the IdP", who.email.as_str())));
    }
    let signed_in_as = signed_in_user(state, session).await?;
    let assertion = Assertion {
        issuer: &who.issuer,
        subject: &who.subject,
        email: &who.email,
        name: who.name.as_deref(),
        groups: None,
        signed_in_as: signed_in_as.as_deref(),
    };
    let app = match &flow.application_id {
        Some(app_id) => {
            let app = repo::applications::by_id(&state.db, app_id)
                .await?
                .ok_or_else(|| fail("application_invalid", "the application was deleted during sign-in".into()))?;
            Some(signin::handoff::AppTarget { app, redirect_uri: flow.redirect_uri.clone().unwrap_or_default(), state: flow.app_state.clone() })
        }
        None => None,
    };
    let end = signin::Ending { method: "sso", protocol: "oidc", return_to: flow.return_to.clone(), app, clear_limits: Vec::new() };
    match (conn, rp.provider) {
        (Some((conn, org)), provider) => {
            if let Some(p) = &provider {
                signin::provider::check_org_google(p, &who.email, who.hosted_domain.as_deref(), &org.id)?;
            }
            signin::complete(state, session, &org, &conn, &assertion, end, meta).await
        }
        (None, Some(provider)) => signin::provider::complete(state, session, &provider, &assertion, who.hosted_domain.as_deref(), end, meta).await,
        (None, None) => Err(fail("server_error", "a flow with neither connection nor provider".into())),
    }
}

/// The code exchange and the ID token check (or, for a provider with explicit endpoints, userinfo): who signed in.
async fn verify(state: &AppState, rp: &Rp, flow: &FlowRow, code: String, iss: Option<&str>) -> Result<Verified, SsoFailure> {
    let mut m = metadata(state, rp, false).await?;
    // RFC 9207 (mix-up defence): when the IdP names the issuer of this response, it must be ours.
    if let (Some(iss), Some(_)) = (iss, &rp.issuer) {
        if iss != m.issuer().as_str() {
            let said: String = iss.chars().take(200).collect();
            return Err(rp.fail("oauth_issuer_mismatch", format!("the response names issuer {said:?}, the expected one is {:?}", m.issuer().as_str())));
        }
    }
    let client = client_for(state, rp, &m)?;
    let verifier = state.secrets.open(&flow.pkce_verifier, &format!("flow:{}", flow.state_hash))?;
    let verifier = PkceCodeVerifier::new(String::from_utf8(verifier).unwrap_or_default());
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| rp.fail("oauth_token_exchange_error", format!("no token endpoint: {e}")))?
        .set_pkce_verifier(verifier)
        .request_async(&state.sso.http)
        .await
        .map_err(|e| rp.fail("oauth_token_exchange_error", error_chain(&e)))?;
    let access = openidconnect::OAuth2TokenResponse::access_token(&token).clone();
    if rp.issuer.is_none() {
        // Explicit endpoints: nothing to verify an ID token with; userinfo is the source (see `explicit_metadata`).
        let info: openidconnect::core::CoreUserInfoClaims = client
            .user_info(access, None)
            .map_err(|e| rp.fail("oauth_fetch_user_error", format!("no userinfo endpoint: {e}")))?
            .request_async(&state.sso.http)
            .await
            .map_err(|e| rp.fail("oauth_fetch_user_error", error_chain(&e)))?;
        let email = info.email().map(|e| e.as_str().to_string()).ok_or_else(|| rp.fail("oauth_fetch_user_error", "userinfo has no email"))?;
        return Ok(Verified {
            issuer: m.issuer().as_str().to_string(),
            subject: info.subject().as_str().to_string(),
            email: Email::parse(&email).map_err(|_| rp.fail("oauth_fetch_user_error", format!("the IdP's email {email:?} is not valid")))?,
            email_verified: info.email_verified(),
            name: info.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string()),
            hosted_domain: None,
        });
    }
    let id_token = token.id_token().ok_or_else(|| rp.fail("oauth_token_exchange_error", "the token response has no id_token"))?;
    let nonce = Nonce::new(flow.nonce.clone());

    // Verify; on an unknown key id, fetch the JWKS once more (the IdP may have rotated keys) and retry.
    let mut refreshed = false;
    let claims = loop {
        let c = client_for(state, rp, &m)?;
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
                m = refresh_jwks(state, rp, &m).await?;
            }
            Err(e) => return Err(rp.fail("oauth_id_token_invalid", error_chain(&e))),
        }
    };
    if let Some(azp) = claims.authorized_party() {
        if azp.as_str() != rp.client_id {
            return Err(rp.fail("oauth_id_token_invalid", format!("azp {} is not our client id", azp.as_str())));
        }
    } else if claims.audiences().len() > 1 {
        return Err(rp.fail("oauth_id_token_invalid", "several audiences and no azp"));
    }
    let mut email = claims.email().map(|e| e.as_str().to_string());
    let mut verified = claims.email_verified();
    let mut name = claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string());
    if email.is_none() {
        let info: openidconnect::core::CoreUserInfoClaims = client
            .user_info(access, Some(claims.subject().clone()))
            .map_err(|e| rp.fail("oauth_fetch_user_error", format!("no userinfo endpoint: {e}")))?
            .request_async(&state.sso.http)
            .await
            .map_err(|e| rp.fail("oauth_fetch_user_error", error_chain(&e)))?;
        email = info.email().map(|e| e.as_str().to_string());
        verified = info.email_verified().or(verified);
        name = name.or_else(|| info.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string()));
    }
    let email = email.ok_or_else(|| rp.fail("oauth_fetch_user_error", "neither the ID token nor userinfo has an email"))?;
    let email = Email::parse(&email).map_err(|_| rp.fail("oauth_fetch_user_error", format!("the IdP's email {email:?} is not valid")))?;
    Ok(Verified {
        issuer: claims.issuer().as_str().to_string(),
        subject: claims.subject().as_str().to_string(),
        email,
        email_verified: verified,
        name,
        hosted_domain: hosted_domain(&id_token.to_string()),
    })
}

/// The `hd` claim of an ID token whose signature was verified above (over exactly these bytes): the typed claims
/// of the OIDC library leave it out.
fn hosted_domain(jwt: &str) -> Option<String> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("hd")?.as_str().map(|s| s.to_ascii_lowercase())
}

/// The user this browser is fully signed in as (second factor passed when they have one), if any.
pub(crate) async fn signed_in_user(state: &AppState, session: &Session) -> Result<Option<String>, SsoFailure> {
    let Some(row) = sessions::current(state, session).await? else { return Ok(None) };
    if row.mfa_done == 0 && super::mfa::enrolled(state, &row.user_id).await? {
        return Ok(None);
    }
    Ok(Some(row.user_id))
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(safe_return_to(Some("/orgs/1")), Some("/orgs/1".into()));
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", "orgs", "/a\nb",
            "/\t/evil.example/phish", "/\r\n/evil.example", " //evil.example", "/ /x"] {
            assert_eq!(safe_return_to(Some(bad)), None, "{bad}");
        }
    }
}
