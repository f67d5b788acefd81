//! Workspace SSO (issue 15, reference 004): an org owner adopts one of the instance's providers for the org. It
//! is stored as a connection of the org that points at the provider (`instance_provider_id`; the provider's
//! endpoints and secret are used, none are copied), so everything a connection means holds for it: identities per
//! connection, JIT only at domains the org verified by DNS (`autoProvision`), routing of the email step, the
//! security policy (`enforceSso` is `authRequired = sso`, with its lockout guard), sessions ended on removal.
use super::audit::{self, Event, Outcome};
use super::domain::Role;
use super::error::{ServiceError, ServiceResult};
use super::{new_id, now_ms, Principal, RequestMeta};
use crate::model::{ProviderButton, WorkspaceSso};
use crate::repo::{self, connections::ConnectionRow, providers::ProviderRow};
use crate::state::AppState;

/// What an owner sends; `None` keeps the current value (or the default on the first PUT).
#[derive(Debug, Default, Clone)]
pub struct WorkspaceInput {
    pub provider_id: Option<String>,
    pub enforce_sso: Option<bool>,
    pub auto_provision: Option<bool>,
    pub allowed_domains: Option<Vec<String>>,
}

fn login_url(state: &AppState, slug: &str) -> String {
    format!("{}/api/auth/oauth/{slug}/login", state.settings.public_url)
}

/// The providers anyone may sign in with: the buttons of the sign-in page.
pub async fn buttons(state: &AppState) -> ServiceResult<Vec<ProviderButton>> {
    Ok(repo::providers::list(&state.db)
        .await?
        .into_iter()
        .map(|p| ProviderButton { login_url: login_url(state, &p.slug), id: p.id, name: p.name, slug: p.slug, kind: p.kind })
        .collect())
}

async fn view(state: &AppState, org_id: &str, c: &ConnectionRow) -> ServiceResult<WorkspaceSso> {
    let provider = match &c.instance_provider_id {
        Some(id) => repo::providers::by_id(&state.db, id).await?,
        None => None,
    };
    let policy = repo::policies::get(&state.db, org_id).await?;
    Ok(WorkspaceSso {
        provider_id: c.instance_provider_id.clone().unwrap_or_default(),
        provider_name: provider.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
        enforce_sso: policy.is_some_and(|p| p.auth_required == "sso"),
        auto_provision: c.jit_provisioning != 0,
        allowed_domains: serde_json::from_str(&c.domains).unwrap_or_default(),
        connection_id: c.id.clone(),
        status: c.status.clone(),
        last_test_message: c.last_test_message.clone(),
        login_url: provider.map(|p| login_url(state, &p.slug)).unwrap_or_default(),
    })
}

fn none_yet() -> ServiceError {
    ServiceError::NotFound("This organization uses no instance provider. PUT one (providerId from GET /api/auth/oauth/providers) to adopt it.".into())
}

pub async fn get(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<WorkspaceSso> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let c = repo::connections::workspace_link(&state.db, &a.org.id).await?.ok_or_else(none_yet)?;
    view(state, &a.org.id, &c).await
}

