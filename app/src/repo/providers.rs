//! Instance-level sign-in providers (operators): rows of `oauth_providers`, the client secret sealed.
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub kind: String,
    pub issuer: Option<String>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub client_id: String,
    pub client_secret: Vec<u8>,
    pub scopes: String,
    pub auto_register: i64,
    pub allowed_domains: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, name, slug, kind, issuer, auth_url, token_url, userinfo_url, client_id, client_secret, scopes, auto_register, \
                    allowed_domains, created_at, updated_at";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, p: &ProviderRow) -> sqlx::Result<()> {
    sqlx::query(&format!("INSERT INTO oauth_providers ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"))
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.slug)
        .bind(&p.kind)
        .bind(&p.issuer)
        .bind(&p.auth_url)
        .bind(&p.token_url)
        .bind(&p.userinfo_url)
        .bind(&p.client_id)
        .bind(&p.client_secret)
        .bind(&p.scopes)
        .bind(p.auto_register)
        .bind(&p.allowed_domains)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn update<'e>(ex: impl Executor<'e, Database = Any>, p: &ProviderRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE oauth_providers SET name = $2, slug = $3, kind = $4, issuer = $5, auth_url = $6, token_url = $7, userinfo_url = $8, \
         client_id = $9, client_secret = $10, scopes = $11, auto_register = $12, allowed_domains = $13, updated_at = $14 WHERE id = $1",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.slug)
    .bind(&p.kind)
    .bind(&p.issuer)
    .bind(&p.auth_url)
    .bind(&p.token_url)
    .bind(&p.userinfo_url)
    .bind(&p.client_id)
    .bind(&p.client_secret)
    .bind(&p.scopes)
    .bind(p.auto_register)
    .bind(&p.allowed_domains)
    .bind(p.updated_at)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn list<'e>(ex: impl Executor<'e, Database = Any>) -> sqlx::Result<Vec<ProviderRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM oauth_providers ORDER BY name, id")).fetch_all(ex).await
}

pub async fn by_id<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<ProviderRow>> {
    sqlx::query_as(&format!("SELECT {COLS} FROM oauth_providers WHERE id = $1")).bind(id).fetch_optional(ex).await
}

pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM oauth_providers WHERE id = $1").bind(id).execute(ex).await.map(|r| r.rows_affected() > 0)
}
