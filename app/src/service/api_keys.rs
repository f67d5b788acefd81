//! API keys: created once (the whole key is shown only then), stored as a SHA-256 hash, optionally pinned to
//! one organization, revocable. Keys are 256 random bits, so a fast hash is enough and lookups stay indexed.
use super::audit::{self, Event, Outcome};
use super::crypto::{random_token, sha256_hex};
use super::domain::{parse_id, parse_name, Role};
use super::error::{ServiceError, ServiceResult};
use super::{new_id, now_ms, rfc3339, Principal, RequestMeta};
use crate::model::{ApiKeyInfo, CreatedApiKey};
use crate::repo::{self, api_keys::ApiKeyRow};
use crate::state::AppState;

pub const KEY_PREFIX: &str = "lk_";

fn info(r: ApiKeyRow) -> ApiKeyInfo {
    ApiKeyInfo {
        id: r.id,
        name: r.name,
        prefix: r.prefix,
        organization_id: r.org_id,
        created_at: rfc3339(r.created_at),
        last_used_at: r.last_used_at.map(rfc3339),
        revoked_at: r.revoked_at.map(rfc3339),
        mfa_verified: r.mfa_verified != 0,
    }
}

#[tracing::instrument(skip(state, meta), fields(user = %p.user_id))]
pub async fn create(state: &AppState, p: &Principal, name: &str, org_id: Option<&str>, meta: &RequestMeta) -> ServiceResult<CreatedApiKey> {
    let name = parse_name("name", name, 100, true)?;
    let org_id = match org_id.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => Some(super::orgs::authorize(state, p, id, Role::Member).await?.org.id),
        None => None,
    };
    // A pinned key may only mint keys pinned to the same org: a key never widens its own reach.
    if let Some(pinned) = p.pinned_org() {
        if org_id.as_deref() != Some(pinned) {
            return Err(ServiceError::Forbidden(
                "This API key is pinned to one organization; it can only create keys pinned to that organization.".into(),
            ));
        }
    }
    let key = format!("{KEY_PREFIX}{}", random_token(32));
    let row = ApiKeyRow {
        id: new_id(),
        user_id: p.user_id.clone(),
        org_id,
        name,
        prefix: key.chars().take(10).collect(),
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
        created_via_connection: p.sso_connection().map(str::to_string),
        // A key carries the second factor of the session that minted it, never more: minted before the
        // challenge, it does not satisfy an org's MFA policy (a key minted by a key inherits that key's flag).
        mfa_verified: p.mfa_done() as i64,
    };
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::api_keys::insert(&mut *tx, &row, &sha256_hex(&key)).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: row.org_id.as_deref(),
        action: "api_key.create",
        target: Some(&row.id),
        outcome: Outcome::Success,
        detail: Some(format!("name={}", row.name)),
    })
    .await?;
    tx.commit().await?;
    Ok(CreatedApiKey { key, api_key: info(row) })
}

pub async fn list(state: &AppState, p: &Principal) -> ServiceResult<Vec<ApiKeyInfo>> {
    // (A pinned key sees only the keys pinned to its own org.)
    let rows = repo::api_keys::list_for_user(&state.db, &p.user_id).await?;
    Ok(rows
        .into_iter()
        .filter(|k| p.pinned_org().is_none() || k.org_id.as_deref() == p.pinned_org())
        .map(info)
        .collect())
}

pub async fn revoke(state: &AppState, p: &Principal, id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let id = parse_id("id", id)?;
    let not_found = || ServiceError::NotFound("You have no API key with that id.".into());
    let row = repo::api_keys::by_id_for_user(&state.db, &id, &p.user_id).await?.ok_or_else(not_found)?;
    if p.pinned_org().is_some() && row.org_id.as_deref() != p.pinned_org() {
        return Err(not_found());
    }
    if row.revoked_at.is_some() {
        return Ok(());
    }
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::api_keys::revoke(&mut *tx, &id, &p.user_id, now_ms()).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: row.org_id.as_deref(),
        action: "api_key.revoke",
        target: Some(&id),
        outcome: Outcome::Success,
        detail: None,
    })
    .await?;
    tx.commit().await?;
    Ok(())
}
