//! The hand-off to a registered application: a sign-in started with `client_id`, `redirect_uri` and `state` ends
//! at `redirect_uri?token=<sso_token>&token_type=sso&state=…`; the application redeems the token (HTTP Basic
//! client credentials) for a session token and a session JWT, checks sessions later, and revokes them.
//!
//! The token is 256 random bits, stored as a digest, single use, bound to the application, valid 5 minutes.
//! With `mfaHandling = latchkey` a member who owes a second factor passes it on Latchkey's `/mfa` page first (the
//! hand-off waits as a `pending` row bound to that browser session); with `app` the application gets an
//! intermediate session and runs `POST /api/auth/mfa/totp/authenticate` itself.
use super::SsoFailure;
use crate::repo::{self, applications::ApplicationRow, sessions::AuthSessionRow, sso_tokens::TokenRow};
use crate::service::crypto::{random_token, sha256_hex};
use crate::service::error::{ServiceError, ServiceResult};
use crate::service::{audit, jwt, new_id, now_ms, RequestMeta};
use crate::state::AppState;
use serde::Serialize;
use serde_json::{json, Map, Value};

pub const TOKEN_TTL_MS: i64 = 5 * 60 * 1000;
pub const SESSION_TOKEN_PREFIX: &str = "lkst_";

/// What an application asked for when it started the sign-in.
#[derive(Debug, Clone, Default)]
pub struct AppRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
}

/// A validated request: the application and where to send the browser back.
#[derive(Debug, Clone)]
pub struct AppTarget {
    pub app: ApplicationRow,
    pub redirect_uri: String,
    pub state: Option<String>,
}

/// Checks the application and its redirect URI (an exact, registered match). Failing here never redirects
/// anywhere: the browser gets Latchkey's error page (no open redirect).
pub async fn validate(state: &AppState, req: &AppRequest) -> Result<AppTarget, SsoFailure> {
    let fail = |d: String| SsoFailure::new("application_invalid", d, None);
    let app = repo::applications::by_client_id(&state.db, req.client_id.trim())
        .await?
        .ok_or_else(|| fail(format!("unknown client_id {:?}", req.client_id.chars().take(80).collect::<String>())))?;
    if !crate::service::applications::redirect_uris(&app).iter().any(|u| u == &req.redirect_uri) {
        return Err(fail(format!("redirect_uri {:?} is not registered for {}", req.redirect_uri.chars().take(200).collect::<String>(), app.client_id)));
    }
    let app_state = req.state.clone().filter(|s| !s.is_empty());
    if app_state.as_ref().is_some_and(|s| s.len() > 512 || s.chars().any(char::is_control)) {
        return Err(fail("state longer than 512 characters or with control characters".into()));
    }
    Ok(AppTarget { redirect_uri: req.redirect_uri.clone(), state: app_state, app })
}

/// Who signed in, as the hand-off records it.
pub struct Signed<'a> {
    pub user_id: &'a str,
    pub org_id: &'a str,
    pub connection_id: Option<&'a str>,
    pub method: &'a str,
    pub protocol: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub provisioned: bool,
}

fn token_row(target: &AppTarget, s: &Signed<'_>, hash: String, kind: &str, authenticated: bool, otp: bool, browser_session: Option<&str>) -> TokenRow {
    let now = now_ms();
    TokenRow {
        token_hash: hash,
        kind: kind.into(),
        application_id: target.app.id.clone(),
        user_id: s.user_id.into(),
        org_id: s.org_id.into(),
        connection_id: s.connection_id.map(str::to_string),
        method: s.method.into(),
        protocol: s.protocol.map(str::to_string),
        subject: s.subject.map(str::to_string),
        provisioned: s.provisioned as i64,
        authenticated: authenticated as i64,
        otp: otp as i64,
        redirect_uri: target.redirect_uri.clone(),
        app_state: target.state.clone(),
        browser_session: browser_session.map(str::to_string),
        created_at: now,
        expires_at: now + TOKEN_TTL_MS,
    }
}

