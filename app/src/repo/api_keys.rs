//! API keys (personal access tokens), stored as SHA-256 hashes of high-entropy random keys.
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub user_id: String,
    pub org_id: Option<String>,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_via_connection: Option<String>,
    pub mfa_verified: i64,
}

const COLS: &str = "id, user_id, org_id, name, prefix, created_at, last_used_at, revoked_at, created_via_connection, mfa_verified";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, k: &ApiKeyRow, key_hash: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, user_id, org_id, name, prefix, key_hash, created_at, created_via_connection, mfa_verified) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&k.id)
    .bind(&k.user_id)
    .bind(&k.org_id)
    .bind(&k.name)
    .bind(&k.prefix)
    .bind(key_hash)
    .bind(k.created_at)
    .bind(&k.created_via_connection)
    .bind(k.mfa_verified)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn list_for_user<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<Vec<ApiKeyRow>> {
    sqlx::query_as::<_, ApiKeyRow>(&format!("SELECT {COLS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC"))
        .bind(user_id)
        .fetch_all(ex)
        .await
}

/// The key with this hash, whether or not it is revoked.
pub async fn by_hash<'e>(ex: impl Executor<'e, Database = Any>, key_hash: &str) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as::<_, ApiKeyRow>(&format!("SELECT {COLS} FROM api_keys WHERE key_hash = $1"))
        .bind(key_hash)
        .fetch_optional(ex)
        .await
}

pub async fn by_id_for_user<'e>(ex: impl Executor<'e, Database = Any>, id: &str, user_id: &str) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as::<_, ApiKeyRow>(&format!("SELECT {COLS} FROM api_keys WHERE id = $1 AND user_id = $2"))
        .bind(id)
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

pub async fn revoke<'e>(ex: impl Executor<'e, Database = Any>, id: &str, user_id: &str, now: i64) -> sqlx::Result<u64> {
    sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL")
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(ex)
        .await
        .map(|r| r.rows_affected())
}

/// Records use at most once a minute per key, so a busy integration does not write on every call.
pub async fn touch<'e>(ex: impl Executor<'e, Database = Any>, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)")
        .bind(id)
        .bind(now)
        .bind(now - 60_000)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Revokes every live key of a user (account taken over by its proven owner); returns how many.
pub async fn revoke_all_for_user<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str, now: i64) -> sqlx::Result<u64> {
    sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .bind(now)
        .execute(ex)
        .await
        .map(|r| r.rows_affected())
}
