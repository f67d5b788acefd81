//! TOTP factors and recovery codes.
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct TotpRow {
    pub user_id: String,
    pub secret: Vec<u8>,
    pub confirmed_at: Option<i64>,
    pub last_step: i64,
}

pub async fn get<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<Option<TotpRow>> {
    sqlx::query_as("SELECT user_id, secret, confirmed_at, last_step FROM mfa_totp WHERE user_id = $1").bind(user_id).fetch_optional(ex).await
}

/// Stores a new, unconfirmed secret (replacing an earlier unconfirmed one).
pub async fn put_unconfirmed<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str, secret: &[u8], now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO mfa_totp (user_id, secret, confirmed_at, last_step, created_at) VALUES ($1, $2, NULL, 0, $3) \
         ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, confirmed_at = NULL, last_step = 0, created_at = excluded.created_at",
    )
    .bind(user_id)
    .bind(secret)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn confirm<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE mfa_totp SET confirmed_at = $2 WHERE user_id = $1").bind(user_id).bind(now).execute(ex).await.map(|_| ())
}

/// Accepts `step` only if it is later than every step accepted before: a code is never used twice.
pub async fn claim_step<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str, step: i64) -> sqlx::Result<bool> {
    let r = sqlx::query("UPDATE mfa_totp SET last_step = $2 WHERE user_id = $1 AND last_step < $2").bind(user_id).bind(step).execute(ex).await?;
    Ok(r.rows_affected() == 1)
}

pub async fn recovery_codes_left<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL").bind(user_id).fetch_one(ex).await
}

pub async fn unused_recovery_hashes<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT code_hash FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL").bind(user_id).fetch_all(ex).await
}

/// Marks a recovery code used; false when it was used meanwhile.
pub async fn use_recovery_code<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str, hash: &str, now: i64) -> sqlx::Result<bool> {
    let r = sqlx::query("UPDATE mfa_recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL")
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn replace_recovery_codes(tx: &mut sqlx::Transaction<'static, Any>, user_id: &str, hashes: &[String]) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut **tx).await?;
    for h in hashes {
        sqlx::query("INSERT INTO mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)").bind(user_id).bind(h).execute(&mut **tx).await?;
    }
    Ok(())
}

pub async fn delete(tx: &mut sqlx::Transaction<'static, Any>, user_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut **tx).await?;
    sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1").bind(user_id).execute(&mut **tx).await?;
    Ok(())
}
