//! Email domains of an organization and the join requests they create. Background checks claim a row with a
//! conditional UPDATE, so several nodes never check the same domain at once.
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct DomainRow {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub status: String,
    pub token: String,
    pub auto_join: String,
    pub last_checked_at: Option<i64>,
    pub last_result: Option<String>,
    pub last_message: Option<String>,
    pub verified_at: Option<i64>,
    pub lapsed_at: Option<i64>,
    pub attempts: i64,
    pub next_check_at: i64,
    pub pending_since: i64,
    pub created_at: i64,
}

const COLS: &str = "id, org_id, name, status, token, auto_join, last_checked_at, last_result, last_message, verified_at, \
                    lapsed_at, attempts, next_check_at, pending_since, created_at";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, d: &DomainRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO domains (id, org_id, name, status, token, auto_join, attempts, next_check_at, pending_since, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8, $8)",
    )
    .bind(&d.id)
    .bind(&d.org_id)
    .bind(&d.name)
    .bind(&d.status)
    .bind(&d.token)
    .bind(&d.auto_join)
    .bind(d.next_check_at)
    .bind(d.created_at)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn list<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<Vec<DomainRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM domains WHERE org_id = $1 ORDER BY name"))
        .bind(org_id)
        .fetch_all(ex)
        .await
}

pub async fn get<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, id: &str) -> sqlx::Result<Option<DomainRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM domains WHERE org_id = $1 AND id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(ex)
        .await
}

pub async fn by_id<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<DomainRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM domains WHERE id = $1")).bind(id).fetch_optional(ex).await
}

/// The verified row for `name`, whichever org holds it.
pub async fn verified_by_name<'e>(ex: impl Executor<'e, Database = Any>, name: &str) -> sqlx::Result<Option<DomainRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM domains WHERE name = $1 AND status = 'verified'"))
        .bind(name)
        .fetch_optional(ex)
        .await
}

pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM domains WHERE id = $1").bind(id).execute(ex).await.map(|_| ())
}

pub async fn set_auto_join<'e>(ex: impl Executor<'e, Database = Any>, id: &str, auto_join: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE domains SET auto_join = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(auto_join)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

/// What a check found and what happens next.
pub struct CheckUpdate<'a> {
    pub status: &'a str,
    pub result: &'a str,
    pub message: &'a str,
    pub verified_at: Option<i64>,
    pub lapsed_at: Option<i64>,
    pub attempts: i64,
    pub next_check_at: i64,
    pub pending_since: i64,
}

pub async fn record_check<'e>(ex: impl Executor<'e, Database = Any>, id: &str, u: &CheckUpdate<'_>, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE domains SET status = $2, last_result = $3, last_message = $4, verified_at = $5, lapsed_at = $6, attempts = $7, \
         next_check_at = $8, last_checked_at = $9, updated_at = $9, claimed_until = NULL, pending_since = $10 WHERE id = $1",
    )
    .bind(id)
    .bind(u.status)
    .bind(u.result)
    .bind(u.message)
    .bind(u.verified_at)
    .bind(u.lapsed_at)
    .bind(u.attempts)
    .bind(u.next_check_at)
    .bind(now)
    .bind(u.pending_since)
    .execute(ex)
    .await
    .map(|_| ())
}

/// Ids of domains whose next check is due (failed domains are only checked on request).
pub async fn due<'e>(ex: impl Executor<'e, Database = Any>, now: i64, limit: i64) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT id FROM domains WHERE status <> 'failed' AND next_check_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1) \
         ORDER BY next_check_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// How many domains are due for a check at `now`, and since when the oldest of them has been due.
pub async fn due_summary<'e>(ex: impl Executor<'e, Database = Any>, now: i64) -> sqlx::Result<(i64, Option<i64>)> {
    sqlx::query_as("SELECT COUNT(*), MIN(next_check_at) FROM domains WHERE status <> 'failed' AND next_check_at <= $1")
        .bind(now)
        .fetch_one(ex)
        .await
}

/// Takes a due domain for this node until `until`; false when another node got it first.
pub async fn claim<'e>(ex: impl Executor<'e, Database = Any>, id: &str, now: i64, until: i64) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE domains SET claimed_until = $3 WHERE id = $1 AND next_check_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2)",
    )
    .bind(id)
    .bind(now)
    .bind(until)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

// Join requests.

#[derive(Debug, Clone, FromRow)]
pub struct JoinRequestRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub via: String,
    pub status: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub org_name: String,
}

const JR_SELECT: &str = "SELECT j.id, j.org_id, j.user_id, u.email, u.name, j.via, j.status, j.created_at, j.decided_at, o.name AS org_name \
                         FROM join_requests j JOIN users u ON u.id = j.user_id JOIN organizations o ON o.id = j.org_id";

pub async fn insert_join_request<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    org_id: &str,
    user_id: &str,
    domain_id: Option<&str>,
    via: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO join_requests (id, org_id, user_id, domain_id, via, status, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6)")
        .bind(id)
        .bind(org_id)
        .bind(user_id)
        .bind(domain_id)
        .bind(via)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn open_join_request<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, user_id: &str) -> sqlx::Result<Option<JoinRequestRow>> {
    sqlx::query_as(&format!("{JR_SELECT} WHERE j.org_id = $1 AND j.user_id = $2 AND j.status = 'pending'"))
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

pub async fn join_requests<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<Vec<JoinRequestRow>> {
    sqlx::query_as(&format!("{JR_SELECT} WHERE j.org_id = $1 ORDER BY j.status = 'pending' DESC, j.created_at DESC LIMIT 200"))
        .bind(org_id)
        .fetch_all(ex)
        .await
}

pub async fn join_requests_of_user<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<Vec<JoinRequestRow>> {
    sqlx::query_as(&format!("{JR_SELECT} WHERE j.user_id = $1 ORDER BY j.created_at DESC LIMIT 50"))
        .bind(user_id)
        .fetch_all(ex)
        .await
}

pub async fn join_request<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, id: &str) -> sqlx::Result<Option<JoinRequestRow>> {
    sqlx::query_as(&format!("{JR_SELECT} WHERE j.org_id = $1 AND j.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// Decides a pending request; false when it was already decided.
pub async fn decide<'e>(ex: impl Executor<'e, Database = Any>, id: &str, status: &str, by: &str, now: i64) -> sqlx::Result<bool> {
    let r = sqlx::query("UPDATE join_requests SET status = $2, decided_by = $3, decided_at = $4 WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .bind(status)
        .bind(by)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}
