//! Accounts and authentication: sign-up, password sign-in (rate limited), and turning a session or an API key
//! into a `Principal`.
use super::audit::{self, Event, Outcome};
use super::crypto::{hash_password_blocking, sha256_hex, verify_password_blocking};
use super::domain::{parse_name, parse_new_password, Email};
use super::error::{on_conflict, ServiceError, ServiceResult};
use super::{new_id, now_ms, Principal, RequestMeta, Via};
use crate::model::Me;
use crate::repo::{self, users::UserRow};
use crate::state::AppState;

const SIGNIN_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Wrong guesses allowed per email per window, and per client address per window.
pub const SIGNIN_LIMIT_PER_EMAIL: i64 = 10;
const SIGNIN_LIMIT_PER_IP: i64 = 100;
const SIGNUP_WINDOW_MS: i64 = 60 * 60 * 1000;
const SIGNUP_LIMIT_PER_IP: i64 = 30;

#[tracing::instrument(skip(state, password, meta), fields(email = %email))]
pub async fn sign_up(state: &AppState, name: &str, email: &str, password: &str, meta: &RequestMeta) -> ServiceResult<UserRow> {
    let email = Email::parse(email)?;
    let name = parse_name("name", name, 100, true)?;
    let password = parse_new_password(password)?;
    if let Some(ip) = &meta.ip {
        limit(state, &format!("signup:ip:{ip}"), SIGNUP_LIMIT_PER_IP, SIGNUP_WINDOW_MS).await?;
    }
    // An address at a domain an organization verified and signs in with SSO belongs to that organization's
    // identity provider: a password account there would be an unproven squat on it (pre-registration hijack).
    if let Some(url) = super::domains::sso_route(state, &email).await? {
        return Err(ServiceError::SsoRequired(format!(
            "Addresses at {} sign in with their organization's single sign-on, so no password account can be created for them. Continue at {url}.",
            email.domain()
        )));
    }
    let user = UserRow {
        id: new_id(),
        email: email.as_str().to_string(),
        name,
        password_hash: Some(hash_password_blocking(password.to_string()).await?),
        created_at: now_ms(),
        email_proven_org: None,
    };
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::users::insert(&mut *tx, &user)
        .await
        .map_err(|e| on_conflict(e, "No new account can be created with this email. If it is yours, sign in instead."))?;
    audit::record_anonymous(&mut *tx, Some(&user.id), &user.email, meta, Event {
        org_id: None,
        action: "user.signup",
        target: Some(&user.id),
        outcome: Outcome::Success,
        detail: None,
    })
    .await?;
    tx.commit().await?;
    super::domains::after_password_sign_in(state, &user, meta).await?;
    Ok(user)
}

/// Checks an email and password. Unknown email and wrong password are the same error and take the same time.
#[tracing::instrument(skip(state, password, meta))]
pub async fn sign_in_password(state: &AppState, email: &str, password: &str, meta: &RequestMeta) -> ServiceResult<UserRow> {
    let result = check_password(state, email, password, meta).await;
    super::metrics::sign_in("password", "password", result.as_ref().err().map(|e| e.code()));
    result
}

async fn check_password(state: &AppState, email: &str, password: &str, meta: &RequestMeta) -> ServiceResult<UserRow> {
    let email = Email::parse(email)?;
    if password.is_empty() {
        return Err(ServiceError::validation("password", "Enter your password."));
    }
    let email_key = format!("signin:email:{}", email.as_str());
    let ip_key = meta.ip.as_ref().map(|ip| format!("signin:ip:{ip}"));
    let mut limits = vec![(email_key.as_str(), SIGNIN_LIMIT_PER_EMAIL, SIGNIN_WINDOW_MS)];
    limits.extend(ip_key.as_deref().map(|k| (k, SIGNIN_LIMIT_PER_IP, SIGNIN_WINDOW_MS)));
    limit_all(state, &limits).await?;
    let user = repo::users::by_email(&state.db, email.as_str()).await?;
    let ok = verify_password_blocking(password.to_string(), user.as_ref().and_then(|u| u.password_hash.clone())).await?;
    match user {
        Some(user) if ok => {
            repo::rate_limits::clear(&state.db, &[&email_key]).await?;
            super::policy::check_password_sign_in(state, &user.id).await?;
            super::domains::after_password_sign_in(state, &user, meta).await?;
            Ok(user)
        }
        other => {
            audit::record_anonymous(&state.db, other.as_ref().map(|u| u.id.as_str()), email.as_str(), meta, Event {
                org_id: None,
                action: "user.signin",
                target: None,
                outcome: Outcome::Failure,
                detail: Some("wrong email or password".into()),
            })
            .await?;
            Err(ServiceError::InvalidCredentials)
        }
    }
}

