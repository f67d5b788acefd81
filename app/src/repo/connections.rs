//! IdP connections and the identities they assert.
use super::Any;
use sqlx::{Executor, FromRow, Row};

#[derive(Debug, Clone, FromRow)]
pub struct ConnectionRow {
    pub id: String,
    pub org_id: String,
    pub protocol: String,
    pub name: String,
    pub status: String,
    pub is_primary: i64,
    /// The org's default connection: takes an email whose domain no other connection lists.
    pub is_default: i64,
    pub provider: Option<String>,
    pub domains: String,
    pub jit_provisioning: i64,
    pub default_role: String,
    pub attribute_mapping: String,
    /// Group -> role mapping (JSON, `service::signin::groups::GroupPolicy`).
    pub group_roles: String,
    pub settings: String,
    pub secret: Option<Vec<u8>>,
    pub last_tested_at: Option<i64>,
    pub last_test_message: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Workspace SSO: this connection is the org's adoption of an instance provider (its endpoints and secret are
    /// the provider's; `settings` and `secret` stay empty).
    pub instance_provider_id: Option<String>,
}

const COLS: &str = "id, org_id, protocol, name, status, is_primary, is_default, provider, domains, jit_provisioning, default_role, \
                    attribute_mapping, group_roles, settings, secret, last_tested_at, last_test_message, created_at, updated_at, instance_provider_id";

pub async fn insert<'e>(ex: impl Executor<'e, Database = Any>, c: &ConnectionRow) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO connections ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    ))
    .bind(&c.id)
    .bind(&c.org_id)
    .bind(&c.protocol)
    .bind(&c.name)
    .bind(&c.status)
    .bind(c.is_primary)
    .bind(c.is_default)
    .bind(&c.provider)
    .bind(&c.domains)
    .bind(c.jit_provisioning)
    .bind(&c.default_role)
    .bind(&c.attribute_mapping)
    .bind(&c.group_roles)
    .bind(&c.settings)
    .bind(&c.secret)
    .bind(c.last_tested_at)
    .bind(&c.last_test_message)
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(&c.instance_provider_id)
    .execute(ex)
    .await
    .map(|_| ())
}

/// Replaces the provider settings and secret; the connection becomes untested (`inactive`).
pub async fn update_settings<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    provider: &str,
    settings: &str,
    secret: &[u8],
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE connections SET provider = $2, settings = $3, secret = $4, status = 'inactive', last_tested_at = NULL, \
         last_test_message = NULL, updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(provider)
    .bind(settings)
    .bind(secret)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

/// Replaces what an owner may change on any connection (PATCH): every field at once, as read and edited.
pub async fn update<'e>(ex: impl Executor<'e, Database = Any>, c: &ConnectionRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE connections SET name = $2, status = $3, domains = $4, jit_provisioning = $5, default_role = $6, attribute_mapping = $7, \
         settings = $8, secret = $9, provider = $10, last_tested_at = $11, last_test_message = $12, updated_at = $13, \
         group_roles = $14 WHERE id = $1",
    )
    .bind(&c.id)
    .bind(&c.name)
    .bind(&c.status)
    .bind(&c.domains)
    .bind(c.jit_provisioning)
    .bind(&c.default_role)
    .bind(&c.attribute_mapping)
    .bind(&c.settings)
    .bind(&c.secret)
    .bind(&c.provider)
    .bind(c.last_tested_at)
    .bind(&c.last_test_message)
    .bind(c.updated_at)
    .bind(&c.group_roles)
    .execute(ex)
    .await
    .map(|_| ())
}

/// Makes `id` the org's one default connection (`None`: no default).
pub async fn set_default(tx: &mut sqlx::Transaction<'static, Any>, org_id: &str, id: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("UPDATE connections SET is_default = 0 WHERE org_id = $1 AND is_default = 1").bind(org_id).execute(&mut **tx).await?;
    if let Some(id) = id {
        sqlx::query("UPDATE connections SET is_default = 1 WHERE org_id = $1 AND id = $2").bind(org_id).bind(id).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Remembers a SAML assertion id until it expires; false when it was seen before (a replay).
pub async fn remember_assertion<'e>(ex: impl Executor<'e, Database = Any>, connection_id: &str, assertion_id: &str, expires_at: i64) -> sqlx::Result<bool> {
    sqlx::query("INSERT INTO saml_assertions_seen (connection_id, assertion_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(connection_id)
        .bind(assertion_id)
        .bind(expires_at)
        .execute(ex)
        .await
        .map(|r| r.rows_affected() == 1)
}

pub async fn purge_assertions<'e>(ex: impl Executor<'e, Database = Any>, before: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM saml_assertions_seen WHERE expires_at < $1").bind(before).execute(ex).await.map(|r| r.rows_affected())
}

pub async fn record_test<'e>(ex: impl Executor<'e, Database = Any>, id: &str, status: &str, message: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE connections SET status = $2, last_test_message = $3, last_tested_at = $4 WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(message)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

pub async fn primary<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str, protocol: &str) -> sqlx::Result<Option<ConnectionRow>> {
    sqlx::query_as::<_, ConnectionRow>(&format!(
        "SELECT {COLS} FROM connections WHERE org_id = $1 AND protocol = $2 AND is_primary = 1"
    ))
    .bind(org_id)
    .bind(protocol)
    .fetch_optional(ex)
    .await
}

