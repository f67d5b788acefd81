//! Writes audit events. Every change of settings, membership or session goes through `record`.
use super::domain::Role;
use super::error::{ServiceError, ServiceResult};
use super::{new_id, now_ms, Principal, RequestMeta};
use crate::model::{AuditEvent, AuditPage, AuditQuery};
use crate::state::AppState;
use crate::repo;

pub struct Event<'a> {
    pub org_id: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub outcome: Outcome,
    pub detail: Option<String>,
}

#[derive(Clone, Copy)]
pub enum Outcome {
    Success,
    Failure,
}

/// Records an event by a known principal. `ex` is the caller's transaction (the event and its webhook deliveries
/// commit with the change they describe) or the pool.
pub async fn record<'c>(ex: impl Into<Writer<'c>>, who: &Principal, meta: &RequestMeta, e: Event<'_>) -> sqlx::Result<()> {
    let actor = match who.pinned_org() {
        _ if who.session_id().is_some() => who.email.clone(),
        _ => format!("{} (API key)", who.email),
    };
    write(ex, Some(&who.user_id), &actor, meta, e).await
}

/// Records an event whose actor is only an email typed at sign-in (it may not be a user).
pub async fn record_anonymous<'c>(
    ex: impl Into<Writer<'c>>,
    user_id: Option<&str>,
    actor: &str,
    meta: &RequestMeta,
    e: Event<'_>,
) -> sqlx::Result<()> {
    write(ex, user_id, actor, meta, e).await
}

/// Records several events of one actor on the caller's transaction, in one statement (plus their webhook
/// deliveries).
pub async fn record_all_anonymous<C>(
    conn: &mut C,
    user_id: Option<&str>,
    actor: &str,
    meta: &RequestMeta,
    events: Vec<Event<'_>>,
) -> sqlx::Result<()>
where
    for<'e> &'e mut C: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows: Vec<_> = events.into_iter().map(|e| row_of(user_id, actor, meta, e)).collect();
    write_rows(conn, &rows).await
}

/// Events and their webhook deliveries, on one connection (or added to one batch).
async fn write_rows<C>(conn: &mut C, rows: &[repo::audit::AuditRow]) -> sqlx::Result<()>
where
    for<'e> &'e mut C: sqlx::Executor<'e, Database = sqlx::Any>,
{
    repo::audit::insert_all(&mut *conn, rows).await?;
    for row in rows {
        super::webhooks::enqueue(&mut *conn, row).await?;
    }
    Ok(())
}

async fn write<'c>(
    ex: impl Into<Writer<'c>>,
    user_id: Option<&str>,
    actor: &str,
    meta: &RequestMeta,
    e: Event<'_>,
) -> sqlx::Result<()> {
    let row = row_of(user_id, actor, meta, e);
    match ex.into() {
        // Most events go to no webhook: one statement. Those that may are written with their deliveries in a
        // transaction of their own (one batch).
        Writer::Pool(pool) if !super::webhooks::may_deliver(&row) => repo::audit::insert(pool, &row).await,
        Writer::Pool(pool) => {
            let mut batch = repo::batch::Batch::default();
            write_rows(&mut batch, std::slice::from_ref(&row)).await?;
            pool.write_all(batch).await
        }
        Writer::Conn(conn) => write_rows(conn, std::slice::from_ref(&row)).await,
    }
}

fn row_of(user_id: Option<&str>, actor: &str, meta: &RequestMeta, e: Event<'_>) -> repo::audit::AuditRow {
    repo::audit::AuditRow {
        id: new_id(),
        org_id: e.org_id.map(str::to_string),
        actor_user_id: user_id.map(str::to_string),
        actor: actor.to_string(),
        action: e.action.to_string(),
        target: e.target.map(str::to_string),
        outcome: match e.outcome {
            Outcome::Success => "success".into(),
            Outcome::Failure => "failure".into(),
        },
        detail: e.detail,
        ip: meta.ip.clone(),
        created_at: now_ms(),
        user_agent: meta.user_agent.as_ref().map(|u| u.chars().take(300).collect()),
    }
}

/// Where an event is written: the caller's transaction (or connection), or the pool. The event and its webhook
/// deliveries are written on the same connection.
pub enum Writer<'c> {
    Pool(&'c crate::state::Db),
    Conn(&'c mut sqlx::AnyConnection),
}

impl<'c> From<&'c crate::state::Db> for Writer<'c> {
    fn from(p: &'c crate::state::Db) -> Self {
        Writer::Pool(p)
    }
}