/// Adopts (or changes) the org's instance provider. The provider is checked now (discovery or its endpoints,
/// through the SSRF guard): the link is `active` only when it answered, which the lockout guard of `enforceSso`
/// requires, together with an owner who signed in through it.
pub async fn put(state: &AppState, p: &Principal, org_id: &str, input: &WorkspaceInput, meta: &RequestMeta) -> ServiceResult<WorkspaceSso> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let existing = repo::connections::workspace_link(&state.db, &a.org.id).await?;
    let provider_id = match (&input.provider_id, &existing) {
        (Some(id), _) => id.trim().to_string(),
        (None, Some(c)) => c.instance_provider_id.clone().unwrap_or_default(),
        (None, None) => return Err(ServiceError::validation("providerId", "Choose the instance provider to use (GET /api/auth/oauth/providers lists them).")),
    };
    let provider: ProviderRow = match super::domain::parse_id("providerId", &provider_id) {
        Ok(id) => repo::providers::by_id(&state.db, &id).await?,
        Err(_) => None,
    }
    .ok_or_else(|| ServiceError::validation("providerId", "No instance provider has that id (GET /api/auth/oauth/providers lists them)."))?;
    let domains = match &input.allowed_domains {
        Some(raw) => {
            let raw: Vec<String> = raw.iter().filter(|r| !r.trim().is_empty()).cloned().collect();
            super::sso_connections::own_domains(state, &a.org.id, "allowedDomains", &raw).await?
        }
        None => existing.as_ref().map(|c| serde_json::from_str(&c.domains).unwrap_or_default()).unwrap_or_default(),
    };
    let auto_provision = input.auto_provision.or(existing.as_ref().map(|c| c.jit_provisioning != 0)).unwrap_or(false);
    let (ok, message) = match super::providers::check_reachable(state, &provider).await {
        Ok(m) => (true, m),
        Err(m) => (false, m),
    };
    // Under `sso`, a new provider (whose people must sign in afresh) or one that does not answer must leave the org
    // a way in: the same guard as deleting the link.
    if let Some(c) = &existing {
        if c.instance_provider_id.as_deref() != Some(provider.id.as_str()) || !ok {
            super::policy::guard_connection_delete(state, &a.org.id, &c.id).await?;
        }
    }
    let now = now_ms();
    let settings = serde_json::json!({"issuerUrl": provider.issuer.clone().unwrap_or_default(), "clientId": ""}).to_string();
    let mut tx = crate::repo::begin(&state.db).await?;
    let (action, id) = match &existing {
        Some(c) => {
            let changed_provider = c.instance_provider_id.as_deref() != Some(provider.id.as_str());
            if changed_provider {
                // Subjects of another IdP mean nothing here: the people sign in (and link) afresh.
                repo::connections::delete_identities(&mut *tx, &c.id).await?;
                repo::sessions::delete_for_connection(&mut *tx, &c.id).await?;
                repo::connections::set_instance_provider(&mut *tx, &c.id, &provider.id).await?;
            }
            let row = ConnectionRow {
                name: provider.name.clone(),
                status: if ok { "active".into() } else { "error".into() },
                domains: serde_json::to_string(&domains).unwrap_or_else(|_| "[]".into()),
                jit_provisioning: i64::from(auto_provision),
                settings: settings.clone(),
                last_tested_at: Some(now),
                last_test_message: Some(message.clone()),
                updated_at: now,
                ..c.clone()
            };
            repo::connections::update(&mut *tx, &row).await?;
            ("connection.update", c.id.clone())
        }
        None => {
            if repo::connections::count_for_org(&mut *tx, &a.org.id).await? >= super::sso_connections::MAX_CONNECTIONS_PER_ORG {
                return Err(ServiceError::Conflict("This organization has as many connections as it may: delete one you no longer use first.".into()));
            }
            let row = ConnectionRow {
                id: new_id(),
                org_id: a.org.id.clone(),
                protocol: "oidc".into(),
                name: provider.name.clone(),
                status: if ok { "active".into() } else { "error".into() },
                is_primary: 0,
                is_default: 0,
                provider: Some("instance".into()),
                domains: serde_json::to_string(&domains).unwrap_or_else(|_| "[]".into()),
                jit_provisioning: i64::from(auto_provision),
                default_role: Role::Member.as_str().into(),
                attribute_mapping: "{}".into(),
                group_roles: "{}".into(),
                settings: settings.clone(),
                secret: None,
                last_tested_at: Some(now),
                last_test_message: Some(message.clone()),
                created_at: now,
                updated_at: now,
                instance_provider_id: Some(provider.id.clone()),
            };
            repo::connections::insert(&mut *tx, &row).await?;
            ("connection.create", row.id)
        }
    };
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action,
        target: Some(&id),
        outcome: Outcome::Success,
        detail: Some(format!("workspace SSO: provider={} auto_provision={auto_provision} allowed_domains={domains:?} check={}", provider.slug, if ok { "passed" } else { "failed" })),
    })
    .await?;
    tx.commit().await?;
    super::oidc::forget_metadata(state, &id);
    // The policy is the one source of truth for enforcement: changed through it, so its lockout guard applies.
    if let Some(enforce) = input.enforce_sso {
        let current = super::policy::get_enforcement(state, p, &a.org.id).await?;
        if current.enforced != enforce {
            super::policy::put_enforcement(state, p, &a.org.id, enforce, &current.exempt_roles, meta).await?;
        }
    }
    let c = repo::connections::workspace_link(&state.db, &a.org.id).await?.ok_or_else(none_yet)?;
    view(state, &a.org.id, &c).await
}

/// Stops using the instance provider: the connection is deleted (lockout guard, sessions ended, audited).
pub async fn delete(state: &AppState, p: &Principal, org_id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let c = repo::connections::workspace_link(&state.db, &a.org.id).await?.ok_or_else(none_yet)?;
    super::sso_connections::delete(state, p, &a.org.id, &c.id, meta).await
}
