//! Browser sessions: establishing one at sign-in (with a fresh cookie id), resolving it, listing and revoking.
use super::audit::{self, Event, Outcome};
use super::error::{ServiceError, ServiceResult};
use super::{new_id, now_ms, rfc3339, Principal, RequestMeta};
use crate::model::SessionInfo;
use crate::repo::{self, sessions::AuthSessionRow, users::UserRow};
use crate::state::AppState;
use tower_sessions::Session;

/// The key in the tower-sessions record that points at the `auth_sessions` row.
const AUTH_KEY: &str = "auth_session_id";
/// Absolute lifetime of a signed-in session.
pub const SESSION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// Signs `user` in on this browser: rotates the cookie's session id (no fixation) and records how. Returns the
/// `auth_sessions` id.
pub async fn establish(
    state: &AppState,
    session: &Session,
    user: &UserRow,
    method: &str,
    connection_id: Option<&str>,
    meta: &RequestMeta,
) -> ServiceResult<String> {
    establish_and_record(state, session, user, method, connection_id, meta, None, &[]).await
}

/// `establish`, also recording `also` (the sign-in's own event, e.g. `sso.login`) in the same transaction: one
/// commit for the session row and both audit events (and the webhook deliveries they queue), which also deletes
/// the rate-limit counters in `clear_limits`.
#[allow(clippy::too_many_arguments)]
pub async fn establish_and_record(
    state: &AppState,
    session: &Session,
    user: &UserRow,
    method: &str,
    connection_id: Option<&str>,
    meta: &RequestMeta,
    also: Option<Event<'_>>,
    clear_limits: &[String],
) -> ServiceResult<String> {
    if let Some(old) = current_id(session).await? {
        repo::sessions::delete(&state.db, &old).await?;
    }
    // A browser that brought a session gets a new id (no fixation); one without gets its first id when saved.
    if session.id().is_some() {
        session.cycle_id().await.map_err(|e| ServiceError::internal("session cycle", e))?;
    }
    let now = now_ms();
    let row = AuthSessionRow {
        id: new_id(),
        user_id: user.id.clone(),
        method: method.to_string(),
        connection_id: connection_id.map(str::to_string),
        mfa_done: 0,
        created_at: now,
        expires_at: now + SESSION_TTL_MS,
        last_seen_at: now,
        ip: meta.ip.clone(),
        user_agent: meta.user_agent.as_ref().map(|ua| ua.chars().take(300).collect()),
    };
    // One transaction, sent to SQLite as one script (repo::batch).
    let mut batch = repo::batch::Batch::default();
    repo::sessions::insert(&mut batch, &row).await?;
    let created = Event {
        org_id: None,
        action: "session.create",
        target: Some(&row.id),
        outcome: Outcome::Success,
        detail: Some(format!("method={method}")),
    };
    audit::record_all_anonymous(&mut batch, Some(&user.id), &user.email, meta, std::iter::once(created).chain(also).collect()).await?;
    if !clear_limits.is_empty() {
        repo::rate_limits::clear(&mut batch, &clear_limits.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    }
    state.db.write_all(batch).await?;
    session.insert(AUTH_KEY, &row.id).await.map_err(|e| ServiceError::internal("session insert", e))?;
    Ok(row.id)
}

/// The `auth_sessions` id this browser's cookie points at, if any. A store that cannot be read is the database
/// being unreachable (503), never "not signed in": answering 401 would make clients drop their session.
pub async fn current_id(session: &Session) -> ServiceResult<Option<String>> {
    session.get::<String>(AUTH_KEY).await.map_err(|e| ServiceError::Unavailable(format!("session store: {e}")))
}

/// The live `auth_sessions` row this browser's cookie points at, if any. Database errors stay errors (503).
pub async fn current(state: &AppState, session: &Session) -> ServiceResult<Option<AuthSessionRow>> {
    let Some(id) = current_id(session).await? else { return Ok(None) };
    Ok(repo::sessions::live_by_id(&state.db, &id, now_ms()).await?)
}

/// Signs this browser out: the session row goes, the cookie record is flushed.
pub async fn sign_out(state: &AppState, session: &Session, meta: &RequestMeta) -> ServiceResult<()> {
    if let Some(row) = current(state, session).await? {
        repo::sessions::delete(&state.db, &row.id).await?;
        let user = repo::users::by_id(&state.db, &row.user_id).await?;
        let actor = user.map(|u| u.email).unwrap_or_default();
        audit::record_anonymous(&state.db, Some(&row.user_id), &actor, meta, Event {
            org_id: None,
            action: "session.signout",
            target: Some(&row.id),
            outcome: Outcome::Success,
            detail: None,
        })
        .await?;
    }
    session.flush().await.map_err(|e| ServiceError::internal("session flush", e))
}

pub async fn list_mine(state: &AppState, p: &Principal) -> ServiceResult<Vec<SessionInfo>> {
    p.require_unpinned()?;
    let rows = repo::sessions::live_for_user(&state.db, &p.user_id, now_ms()).await?;
    Ok(rows
        .into_iter()
        .map(|r| SessionInfo {
            current: p.session_id() == Some(r.id.as_str()),
            id: r.id,
            method: r.method,
            created_at: rfc3339(r.created_at),
            expires_at: rfc3339(r.expires_at),
            last_seen_at: rfc3339(r.last_seen_at),
            ip: r.ip,
            user_agent: r.user_agent,
        })
        .collect())
}

pub async fn revoke_mine(state: &AppState, p: &Principal, id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    p.require_unpinned()?;
    let id = super::domain::parse_id("sessionId", id)?;
    if repo::sessions::delete_for_user(&state.db, &id, &p.user_id).await? == 0 {
        return Err(ServiceError::NotFound("No session of yours has that id.".into()));
    }
    audit::record(&state.db, p, meta, Event {
        org_id: None,
        action: "session.revoke",
        target: Some(&id),
        outcome: Outcome::Success,
        detail: None,
    })
    .await?;
    Ok(())
}