fn back_to_app(redirect_uri: &str, token: &str, app_state: Option<&str>) -> String {
    let mut url = url::Url::parse(redirect_uri).map(|u| u.to_string()).unwrap_or_else(|_| redirect_uri.to_string());
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("token", token).append_pair("token_type", "sso");
    if let Some(s) = app_state {
        q.append_pair("state", s);
    }
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&q.finish());
    url
}

/// The end of a sign-in started by an application: where the browser goes. `mfa_owed`: the org or the user
/// needs a second factor this session has not passed; `browser_session`: the console session just established.
pub async fn hand_off(state: &AppState, target: &AppTarget, s: &Signed<'_>, mfa_owed: bool, browser_session: &str) -> Result<String, SsoFailure> {
    if mfa_owed && target.app.mfa_handling == "latchkey" {
        let pending = random_token(32);
        repo::sso_tokens::insert(&state.db, &token_row(target, s, sha256_hex(&pending), "pending", false, false, Some(browser_session))).await?;
        let next: String = url::form_urlencoded::byte_serialize(format!("/api/auth/sso/handoff?h={pending}").as_bytes()).collect();
        return Ok(format!("/mfa?next={next}"));
    }
    let token = random_token(32);
    repo::sso_tokens::insert(&state.db, &token_row(target, s, sha256_hex(&token), "token", !mfa_owed, false, None)).await?;
    Ok(back_to_app(&target.redirect_uri, &token, target.state.as_deref()))
}

/// `GET /api/auth/sso/handoff?h=…` after the browser passed its second factor on `/mfa`: the waiting hand-off of
/// this very browser session becomes a token for the application.
pub async fn resume(state: &AppState, pending: &str, browser_session: Option<&str>, mfa_done: bool) -> Result<String, SsoFailure> {
    let fail = |d: &str| SsoFailure::new("sso_state_invalid", d, None);
    let (Some(sid), true) = (browser_session, mfa_done) else {
        return Err(fail("hand-off resumed without a session that passed its second factor"));
    };
    let row = repo::sso_tokens::claim(&state.db, &sha256_hex(pending), "pending", None, now_ms())
        .await?
        .ok_or_else(|| fail("unknown, used or expired hand-off"))?;
    if row.browser_session.as_deref() != Some(sid) {
        return Err(fail("hand-off resumed by another browser session"));
    }
    let token = random_token(32);
    let ready = TokenRow { token_hash: sha256_hex(&token), kind: "token".into(), authenticated: 1, otp: 1, browser_session: None, created_at: now_ms(), expires_at: now_ms() + TOKEN_TTL_MS, ..row.clone() };
    repo::sso_tokens::insert(&state.db, &ready).await?;
    Ok(back_to_app(&row.redirect_uri, &token, row.app_state.as_deref()))
}

/// The member an application's session belongs to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SessionMember)]
pub struct Member {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub status: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SessionOrganization)]
pub struct Organization {
    pub id: String,
    pub slug: String,
    pub name: String,
}

/// The answer of `POST /api/auth/sso/authenticate` and of the TOTP step of an intermediate session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authenticated {
    pub member_authenticated: bool,
    pub session_token: Option<String>,
    pub session_jwt: Option<String>,
    pub intermediate_session_token: Option<String>,
    pub session_expires_at: String,
    pub member: Member,
    pub organization: Organization,
    pub connection_id: Option<String>,
    pub protocol: Option<String>,
    pub subject: Option<String>,
    pub provisioned: bool,
    pub amr: Vec<String>,
}

fn amr(method: &str, mfa_done: bool) -> Vec<String> {
    let mut out = vec![if method == "sso" { "sso".to_string() } else { "pwd".to_string() }];
    if mfa_done {
        out.push("otp".into());
    }
    out
}

fn gone() -> ServiceError {
    ServiceError::InvalidToken("The member is no longer part of the organization.".into())
}

async fn member_and_org(conn: &mut sqlx::AnyConnection, user_id: &str, org_id: &str) -> ServiceResult<(Member, Organization, String, Option<String>)> {
    let (email, name, org_id, slug, org_name, role, status, kid) =
        repo::orgs::member_of(conn, org_id, user_id).await?.filter(|m| m.6 == "active").ok_or_else(gone)?;
    Ok((
        Member { id: user_id.to_string(), email, name, role: role.clone(), status },
        Organization { id: org_id, slug, name: org_name },
        role,
        kid,
    ))
}

