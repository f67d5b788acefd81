//! Writes audit events. Every change of settings, membership or session goes through `record`.
use super::{new_id, now_ms, Principal, RequestMeta};
use crate::repo::{self, Any};
use sqlx::Executor;

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

/// Records an event by a known principal.
pub async fn record<'e>(ex: impl Executor<'e, Database = Any>, who: &Principal, meta: &RequestMeta, e: Event<'_>) -> sqlx::Result<()> {
    let actor = match who.pinned_org() {
        _ if who.session_id().is_some() => who.email.clone(),
        _ => format!("{} (API key)", who.email),
    };
    write(ex, Some(&who.user_id), &actor, meta, e).await
}

/// Records an event whose actor is only an email typed at sign-in (it may not be a user).
pub async fn record_anonymous<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: Option<&str>,
    actor: &str,
    meta: &RequestMeta,
    e: Event<'_>,
) -> sqlx::Result<()> {
    write(ex, user_id, actor, meta, e).await
}

async fn write<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: Option<&str>,
    actor: &str,
    meta: &RequestMeta,
    e: Event<'_>,
) -> sqlx::Result<()> {
    let row = repo::audit::AuditRow {
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
    };
    repo::audit::insert(ex, &row).await
}
