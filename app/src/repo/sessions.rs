//! Sessions: `auth_sessions` (who, how, where) and `http_sessions` (the tower-sessions records).
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct AuthSessionRow {
    pub id: String,
    pub user_id: String,
    pub method: String,
    pub connection_id: Option<String>,
    pub mfa_done: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

const COLS: &str = "id, user_id, method, connection_id, mfa_done, created_at, expires_at, last_seen_at, ip, user_agent";

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// Binds the row's columns in `COLS` order ($1…$10), for both kinds of session.
fn bind_row<'q>(q: AnyQuery<'q>, s: &'q AuthSessionRow) -> AnyQuery<'q> {
    q.bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.method)
        .bind(&s.connection_id)
        .bind(s.mfa_done)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.last_seen_at)
        .bind(&s.ip)
        .bind(&s.user_agent)
}

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, s: &AuthSessionRow) -> sqlx::Result<()> {
    let sql = format!("INSERT INTO auth_sessions ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
    bind_row(sqlx::query(&sql), s).execute(ex).await.map(|_| ())
}

/// The session if it exists and has not expired.
pub async fn live_by_id<'e>(ex: impl Executor<'e, Database = Any>, id: &str, now: i64) -> sqlx::Result<Option<AuthSessionRow>> {
    // Browser sessions only: a session handed to an application is reached by its token, never by a cookie.
    sqlx::query_as::<_, AuthSessionRow>(&format!("SELECT {COLS} FROM auth_sessions WHERE id = $1 AND expires_at > $2 AND application_id IS NULL"))
        .bind(id)
        .bind(now)
        .fetch_optional(ex)
        .await
}

pub async fn live_for_user<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str, now: i64) -> sqlx::Result<Vec<AuthSessionRow>> {
    sqlx::query_as::<_, AuthSessionRow>(&format!(
        "SELECT {COLS} FROM auth_sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC"
    ))
    .bind(user_id)
    .bind(now)
    .fetch_all(ex)
    .await
}

pub async fn touch<'e>(ex: impl Executor<'e, Database = Any>, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE auth_sessions SET last_seen_at = $2 WHERE id = $1 AND last_seen_at < $3")
        .bind(id)
        .bind(now)
        .bind(now - 60_000)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM auth_sessions WHERE id = $1").bind(id).execute(ex).await.map(|r| r.rows_affected())
}

/// Ends every session of a user; returns how many.
pub async fn delete_all_for_user<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM auth_sessions WHERE user_id = $1").bind(user_id).execute(ex).await.map(|r| r.rows_affected())
}

/// Ends every browser session a connection signed in (the connection is being deleted); returns how many.
pub async fn delete_for_connection<'e>(ex: impl Executor<'e, Database = Any>, connection_id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM auth_sessions WHERE connection_id = $1").bind(connection_id).execute(ex).await.map(|r| r.rows_affected())
}

pub async fn delete_for_user<'e>(ex: impl Executor<'e, Database = Any>, id: &str, user_id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM auth_sessions WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(ex)
        .await
        .map(|r| r.rows_affected())
}

pub async fn set_mfa_done<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE auth_sessions SET mfa_done = 1 WHERE id = $1").bind(id).execute(ex).await.map(|_| ())
}

#[derive(Debug, Clone, FromRow)]
pub struct OrgSessionRow {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub method: String,
    pub connection_id: Option<String>,
    pub mfa_done: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub application: Option<String>,
}

const ORG_SESSIONS: &str = "SELECT s.id, s.user_id, u.email, u.name, s.method, s.connection_id, s.mfa_done, s.created_at, s.expires_at, \
                            s.last_seen_at, s.ip, s.user_agent, a.name AS application FROM auth_sessions s JOIN users u ON u.id = s.user_id \
                            JOIN memberships m ON m.user_id = s.user_id AND m.org_id = $1 AND m.status = 'active' \
                            LEFT JOIN applications a ON a.id = s.application_id";