/// Counts one attempt against `key`; refuses once `max` attempts fell in the current window.
pub(crate) async fn limit(state: &AppState, key: &str, max: i64, window_ms: i64) -> ServiceResult<()> {
    limit_all(state, &[(key, max, window_ms)]).await
}

/// Counts one attempt against each `(key, max, window_ms)` in one statement; refuses when any of them is past
/// its limit (every key is counted either way, as separate calls would have).
pub(crate) async fn limit_all(state: &AppState, limits: &[(&str, i64, i64)]) -> ServiceResult<()> {
    let now = now_ms();
    let keys: Vec<(&str, i64)> = limits.iter().map(|(key, _, window_ms)| (*key, *window_ms)).collect();
    let counts = repo::rate_limits::hit_all(&state.db, &keys, now).await?;
    let retry = limits
        .iter()
        .zip(counts)
        .filter(|((_, max, _), (hits, _))| hits > max)
        .map(|((_, _, window_ms), (_, start))| ((start + window_ms - now) / 1000).max(1))
        .max();
    match retry {
        Some(retry_after_secs) => Err(ServiceError::RateLimited { retry_after_secs }),
        None => Ok(()),
    }
}

/// Resolves the caller. An `X-Api-Key` header wins over the cookie and must be valid on its own. A session of a
/// user with a second factor that has not passed it yet is refused (`MFA_REQUIRED`) everywhere except where
/// `authenticate_partial` is used: the MFA challenge, `me` and sign-out.
pub async fn authenticate(state: &AppState, auth_session_id: Option<&str>, api_key: Option<&str>) -> ServiceResult<Principal> {
    let p = authenticate_partial(state, auth_session_id, api_key).await?;
    if p.session_id().is_some() && !p.mfa_done() && super::mfa::enrolled(state, &p.user_id).await? {
        return Err(ServiceError::MfaRequired(
            "Finish signing in: enter the code from your authenticator app (POST /api/auth/mfa/challenge).".into(),
        ));
    }
    Ok(p)
}

/// Like `authenticate`, but lets a session that still owes its second factor through.
pub async fn authenticate_partial(state: &AppState, auth_session_id: Option<&str>, api_key: Option<&str>) -> ServiceResult<Principal> {
    let now = now_ms();
    if let Some(key) = api_key {
        let key = key.trim();
        if !key.starts_with(super::api_keys::KEY_PREFIX) || key.len() > 128 {
            return Err(ServiceError::InvalidApiKey);
        }
        let row = repo::api_keys::by_hash(&state.db, &sha256_hex(key)).await?;
        let Some(row) = row.filter(|k| k.revoked_at.is_none()) else {
            return Err(ServiceError::InvalidApiKey);
        };
        let user = repo::users::by_id(&state.db, &row.user_id).await?.ok_or(ServiceError::InvalidApiKey)?;
        repo::api_keys::touch(&state.db, &row.id, now).await?;
        return Ok(Principal {
            user_id: user.id,
            email: user.email,
            name: user.name,
            via: Via::ApiKey { key_id: row.id, org_id: row.org_id, via_connection: row.created_via_connection, mfa_verified: row.mfa_verified != 0 },
        });
    }
    let sid = auth_session_id.ok_or(ServiceError::Unauthenticated)?;
    let session = repo::sessions::live_by_id(&state.db, sid, now).await?.ok_or(ServiceError::Unauthenticated)?;
    let user = repo::users::by_id(&state.db, &session.user_id).await?.ok_or(ServiceError::Unauthenticated)?;
    repo::sessions::touch(&state.db, &session.id, now).await?;
    Ok(Principal {
        user_id: user.id,
        email: user.email,
        name: user.name,
        via: Via::Session { session_id: session.id, method: session.method, connection_id: session.connection_id, mfa_done: session.mfa_done != 0 },
    })
}

/// The caller as `GET /api/user/me` shows it; `mfaPending` when the session still owes its second factor.
pub async fn me(state: &AppState, p: &Principal) -> ServiceResult<Me> {
    let mfa_pending = p.session_id().is_some() && !p.mfa_done() && super::mfa::enrolled(state, &p.user_id).await?;
    let operator = p.pinned_org().is_none() && repo::applications::is_operator(&state.db, &p.user_id).await?;
    Ok(Me { id: p.user_id.clone(), email: p.email.clone(), name: p.name.clone(), auth_method: p.auth_method().to_string(), mfa_pending, operator })
}
