//! Users.
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub created_at: i64,
    /// The org whose identity provider proved this address (an SSO sign-in at a domain that org verified).
    pub email_proven_org: Option<String>,
}

const COLS: &str = "id, email, name, password_hash, created_at, email_proven_org";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, u: &UserRow) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO users (id, email, name, password_hash, created_at, updated_at, email_proven_org) VALUES ($1, $2, $3, $4, $5, $5, $6)")
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.created_at)
        .bind(&u.email_proven_org)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn by_email<'e>(ex: impl Executor<'e, Database = Any>, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {COLS} FROM users WHERE email = $1"))
        .bind(email)
        .fetch_optional(ex)
        .await
}

pub async fn by_id<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {COLS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// Records that `org_id`'s identity provider proved the address.
pub async fn set_proven<'e>(ex: impl Executor<'e, Database = Any>, id: &str, org_id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE users SET email_proven_org = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(org_id)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Removes the password (the account was taken over by the proven owner of its address).
pub async fn clear_password<'e>(ex: impl Executor<'e, Database = Any>, id: &str, now: i64) -> sqlx::Result<bool> {
    sqlx::query("UPDATE users SET password_hash = NULL, updated_at = $2 WHERE id = $1 AND password_hash IS NOT NULL")
        .bind(id)
        .bind(now)
        .execute(ex)
        .await
        .map(|r| r.rows_affected() > 0)
}
