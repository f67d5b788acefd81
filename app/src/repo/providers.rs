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

pub async fn by_slug<'e>(ex: impl Executor<'e, Database = Any>, slug: &str) -> sqlx::Result<Option<ProviderRow>> {
    sqlx::query_as::<_, ProviderRow>(&format!("SELECT {COLS} FROM oauth_providers WHERE slug = $1")).bind(slug).fetch_optional(ex).await
}

/// A person's identity at an instance provider, for sign-ins that belong to no org (addresses at domains no org
/// verified). `proven`: the provider spoke with authority for the address when it was linked.
#[derive(Debug, Clone, FromRow)]
pub struct ProviderIdentityRow {
    pub provider_id: String,
    pub issuer: String,
    pub subject: String,
    pub user_id: String,
    pub email: String,
    pub last_login_at: i64,
    pub proven: i64,
}

pub async fn identity<'e>(ex: impl Executor<'e, Database = Any>, provider_id: &str, issuer: &str, subject: &str) -> sqlx::Result<Option<ProviderIdentityRow>> {
    sqlx::query_as::<_, ProviderIdentityRow>(
        "SELECT provider_id, issuer, subject, user_id, email, last_login_at, proven FROM provider_identities \
         WHERE provider_id = $1 AND issuer = $2 AND subject = $3",
    )
    .bind(provider_id)
    .bind(issuer)
    .bind(subject)
    .fetch_optional(ex)
    .await
}

pub async fn insert_identity<'e>(ex: impl Executor<'e, Database = Any>, i: &ProviderIdentityRow, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO provider_identities (provider_id, issuer, subject, user_id, email, created_at, last_login_at, proven) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
    )
    .bind(&i.provider_id)
    .bind(&i.issuer)
    .bind(&i.subject)
    .bind(&i.user_id)
    .bind(&i.email)
    .bind(now)
    .bind(i.proven)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn touch_identity<'e>(ex: impl Executor<'e, Database = Any>, i: &ProviderIdentityRow, email: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE provider_identities SET email = $4, last_login_at = $5 WHERE provider_id = $1 AND issuer = $2 AND subject = $3")
        .bind(&i.provider_id)
        .bind(&i.issuer)
        .bind(&i.subject)
        .bind(email)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn user_has_identity<'e>(ex: impl Executor<'e, Database = Any>, provider_id: &str, user_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM provider_identities WHERE provider_id = $1 AND user_id = $2")
        .bind(provider_id)
        .bind(user_id)
        .fetch_one(ex)
        .await
        .map(|n| n > 0)
}

/// Whether a provider ever proved `user_id`'s address with authority.
pub async fn user_proven<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM provider_identities WHERE user_id = $1 AND proven = 1")
        .bind(user_id)
        .fetch_one(ex)
        .await
        .map(|n| n > 0)
}

pub async fn delete_identities_of_user<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM provider_identities WHERE user_id = $1").bind(user_id).execute(ex).await.map(|r| r.rows_affected())
}
