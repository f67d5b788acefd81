//! Security policies, one row per organization (no row: the default, `any`).
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct PolicyRow {
    pub org_id: String,
    pub auth_required: String,
    pub require_mfa: i64,
    pub exempt_roles: String,
}

/// Whether a new session of `user_id` in `org_id` owes a second factor: the org requires one, or the user has one.
/// One statement for what a sign-in's ending asks (each statement is a round trip to the database).
pub async fn mfa_owed<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, user_id: &str) -> sqlx::Result<bool> {
    let owed: i64 = sqlx::query_scalar(&format!("SELECT {}", mfa_owed_expr("$1", "$2"))).bind(org_id).bind(user_id).fetch_one(ex).await?;
    Ok(owed != 0)
}

/// The SQL of `mfa_owed` as a column (1 or 0), for queries that read it with other things; `org` and `user` are
/// SQL expressions (placeholders or columns).
pub(crate) fn mfa_owed_expr(org: &str, user: &str) -> String {
    format!(
        "CAST(CASE WHEN EXISTS (SELECT 1 FROM security_policies WHERE org_id = {org} AND (auth_required = 'mfa' OR require_mfa <> 0)) \
         OR EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = {user} AND confirmed_at IS NOT NULL) THEN 1 ELSE 0 END AS BIGINT)"
    )
}

pub async fn get<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<Option<PolicyRow>> {
    sqlx::query_as("SELECT org_id, auth_required, require_mfa, exempt_roles FROM security_policies WHERE org_id = $1")
        .bind(org_id)
        .fetch_optional(ex)
        .await
}

pub async fn put<'e>(ex: impl Executor<'e, Database = Any>, p: &PolicyRow, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO security_policies (org_id, auth_required, require_mfa, exempt_roles, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (org_id) DO UPDATE SET auth_required = excluded.auth_required, require_mfa = excluded.require_mfa, \
         exempt_roles = excluded.exempt_roles, updated_at = excluded.updated_at",
    )
    .bind(&p.org_id)
    .bind(&p.auth_required)
    .bind(p.require_mfa)
    .bind(&p.exempt_roles)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

/// Orgs where `user_id` is an active member, with their policy (absent: default).
#[derive(Debug, Clone, FromRow)]
pub struct MemberPolicy {
    pub org_id: String,
    pub slug: String,
    pub name: String,
    pub role: String,
    pub auth_required: Option<String>,
    pub exempt_roles: Option<String>,
}

pub async fn for_member<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<Vec<MemberPolicy>> {
    sqlx::query_as(
        "SELECT o.id AS org_id, o.slug, o.name, m.role, p.auth_required, p.exempt_roles FROM memberships m \
         JOIN organizations o ON o.id = m.org_id LEFT JOIN security_policies p ON p.org_id = o.id \
         WHERE m.user_id = $1 AND m.status = 'active'",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await
}

/// Whether some owner of the org has an identity at one of the org's connections (has signed in through SSO).
/// Whether an active owner has an identity at one of the org's connections (other than `without`).
pub async fn owner_has_sso_identity<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, without: Option<&str>) -> sqlx::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM memberships m JOIN identities i ON i.user_id = m.user_id JOIN connections c ON c.id = i.connection_id \
         WHERE m.org_id = $1 AND m.role = 'owner' AND m.status = 'active' AND c.org_id = $1 AND c.id <> $2",
    )
    .bind(org_id)
    .bind(without.unwrap_or(""))
    .fetch_one(ex)
    .await?;
    Ok(n > 0)
}
