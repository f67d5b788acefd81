//! Organizations and memberships, and `authorize`: the one place that decides who may act on an org.
use super::audit::{self, Event, Outcome};
use super::domain::{parse_id, parse_name, OrgSlug, Role};
use super::error::{on_conflict, ServiceError, ServiceResult};
use super::{new_id, now_ms, rfc3339, Principal, RequestMeta};
use crate::model::{Member, OrgDetail, OrgSummary};
use crate::repo::{self, orgs::OrgWithRole};
use crate::state::AppState;

/// The caller's membership of an org, once `authorize` has let them in.
#[derive(Debug, Clone)]
pub struct Access {
    pub org: OrgWithRole,
    pub role: Role,
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("No organization with that id, or you are not a member of it.".into())
}

/// Lets the caller act on `org_id` with at least `min` role. A non-member (or an API key pinned to another
/// org) gets 404, so the answer never tells whether the org exists; a member below `min` gets 403.
pub async fn authorize(state: &AppState, p: &Principal, org_id: &str, min: Role) -> ServiceResult<Access> {
    let a = authorize_membership(state, p, org_id, min).await?;
    super::policy::enforce(state, p, &a.org.id, &a.org.slug, a.role).await?;
    Ok(a)
}

/// `authorize` without the security policy: only for the policy itself, so that an owner can always lower it
/// (the documented recovery when an identity provider breaks), whatever the session.
pub(crate) async fn authorize_membership(state: &AppState, p: &Principal, org_id: &str, min: Role) -> ServiceResult<Access> {
    let org_id = parse_id("orgId", org_id)?;
    if p.pinned_org().is_some_and(|pinned| pinned != org_id) {
        return Err(not_found());
    }
    let org = repo::orgs::with_membership(&state.db, &org_id, &p.user_id).await?.ok_or_else(not_found)?;
    if org.status != "active" {
        return Err(not_found());
    }
    let role = Role::parse(&org.role)?;
    if role < min {
        return Err(ServiceError::Forbidden(format!(
            "This needs the {} role or higher in this organization; you are {}.",
            min.as_str(),
            role.as_str()
        )));
    }
    Ok(Access { org, role })
}

fn summary(o: OrgWithRole) -> OrgSummary {
    OrgSummary { id: o.id, slug: o.slug, name: o.name, role: o.role }
}

pub async fn list_mine(state: &AppState, p: &Principal) -> ServiceResult<Vec<OrgSummary>> {
    let rows = repo::orgs::list_for_user(&state.db, &p.user_id).await?;
    Ok(rows
        .into_iter()
        .filter(|o| p.pinned_org().is_none_or(|pinned| pinned == o.id))
        .map(summary)
        .collect())
}

#[tracing::instrument(skip(state, meta), fields(user = %p.user_id))]
pub async fn create(state: &AppState, p: &Principal, name: &str, slug: Option<&str>, meta: &RequestMeta) -> ServiceResult<OrgSummary> {
    if p.pinned_org().is_some() {
        return Err(ServiceError::Forbidden("An API key pinned to one organization cannot create organizations.".into()));
    }
    let name = parse_name("name", name, 100, true)?;
    let slug = match slug.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => OrgSlug::parse(s)?,
        None => OrgSlug::parse(&OrgSlug::suggest(&name))
            .map_err(|_| ServiceError::validation("slug", "Choose a slug: the name does not give a usable one (3 to 48 of a-z, 0-9 and -)."))?,
    };
    let now = now_ms();
    let org = repo::orgs::OrgRow { id: new_id(), slug: slug.as_str().to_string(), name, created_at: now };
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::orgs::insert(&mut *tx, &org)
        .await
        .map_err(|e| on_conflict(e, &format!("The slug \"{}\" is taken; choose another.", org.slug)))?;
    repo::orgs::insert_membership(&mut *tx, &org.id, &p.user_id, Role::Owner.as_str(), "active", now).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&org.id),
        action: "organization.create",
        target: Some(&org.id),
        outcome: Outcome::Success,
        detail: Some(format!("slug={}", org.slug)),
    })
    .await?;
    tx.commit().await?;
    Ok(OrgSummary { id: org.id, slug: org.slug, name: org.name, role: Role::Owner.as_str().into() })
}

