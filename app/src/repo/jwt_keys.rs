//! Signing keys of session JWTs, shared by every node.
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub public_key: Vec<u8>,
    pub private_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

const COLS: &str = "kid, alg, public_key, private_key, created_at, retired_at";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, k: &KeyRow) -> sqlx::Result<()> {
    sqlx::query(&format!("INSERT INTO signing_keys ({COLS}) VALUES ($1, $2, $3, $4, $5, $6)"))
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.public_key)
        .bind(&k.private_key)
        .bind(k.created_at)
        .bind(k.retired_at)
        .execute(ex)
        .await
        .map(|_| ())
}

/// The newest key not retired.
pub async fn current<'e>(ex: impl Executor<'e, Database = Any>) -> sqlx::Result<Option<KeyRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1"))
        .fetch_optional(ex)
        .await
}

/// A scalar subquery for the id of the key that signs now, for statements that read it with their own rows.
pub const CURRENT_KID: &str = "(SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1)";

pub async fn by_kid<'e>(ex: impl Executor<'e, Database = Any>, kid: &str) -> sqlx::Result<Option<KeyRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM signing_keys WHERE kid = $1")).bind(kid).fetch_optional(ex).await
}

/// Keys not retired, or retired after `since` (their tokens may still be alive): the JWKS.
pub async fn listed<'e>(ex: impl Executor<'e, Database = Any>, since: i64) -> sqlx::Result<Vec<KeyRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC, kid DESC"))
        .bind(since)
        .fetch_all(ex)
        .await
}

pub async fn retire_all<'e>(ex: impl Executor<'e, Database = Any>, now: i64) -> sqlx::Result<u64> {
    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL").bind(now).execute(ex).await.map(|r| r.rows_affected())
}
