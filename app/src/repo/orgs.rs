//! Organizations and memberships.
use super::Any;
use sqlx::{Executor, FromRow};

#[derive(Debug, Clone, FromRow)]
pub struct OrgRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct OrgWithRole {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
    pub role: String,
    pub status: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub status: String,
    pub created_at: i64,
}

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, o: &OrgRow) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO organizations (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&o.id)
        .bind(&o.slug)
        .bind(&o.name)
        .bind(o.created_at)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn insert_membership<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    user_id: &str,
    role: &str,
    status: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO memberships (org_id, user_id, role, status, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(org_id)
        .bind(user_id)
        .bind(role)
        .bind(status)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

/// A member as an application sees it (email, name, org id, slug, name, role, status), with the id of the key
/// that signs session JWTs now (`None` before the first): the hand-off signs one right after.
#[allow(clippy::type_complexity)]
pub async fn member_of<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<(String, String, String, String, String, String, String, Option<String>)>> {
    sqlx::query_as(&format!(
        "SELECT u.email, u.name, o.id, o.slug, o.name, m.role, m.status, {} FROM users u \
         JOIN memberships m ON m.user_id = u.id JOIN organizations o ON o.id = m.org_id WHERE o.id = $1 AND u.id = $2",
        super::jwt_keys::CURRENT_KID
    ))
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(ex)
    .await
}

pub async fn with_membership<'e>(
    ex: impl Executor<'e, Database = Any>,
    org_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<OrgWithRole>> {
    sqlx::query_as::<_, OrgWithRole>(
        "SELECT o.id, o.slug, o.name, o.created_at, m.role, m.status FROM organizations o \
         JOIN memberships m ON m.org_id = o.id WHERE o.id = $1 AND m.user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(ex)
    .await
}

pub async fn list_for_user<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<Vec<OrgWithRole>> {
    sqlx::query_as::<_, OrgWithRole>(
        "SELECT o.id, o.slug, o.name, o.created_at, m.role, m.status FROM organizations o \
         JOIN memberships m ON m.org_id = o.id WHERE m.user_id = $1 AND m.status = 'active' ORDER BY o.name, o.id",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await
}

pub async fn members<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<Vec<MemberRow>> {
    sqlx::query_as::<_, MemberRow>(
        "SELECT u.id AS user_id, u.email, u.name, m.role, m.status, m.created_at FROM memberships m \
         JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY u.email",
    )
    .bind(org_id)
    .fetch_all(ex)
    .await
}

pub async fn count_active_members<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND status = 'active'")
        .bind(org_id)
        .fetch_one(ex)
        .await
}

pub async fn count_owners<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner' AND status = 'active'",
    )
    .bind(org_id)
    .fetch_one(ex)
    .await
}

pub async fn set_role<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, user_id: &str, role: &str) -> sqlx::Result<u64> {
    sqlx::query("UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .bind(role)
        .execute(ex)
        .await
        .map(|r| r.rows_affected())
}

pub async fn delete_membership<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, user_id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .execute(ex)
        .await
        .map(|r| r.rows_affected())
}

pub async fn by_slug<'e>(ex: impl Executor<'e, Database = Any>, slug: &str) -> sqlx::Result<Option<OrgRow>> {
    sqlx::query_as::<_, OrgRow>("SELECT id, slug, name, created_at FROM organizations WHERE slug = $1")
        .bind(slug)
        .fetch_optional(ex)
        .await
}

pub async fn by_id<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<OrgRow>> {
    sqlx::query_as::<_, OrgRow>("SELECT id, slug, name, created_at FROM organizations WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await
}