impl<'c> From<&'c mut sqlx::AnyConnection> for Writer<'c> {
    fn from(c: &'c mut sqlx::AnyConnection) -> Self {
        Writer::Conn(c)
    }
}

/// The error code of a failed sign-in event: its detail starts with the stable code (`saml_expired: …`).
fn error_code(row: &repo::audit::AuditRow) -> Option<String> {
    if row.outcome != "failure" || !row.action.ends_with(".login") {
        return None;
    }
    let code = row.detail.as_deref()?.split(':').next()?.trim();
    (!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).then(|| code.to_string())
}

fn parse_time(field: &'static str, v: &Option<String>) -> ServiceResult<Option<i64>> {
    let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) else { return Ok(None) };
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ServiceError::validation(field, format!("{field} must be an RFC 3339 time, e.g. 2026-11-24T09:00:00Z.")))?;
    Ok(Some((t.unix_timestamp_nanos() / 1_000_000) as i64))
}

fn cursor_of(row: &repo::audit::AuditRow) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", row.created_at, row.id))
}

fn parse_cursor(raw: &str) -> ServiceResult<(i64, String)> {
    use base64::Engine;
    let bad = || ServiceError::validation("cursor", "cursor must be the nextCursor of a previous page, unchanged.");
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (at, id) = text.split_once(':').ok_or_else(bad)?;
    let at = at.parse::<i64>().map_err(|_| bad())?;
    if id.is_empty() || id.len() > 64 {
        return Err(bad());
    }
    Ok((at, id.to_string()))
}

/// The org's audit log, newest first, filtered, one page at a time (owners and admins).
pub async fn list(state: &AppState, p: &Principal, org_id: &str, q: &AuditQuery) -> ServiceResult<AuditPage> {
    let a = super::orgs::authorize(state, p, org_id, Role::Admin).await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ServiceError::validation("limit", format!("limit is 1 to {MAX_PAGE}.")));
    }
    let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty() && v.len() <= 320).map(str::to_string);
    let outcome = text(&q.outcome);
    if outcome.as_deref().is_some_and(|o| o != "success" && o != "failure") {
        return Err(ServiceError::validation("outcome", "outcome is success or failure."));
    }
    let filter = repo::audit::Filter {
        action: text(&q.action),
        actor: text(&q.actor).map(|a| a.to_lowercase()),
        target: text(&q.target),
        outcome,
        since: parse_time("since", &q.since)?,
        until: parse_time("until", &q.until)?,
        before: q.cursor.as_deref().filter(|c| !c.trim().is_empty()).map(parse_cursor).transpose()?,
    };
    // One more than asked: whether there is a next page.
    let mut rows = repo::audit::page(&state.db, &a.org.id, &filter, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(cursor_of) } else { None };
    let events = rows.into_iter().map(view).collect();
    Ok(AuditPage { events, next_cursor })
}

/// An event as the API, the exports and webhooks show it.
pub(crate) fn view(r: repo::audit::AuditRow) -> AuditEvent {
    let code = error_code(&r);
    AuditEvent {
        error_text: code.as_deref().map(|c| {
            let (_, what, todo) = crate::model::sign_in_error_text(c);
            format!("{what} {todo}")
        }),
        error_code: code,
        id: r.id,
        created_at: super::rfc3339(r.created_at),
        action: r.action,
        outcome: r.outcome,
        actor: r.actor,
        actor_user_id: r.actor_user_id,
        target: r.target,
        detail: r.detail,
        ip: r.ip,
        user_agent: r.user_agent,
    }
}

/// Events per page at most; an export walks pages up to `MAX_EXPORT`.
pub const MAX_PAGE: i64 = 200;
pub const MAX_EXPORT: usize = 10_000;

/// Every event matching `q` (up to `MAX_EXPORT`), newest first, for CSV or JSON lines.
pub async fn export(state: &AppState, p: &Principal, org_id: &str, q: &AuditQuery) -> ServiceResult<Vec<AuditEvent>> {
    let mut q = AuditQuery { limit: Some(MAX_PAGE), cursor: None, ..q.clone() };
    let mut out = Vec::new();
    loop {
        let page = list(state, p, org_id, &q).await?;
        out.extend(page.events);
        match page.next_cursor {
            Some(c) if out.len() < MAX_EXPORT => q.cursor = Some(c),
            _ => break,
        }
    }
    out.truncate(MAX_EXPORT);
    Ok(out)
}
