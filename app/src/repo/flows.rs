//! In-flight SSO sign-ins (OIDC state). Claimed exactly once, whichever node receives the callback.
use super::Any;
use super::connections::ConnectionRow;
use sqlx::{Executor, FromRow, Row};

#[derive(Debug, Clone, FromRow)]
pub struct FlowRow {
    pub state_hash: String,
    pub org_id: String,
    pub connection_id: String,
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: Vec<u8>,
    pub return_to: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// A sign-in started by an application: which one, where to send the browser back, and the app's state.
    pub application_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub app_state: Option<String>,
    /// SAML: the verified sign-in, sealed, waiting for the browser that started the flow to collect it.
    pub result: Option<Vec<u8>>,
    /// A "Continue with …" sign-in at an instance provider (no org yet: `org_id` and `connection_id` are empty).
    pub provider_id: Option<String>,
}

const COLS: &str = "state_hash, org_id, connection_id, browser_hash, nonce, pkce_verifier, return_to, created_at, expires_at, used_at, \
                    application_id, redirect_uri, app_state, result, provider_id";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, f: &FlowRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sso_flows (state_hash, org_id, connection_id, browser_hash, nonce, pkce_verifier, return_to, created_at, expires_at, \
         application_id, redirect_uri, app_state, result, provider_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&f.state_hash)
    .bind(&f.org_id)
    .bind(&f.connection_id)
    .bind(&f.browser_hash)
    .bind(&f.nonce)
    .bind(&f.pkce_verifier)
    .bind(&f.return_to)
    .bind(f.created_at)
    .bind(f.expires_at)
    .bind(&f.application_id)
    .bind(&f.redirect_uri)
    .bind(&f.app_state)
    .bind(&f.result)
    .bind(&f.provider_id)
    .execute(ex)
    .await
    .map(|_| ())
}

/// Marks the flow used and returns it, only if it is unused, unexpired and presented by the browser that started
/// it (`browser_hash`), all in one statement: a replayed, expired or foreign state gets `None` and burns nothing.
pub async fn claim<'e>(ex: impl Executor<'e, Database = Any>, state_hash: &str, browser_hash: &str, now: i64) -> sqlx::Result<Option<FlowRow>> {
    sqlx::query_as::<_, FlowRow>(&format!(
        "UPDATE sso_flows SET used_at = $2 WHERE state_hash = $1 AND browser_hash = $3 AND used_at IS NULL AND expires_at > $2 RETURNING {COLS}"
    ))
    .bind(state_hash)
    .bind(now)
    .bind(browser_hash)
    .fetch_optional(ex)
    .await
}

/// Parks a verified SAML result on its flow, once: only an unused, unexpired flow that has none yet (a second
/// response to the same request is refused). Returns whether it was parked.
pub async fn park_result<'e>(ex: impl Executor<'e, Database = Any>, state_hash: &str, result: &[u8], now: i64) -> sqlx::Result<bool> {
    sqlx::query("UPDATE sso_flows SET result = $2 WHERE state_hash = $1 AND result IS NULL AND used_at IS NULL AND expires_at > $3")
        .bind(state_hash)
        .bind(result)
        .bind(now)
        .execute(ex)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// The flow with this state, if it still exists (to say why a claim failed).
pub async fn lookup<'e>(ex: impl Executor<'e, Database = Any>, state_hash: &str) -> sqlx::Result<Option<FlowRow>> {
    sqlx::query_as::<_, FlowRow>(&format!("SELECT {COLS} FROM sso_flows WHERE state_hash = $1"))
    .bind(state_hash)
    .fetch_optional(ex)
    .await
}

/// The flow with this state and the connection it was started at (`None` when that was deleted since), in one
/// read: a SAML response to our request needs both before any signature work.
pub async fn lookup_with_connection<'e>(ex: impl Executor<'e, Database = Any>, state_hash: &str) -> sqlx::Result<Option<(FlowRow, Option<ConnectionRow>)>> {
    let flow_cols: Vec<String> = COLS.split(',').map(|c| format!("f.{0} AS f_{0}", c.trim())).collect();
    let row = sqlx::query(&format!(
        "SELECT {}, {} FROM sso_flows f LEFT JOIN connections c ON c.id = f.connection_id WHERE f.state_hash = $1",
        flow_cols.join(", "),
        super::connections::c_cols()
    ))
    .bind(state_hash)
    .fetch_optional(ex)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let flow = FlowRow {
        state_hash: row.try_get("f_state_hash")?,
        org_id: row.try_get("f_org_id")?,
        connection_id: row.try_get("f_connection_id")?,
        browser_hash: row.try_get("f_browser_hash")?,
        nonce: row.try_get("f_nonce")?,
        pkce_verifier: row.try_get("f_pkce_verifier")?,
        return_to: row.try_get("f_return_to")?,
        created_at: row.try_get("f_created_at")?,
        expires_at: row.try_get("f_expires_at")?,
        used_at: row.try_get("f_used_at")?,
        application_id: row.try_get("f_application_id")?,
        redirect_uri: row.try_get("f_redirect_uri")?,
        app_state: row.try_get("f_app_state")?,
        result: row.try_get("f_result")?,
        provider_id: row.try_get("f_provider_id")?,
    };
    // No connection: one row whose connection columns are NULL.
    let conn = match row.try_get::<Option<String>, _>("id")? {
        Some(_) => Some(ConnectionRow::from_row(&row)?),
        None => None,
    };
    Ok(Some((flow, conn)))
}

/// Deletes flows that expired before `before` (housekeeping).
pub async fn purge<'e>(ex: impl Executor<'e, Database = Any>, before: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM sso_flows WHERE expires_at < $1").bind(before).execute(ex).await.map(|r| r.rows_affected())
}

/// Test hook for expiry: moves a flow's deadline (the service never calls this).
pub async fn set_expiry<'e>(ex: impl Executor<'e, Database = Any>, state_hash: &str, expires_at: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE sso_flows SET expires_at = $2 WHERE state_hash = $1")
        .bind(state_hash)
        .bind(expires_at)
        .execute(ex)
        .await
        .map(|_| ())
}