/// Signs a session JWT for `session` (claims in the README's table, then the custom ones).
async fn session_jwt(
    state: &AppState,
    app: &ApplicationRow,
    s: &repo::sessions::AppSessionRow,
    org: &Organization,
    role: &str,
    custom: &Map<String, Value>,
    kid: Option<String>,
) -> ServiceResult<String> {
    let now = now_ms() / 1000;
    let mut claims = custom.clone();
    for (k, v) in [
        ("iss", json!(state.settings.public_url)),
        ("aud", json!(app.client_id)),
        ("sub", json!(s.user_id)),
        ("sid", json!(s.id)),
        ("org_id", json!(org.id)),
        ("org_slug", json!(org.slug)),
        ("role", json!(role)),
        ("amr", json!(amr(&s.method, s.mfa_done != 0))),
        ("connection_id", json!(s.connection_id)),
        ("iat", json!(now)),
        ("nbf", json!(now)),
        ("exp", json!(now + jwt::JWT_TTL_SECS)),
    ] {
        claims.insert(k.into(), v);
    }
    jwt::sign(state, kid, &claims).await
}

/// `POST /api/auth/sso/authenticate`: redeems the token once for a session of `app`.
pub async fn redeem(state: &AppState, app: &ApplicationRow, token: &str, minutes: Option<i64>, custom: Option<&Value>, meta: &RequestMeta) -> ServiceResult<Authenticated> {
    let custom = jwt::check_custom_claims(custom)?;
    let minutes = match minutes {
        Some(m) if !(5..=app.max_session_minutes).contains(&m) => {
            return Err(ServiceError::validation("sessionDurationMinutes", format!("sessionDurationMinutes must be between 5 and {} for this application.", app.max_session_minutes)))
        }
        Some(m) => m,
        None => app.session_duration_minutes,
    };
    let invalid = || ServiceError::InvalidToken("This sso_token is unknown, expired, already used, or was issued to another application.".into());
    if token.is_empty() || token.len() > 128 {
        return Err(invalid());
    }
    let now = now_ms();
    // One transaction: the token is spent only if the session is written.
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let t = repo::sso_tokens::claim(&mut *tx, &sha256_hex(token), "token", Some(&app.id), now).await?.ok_or_else(invalid)?;
    let (member, org, role, kid) = member_and_org(&mut tx, &t.user_id, &t.org_id).await?;
    let session_token = format!("{SESSION_TOKEN_PREFIX}{}", random_token(32));
    let row = AuthSessionRow {
        id: new_id(),
        user_id: t.user_id.clone(),
        method: t.method.clone(),
        connection_id: t.connection_id.clone(),
        mfa_done: t.otp,
        created_at: now,
        expires_at: now + minutes * 60_000,
        last_seen_at: now,
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.clone(),
    };
    repo::sessions::insert_app(&mut *tx, &row, &app.id, &t.org_id, &sha256_hex(&session_token), t.authenticated == 0).await?;
    audit::record_anonymous(&mut *tx, Some(&t.user_id), &member.email, meta, audit::Event {
        org_id: Some(&t.org_id),
        action: "application.session.create",
        target: Some(&row.id),
        outcome: audit::Outcome::Success,
        detail: Some(format!("application={} method={} authenticated={} otp={}", app.client_id, t.method, t.authenticated != 0, t.otp != 0)),
    })
    .await?;
    tx.commit().await?;
    conn.release();
    let s = repo::sessions::AppSessionRow {
        id: row.id,
        user_id: row.user_id,
        method: row.method,
        connection_id: row.connection_id,
        mfa_done: row.mfa_done,
        created_at: row.created_at,
        expires_at: row.expires_at,
        application_id: app.id.clone(),
        org_id: t.org_id.clone(),
        intermediate: (t.authenticated == 0) as i64,
        last_seen_at: now,
    };
    let done = s.intermediate == 0;
    let jwt = if done { Some(session_jwt(state, app, &s, &org, &role, &custom, kid).await?) } else { None };
    Ok(Authenticated {
        member_authenticated: done,
        session_token: done.then(|| session_token.clone()),
        session_jwt: jwt,
        intermediate_session_token: (!done).then_some(session_token),
        session_expires_at: crate::service::rfc3339(s.expires_at),
        amr: amr(&s.method, s.mfa_done != 0),
        member,
        organization: org,
        connection_id: t.connection_id,
        protocol: t.protocol,
        subject: t.subject,
        provisioned: t.provisioned != 0,
    })
}