pub async fn detail(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<OrgDetail> {
    let a = authorize(state, p, org_id, Role::Member).await?;
    let member_count = repo::orgs::count_active_members(&state.db, &a.org.id).await?;
    Ok(OrgDetail {
        sso_login_url: format!("{}/api/auth/sso/{}/login", state.settings.public_url, a.org.slug),
        id: a.org.id,
        slug: a.org.slug,
        name: a.org.name,
        role: a.org.role,
        member_count,
        created_at: rfc3339(a.org.created_at),
    })
}

pub async fn members(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<Vec<Member>> {
    let a = authorize(state, p, org_id, Role::Admin).await?;
    let rows = repo::orgs::members(&state.db, &a.org.id).await?;
    Ok(rows
        .into_iter()
        .map(|m| Member { user_id: m.user_id, email: m.email, name: m.name, role: m.role, status: m.status, joined_at: rfc3339(m.created_at) })
        .collect())
}

/// The target's current role, refusing what the caller may not touch: only owners manage owners, and the
/// last owner can neither be demoted nor removed (the org would be unmanageable).
async fn guard_target(state: &AppState, a: &Access, user_id: &str) -> ServiceResult<Role> {
    let target = repo::orgs::with_membership(&state.db, &a.org.id, user_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("That user is not a member of this organization.".into()))?;
    let target_role = Role::parse(&target.role)?;
    if target_role == Role::Owner && a.role != Role::Owner {
        return Err(ServiceError::Forbidden("Only an owner can change or remove another owner.".into()));
    }
    Ok(target_role)
}

async fn ensure_not_last_owner(state: &AppState, org_id: &str, target_role: Role) -> ServiceResult<()> {
    if target_role == Role::Owner && repo::orgs::count_owners(&state.db, org_id).await? <= 1 {
        return Err(ServiceError::Conflict("This is the organization's last owner. Make someone else an owner first.".into()));
    }
    Ok(())
}

pub async fn set_member_role(state: &AppState, p: &Principal, org_id: &str, user_id: &str, role: &str, meta: &RequestMeta) -> ServiceResult<Member> {
    let a = authorize(state, p, org_id, Role::Admin).await?;
    let user_id = parse_id("userId", user_id)?;
    let role = Role::parse(role)?;
    if role == Role::Owner && a.role != Role::Owner {
        return Err(ServiceError::Forbidden("Only an owner can make someone an owner.".into()));
    }
    let current = guard_target(state, &a, &user_id).await?;
    if current != role {
        if role != Role::Owner {
            ensure_not_last_owner(state, &a.org.id, current).await?;
        }
        let mut tx = crate::repo::begin(&state.db).await?;
        repo::orgs::set_role(&mut *tx, &a.org.id, &user_id, role.as_str()).await?;
        audit::record(&mut *tx, p, meta, Event {
            org_id: Some(&a.org.id),
            action: "member.role_change",
            target: Some(&user_id),
            outcome: Outcome::Success,
            detail: Some(format!("{} -> {}", current.as_str(), role.as_str())),
        })
        .await?;
        tx.commit().await?;
    }
    members(state, p, &a.org.id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .ok_or_else(|| ServiceError::NotFound("That user is not a member of this organization.".into()))
}

pub async fn remove_member(state: &AppState, p: &Principal, org_id: &str, user_id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let a = authorize(state, p, org_id, Role::Admin).await?;
    let user_id = parse_id("userId", user_id)?;
    let current = guard_target(state, &a, &user_id).await?;
    ensure_not_last_owner(state, &a.org.id, current).await?;
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::orgs::delete_membership(&mut *tx, &a.org.id, &user_id).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "member.remove",
        target: Some(&user_id),
        outcome: Outcome::Success,
        detail: Some(format!("role was {}", current.as_str())),
    })
    .await?;
    tx.commit().await?;
    Ok(())
}
