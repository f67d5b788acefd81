//! Operators and registered applications with their client secrets.
use super::Any;
use sqlx::{Executor, FromRow};

pub async fn is_operator<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operators WHERE user_id = $1").bind(user_id).fetch_one(ex).await?;
    Ok(n > 0)
}

/// Grants the operator role; false when the user already had it.
pub async fn add_operator<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str, now: i64) -> sqlx::Result<bool> {
    sqlx::query("INSERT INTO operators (user_id, created_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING")
        .bind(user_id)
        .bind(now)
        .execute(ex)
        .await
        .map(|r| r.rows_affected() > 0)
}

pub async fn remove_operator<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM operators WHERE user_id = $1").bind(user_id).execute(ex).await.map(|r| r.rows_affected() > 0)
}

/// (email, name, granted at) of every operator.
pub async fn operators<'e>(ex: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<(String, String, i64)>> {
    sqlx::query_as("SELECT u.email, u.name, o.created_at FROM operators o JOIN users u ON u.id = o.user_id ORDER BY u.email")
        .fetch_all(ex)
        .await
}

#[derive(Debug, Clone, FromRow)]
pub struct ApplicationRow {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub redirect_uris: String,
    pub session_duration_minutes: i64,
    pub max_session_minutes: i64,
    pub mfa_handling: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, client_id, name, redirect_uris, session_duration_minutes, max_session_minutes, mfa_handling, created_at, updated_at";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, a: &ApplicationRow) -> sqlx::Result<()> {
    sqlx::query(&format!("INSERT INTO applications ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
        .bind(&a.id)
        .bind(&a.client_id)
        .bind(&a.name)
        .bind(&a.redirect_uris)
        .bind(a.session_duration_minutes)
        .bind(a.max_session_minutes)
        .bind(&a.mfa_handling)
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn update<'e>(ex: impl Executor<'e, Database = Any>, a: &ApplicationRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE applications SET name = $2, redirect_uris = $3, session_duration_minutes = $4, max_session_minutes = $5, \
         mfa_handling = $6, updated_at = $7 WHERE id = $1",
    )
    .bind(&a.id)
    .bind(&a.name)
    .bind(&a.redirect_uris)
    .bind(a.session_duration_minutes)
    .bind(a.max_session_minutes)
    .bind(&a.mfa_handling)
    .bind(a.updated_at)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn list<'e>(ex: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<ApplicationRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM applications ORDER BY created_at, id")).fetch_all(ex).await
}

pub async fn by_id<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<ApplicationRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM applications WHERE id = $1")).bind(id).fetch_optional(ex).await
}

pub async fn by_client_id<'e>(ex: impl Executor<'e, Database = Any>, client_id: &str) -> sqlx::Result<Option<ApplicationRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM applications WHERE client_id = $1")).bind(client_id).fetch_optional(ex).await
}

pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM applications WHERE id = $1").bind(id).execute(ex).await.map(|r| r.rows_affected())
}

#[derive(Debug, Clone, FromRow)]
pub struct SecretRow {
    pub id: String,
    pub application_id: String,
    pub prefix: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

pub async fn insert_secret<'e>(ex: impl Executor<'e, Database = Any>, s: &SecretRow, hash: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO application_secrets (id, application_id, secret_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&s.id)
        .bind(&s.application_id)
        .bind(hash)
        .bind(&s.prefix)
        .bind(s.created_at)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Secrets that still work at `now` (no expiry, or expiring later), newest first.
pub async fn live_secrets<'e>(ex: impl Executor<'e, Database = Any>, application_id: &str, now: i64) -> sqlx::Result<Vec<SecretRow>> {
    sqlx::query_as(
        "SELECT id, application_id, prefix, created_at, expires_at FROM application_secrets \
         WHERE application_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC, id DESC",
    )
    .bind(application_id)
    .bind(now)
    .fetch_all(ex)
    .await
}

/// Starts the grace period of every secret of the app that had none (a rotation).
pub async fn expire_secrets<'e>(ex: impl Executor<'e, Database = Any>, application_id: &str, at: i64) -> sqlx::Result<u64> {
    sqlx::query("UPDATE application_secrets SET expires_at = $2 WHERE application_id = $1 AND expires_at IS NULL")
        .bind(application_id)
        .bind(at)
        .execute(ex)
        .await
        .map(|r| r.rows_affected())
}

/// The application whose live secret has this digest, in one query (every application API call starts here).
pub async fn by_live_secret<'e>(ex: impl Executor<'e, Database = Any>, hash: &str, now: i64) -> sqlx::Result<Option<ApplicationRow>> {
    sqlx::query_as(
        "SELECT a.id, a.client_id, a.name, a.redirect_uris, a.session_duration_minutes, a.max_session_minutes, a.mfa_handling, \
         a.created_at, a.updated_at FROM application_secrets s JOIN applications a ON a.id = s.application_id \
         WHERE s.secret_hash = $1 AND (s.expires_at IS NULL OR s.expires_at > $2)",
    )
    .bind(hash)
    .bind(now)
    .fetch_optional(ex)
    .await
}
