//! Sign-in through an instance provider (issue 15, reference 004): "Continue with Google" or the company's own
//! OpenID Provider, configured once by an operator. The OIDC protocol is `service::oidc`'s; this module holds what
//! is particular to providers, then hands over to the shared ending:
//! - The provider's own rules first: the address must be verified at the provider (`email_verified` true, not
//!   merely absent); with `allowedDomains`, the address must be at one of them, and for Google the account's
//!   hosted domain (`hd`) must be one of them too (a consumer account with a work address is not enough).
//! - An address at a domain an org verified by DNS belongs to that org: it signs in only when that org adopted this
//!   provider (workspace SSO), and then exactly as through any connection of the org (`signin::complete`: JIT only
//!   at its verified domains, its policy, its second factor). Otherwise it is refused and told to use the email
//!   step, which routes to the org's own way in. So no provider, however it is configured, reaches an org's members.
//! - Any other address signs in as a person of the instance, identified by (provider, issuer, subject): never by
//!   address alone. An unknown address is registered only when the provider's `autoRegister` is on. An existing
//!   account with that address is linked when this browser is signed in to it. Otherwise only a provider that speaks
//!   with authority for the address (`speaks_for`: Google for gmail.com or the account's hosted domain; any provider
//!   for a domain its `allowedDomains` lists) may take over an account whose address was never proven (a password
//!   sign-up), cleanly, as with org IdPs; an account proven before (by an org's IdP, or by a provider with
//!   authority) is refused, and so is any existing account for a provider without authority: an operator who adds
//!   some company's IdP as a provider does not hand that company's admins everyone else's accounts.
//! - A member of an org that requires SSO gets no session this way (as with a password), and an account whose own
//!   address an org verified since is that org's: a returning identity does not reach it.
use super::{audit_failure, finish, Assertion, Ending, Provisioned, SsoFailure, Start};
use crate::repo::{self, providers::ProviderRow, users::UserRow};
use crate::service::audit::{self, Event, Outcome};
use crate::service::oidc::{self, LoginRedirect, Verified};
use crate::service::{now_ms, RequestMeta};
use crate::state::AppState;

/// `GET /api/auth/oauth/{slug}/login`: the authorization request to provider `slug`, for no org yet.
pub async fn begin(state: &AppState, slug: &str, start: &Start<'_>, meta: &RequestMeta) -> Result<LoginRedirect, SsoFailure> {
    let result = begin_inner(state, slug, start, meta).await;
    if let Err(f) = &result {
        audit_failure(state, meta, f, "oidc").await;
    }
    result
}

async fn begin_inner(state: &AppState, slug: &str, start: &Start<'_>, meta: &RequestMeta) -> Result<LoginRedirect, SsoFailure> {
    oidc::client_limit(state, "login", meta).await?;
    let target = match start.app {
        Some(req) => Some(super::handoff::validate(state, req).await?),
        None => None,
    };
    let slug: String = slug.trim().chars().take(64).collect();
    let row = repo::providers::by_slug(&state.db, &slug)
        .await?
        .ok_or_else(|| SsoFailure::new("oauth_provider_not_found", format!("no instance provider {slug:?}"), None))?;
    let provider_id = row.id.clone();
    let rp = oidc::rp_for_provider(state, row, None)?;
    let return_to = oidc::safe_return_to(start.return_to);
    oidc::redirect(state, &rp, start.login_hint, |state_hash, browser_token| {
        super::flow_at("", "", Some(&provider_id), state_hash, browser_token, return_to, target, oidc::FLOW_TTL_MS)
    })
    .await
}

fn allowed_domains(p: &ProviderRow) -> Vec<String> {
    serde_json::from_str(&p.allowed_domains).unwrap_or_default()
}

