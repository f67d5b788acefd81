//! The security policy of an organization and its enforcement. `enforce` is the one place that applies it: it
//! runs inside `orgs::authorize`, so every org-scoped request (REST and console) passes through it.
//!
//! Rules. Under `sso` a member whose role is not exempt needs a session established through one of the org's
//! connections; an API key of such a member works only if it was created in such a session (a key minted
//! from a password session would otherwise keep a back door open). Under `mfa` or `requireMfa`, a browser
//! session must have passed the second factor; API keys are not subject to MFA (reference 000). Raising to
//! `sso` is guarded against lockouts, on every write whose result is `sso` and when deleting a connection that
//! policy depends on. Only credentials that satisfy the policy (or a session of an exempt role) may change it: a
//! credential the policy rejects must not be able to switch the policy off.
use super::audit::{self, Event, Outcome};
use super::domain::Role;
use super::error::{ServiceError, ServiceResult};
use super::{now_ms, rfc3339, Principal, RequestMeta};
use crate::model::{OrgSessionInfo, SecurityPage, SecurityPolicy, SsoEnforcement};
use crate::repo::{self, policies::PolicyRow};
use crate::state::AppState;

fn default_policy(org_id: &str) -> PolicyRow {
    PolicyRow { org_id: org_id.into(), auth_required: "any".into(), require_mfa: 0, exempt_roles: "[]".into() }
}

