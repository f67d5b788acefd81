//! What every way in shares once a protocol has authenticated someone: "this person was authenticated by this
//! connection of this org, with this (issuer, subject) and this address". Protocol modules (OIDC today; SAML
//! and LDAP next) translate their protocol into an `Assertion` and call `provision`; they never copy its rules.
//!
//! Trust by proof:
//! - A connection speaks only for addresses at domains its own org has verified by DNS (and still holds):
//!   an address at a domain another org verified is refused (`sso_email_domain_not_allowed`), one at a domain
//!   nobody verified is refused too (`sso_domain_not_verified`). So one org's IdP never creates or reaches an
//!   account at another org's domain, and a multi-tenant issuer is not an open door.
//! - A returning person is found by (connection, issuer, subject), never by address; an identity never crosses
//!   orgs: a user whose own address is at a domain another org verified is refused as well.
//! - A new subject whose address already has an account: if this org's IdP proved that address before, or the
//!   browser is signed in to that very account (the person holds both the account and the address), the
//!   identity is linked. Otherwise the account's address was never proven (a password sign-up proves nothing,
//!   Latchkey sends no email), so the account is **taken over cleanly** by the proven owner: its password is
//!   removed and its sessions, API keys, second factor and other identities are revoked, and this is audited
//!   (`identity.takeover`). Whoever typed that address before keeps nothing.
pub mod groups;
pub mod handoff;
pub mod ldap;
pub mod provider;
pub mod saml;

use super::audit::{self, Event, Outcome};
use super::domain::{Email, Role};
use super::{new_id, now_ms, RequestMeta};
use crate::repo::{self, connections::ConnectionRow, orgs::OrgRow, users::UserRow};
use crate::state::AppState;

/// A sign-in failure: a stable code for the error page, and a detail for the audit log and server log only.
#[derive(Debug)]
pub struct SsoFailure {
    pub code: &'static str,
    pub detail: String,
    pub org_id: Option<String>,
}

impl SsoFailure {
    pub fn new(code: &'static str, detail: impl Into<String>, org_id: Option<&str>) -> Self {
        // Flows of "Continue with …" belong to no org yet: their empty org id is no org.
        Self { code, detail: detail.into(), org_id: org_id.filter(|o| !o.is_empty()).map(str::to_string) }
    }
}

impl SsoFailure {
    /// For callers that answer with the REST envelope: a database outage stays 503, anything else is `other`.
    pub fn or_else(self, other: impl FnOnce(SsoFailure) -> super::ServiceError) -> super::ServiceError {
        if self.code == "service_unavailable" {
            super::ServiceError::Unavailable(self.detail)
        } else {
            other(self)
        }
    }
}

impl From<sqlx::Error> for SsoFailure {
    fn from(e: sqlx::Error) -> Self {
        super::ServiceError::from(e).into()
    }
}

impl From<super::ServiceError> for SsoFailure {
    fn from(e: super::ServiceError) -> Self {
        match e {
            super::ServiceError::Unavailable(d) => Self::new("service_unavailable", d, None),
            other => Self::new("server_error", other.to_string(), None),
        }
    }
}

/// Logs a failed sign-in, and records it in the org's audit log when the failure belongs to a real flow of an org
/// (anonymous junk such as unknown states or rate limits is only logged, so it cannot fill the database).
pub async fn audit_failure(state: &AppState, meta: &RequestMeta, f: &SsoFailure, protocol: &'static str) {
    super::metrics::sign_in("sso", protocol, Some(f.code));
    // Details can quote what an anonymous sender put in a message: bounded, in the log and the audit row.
    let detail: String = f.detail.chars().take(300).collect();
    tracing::warn!(code = f.code, detail = %detail, protocol, "SSO sign-in failed");
    if f.org_id.is_none() {
        return;
    }
    let _ = audit::record_anonymous(&state.db, None, "sso", meta, Event {
        org_id: f.org_id.as_deref(),
        action: "sso.login",
        target: None,
        outcome: Outcome::Failure,
        detail: Some(format!("{}: {detail} (protocol={protocol})", f.code)),
    })
    .await;
}