/// The provider's own rules on what it proved (module docs). `org_id`: the org whose workspace SSO this is, if any.
pub(crate) fn check(p: &ProviderRow, who: &Verified, org_id: Option<&str>) -> Result<(), SsoFailure> {
    let fail = |code: &'static str, detail: String| SsoFailure::new(code, detail, org_id);
    if who.email_verified != Some(true) {
        return Err(fail("oauth_email_unverified", format!("provider {} did not say {} is verified ({:?})", p.slug, who.email.as_str(), who.email_verified)));
    }
    let allowed = allowed_domains(p);
    if allowed.is_empty() {
        return Ok(());
    }
    if !allowed.iter().any(|d| d.eq_ignore_ascii_case(who.email.domain())) {
        return Err(fail("oauth_email_domain_mismatch", format!("{} is outside provider {}'s allowed domains {allowed:?}", who.email.as_str(), p.slug)));
    }
    if p.kind == "google" && !who.hosted_domain.as_deref().is_some_and(|hd| allowed.iter().any(|d| d.eq_ignore_ascii_case(hd))) {
        return Err(fail(
            "oauth_hosted_domain_mismatch",
            format!("{} signed in with Google hosted domain {:?}, not one of {allowed:?}", who.email.as_str(), who.hosted_domain),
        ));
    }
    Ok(())
}

/// Google at an org: the account must belong to the Workspace of the address's domain (`hd` equal to it), so a
/// personal Google account made with a work address (e.g. kept after leaving) is not the org's member.
pub(crate) fn check_org_google(p: &ProviderRow, email: &crate::service::domain::Email, hd: Option<&str>, org_id: &str) -> Result<(), SsoFailure> {
    if p.kind == "google" && !hd.is_some_and(|hd| hd.eq_ignore_ascii_case(email.domain())) {
        return Err(SsoFailure::new(
            "oauth_hosted_domain_mismatch",
            format!("{} signed in with Google hosted domain {hd:?}, not its own domain's Workspace", email.as_str()),
            Some(org_id),
        ));
    }
    Ok(())
}

/// Whether `p` speaks with authority for `email` (module docs).
fn speaks_for(p: &ProviderRow, email: &crate::service::domain::Email, hd: Option<&str>) -> bool {
    let domain = email.domain();
    let google = p.kind == "google" && (["gmail.com", "googlemail.com"].contains(&domain) || hd.is_some_and(|hd| hd.eq_ignore_ascii_case(domain)));
    google || allowed_domains(p).iter().any(|d| d.eq_ignore_ascii_case(domain))
}

/// The end of a "Continue with …" sign-in (module docs): the org that governs the address, if it adopted this
/// provider; else the instance-level person.
pub async fn complete(
    state: &AppState,
    session: &tower_sessions::Session,
    provider: &ProviderRow,
    a: &Assertion<'_>,
    hd: Option<&str>,
    end: Ending,
    meta: &RequestMeta,
) -> Result<String, SsoFailure> {
    if let Some(d) = crate::service::domains::governing(state, a.email).await? {
        let link = repo::connections::workspace_link(&state.db, &d.org_id).await?;
        let org = repo::orgs::by_id(&state.db, &d.org_id).await?;
        return match (link, org) {
            (Some(link), Some(org)) if link.instance_provider_id.as_deref() == Some(provider.id.as_str()) => {
                check_org_google(provider, a.email, hd, &org.id)?;
                super::complete(state, session, &org, &link, a, end, meta).await
            }
            // Anonymous until it is the org's own flow: not recorded in that org's audit log.
            _ => Err(SsoFailure::new(
                "oauth_domain_uses_other_sign_in",
                format!("{} is at {}, verified by an organization that does not sign in with provider {}", a.email.as_str(), d.name, provider.slug),
                None,
            )),
        };
    }
    let done = provision(state, provider, a, speaks_for(provider, a.email, hd), meta).await?;
    // A member of an org that requires SSO signs in through that org, as with a password.
    crate::service::policy::check_password_sign_in(state, &done.user.id).await.map_err(|e| match e {
        crate::service::ServiceError::SsoRequired(m) => SsoFailure::new("oauth_domain_uses_other_sign_in", m, None),
        other => other.into(),
    })?;
    finish(state, session, &done, None, a.subject, end, meta).await
}

