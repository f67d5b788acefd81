//! The audit log: append-only.
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub id: String,
    pub org_id: Option<String>,
    pub actor_user_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
}

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, e: &AuditRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (id, org_id, actor_user_id, actor, action, target, outcome, detail, ip, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&e.id)
    .bind(&e.org_id)
    .bind(&e.actor_user_id)
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.target)
    .bind(&e.outcome)
    .bind(&e.detail)
    .bind(&e.ip)
    .bind(e.created_at)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn list_for_org<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, limit: i64) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as::<_, AuditRow>(
        "SELECT id, org_id, actor_user_id, actor, action, target, outcome, detail, ip, created_at FROM audit_events \
         WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(org_id)
    .bind(limit)
    .fetch_all(ex)
    .await
}

pub async fn list_for_actor<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str, limit: i64) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as::<_, AuditRow>(
        "SELECT id, org_id, actor_user_id, actor, action, target, outcome, detail, ip, created_at FROM audit_events \
         WHERE actor_user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(ex)
    .await
}