fn roles_of(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

fn view(p: &PolicyRow) -> SecurityPolicy {
    SecurityPolicy { auth_required: p.auth_required.clone(), require_mfa: p.require_mfa != 0, exempt_roles: roles_of(&p.exempt_roles) }
}

async fn load(state: &AppState, org_id: &str) -> ServiceResult<PolicyRow> {
    Ok(repo::policies::get(&state.db, org_id).await?.unwrap_or_else(|| default_policy(org_id)))
}

fn login_url(state: &AppState, slug: &str) -> String {
    format!("{}/api/auth/sso/{slug}/login", state.settings.public_url)
}

/// Applies the org's policy to a caller who is an active member with `role`. Called by `orgs::authorize` only.
pub(crate) async fn enforce(state: &AppState, p: &Principal, org_id: &str, slug: &str, role: Role) -> ServiceResult<()> {
    let Some(policy) = repo::policies::get(&state.db, org_id).await? else { return Ok(()) };
    if policy.auth_required == "sso" && !roles_of(&policy.exempt_roles).iter().any(|r| r == role.as_str()) {
        let via_org_connection = match p.sso_connection() {
            Some(c) => repo::connections::by_id(&state.db, c).await?.is_some_and(|c| c.org_id == org_id),
            None => false,
        };
        if !via_org_connection {
            let what = if p.session_id().is_some() { "Your session was not" } else { "This API key was not created in a session" };
            return Err(ServiceError::SsoRequired(format!(
                "This organization requires single sign-on. {what} established through its identity provider: sign in at {}.",
                login_url(state, slug)
            )));
        }
    }
    if (policy.auth_required == "mfa" || policy.require_mfa != 0) && !p.mfa_done() {
        if p.session_id().is_none() {
            return Err(ServiceError::MfaRequired(
                "This organization requires two-factor authentication, and this API key was created by a session that had not passed it. Sign in, pass the challenge at /mfa, then create a new key.".into(),
            ));
        }
        let enrolled = super::mfa::enrolled(state, &p.user_id).await?;
        return Err(ServiceError::MfaRequired(if enrolled {
            "This organization requires two-factor authentication: enter a code from your authenticator app at /mfa.".into()
        } else {
            "This organization requires two-factor authentication: set up an authenticator app at /mfa, then continue.".into()
        }));
    }
    Ok(())
}

/// Refuses password sign-in for a member of an org that requires SSO, unless their role there is exempt.
/// Runs after the password was verified, so it tells nothing to someone guessing.
pub(crate) async fn check_password_sign_in(state: &AppState, user_id: &str) -> ServiceResult<()> {
    for m in repo::policies::for_member(&state.db, user_id).await? {
        let exempt = roles_of(m.exempt_roles.as_deref().unwrap_or("[]")).contains(&m.role);
        if m.auth_required.as_deref() == Some("sso") && !exempt {
            return Err(ServiceError::SsoRequired(format!(
                "{} requires single sign-on for your role. Sign in through your identity provider: {}",
                m.name,
                login_url(state, &m.slug)
            )));
        }
    }
    Ok(())
}

pub async fn get_security(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<SecurityPolicy> {
    let a = super::orgs::authorize_membership(state, p, org_id, Role::Owner).await?;
    Ok(view(&load(state, &a.org.id).await?))
}

pub async fn page(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<SecurityPage> {
    let a = super::orgs::authorize_membership(state, p, org_id, Role::Owner).await?;
    let policy = view(&load(state, &a.org.id).await?);
    let has_tested_connection = repo::connections::for_org(&state.db, &a.org.id).await?.iter().any(|c| c.status == "active");
    let owner_signed_in_with_sso = repo::policies::owner_has_sso_identity(&state.db, &a.org.id, None).await?;
    let caller_session_is_sso = match p.sso_connection() {
        Some(c) => repo::connections::by_id(&state.db, c).await?.is_some_and(|c| c.org_id == a.org.id),
        None => false,
    };
    Ok(SecurityPage { policy, has_tested_connection, owner_signed_in_with_sso, caller_session_is_sso })
}

fn parse_auth_required(raw: &str) -> ServiceResult<&'static str> {
    match raw {
        "any" => Ok("any"),
        "mfa" => Ok("mfa"),
        "sso" => Ok("sso"),
        _ => Err(ServiceError::validation("authRequired", "authRequired must be one of any, mfa, sso.")),
    }
}

fn parse_roles(raw: &[String]) -> ServiceResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for r in raw {
        let role = Role::parse(r).map_err(|_| ServiceError::validation("exemptRoles", format!("{r:?} is not a role: use owner, admin or member.")))?;
        if !out.iter().any(|x| x == role.as_str()) {
            out.push(role.as_str().into());
        }
    }
    Ok(out)
}

/// Refuses a state where `sso` would lock everyone out: no connection (other than `without`, about to be deleted)
/// passed its last test, or no owner could get in (the owner role exempt, or an owner who signed in with SSO).
pub(crate) async fn lockout_guard(state: &AppState, org_id: &str, exempt: &[String], without: Option<&str>) -> ServiceResult<()> {
    let conns = repo::connections::for_org(&state.db, org_id).await?;
    if !conns.iter().any(|c| c.status == "active" && Some(c.id.as_str()) != without) {
        return Err(ServiceError::Conflict(if without.is_some() {
            "This organization requires single sign-on and this is its only working identity provider: deleting it would lock members out. Lower the requirement on the Security page first, or connect and test another identity provider.".into()
        } else {
            "Single sign-on cannot be required: no identity provider of this organization has passed its test. Run \"Test connection\" on the Identity provider page first, or members would be locked out.".into()
        }));
    }
    if !exempt.iter().any(|r| r == "owner") && !repo::policies::owner_has_sso_identity(&state.db, org_id, without).await? {
        return Err(ServiceError::Conflict(
            "Single sign-on cannot be required: no owner has signed in through the identity provider and the owner role is not exempt, so nobody could get in to undo it. Sign in once with SSO, or keep the owner role exempt.".into(),
        ));
    }
    Ok(())
}

/// Whether deleting connection `id` is safe for the org's policy: under `sso` the guard must still hold without it.
pub(crate) async fn guard_connection_delete(state: &AppState, org_id: &str, id: &str) -> ServiceResult<()> {
    let policy = load(state, org_id).await?;
    if policy.auth_required == "sso" {
        lockout_guard(state, org_id, &roles_of(&policy.exempt_roles), Some(id)).await?;
    }
    Ok(())
}

/// Replaces the policy. Only a caller who satisfies the current policy may; every result of `sso` passes the
/// lockout guard (a connection passed its last test and an owner stays able to get in).
pub async fn put_security(
    state: &AppState,
    p: &Principal,
    org_id: &str,
    auth_required: &str,
    require_mfa: bool,
    exempt_roles: &[String],
    meta: &RequestMeta,
) -> ServiceResult<SecurityPolicy> {
    // The full policy applies to the caller: a password session or key that `sso` refuses cannot lower it.
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let auth_required = parse_auth_required(auth_required)?;
    let exempt = parse_roles(exempt_roles)?;
    let before = load(state, &a.org.id).await?;
    if auth_required == "sso" {
        lockout_guard(state, &a.org.id, &exempt, None).await?;
    }
    let row = PolicyRow {
        org_id: a.org.id.clone(),
        auth_required: auth_required.into(),
        require_mfa: require_mfa as i64,
        exempt_roles: serde_json::to_string(&exempt).map_err(|e| ServiceError::internal("roles json", e))?,
    };
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::policies::put(&mut *tx, &row, now_ms()).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "security.policy.update",
        target: Some(&a.org.id),
        outcome: Outcome::Success,
        detail: Some(format!(
            "authRequired {} -> {auth_required}; requireMfa {} -> {require_mfa}; exemptRoles {} -> {}",
            before.auth_required,
            before.require_mfa != 0,
            before.exempt_roles,
            row.exempt_roles
        )),
    })
    .await?;
    tx.commit().await?;
    Ok(view(&row))
}

