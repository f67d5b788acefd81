//! One-time hand-off tokens for applications (`kind = token`) and hand-offs waiting for the browser's second
//! factor (`kind = pending`). Stored by digest; claimed once.
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    pub token_hash: String,
    pub kind: String,
    pub application_id: String,
    pub user_id: String,
    pub org_id: String,
    pub connection_id: Option<String>,
    pub method: String,
    pub protocol: Option<String>,
    pub subject: Option<String>,
    pub provisioned: i64,
    pub authenticated: i64,
    pub otp: i64,
    pub redirect_uri: String,
    pub app_state: Option<String>,
    pub browser_session: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

const COLS: &str = "token_hash, kind, application_id, user_id, org_id, connection_id, method, protocol, subject, provisioned, \
                    authenticated, otp, redirect_uri, app_state, browser_session, created_at, expires_at";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, t: &TokenRow) -> sqlx::Result<()> {
    sqlx::query(&format!("INSERT INTO sso_tokens ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"))
        .bind(&t.token_hash)
        .bind(&t.kind)
        .bind(&t.application_id)
        .bind(&t.user_id)
        .bind(&t.org_id)
        .bind(&t.connection_id)
        .bind(&t.method)
        .bind(&t.protocol)
        .bind(&t.subject)
        .bind(t.provisioned)
        .bind(t.authenticated)
        .bind(t.otp)
        .bind(&t.redirect_uri)
        .bind(&t.app_state)
        .bind(&t.browser_session)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Claims an unused, unexpired row of `kind` for `application_id` (or any application when `None`) in one
/// statement: a replay, another application's token or an expired one gets `None`.
pub async fn claim<'e>(ex: impl Executor<'e, Database = Any>, hash: &str, kind: &str, application_id: Option<&str>, now: i64) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as(&format!(
        "UPDATE sso_tokens SET used_at = $3 WHERE token_hash = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3 \
         AND ($4 = '' OR application_id = $4) RETURNING {COLS}"
    ))
    .bind(hash)
    .bind(kind)
    .bind(now)
    .bind(application_id.unwrap_or(""))
    .fetch_optional(ex)
    .await
}

pub async fn purge<'e>(ex: impl Executor<'e, Database = Any>, before: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM sso_tokens WHERE expires_at < $1").bind(before).execute(ex).await.map(|r| r.rows_affected())
}