/// Live sessions of the org's active members.
pub async fn live_for_org<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, now: i64) -> sqlx::Result<Vec<OrgSessionRow>> {
    sqlx::query_as(&format!("{ORG_SESSIONS} WHERE s.expires_at > $2 ORDER BY s.last_seen_at DESC LIMIT 500"))
        .bind(org_id)
        .bind(now)
        .fetch_all(ex)
        .await
}

pub async fn in_org<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, id: &str) -> sqlx::Result<Option<OrgSessionRow>> {
    sqlx::query_as(&format!("{ORG_SESSIONS} WHERE s.id = $2")).bind(org_id).bind(id).fetch_optional(ex).await
}

// ---- tower-sessions records ----

/// Inserts a new record; false when the id is taken (the store then picks another id).
pub async fn http_create<'e>(ex: impl Executor<'e, Database = Any>, id: &str, data: &str, expiry: i64) -> sqlx::Result<bool> {
    let r = sqlx::query("INSERT INTO http_sessions (id, data, expiry_date) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
        .bind(id)
        .bind(data)
        .bind(expiry)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn http_save<'e>(ex: impl Executor<'e, Database = Any>, id: &str, data: &str, expiry: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO http_sessions (id, data, expiry_date) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, expiry_date = excluded.expiry_date",
    )
    .bind(id)
    .bind(data)
    .bind(expiry)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn http_load<'e>(ex: impl Executor<'e, Database = Any>, id: &str, now: i64) -> sqlx::Result<Option<(String, i64)>> {
    sqlx::query_as::<_, (String, i64)>("SELECT data, expiry_date FROM http_sessions WHERE id = $1 AND expiry_date > $2")
        .bind(id)
        .bind(now)
        .fetch_optional(ex)
        .await
}

pub async fn http_delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM http_sessions WHERE id = $1").bind(id).execute(ex).await.map(|_| ())
}

/// Removes expired records of both tables; run periodically.
pub async fn purge_expired(db: &crate::state::Db, now: i64) -> sqlx::Result<u64> {
    let a = sqlx::query("DELETE FROM http_sessions WHERE expiry_date <= $1").bind(now).execute(db).await?;
    let b = sqlx::query("DELETE FROM auth_sessions WHERE expires_at <= $1").bind(now).execute(db).await?;
    Ok(a.rows_affected() + b.rows_affected())
}

/// A session handed to an application: the browser-session fields plus the application, the org and the digest
/// of its token.
#[derive(Debug, Clone, FromRow)]
pub struct AppSessionRow {
    pub id: String,
    pub user_id: String,
    pub method: String,
    pub connection_id: Option<String>,
    pub mfa_done: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub application_id: String,
    pub org_id: String,
    /// Still owes its second factor (the application runs the challenge).
    pub intermediate: i64,
    pub last_seen_at: i64,
}