pub async fn get_enforcement(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<SsoEnforcement> {
    let s = get_security(state, p, org_id).await?;
    Ok(SsoEnforcement { enforced: s.auth_required == "sso", exempt_roles: s.exempt_roles })
}

/// The SSO view of the same policy: `enforced` maps to `authRequired = sso` (off: back to `any`, or `mfa` when
/// `requireMfa` is on).
pub async fn put_enforcement(state: &AppState, p: &Principal, org_id: &str, enforced: bool, exempt_roles: &[String], meta: &RequestMeta) -> ServiceResult<SsoEnforcement> {
    let current = get_security(state, p, org_id).await?;
    let auth_required = match (enforced, current.auth_required.as_str()) {
        (true, _) => "sso",
        (false, "sso") => "any",
        (false, other) => parse_auth_required(other)?,
    };
    let s = put_security(state, p, org_id, auth_required, current.require_mfa, exempt_roles, meta).await?;
    Ok(SsoEnforcement { enforced: s.auth_required == "sso", exempt_roles: s.exempt_roles })
}

fn session_info(s: repo::sessions::OrgSessionRow, current: Option<&str>) -> OrgSessionInfo {
    OrgSessionInfo {
        current: current == Some(s.id.as_str()),
        id: s.id,
        user_id: s.user_id,
        email: s.email,
        name: s.name,
        method: s.method,
        connection_id: s.connection_id,
        mfa_done: s.mfa_done != 0,
        created_at: rfc3339(s.created_at),
        expires_at: rfc3339(s.expires_at),
        last_seen_at: rfc3339(s.last_seen_at),
        ip: s.ip,
        user_agent: s.user_agent,
        application: s.application,
    }
}

/// The live sessions of the org's members. Owner only.
pub async fn org_sessions(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<Vec<OrgSessionInfo>> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let rows = repo::sessions::live_for_org(&state.db, &a.org.id, now_ms()).await?;
    Ok(rows.into_iter().map(|s| session_info(s, p.session_id())).collect())
}

/// Revokes a member's session at once: that browser's next request is signed out. Owner only.
pub async fn revoke_org_session(state: &AppState, p: &Principal, org_id: &str, id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let missing = || ServiceError::NotFound("No active session with that id among this organization's members.".into());
    let id = super::domain::parse_id("sessionId", id).map_err(|_| missing())?;
    let s = repo::sessions::in_org(&state.db, &a.org.id, &id).await?.ok_or_else(missing)?;
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::sessions::delete(&mut *tx, &s.id).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "session.revoke",
        target: Some(&s.user_id),
        outcome: Outcome::Success,
        detail: Some(format!("session={} email={} method={}", s.id, s.email, s.method)),
    })
    .await?;
    tx.commit().await?;
    Ok(())
}
