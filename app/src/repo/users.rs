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
}

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, u: &UserRow) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO users (id, email, name, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(u.created_at)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn by_email<'e>(ex: impl Executor<'e, Database = Any>, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as::<_, UserRow>("SELECT id, email, name, password_hash, created_at FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(ex)
        .await
}

pub async fn by_id<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as::<_, UserRow>("SELECT id, email, name, password_hash, created_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await
}