/// A new in-flight sign-in at `conn`, bound to the browser holding `browser_token`, for `ttl_ms`; `target` is the
/// application to hand the user to. The protocol fills in its own fields (nonce, PKCE verifier, SAML result).
pub fn new_flow(conn: &ConnectionRow, state_hash: String, browser_token: &str, return_to: Option<String>, target: Option<handoff::AppTarget>, ttl_ms: i64) -> repo::flows::FlowRow {
    flow_at(&conn.org_id, &conn.id, None, state_hash, browser_token, return_to, target, ttl_ms)
}

/// A new in-flight sign-in at a connection of an org, or (empty ids, `provider_id`) at an instance provider.
#[allow(clippy::too_many_arguments)]
pub fn flow_at(
    org_id: &str,
    connection_id: &str,
    provider_id: Option<&str>,
    state_hash: String,
    browser_token: &str,
    return_to: Option<String>,
    target: Option<handoff::AppTarget>,
    ttl_ms: i64,
) -> repo::flows::FlowRow {
    let now = now_ms();
    repo::flows::FlowRow {
        state_hash,
        org_id: org_id.to_string(),
        connection_id: connection_id.to_string(),
        browser_hash: crate::service::crypto::sha256_hex(browser_token),
        nonce: String::new(),
        pkce_verifier: Vec::new(),
        return_to,
        created_at: now,
        expires_at: now + ttl_ms,
        used_at: None,
        application_id: target.as_ref().map(|t| t.app.id.clone()),
        redirect_uri: target.as_ref().map(|t| t.redirect_uri.clone()),
        app_state: target.and_then(|t| t.state),
        result: None,
        provider_id: provider_id.map(str::to_string),
    }
}

/// How a sign-in was asked for at `/api/auth/sso/{slug}/login`.
#[derive(Default)]
pub struct Start<'a> {
    pub return_to: Option<&'a str>,
    pub login_hint: Option<&'a str>,
    /// An explicit connection of the org (the owner's "Test sign-in", or what login-url answered).
    pub connection_id: Option<&'a str>,
    pub app: Option<&'a handoff::AppRequest>,
}

/// The connection a sign-in at `org` uses, among the org's `conns`: an explicit one of this org (any status: a test
/// sign-in is how a new connection becomes active), else the one that serves the hinted email's domain, else the
/// org's active default, else its primary OIDC connection.
pub fn choose_connection(org: &OrgRow, conns: &[ConnectionRow], connection_id: Option<&str>, login_hint: Option<&str>) -> Result<ConnectionRow, SsoFailure> {
    let none = |d: &str| SsoFailure::new("sso_connection_not_found", d.to_string(), Some(&org.id));
    if let Some(id) = connection_id.filter(|i| !i.is_empty()) {
        let c = conns.iter().find(|c| c.id == id && c.org_id == org.id && matches!(c.protocol.as_str(), "oidc" | "saml" | "ldap"));
        return c.cloned().ok_or_else(|| none("no such connection in this organization"));
    }
    if let Some(email) = login_hint.and_then(|h| Email::parse(h).ok()) {
        if let Some(c) = super::domains::route(conns, email.domain()) {
            return Ok(c.clone());
        }
    }
    let pick = conns
        .iter()
        .find(|c| c.is_default == 1 && c.status == "active")
        .or_else(|| conns.iter().find(|c| c.is_primary == 1 && c.protocol == "oidc"));
    pick.cloned().ok_or_else(|| none("the organization has no SSO connection"))
}

/// What a protocol proved about the person.
pub struct Assertion<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub email: &'a Email,
    pub name: Option<&'a str>,
    /// The person's groups, for protocols that carry them (SAML, LDAP); `None` for those that do not.
    pub groups: Option<&'a [String]>,
    /// The user this browser was already signed in as when the sign-in started and finished (password session,
    /// second factor passed): proof of control of that account, used to link it without a takeover.
    pub signed_in_as: Option<&'a str>,
}