/// The answer of `POST /api/auth/sessions/authenticate`: the session and a fresh JWT.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCheck {
    pub session_id: String,
    pub session_jwt: String,
    pub session_expires_at: String,
    pub mfa_done: bool,
    pub amr: Vec<String>,
    pub member: Member,
    pub organization: Organization,
    pub connection_id: Option<String>,
}

/// Checks a session by its token or by a session JWT (signature, audience, expiry, and the row still alive, so a
/// revoked session fails at once), for the application whose HTTP Basic credentials came with it. The hot path of
/// every application request is one statement: the client's secret, the session, its member and org, and the
/// signing key's id. Any refusal first checks the client on its own, so a wrong client is `INVALID_CLIENT` before
/// anything about the session is said, as with every other application endpoint.
pub async fn check(state: &AppState, client: &crate::service::applications::ClientCredentials, token: Option<&str>, jwt_in: Option<&str>) -> ServiceResult<SessionCheck> {
    use repo::sessions::SessionRef;
    let refuse = |e: ServiceError| async move {
        crate::service::applications::authenticate_client(state, &client.id, &client.secret).await?;
        Err::<SessionCheck, _>(e)
    };
    let invalid = || ServiceError::InvalidToken("This session is unknown, expired or revoked.".into());
    let now = now_ms();
    if !client.plausible() {
        return Err(ServiceError::InvalidClient);
    }
    let token_hash;
    let claims;
    let by = match (token, jwt_in) {
        (Some(t), _) if !t.is_empty() => {
            token_hash = sha256_hex(t);
            SessionRef::TokenHash(&token_hash)
        }
        (_, Some(j)) if !j.is_empty() => {
            claims = match jwt::verify(state, j, &client.id).await {
                Ok(c) => c,
                Err(e) => return refuse(e).await,
            };
            match claims.get("sid").and_then(Value::as_str) {
                Some(sid) => SessionRef::Id(sid),
                None => return refuse(invalid()).await,
            }
        }
        _ => return refuse(ServiceError::validation("sessionToken", "Send sessionToken or sessionJwt.")).await,
    };
    let mut conn = state.db.acquire().await?;
    let found = repo::sessions::app_check(&mut *conn, by, &sha256_hex(&client.secret), now).await?;
    let row = match found {
        Some(r) if crate::service::crypto::constant_time_eq(r.app_client_id.as_bytes(), client.id.as_bytes()) => r,
        Some(_) => {
            conn.release();
            return Err(ServiceError::InvalidClient);
        }
        None => {
            conn.release();
            return refuse(invalid()).await;
        }
    };
    if row.session.intermediate != 0 {
        conn.release();
        return Err(invalid());
    }
    let app = row.application();
    let (Some(email), Some(name), Some(role), Some(status), Some(slug), Some(org_name)) =
        (row.member_email, row.member_name, row.member_role, row.member_status, row.org_slug, row.org_name)
    else {
        return Err(gone());
    };
    if status != "active" {
        return Err(gone());
    }
    let s = row.session;
    let member = Member { id: s.user_id.clone(), email, name, role: role.clone(), status };
    let org = Organization { id: s.org_id.clone(), slug, name: org_name };
    // `last_seen_at` is for people reading the Sessions page: a minute's precision spares a write per check.
    if now - s.last_seen_at > 60_000 {
        repo::sessions::touch(&mut *conn, &s.id, now).await?;
    }
    conn.release();
    let jwt = session_jwt(state, &app, &s, &org, &role, &Map::new(), row.current_kid).await?;
    Ok(SessionCheck {
        session_id: s.id.clone(),
        session_jwt: jwt,
        session_expires_at: crate::service::rfc3339(s.expires_at),
        mfa_done: s.mfa_done != 0,
        amr: amr(&s.method, s.mfa_done != 0),
        member,
        organization: org,
        connection_id: s.connection_id,
    })
}