/// Finds, links or registers the instance-level person for (provider, issuer, subject); `authority`: the provider
/// speaks with authority for the address (module docs).
async fn provision(state: &AppState, provider: &ProviderRow, a: &Assertion<'_>, authority: bool, meta: &RequestMeta) -> Result<Provisioned, SsoFailure> {
    let now = now_ms();
    let fail = |code: &'static str, detail: String| SsoFailure::new(code, detail, None);
    let mut tx = crate::repo::begin(&state.db).await?;
    if let Some(identity) = repo::providers::identity(&mut *tx, &provider.id, a.issuer, a.subject).await? {
        if identity.email != a.email.as_str() || now - identity.last_login_at >= 60_000 {
            repo::providers::touch_identity(&mut *tx, &identity, a.email.as_str(), now).await?;
        }
        let user = repo::users::by_id(&mut *tx, &identity.user_id).await?.ok_or_else(|| fail("server_error", "identity without user".into()))?;
        // An account whose own address an org verified since is that org's to sign in.
        if let Ok(own) = crate::service::domain::Email::parse(&user.email) {
            if crate::service::domains::governing_on(&mut *tx, &own).await?.is_some() {
                return Err(fail("oauth_domain_uses_other_sign_in", format!("identity {} leads to {}, at a domain an organization verified", a.subject, user.email)));
            }
        }
        tx.commit().await?;
        return Ok(Provisioned { user, took_over: false, provisioned: false, mfa_owed: None });
    }
    let by_email = repo::users::by_email(&mut *tx, a.email.as_str()).await?;
    // One account, one subject per provider; and whether anyone proved the account's address before.
    let (has_other_subject, proven_before) = match &by_email {
        Some(u) => (
            repo::providers::user_has_identity(&mut *tx, &provider.id, &u.id).await?,
            u.email_proven_org.is_some() || repo::providers::user_proven(&mut *tx, &u.id).await?,
        ),
        None => (false, false),
    };
    let mut took_over = false;
    let mut created = false;
    let user = match by_email {
        Some(u) if has_other_subject => {
            return Err(fail("sso_account_conflict", format!("{} already signs in with provider {} as another subject than {}", u.email, provider.slug, a.subject)));
        }
        Some(u) if a.signed_in_as == Some(u.id.as_str()) => {
            record(&mut tx, &u, meta, "identity.link", format!("provider={} sub={} confirmed_by=own_session", provider.slug, a.subject)).await?;
            u
        }
        Some(u) if proven_before || !authority => {
            return Err(fail(
                "sso_email_in_use",
                format!(
                    "{} has an account (proven before: {proven_before}; provider {} speaks with authority for it: {authority}); sign in to it, then continue with the provider to link",
                    u.email, provider.slug
                ),
            ));
        }
        Some(u) => {
            took_over = true;
            super::take_over(&mut tx, None, &format!("provider={}", provider.slug), &u, a, meta, now).await?;
            u
        }
        None if provider.auto_register == 0 => {
            return Err(fail("oauth_user_not_registered", format!("{} has no account and provider {} does not register new users", a.email.as_str(), provider.slug)));
        }
        None => {
            let user = super::new_user(a, None, now);
            repo::users::insert(&mut *tx, &user).await?;
            record(&mut tx, &user, meta, "user.signup", format!("provider={} sub={}", provider.slug, a.subject)).await?;
            created = true;
            user
        }
    };
    let identity = repo::providers::ProviderIdentityRow {
        provider_id: provider.id.clone(),
        issuer: a.issuer.to_string(),
        subject: a.subject.to_string(),
        user_id: user.id.clone(),
        email: a.email.as_str().to_string(),
        last_login_at: now,
        proven: i64::from(authority),
    };
    repo::providers::insert_identity(&mut *tx, &identity, now).await?;
    tx.commit().await?;
    Ok(Provisioned { user, took_over, provisioned: created, mfa_owed: None })
}

async fn record(tx: &mut sqlx::Transaction<'static, sqlx::Any>, user: &UserRow, meta: &RequestMeta, action: &'static str, detail: String) -> Result<(), SsoFailure> {
    audit::record_anonymous(&mut **tx, Some(&user.id), &user.email, meta, Event { org_id: None, action, target: Some(&user.id), outcome: Outcome::Success, detail: Some(detail) })
        .await?;
    Ok(())
}