/// Every connection of a protocol, across orgs (background upkeep).
pub async fn all_of_protocol<'e>(ex: impl Executor<'e, Database = Any>, protocol: &str) -> sqlx::Result<Vec<ConnectionRow>> {
    sqlx::query_as::<_, ConnectionRow>(&format!("SELECT {COLS} FROM connections WHERE protocol = $1 ORDER BY created_at"))
        .bind(protocol)
        .fetch_all(ex)
        .await
}

/// Replaces only the protocol settings (background metadata refresh): status and test results stay.
pub async fn set_settings<'e>(ex: impl Executor<'e, Database = Any>, id: &str, settings: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE connections SET settings = $2, updated_at = $3 WHERE id = $1").bind(id).bind(settings).bind(now).execute(ex).await.map(|_| ())
}

pub async fn count_for_org<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM connections WHERE org_id = $1").bind(org_id).fetch_one(ex).await
}

pub async fn for_org<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<Vec<ConnectionRow>> {
    sqlx::query_as::<_, ConnectionRow>(&format!("SELECT {COLS} FROM connections WHERE org_id = $1 ORDER BY is_primary DESC, created_at"))
        .bind(org_id)
        .fetch_all(ex)
        .await
}

pub async fn by_id<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<ConnectionRow>> {
    sqlx::query_as::<_, ConnectionRow>(&format!("SELECT {COLS} FROM connections WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// The connection's columns as `c.…` (their bare names in the result, as `ConnectionRow` reads them), for the
/// reads that join `connections c` to another table.
pub(super) fn c_cols() -> String {
    COLS.split(',').map(|c| format!("c.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

/// The connection's columns as `c.…`, and its org's as `org_…`, for the reads that join the two.
fn joined_cols() -> String {
    format!("{}, o.id AS org_id_, o.slug AS org_slug, o.name AS org_name, o.created_at AS org_created_at", c_cols())
}

/// The org of a row read with `joined_cols`.
fn org_of(row: &sqlx::any::AnyRow) -> sqlx::Result<super::orgs::OrgRow> {
    Ok(super::orgs::OrgRow { id: row.try_get("org_id_")?, slug: row.try_get("org_slug")?, name: row.try_get("org_name")?, created_at: row.try_get("org_created_at")? })
}

/// A connection with its org, in one statement (a sign-in needs both).
pub async fn with_org<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<Option<(ConnectionRow, super::orgs::OrgRow)>> {
    let row = sqlx::query(&format!("SELECT {} FROM connections c JOIN organizations o ON o.id = c.org_id WHERE c.id = $1", joined_cols()))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some((ConnectionRow::from_row(&row)?, org_of(&row)?)))
}

/// An org by its slug with all its connections (as `for_org` orders them), in one statement: where a sign-in
/// starts, which then chooses among them in memory.
pub async fn of_org_by_slug<'e>(ex: impl Executor<'e, Database = Any>, slug: &str) -> sqlx::Result<Option<(super::orgs::OrgRow, Vec<ConnectionRow>)>> {
    let rows = sqlx::query(&format!(
        "SELECT {} FROM organizations o LEFT JOIN connections c ON c.org_id = o.id WHERE o.slug = $1 \
         ORDER BY c.is_primary DESC, c.created_at",
        joined_cols()
    ))
    .bind(slug)
    .fetch_all(ex)
    .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let mut conns = Vec::with_capacity(rows.len());
    for row in &rows {
        // An org without connections is one row whose connection columns are NULL.
        if row.try_get::<Option<String>, _>("id")?.is_some() {
            conns.push(ConnectionRow::from_row(row)?);
        }
    }
    Ok(Some((org_of(first)?, conns)))
}

pub async fn delete<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM connections WHERE id = $1").bind(id).execute(ex).await.map(|r| r.rows_affected())
}

#[derive(Debug, Clone, FromRow)]
pub struct IdentityRow {
    pub connection_id: String,
    pub issuer: String,
    pub subject: String,
    pub user_id: String,
    pub email: String,
    pub last_login_at: i64,
}

/// The identity asserted by `issuer` for `subject` at this connection. All identities of a connection share its
/// current issuer (changing the issuer deletes them); the issuer is matched too, so a stale row never answers.
pub async fn identity<'e>(ex: impl Executor<'e, Database = Any>, connection_id: &str, issuer: &str, subject: &str) -> sqlx::Result<Option<IdentityRow>> {
    sqlx::query_as::<_, IdentityRow>(
        "SELECT connection_id, issuer, subject, user_id, email, last_login_at FROM identities WHERE connection_id = $1 AND subject = $2 AND issuer = $3",
    )
    .bind(connection_id)
    .bind(subject)
    .bind(issuer)
    .fetch_optional(ex)
    .await
}

/// A returning person in one statement: the identity `issuer` asserted for `subject` at this connection, its
/// account, and the account's membership of `org_id` when there is one.
#[derive(Debug, FromRow)]
pub struct Returning {
    pub identity_email: String,
    pub last_login_at: i64,
    #[sqlx(flatten)]
    pub user: super::users::UserRow,
    pub member_role: Option<String>,
    pub member_status: Option<String>,
    /// 1 when a new session of this user in this org owes a second factor (`policies::mfa_owed`).
    pub mfa_owed: i64,
    /// The org that verified the address's domain (the `verified` row of that name), and when its record lapsed.
    pub domain_org_id: Option<String>,
    pub domain_lapsed_at: Option<i64>,
}

/// The returning person's identity, account and membership, with the verified row of `domain` (the asserted
/// address's domain, lower case), in one statement.
pub async fn returning<'e>(ex: impl Executor<'e, Database = Any>, connection_id: &str, issuer: &str, subject: &str, org_id: &str, domain: &str) -> sqlx::Result<Option<Returning>> {
    sqlx::query_as::<_, Returning>(&format!(
        "SELECT i.email AS identity_email, i.last_login_at, u.id, u.email, u.name, u.password_hash, u.created_at, u.email_proven_org, \
         m.role AS member_role, m.status AS member_status, {} AS mfa_owed, d.org_id AS domain_org_id, d.lapsed_at AS domain_lapsed_at \
         FROM identities i JOIN users u ON u.id = i.user_id LEFT JOIN memberships m ON m.user_id = u.id AND m.org_id = $4 \
         LEFT JOIN domains d ON d.name = $5 AND d.status = 'verified' \
         WHERE i.connection_id = $1 AND i.subject = $2 AND i.issuer = $3",
        super::policies::mfa_owed_expr("$4", "u.id")
    ))
    .bind(connection_id)
    .bind(subject)
    .bind(issuer)
    .bind(org_id)
    .bind(domain)
    .fetch_optional(ex)
    .await
}

pub async fn insert_identity<'e>(ex: impl Executor<'e, Database = Any>, i: &IdentityRow, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO identities (connection_id, issuer, subject, user_id, email, created_at, last_login_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&i.connection_id)
    .bind(&i.issuer)
    .bind(&i.subject)
    .bind(&i.user_id)
    .bind(&i.email)
    .bind(now)
    .execute(ex)
    .await
    .map(|_| ())
}