/// `POST /api/auth/sessions/revoke`: ends a session of `app` (idempotent for the app's own sessions).
pub async fn revoke(state: &AppState, app: &ApplicationRow, token: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let Some(s) = repo::sessions::app_by_token(&state.db, &sha256_hex(token), &app.id, now_ms()).await? else {
        return Err(ServiceError::InvalidToken("This session is unknown, expired or already revoked.".into()));
    };
    repo::sessions::delete(&state.db, &s.id).await?;
    audit::record_anonymous(&state.db, Some(&s.user_id), &app.client_id, meta, audit::Event {
        org_id: Some(&s.org_id),
        action: "application.session.revoke",
        target: Some(&s.id),
        outcome: audit::Outcome::Success,
        detail: None,
    })
    .await?;
    Ok(())
}

/// `POST /api/auth/mfa/totp/authenticate`: completes an intermediate session (`mfaHandling = app`) with a TOTP or
/// recovery code, with the console challenge's replay protection and rate limit.
pub async fn totp(state: &AppState, app: &ApplicationRow, intermediate: &str, code: &str, meta: &RequestMeta) -> ServiceResult<Authenticated> {
    let invalid = || ServiceError::InvalidToken("This intermediate session is unknown, expired or already complete.".into());
    let now = now_ms();
    let s = repo::sessions::app_by_token(&state.db, &sha256_hex(intermediate), &app.id, now).await?.filter(|s| s.intermediate != 0).ok_or_else(invalid)?;
    let user = repo::users::by_id(&state.db, &s.user_id).await?.ok_or_else(invalid)?;
    let checked = crate::service::mfa::check_code(state, &crate::service::mfa::UserRef { user_id: &user.id, email: &user.email }, code, false, true).await;
    crate::service::metrics::mfa_challenge(checked.is_ok(), "application");
    checked?;
    if !repo::sessions::complete_intermediate(&state.db, &s.id).await? {
        return Err(invalid());
    }
    audit::record_anonymous(&state.db, Some(&user.id), &user.email, meta, audit::Event {
        org_id: Some(&s.org_id),
        action: "mfa.challenge",
        target: Some(&s.id),
        outcome: audit::Outcome::Success,
        detail: Some(format!("application={}", app.client_id)),
    })
    .await?;
    let s = repo::sessions::AppSessionRow { mfa_done: 1, intermediate: 0, ..s };
    let mut conn = state.db.acquire().await?;
    let (member, org, role, kid) = member_and_org(&mut *conn, &s.user_id, &s.org_id).await?;
    conn.release();
    let jwt = session_jwt(state, app, &s, &org, &role, &Map::new(), kid).await?;
    Ok(Authenticated {
        member_authenticated: true,
        session_token: Some(intermediate.to_string()),
        session_jwt: Some(jwt),
        intermediate_session_token: None,
        session_expires_at: crate::service::rfc3339(s.expires_at),
        amr: amr(&s.method, true),
        member,
        organization: org,
        connection_id: s.connection_id,
        protocol: None,
        subject: None,
        provisioned: false,
    })
}

/// The answer of `POST /api/auth/sso/login-url` (reference 001).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginUrl {
    pub authorize_url: String,
    pub connection_id: String,
    pub protocol: String,
}