/// The user the sign-in is for, and whether their account was just taken over (the console tells them why their
/// password, keys and authenticator are gone).
pub struct Provisioned {
    pub user: UserRow,
    pub took_over: bool,
    /// This sign-in created the user (JIT).
    pub provisioned: bool,
    /// Whether the new session owes a second factor, when it was read on the way (else `finish` reads it).
    pub mfa_owed: Option<bool>,
}

/// Checks that `conn` may speak for `email`: the domain is verified (in force) by the connection's own org, and
/// listed by the connection when it lists domains.
async fn check_domain(state: &AppState, org: &OrgRow, conn: &ConnectionRow, email: &Email) -> Result<repo::domains::DomainRow, SsoFailure> {
    check_listed(org, conn, email)?;
    let d = super::domains::governing(state, email).await?;
    check_governed(org, email, d.as_ref().map(|d| d.org_id.as_str()))?;
    d.ok_or_else(|| SsoFailure::new("server_error", "a checked domain without its row", Some(&org.id)))
}

/// The first half of `check_domain`: a connection that lists domains speaks only for those (the org's default
/// connection also takes its other verified domains: routing sends them there).
fn check_listed(org: &OrgRow, conn: &ConnectionRow, email: &Email) -> Result<(), SsoFailure> {
    let listed: Vec<String> = serde_json::from_str(&conn.domains).unwrap_or_default();
    if conn.is_default == 0 && !listed.is_empty() && !listed.iter().any(|d| d.eq_ignore_ascii_case(email.domain())) {
        return Err(SsoFailure::new("oauth_email_domain_mismatch", format!("{} is outside the connection's domains {listed:?}", email.as_str()), Some(&org.id)));
    }
    Ok(())
}

/// The second half: `governing_org` (the org whose verified domain, in force, holds the address) must be `org`.
fn check_governed(org: &OrgRow, email: &Email, governing_org: Option<&str>) -> Result<(), SsoFailure> {
    let fail = |code: &'static str, detail: String| SsoFailure::new(code, detail, Some(&org.id));
    match governing_org {
        Some(o) if o == org.id => Ok(()),
        Some(_) => Err(fail("sso_email_domain_not_allowed", format!("the IdP asserted {}, at a domain another organization verified", email.as_str()))),
        None => Err(fail(
            "sso_domain_not_verified",
            format!("the IdP asserted {}, but {} is not a verified domain of this organization", email.as_str(), email.domain()),
        )),
    }
}