pub async fn touch_identity<'e>(ex: impl Executor<'e, Database = Any>, connection_id: &str, subject: &str, email: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE identities SET email = $3, last_login_at = $4 WHERE connection_id = $1 AND subject = $2")
        .bind(connection_id)
        .bind(subject)
        .bind(email)
        .bind(now)
        .execute(ex)
        .await
        .map(|_| ())
}

/// Unlinks every identity of a connection (its issuer changed); returns how many.
/// Whether `user_id` already has an identity (another subject) at `connection_id`.
pub async fn user_has_identity<'e>(ex: impl Executor<'e, Database = Any>, connection_id: &str, user_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM identities WHERE connection_id = $1 AND user_id = $2")
        .bind(connection_id)
        .bind(user_id)
        .fetch_one(ex)
        .await
        .map(|n| n > 0)
}

pub async fn delete_identities<'e>(ex: impl Executor<'e, Database = Any>, connection_id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM identities WHERE connection_id = $1").bind(connection_id).execute(ex).await.map(|r| r.rows_affected())
}

pub async fn count_identities<'e>(ex: impl Executor<'e, Database = Any>, connection_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM identities WHERE connection_id = $1").bind(connection_id).fetch_one(ex).await
}

/// Removes every identity of a user (account taken over by its proven owner); returns how many.
pub async fn delete_identities_of_user<'e>(ex: impl Executor<'e, Database = Any>, user_id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM identities WHERE user_id = $1").bind(user_id).execute(ex).await.map(|r| r.rows_affected())
}

/// The org's adoption of an instance provider (workspace SSO), if any.
pub async fn workspace_link<'e>(ex: impl Executor<'e, Database = Any>, org_id: &str) -> sqlx::Result<Option<ConnectionRow>> {
    sqlx::query_as::<_, ConnectionRow>(&format!("SELECT {COLS} FROM connections WHERE org_id = $1 AND instance_provider_id IS NOT NULL"))
        .bind(org_id)
        .fetch_optional(ex)
        .await
}

/// The names of the orgs whose workspace SSO uses provider `provider_id`.
pub async fn orgs_using_provider<'e>(ex: impl Executor<'e, Database = Any>, provider_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar::<_, String>(
        "SELECT o.name FROM connections c JOIN organizations o ON o.id = c.org_id WHERE c.instance_provider_id = $1 ORDER BY o.name",
    )
    .bind(provider_id)
    .fetch_all(ex)
    .await
}

pub async fn set_instance_provider<'e>(ex: impl Executor<'e, Database = Any>, id: &str, provider_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE connections SET instance_provider_id = $2 WHERE id = $1").bind(id).bind(provider_id).execute(ex).await.map(|_| ())
}