pub async fn insert_app<'e>(
    ex: impl Executor<'e, Database = Any>,
    s: &AuthSessionRow,
    application_id: &str,
    org_id: &str,
    token_hash: &str,
    intermediate: bool,
) -> sqlx::Result<()> {
    let sql = format!(
        "INSERT INTO auth_sessions ({COLS}, application_id, org_id, token_hash, intermediate) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    );
    bind_row(sqlx::query(&sql), s)
        .bind(application_id)
        .bind(org_id)
        .bind(token_hash)
        .bind(intermediate as i64)
        .execute(ex)
        .await
        .map(|_| ())
}

const APP_COLS: &str = "id, user_id, method, connection_id, mfa_done, created_at, expires_at, application_id, org_id, intermediate, last_seen_at";

/// Completes an intermediate session: the second factor was passed.
pub async fn complete_intermediate<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<bool> {
    sqlx::query("UPDATE auth_sessions SET intermediate = 0, mfa_done = 1 WHERE id = $1 AND intermediate = 1")
        .bind(id)
        .execute(ex)
        .await
        .map(|r| r.rows_affected() > 0)
}

/// What a session check needs, in one statement: the live session of the application whose live secret has the
/// given digest (by token digest or by id), that application, its member and org when the membership still exists,
/// and the key id that signs new JWTs.
#[derive(Debug, Clone, FromRow)]
pub struct AppSessionCheck {
    #[sqlx(flatten)]
    pub session: AppSessionRow,
    pub app_client_id: String,
    pub app_name: String,
    pub app_redirect_uris: String,
    pub app_session_duration_minutes: i64,
    pub app_max_session_minutes: i64,
    pub app_mfa_handling: String,
    pub app_created_at: i64,
    pub app_updated_at: i64,
    pub member_email: Option<String>,
    pub member_name: Option<String>,
    pub member_role: Option<String>,
    pub member_status: Option<String>,
    pub org_slug: Option<String>,
    pub org_name: Option<String>,
    pub current_kid: Option<String>,
}

/// Which session a check names.
pub enum SessionRef<'a> {
    TokenHash(&'a str),
    Id(&'a str),
}

impl AppSessionCheck {
    /// The application the check authenticated.
    pub fn application(&self) -> super::applications::ApplicationRow {
        super::applications::ApplicationRow {
            id: self.session.application_id.clone(),
            client_id: self.app_client_id.clone(),
            name: self.app_name.clone(),
            redirect_uris: self.app_redirect_uris.clone(),
            session_duration_minutes: self.app_session_duration_minutes,
            max_session_minutes: self.app_max_session_minutes,
            mfa_handling: self.app_mfa_handling.clone(),
            created_at: self.app_created_at,
            updated_at: self.app_updated_at,
        }
    }
}

/// `secret_hash`: the digest of the client secret the caller presented; only a live secret of the session's own
/// application matches (the same rule as `applications::by_live_secret`).
pub async fn app_check<'e>(ex: impl Executor<'e, Database = Any>, by: SessionRef<'_>, secret_hash: &str, now: i64) -> sqlx::Result<Option<AppSessionCheck>> {
    let (column, value) = match by {
        SessionRef::TokenHash(h) => ("token_hash", h),
        SessionRef::Id(id) => ("id", id),
    };
    use super::jwt_keys::CURRENT_KID;
    let sql = format!(
        "SELECT s.id, s.user_id, s.method, s.connection_id, s.mfa_done, s.created_at, s.expires_at, s.application_id, \
         s.org_id, s.intermediate, s.last_seen_at, u.email AS member_email, u.name AS member_name, m.role AS member_role, \
         m.status AS member_status, o.slug AS org_slug, o.name AS org_name, \
         a.client_id AS app_client_id, a.name AS app_name, a.redirect_uris AS app_redirect_uris, \
         a.session_duration_minutes AS app_session_duration_minutes, a.max_session_minutes AS app_max_session_minutes, \
         a.mfa_handling AS app_mfa_handling, a.created_at AS app_created_at, a.updated_at AS app_updated_at, \
         {CURRENT_KID} AS current_kid \
         FROM auth_sessions s \
         JOIN application_secrets sec ON sec.application_id = s.application_id AND sec.secret_hash = $2 \
           AND (sec.expires_at IS NULL OR sec.expires_at > $3) \
         JOIN applications a ON a.id = s.application_id \
         LEFT JOIN memberships m ON m.user_id = s.user_id AND m.org_id = s.org_id \
         LEFT JOIN users u ON u.id = m.user_id \
         LEFT JOIN organizations o ON o.id = m.org_id \
         WHERE s.{column} = $1 AND s.expires_at > $3"
    );
    sqlx::query_as(&sql).bind(value).bind(secret_hash).bind(now).fetch_optional(ex).await
}

/// The live session of `application_id` whose token has this digest.
pub async fn app_by_token<'e>(ex: impl Executor<'e, Database = Any>, token_hash: &str, application_id: &str, now: i64) -> sqlx::Result<Option<AppSessionRow>> {
    sqlx::query_as(&format!("SELECT {APP_COLS} FROM auth_sessions WHERE token_hash = $1 AND application_id = $2 AND expires_at > $3"))
        .bind(token_hash)
        .bind(application_id)
        .bind(now)
        .fetch_optional(ex)
        .await
}