/// Finds or creates the user for `a` at `conn` (rules above), then applies membership (JIT, auto-join).
pub async fn provision(state: &AppState, org: &OrgRow, conn: &ConnectionRow, a: &Assertion<'_>, meta: &RequestMeta) -> Result<Provisioned, SsoFailure> {
    let now = now_ms();
    let fail = |code: &'static str, detail: String| SsoFailure::new(code, detail, Some(&org.id));
    // A returning person is read with the address's domain (one statement): the domain rules are decided from it
    // exactly as `check_domain` decides them, before anything else. A new person's domain is read on its own.
    check_listed(org, conn, a.email)?;
    let domain = a.email.domain().to_ascii_lowercase();
    let returning = repo::connections::returning(&state.db, &conn.id, a.issuer, a.subject, &org.id, &domain).await?;
    if let Some(r) = &returning {
        let in_force = r.domain_org_id.as_deref().filter(|_| super::domains::not_lapsed(r.domain_lapsed_at, now));
        check_governed(org, a.email, in_force)?;
    }
    let jit = conn.jit_provisioning != 0;
    let default_role = Role::parse(&conn.default_role).unwrap_or(Role::Member);
    let mapped = groups::GroupPolicy::from_column(&conn.group_roles).map(a.groups, default_role);
    let new_person_domain = match returning {
        None => Some(check_domain(state, org, conn, a.email).await?),
        Some(_) => None,
    };
    if mapped == groups::Mapped::NotAllowed {
        return Err(not_in_allowed_group(state, org, conn, a, meta).await?);
    }
    if let Some(r) = returning {
        if let Some((user, mfa_owed)) = returning_unchanged(state, org, conn, a, &mapped, r, now).await? {
            return Ok(Provisioned { user, took_over: false, provisioned: false, mfa_owed: Some(mfa_owed) });
        }
    }
    // Anything else decides from scratch, with the domain's whole row (its auto-join setting).
    let own_domain = match new_person_domain {
        Some(d) => d,
        None => check_domain(state, org, conn, a.email).await?,
    };
    let mut took_over = false;
    let mut created = false;
    let mut tx = crate::repo::begin(&state.db).await?;
    let user = match repo::connections::identity(&mut *tx, &conn.id, a.issuer, a.subject).await? {
        Some(identity) => {
            // The IdP's current address for the subject, and when it was last used (to the minute: a write less
            // per sign-in of a returning user).
            if identity.email != a.email.as_str() || now - identity.last_login_at >= 60_000 {
                repo::connections::touch_identity(&mut *tx, &conn.id, a.subject, a.email.as_str(), now).await?;
            }
            let user = repo::users::by_id(&mut *tx, &identity.user_id).await?.ok_or_else(|| fail("server_error", "identity without user".into()))?;
            // An identity never crosses orgs: an account whose own address another org verified is not this IdP's.
            // (Read on this transaction's connection: taking a second one from the pool here would deadlock the
            // pool under concurrent sign-ins.) When the account's address is the asserted one, `check_domain`
            // above has already found its domain governed by this org.
            let same_address = user.email.eq_ignore_ascii_case(a.email.as_str());
            if let Some(account) = Email::parse(&user.email).ok().filter(|_| !same_address) {
                if super::domains::governing_on(&mut *tx, &account).await?.is_some_and(|d| d.org_id != org.id) {
                    return Err(fail("sso_email_domain_not_allowed", format!("identity {} leads to {}, at another organization's domain", a.subject, user.email)));
                }
            }
            user
        }
        None => {
            let by_email = repo::users::by_email(&mut *tx, a.email.as_str()).await?;
            // One account, one subject per connection: a second entry (another person, or a directory where
            // addresses are neither verified nor unique) that asserts the same address never reaches the account.
            if let Some(u) = &by_email {
                if repo::connections::user_has_identity(&mut *tx, &conn.id, &u.id).await? {
                    return Err(fail("sso_account_conflict", format!("{} already signs in through this connection as another subject than {}", u.email, a.subject)));
                }
            }
            let user = match by_email {
                Some(existing)
                    if existing.email_proven_org.as_deref() == Some(org.id.as_str()) || a.signed_in_as == Some(existing.id.as_str()) =>
                {
                    let how = if a.signed_in_as == Some(existing.id.as_str()) { "own_session" } else { "proven_before" };
                    audit::record_anonymous(&mut *tx, Some(&existing.id), &existing.email, meta, Event {
                        org_id: Some(&org.id),
                        action: "identity.link",
                        target: Some(&existing.id),
                        outcome: Outcome::Success,
                        detail: Some(format!("connection={} sub={} verified_domain={} confirmed_by={how}", conn.id, a.subject, own_domain.name)),
                    })
                    .await?;
                    existing
                }
                Some(existing) => {
                    took_over = true;
                    take_over(&mut tx, Some(&org.id), &format!("connection={}", conn.id), &existing, a, meta, now).await?;
                    existing
                }
                None => {
                    if !jit {
                        return Err(fail("sso_user_not_provisioned", format!("{} is new and JIT provisioning is off", a.email.as_str())));
                    }
                    let user = new_user(a, Some(org.id.clone()), now);
                    repo::users::insert(&mut *tx, &user).await?;
                    created = true;
                    user
                }
            };
            let identity = repo::connections::IdentityRow {
                connection_id: conn.id.clone(),
                issuer: a.issuer.to_string(),
                subject: a.subject.to_string(),
                user_id: user.id.clone(),
                email: a.email.as_str().to_string(),
                last_login_at: now,
            };
            repo::connections::insert_identity(&mut *tx, &identity, now).await?;
            user
        }
    };
    if user.email_proven_org.as_deref() != Some(org.id.as_str()) && user.email == a.email.as_str() {
        repo::users::set_proven(&mut *tx, &user.id, &org.id, now).await?;
    }
    let membership = repo::orgs::with_membership(&mut *tx, &org.id, &user.id).await?;
    let active = membership.as_ref().is_some_and(|m| m.status == "active");
    // The stricter setting wins: a domain that wants approval overrides just-in-time provisioning.
    if !active && own_domain.auto_join == "approval" {
        tx.commit().await?;
        super::domains::file_join_request(state, &own_domain, &user, "sso", meta).await?;
        return Err(fail("join_request_pending", format!("{} asked to join; the domain {} needs approval", user.email, own_domain.name)));
    }
    match membership {
        Some(m) if m.status == "active" => {
            // The groups decide the role at every sign-in (never an owner's: owners are made by an owner).
            if let groups::Mapped::Role(role) = mapped {
                if m.role != role.as_str() && m.role != Role::Owner.as_str() {
                    repo::orgs::set_role(&mut *tx, &org.id, &user.id, role.as_str()).await?;
                    audit::record_anonymous(&mut *tx, Some(&user.id), &user.email, meta, Event {
                        org_id: Some(&org.id),
                        action: "member.role_mapped",
                        target: Some(&user.id),
                        outcome: Outcome::Success,
                        detail: Some(format!("role {} -> {} by the groups of connection={}", m.role, role.as_str(), conn.id)),
                    })
                    .await?;
                }
            }
        }
        _ if !jit && own_domain.auto_join != "auto" => {
            return Err(fail("sso_user_not_provisioned", format!("{} is not a member and JIT provisioning is off", user.email)))
        }
        Some(_) => return Err(fail("sso_user_not_provisioned", format!("{}'s membership is pending approval", user.email))),
        None => {
            let role = match mapped {
                groups::Mapped::Role(role) => role,
                _ => default_role,
            };
            repo::orgs::insert_membership(&mut *tx, &org.id, &user.id, role.as_str(), "active", now).await?;
            audit::record_anonymous(&mut *tx, Some(&user.id), &user.email, meta, Event {
                org_id: Some(&org.id),
                action: "member.jit_provision",
                target: Some(&user.id),
                outcome: Outcome::Success,
                detail: Some(format!("role={} connection={}", role.as_str(), conn.id)),
            })
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Provisioned { user, took_over, provisioned: created, mfa_owed: None })
}

/// The common case, read in one statement with no write lock: a returning person whose identity, account and
/// active membership need no change (same address everywhere, the address already proven by this org, the role
/// the groups map to). Anything else goes through the transaction in `provision`, which decides from scratch.
/// Also answers whether the new session owes a second factor (read in the same statement).
async fn returning_unchanged(
    state: &AppState,
    org: &OrgRow,
    conn: &ConnectionRow,
    a: &Assertion<'_>,
    mapped: &groups::Mapped,
    r: repo::connections::Returning,
    now: i64,
) -> Result<Option<(UserRow, bool)>, SsoFailure> {
    let role = r.member_role.as_deref();
    let role_holds = match mapped {
        groups::Mapped::Role(mapped) => role == Some(mapped.as_str()) || role == Some(Role::Owner.as_str()),
        _ => true,
    };
    let unchanged = r.identity_email == a.email.as_str()
        && r.user.email == a.email.as_str()
        && r.user.email_proven_org.as_deref() == Some(org.id.as_str())
        && r.member_status.as_deref() == Some("active")
        && role_holds;
    if !unchanged {
        return Ok(None);
    }
    // When it was last used, to the minute (a write less per sign-in of someone who just signed in).
    if now - r.last_login_at >= 60_000 {
        repo::connections::touch_identity(&state.db, &conn.id, a.subject, a.email.as_str(), now).await?;
    }
    Ok(Some((r.user, r.mfa_owed != 0)))
}

/// A new account for the person `a` names (JIT): the IdP's name when it is usable, else the address.
pub(crate) fn new_user(a: &Assertion<'_>, email_proven_org: Option<String>, now: i64) -> UserRow {
    let name = a.name.map(|n| n.trim().chars().take(100).collect::<String>()).filter(|n| !n.is_empty() && !n.chars().any(char::is_control));
    UserRow {
        id: new_id(),
        email: a.email.as_str().to_string(),
        name: name.unwrap_or_else(|| a.email.as_str().to_string()),
        password_hash: None,
        created_at: now,
        email_proven_org,
    }
}

/// A person in none of the connection's required groups: refused, and when the subject is already a member
/// through this connection (removed from every mapped group since), the membership ends (an owner's stays: owners
/// are managed by an owner). Nothing is created for them.
async fn not_in_allowed_group(state: &AppState, org: &OrgRow, conn: &ConnectionRow, a: &Assertion<'_>, meta: &RequestMeta) -> Result<SsoFailure, SsoFailure> {
    let code = match conn.protocol.as_str() {
        "saml" => "saml_not_in_allowed_group",
        "ldap" => "ldap_not_in_allowed_group",
        _ => "sso_not_in_allowed_group",
    };
    let groups = a.groups.unwrap_or_default();
    let shown: Vec<&str> = groups.iter().take(10).map(String::as_str).collect();
    let fail = SsoFailure::new(code, format!("{} is in none of the connection's mapped groups (has {}: {shown:?})", a.email.as_str(), groups.len()), Some(&org.id));
    let Some(identity) = repo::connections::identity(&state.db, &conn.id, a.issuer, a.subject).await? else { return Ok(fail) };
    let mut tx = crate::repo::begin(&state.db).await?;
    let removable = repo::orgs::with_membership(&mut *tx, &org.id, &identity.user_id).await?.is_some_and(|m| m.role != Role::Owner.as_str());
    if removable && repo::orgs::delete_membership(&mut *tx, &org.id, &identity.user_id).await? > 0 {
        audit::record_anonymous(&mut *tx, Some(&identity.user_id), &identity.email, meta, Event {
            org_id: Some(&org.id),
            action: "member.removed_by_groups",
            target: Some(&identity.user_id),
            outcome: Outcome::Success,
            detail: Some(format!("no longer in a mapped group of connection={}", conn.id)),
        })
        .await?;
    }
    tx.commit().await?;
    Ok(fail)
}

/// The proven owner of an address takes over the account that someone created with it: every credential the
/// account had is revoked, in the same transaction that links the identity.
pub(crate) async fn take_over(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    org_id: Option<&str>,
    via: &str,
    user: &UserRow,
    a: &Assertion<'_>,
    meta: &RequestMeta,
    now: i64,
) -> Result<(), SsoFailure> {
    let password = repo::users::clear_password(&mut **tx, &user.id, now).await?;
    let sessions = repo::sessions::delete_all_for_user(&mut **tx, &user.id).await?;
    let keys = repo::api_keys::revoke_all_for_user(&mut **tx, &user.id, now).await?;
    let factor = repo::mfa::get(&mut **tx, &user.id).await?.is_some();
    repo::mfa::delete(tx, &user.id).await?;
    let identities = repo::connections::delete_identities_of_user(&mut **tx, &user.id).await?
        + repo::providers::delete_identities_of_user(&mut **tx, &user.id).await?;
    audit::record_anonymous(&mut **tx, Some(&user.id), &user.email, meta, Event {
        org_id,
        action: "identity.takeover",
        target: Some(&user.id),
        outcome: Outcome::Success,
        detail: Some(format!(
            "the address was never proven; proven now by {via} sub={}: password_removed={password} sessions_ended={sessions} api_keys_revoked={keys} second_factor_removed={factor} other_identities_removed={identities}",
            a.subject
        )),
    })
    .await?;
    Ok(())
}

/// How a protocol's sign-in ends: the method and protocol names, where the console should land, and the
/// application to hand the user to when the sign-in was started by one.
pub struct Ending {
    pub method: &'static str,
    pub protocol: &'static str,
    pub return_to: Option<String>,
    pub app: Option<handoff::AppTarget>,
    /// Rate-limit counters the success resets (LDAP's per-name and per-entry attempts), deleted in the same
    /// transaction as the session row.
    pub clear_limits: Vec<String>,
}

/// The one ending of every sign-in at an org's connection: provisioning by the rules above, then `finish`.
pub async fn complete(
    state: &AppState,
    session: &tower_sessions::Session,
    org: &OrgRow,
    conn: &ConnectionRow,
    a: &Assertion<'_>,
    end: Ending,
    meta: &RequestMeta,
) -> Result<String, SsoFailure> {
    let done = provision(state, org, conn, a, meta).await?;
    finish(state, session, &done, Some((org, &conn.id)), a.subject, end, meta).await
}

/// What every sign-in shares once its user is known: the browser session, the audit event, the second factor the
/// org or the user needs, then the console or the application. `at`: the org and connection it signed in through
/// (`None` for an instance provider's sign-in, which belongs to no org). Returns where the browser goes.
pub async fn finish(
    state: &AppState,
    session: &tower_sessions::Session,
    done: &Provisioned,
    at: Option<(&OrgRow, &str)>,
    subject: &str,
    end: Ending,
    meta: &RequestMeta,
) -> Result<String, SsoFailure> {
    let user = &done.user;
    let (org, conn_id) = (at.map(|a| a.0), at.map(|a| a.1));
    let login = Event {
        org_id: org.map(|o| o.id.as_str()),
        action: "sso.login",
        target: conn_id,
        outcome: Outcome::Success,
        detail: Some(format!("protocol={} sub={subject}{}", end.protocol, end.app.as_ref().map(|t| format!(" application={}", t.app.client_id)).unwrap_or_default())),
    };
    let browser_session = super::sessions::establish_and_record(state, session, user, end.method, conn_id, meta, Some(login), &end.clear_limits).await?;
    super::metrics::sign_in(end.method, end.protocol, None);
    if let (Some(target), None) = (&end.app, org) {
        // An application gets a member of one org: the user's only one, under that org's policy.
        return handoff::for_only_org(state, target, user, end.method, &browser_session).await;
    }
    let org = match org {
        Some(o) => o,
        None => {
            let next = if done.took_over { "/account?notice=account_secured".to_string() } else { end.return_to.unwrap_or_else(|| "/orgs".into()) };
            return Ok(if super::mfa::enrolled(state, &user.id).await? { mfa_next(&next) } else { next });
        }
    };
    // The session is intermediate until the second factor when the user has one, or the org requires one.
    let mfa_owed = match done.mfa_owed {
        Some(owed) => owed,
        None => repo::policies::mfa_owed(&state.db, &org.id, &user.id).await?,
    };
    if let Some(target) = &end.app {
        let signed = handoff::Signed {
            user_id: &user.id,
            org_id: &org.id,
            connection_id: conn_id,
            method: end.method,
            protocol: Some(end.protocol),
            subject: Some(subject),
            provisioned: done.provisioned,
        };
        return handoff::hand_off(state, target, &signed, mfa_owed, &browser_session).await;
    }
    // After a takeover the person first learns why their old password, keys and authenticator are gone.
    let next = if done.took_over {
        "/account?notice=account_secured".to_string()
    } else {
        end.return_to.unwrap_or_else(|| format!("/orgs/{}", org.id))
    };
    Ok(if mfa_owed { mfa_next(&next) } else { next })
}

fn mfa_next(next: &str) -> String {
    let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    format!("/mfa?next={enc}")
}