/// Where to send a browser to sign in at `domain` for `app`: the domain is verified (in force) by an org with an
/// active connection for it, and `redirect_uri` (default: the app's first) is registered exactly.
pub async fn login_url(state: &AppState, app: &ApplicationRow, domain: &str, redirect_uri: Option<&str>, app_state: Option<&str>) -> ServiceResult<LoginUrl> {
    let domain = crate::service::domains::parse_domain(domain)?;
    let none = || ServiceError::NotFound(format!("No organization signs in {domain} with single sign-on: the domain is not verified, or its connection is not active."));
    let d = repo::domains::verified_by_name(&state.db, &domain)
        .await?
        .filter(|d| crate::service::domains::in_force(d, now_ms()))
        .ok_or_else(none)?;
    let conn = crate::service::domains::routing_connection(state, &d.org_id, &d.name).await?.ok_or_else(none)?;
    let org = repo::orgs::by_id(&state.db, &d.org_id).await?.ok_or_else(none)?;
    let registered = crate::service::applications::redirect_uris(app);
    let redirect = match redirect_uri {
        Some(r) if registered.iter().any(|u| u == r) => r.to_string(),
        Some(_) => return Err(ServiceError::validation("redirectUri", "This redirect URI is not registered for the application (exact match).")),
        None => registered.first().cloned().ok_or_else(|| ServiceError::validation("redirectUri", "The application has no redirect URI."))?,
    };
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("client_id", &app.client_id).append_pair("redirect_uri", &redirect).append_pair("connection_id", &conn.id);
    if let Some(s) = app_state.filter(|s| !s.is_empty()) {
        q.append_pair("state", s);
    }
    Ok(LoginUrl {
        authorize_url: format!("{}/api/auth/sso/{}/login?{}", state.settings.public_url, org.slug, q.finish()),
        connection_id: conn.id,
        protocol: conn.protocol,
    })
}

/// A password sign-in (hosted sign-in page or `POST /api/auth/signin`) started by an application: the org it is
/// for (`org`: a slug or id the user is an active member of; without it, the user's only organization), the
/// org's policy (`sso` refuses a non-exempt member), then the same hand-off as SSO. Returns where the browser goes.
pub async fn after_password(
    state: &AppState,
    user: &repo::users::UserRow,
    browser_session: &str,
    req: &AppRequest,
    org: Option<&str>,
) -> ServiceResult<String> {
    let target = validate(state, req).await.map_err(|f| {
        f.or_else(|f| ServiceError::validation("clientId", format!("The application is unknown, or the redirect URI is not registered for it exactly ({}).", f.code)))
    })?;
    for_user(state, &target, user, "password", browser_session, org).await
}

/// An instance provider's sign-in (which belongs to no org) for an application: the user's only active org, under
/// its policy (an org that requires SSO refuses it: that is its own connection's job).
pub async fn for_only_org(state: &AppState, target: &AppTarget, user: &repo::users::UserRow, method: &str, browser_session: &str) -> Result<String, SsoFailure> {
    for_user(state, target, user, method, browser_session, None).await.map_err(|e| match e {
        ServiceError::Validation { .. } => SsoFailure::new("oauth_no_organization", format!("{} has no single active organization", user.email), None),
        ServiceError::SsoRequired(m) => SsoFailure::new("oauth_domain_uses_other_sign_in", m, None),
        other => other.into(),
    })
}

async fn for_user(state: &AppState, target: &AppTarget, user: &repo::users::UserRow, method: &str, browser_session: &str, org: Option<&str>) -> ServiceResult<String> {
    let orgs: Vec<_> = repo::orgs::list_for_user(&state.db, &user.id).await?.into_iter().filter(|m| m.status == "active").collect();
    let wanted = org.map(str::trim).filter(|o| !o.is_empty());
    let chosen = match wanted {
        Some(o) => orgs.into_iter().find(|m| m.slug == o || m.id == o),
        None if orgs.len() == 1 => orgs.into_iter().next(),
        None => {
            return Err(ServiceError::validation(
                "organization",
                "Say which organization to sign in to (organization = its slug): you are a member of several, or of none.",
            ))
        }
    }
    .ok_or_else(|| ServiceError::validation("organization", "You are not an active member of that organization."))?;
    let p = crate::service::Principal {
        user_id: user.id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        via: crate::service::Via::Session { session_id: browser_session.into(), method: method.into(), connection_id: None, mfa_done: false },
    };
    let role = crate::service::domain::Role::parse(&chosen.role)?;
    let mfa_owed = match crate::service::policy::enforce(state, &p, &chosen.id, &chosen.slug, role).await {
        Ok(()) => crate::service::mfa::enrolled(state, &user.id).await?,
        Err(ServiceError::MfaRequired(_)) => true,
        Err(other) => return Err(other),
    };
    let signed = Signed { user_id: &user.id, org_id: &chosen.id, connection_id: None, method, protocol: None, subject: None, provisioned: false };
    hand_off(state, &target, &signed, mfa_owed, browser_session).await.map_err(|f| f.or_else(|f| ServiceError::internal("hand-off", f.detail)))
}
