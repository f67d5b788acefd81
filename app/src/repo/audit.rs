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
    pub user_agent: Option<String>,
}

const COLS: &str = "id, org_id, actor_user_id, actor, action, target, outcome, detail, ip, created_at, user_agent";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, e: &AuditRow) -> sqlx::Result<()> {
    insert_all(ex, std::slice::from_ref(e)).await
}

/// Several events in one statement (one round trip). Placeholders are written out (`$1`…): sqlx's QueryBuilder
/// writes `?` for the Any driver, which PostgreSQL does not take.
pub async fn insert_all<'e>(ex: impl Executor<'e, Database = Any>, rows: &[AuditRow]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = (0..rows.len())
        .map(|r| format!("({})", (1..=11).map(|c| format!("${}", r * 11 + c)).collect::<Vec<_>>().join(", ")))
        .collect();
    let sql = format!("INSERT INTO audit_events ({COLS}) VALUES {}", values.join(", "));
    let mut q = sqlx::query(&sql);
    for e in rows {
        q = q
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
            .bind(&e.user_agent);
    }
    q.execute(ex).await.map(|_| ())
}

pub async fn list_for_org<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, limit: i64) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as::<_, AuditRow>(&format!("SELECT {COLS} FROM audit_events WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"))
    .bind(org_id)
    .bind(limit)
    .fetch_all(ex)
    .await
}

pub async fn list_for_actor<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str, limit: i64) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as::<_, AuditRow>(&format!("SELECT {COLS} FROM audit_events WHERE actor_user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"))
    .bind(user_id)
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// Filters of an org's audit log page; every field narrows it.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub action: Option<String>,
    /// The actor's email (as recorded) or user id.
    pub actor: Option<String>,
    pub target: Option<String>,
    pub outcome: Option<String>,
    /// `created_at >= since` and `< until` (ms).
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// The last event of the previous page: (created_at, id); this page is strictly older.
    pub before: Option<(i64, String)>,
}

/// One page of `org_id`'s events, newest first. Events written while someone pages are either newer than the
/// first page or land in no page they already read: (created_at, id) only ever goes down.
pub async fn page<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, f: &Filter, limit: i64) -> sqlx::Result<Vec<AuditRow>> {
    enum Arg {
        Text(String),
        Int(i64),
    }
    let mut sql = format!("SELECT {COLS} FROM audit_events WHERE org_id = $1");
    let mut args = vec![Arg::Text(org_id.to_string())];
    // Each `?` in a clause becomes the next numbered placeholder, bound to the next value.
    let mut clause = |text: &str, values: Vec<Arg>| {
        let mut parts = text.split('?');
        sql.push_str(parts.next().unwrap_or_default());
        for (part, v) in parts.zip(values) {
            args.push(v);
            sql.push_str(&format!("${}{part}", args.len()));
        }
    };
    let text = |v: &String| Arg::Text(v.clone());
    if let Some(v) = &f.action {
        clause(" AND action = ?", vec![text(v)]);
    }
    if let Some(v) = &f.actor {
        clause(" AND (actor = ? OR actor_user_id = ?)", vec![text(v), text(v)]);
    }
    if let Some(v) = &f.target {
        clause(" AND target = ?", vec![text(v)]);
    }
    if let Some(v) = &f.outcome {
        clause(" AND outcome = ?", vec![text(v)]);
    }
    if let Some(v) = f.since {
        clause(" AND created_at >= ?", vec![Arg::Int(v)]);
    }
    if let Some(v) = f.until {
        clause(" AND created_at < ?", vec![Arg::Int(v)]);
    }
    if let Some((at, id)) = &f.before {
        clause(" AND (created_at < ? OR (created_at = ? AND id < ?))", vec![Arg::Int(*at), Arg::Int(*at), text(id)]);
    }
    clause(" ORDER BY created_at DESC, id DESC LIMIT ?", vec![Arg::Int(limit)]);
    let mut q = sqlx::query_as::<_, AuditRow>(&sql);
    for a in args {
        q = match a {
            Arg::Text(t) => q.bind(t),
            Arg::Int(i) => q.bind(i),
        };
    }
    q.fetch_all(ex).await
}

/// Deletes events created before `before` (ms); how many.
pub async fn purge<'e>(ex: impl Executor<'e, Database = Any>, before: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM audit_events WHERE created_at < $1").bind(before).execute(ex).await.map(|r| r.rows_affected())
}
