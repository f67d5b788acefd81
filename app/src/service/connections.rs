//! IdP connections. `/settings/sso` is the view over the org's primary OIDC connection (reference 000): exactly
//! provider, issuer, client id and secret; it creates the connection with JIT on and default role `member`.
use super::audit::{self, Event, Outcome};
use super::domain::{parse_name, Role};
use super::error::{ServiceError, ServiceResult};
use super::safe_http::FetchError;
use super::{new_id, now_ms, rfc3339, Principal, RequestMeta};
use crate::model::{SsoSettings, SsoTestResult};
use crate::repo::{self, connections::ConnectionRow};
use crate::state::AppState;
use serde::{Deserialize, Serialize};

pub const PROVIDERS: &[&str] = &["okta", "azure", "google", "oidc"];

/// Protocol settings of an OIDC connection, stored as JSON (the secret is stored sealed, apart).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcSettings {
    pub issuer_url: String,
    pub client_id: String,
}

pub fn secret_aad(connection_id: &str) -> String {
    format!("connection:{connection_id}:secret")
}

/// The issuer as the IdP names it: absolute https (http only for a loopback host), no query, fragment or
/// discovery suffix. Kept as typed otherwise: the `iss` claim must match it exactly.
pub fn parse_issuer(raw: &str) -> ServiceResult<String> {
    let field = "issuerUrl";
    let s = raw.trim();
    if s.is_empty() {
        return Err(ServiceError::validation(field, "Enter the issuer URL from your identity provider, e.g. https://your-org.okta.com."));
    }
    if s.len() > 2048 {
        return Err(ServiceError::validation(field, "The issuer URL is too long."));
    }
    let url = url::Url::parse(s).map_err(|_| ServiceError::validation(field, "Enter a full URL starting with https://, e.g. https://your-org.okta.com."))?;
    let loopback = super::domain::is_loopback_host(&url);
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(ServiceError::validation(field, "The issuer URL must start with https://.")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(ServiceError::validation(field, "The issuer URL cannot contain a query, a fragment or credentials."));
    }
    if url.path().contains("/.well-known/") {
        return Err(ServiceError::validation(field, "Give the issuer itself, without /.well-known/openid-configuration: Latchkey appends it."));
    }
    Ok(s.to_string())
}

pub(crate) fn parse_client_id(raw: &str) -> ServiceResult<String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 255 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ServiceError::validation("clientId", "Enter the client id from your identity provider's application (no spaces)."));
    }
    Ok(s.to_string())
}

pub(crate) fn parse_client_secret(raw: &str) -> ServiceResult<&str> {
    if raw.is_empty() || raw.len() > 1024 || raw.chars().any(char::is_control) {
        return Err(ServiceError::validation("clientSecret", "Enter the client secret from your identity provider's application."));
    }
    Ok(raw)
}

pub(crate) fn parse_provider(raw: &str) -> ServiceResult<&'static str> {
    PROVIDERS
        .iter()
        .find(|p| **p == raw.trim())
        .copied()
        .ok_or_else(|| ServiceError::validation("provider", "The provider must be one of okta, azure, google or oidc."))
}

pub fn callback_url(state: &AppState) -> String {
    format!("{}/api/auth/sso/callback", state.settings.public_url)
}

async fn view(state: &AppState, slug: &str, c: &ConnectionRow) -> ServiceResult<SsoSettings> {
    let s: OidcSettings = serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("connection settings", e))?;
    let linked_identities = repo::connections::count_identities(&state.db, &c.id).await?;
    Ok(SsoSettings {
        linked_identities,
        connection_id: c.id.clone(),
        provider: c.provider.clone().unwrap_or_else(|| "oidc".into()),
        issuer_url: s.issuer_url,
        client_id: s.client_id,
        client_secret_set: c.secret.is_some(),
        status: c.status.clone(),
        last_tested_at: c.last_tested_at.map(rfc3339),
        last_test_message: c.last_test_message.clone(),
        jit_provisioning: c.jit_provisioning != 0,
        default_role: c.default_role.clone(),
        callback_url: callback_url(state),
        login_url: format!("{}/api/auth/sso/{slug}/login", state.settings.public_url),
    })
}

/// The Identity provider page: the URLs to register, and the settings when there are some. Owner only.
pub async fn sso_page(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<crate::model::SsoPage> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let settings = match repo::connections::primary(&state.db, &a.org.id, "oidc").await? {
        Some(c) => Some(view(state, &a.org.slug, &c).await?),
        None => None,
    };
    Ok(crate::model::SsoPage {
        callback_url: callback_url(state),
        login_url: format!("{}/api/auth/sso/{}/login", state.settings.public_url, a.org.slug),
        settings,
    })
}

pub async fn get_sso(state: &AppState, p: &Principal, org_id: &str) -> ServiceResult<SsoSettings> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let c = repo::connections::primary(&state.db, &a.org.id, "oidc")
        .await?
        .ok_or_else(|| ServiceError::NotFound("This organization has no SSO configuration yet. PUT one to create it.".into()))?;
    view(state, &a.org.slug, &c).await
}

/// Creates or replaces the primary OIDC connection. `client_secret: None` keeps the stored secret (console
/// only; the REST body always carries one).
#[tracing::instrument(skip(state, client_secret, meta), fields(user = %p.user_id))]
pub async fn put_sso(
    state: &AppState,
    p: &Principal,
    org_id: &str,
    provider: &str,
    issuer_url: &str,
    client_id: &str,
    client_secret: Option<&str>,
    meta: &RequestMeta,
) -> ServiceResult<SsoSettings> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let provider = parse_provider(provider)?;
    let settings = OidcSettings { issuer_url: parse_issuer(issuer_url)?, client_id: parse_client_id(client_id)? };
    let secret = client_secret.map(parse_client_secret).transpose()?;
    let settings_json = serde_json::to_string(&settings).map_err(|e| ServiceError::internal("settings json", e))?;
    let now = now_ms();
    let existing = repo::connections::primary(&state.db, &a.org.id, "oidc").await?;
    let mut tx = crate::repo::begin(&state.db).await?;
    let mut unlinked = 0;
    let id = match &existing {
        Some(c) => {
            let before: OidcSettings = serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("connection settings", e))?;
            let issuer_changed = before.issuer_url != settings.issuer_url;
            let sealed = match secret {
                Some(s) => state.secrets.seal(s.as_bytes(), &secret_aad(&c.id))?,
                // The stored secret was given for one issuer and client: it is never sent anywhere else.
                None if issuer_changed || before.client_id != settings.client_id => {
                    return Err(ServiceError::validation(
                        "clientSecret",
                        "Enter the client secret again: the issuer URL or client id changed, and the saved secret is only ever sent to the identity provider it was entered for.",
                    ))
                }
                None => c.secret.clone().ok_or_else(|| ServiceError::validation("clientSecret", "Enter the client secret."))?,
            };
            repo::connections::update_settings(&mut *tx, &c.id, provider, &settings_json, &sealed, now).await?;
            // A subject names a person only at the issuer that assigned it: a new issuer starts with no identities
            // (people link again at their next sign-in, by their verified address).
            if issuer_changed {
                unlinked = repo::connections::delete_identities(&mut *tx, &c.id).await?;
            }
            c.id.clone()
        }
        None => {
            let secret = secret.ok_or_else(|| ServiceError::validation("clientSecret", "Enter the client secret."))?;
            let id = new_id();
            let row = ConnectionRow {
                id: id.clone(),
                org_id: a.org.id.clone(),
                protocol: "oidc".into(),
                name: parse_name("name", &format!("{} OIDC", provider_label(provider)), 100, true)?,
                status: "inactive".into(),
                is_primary: 1,
                is_default: 0,
                provider: Some(provider.into()),
                domains: "[]".into(),
                jit_provisioning: 1,
                default_role: Role::Member.as_str().into(),
                attribute_mapping: "{}".into(),
                group_roles: "{}".into(),
                settings: settings_json,
                secret: Some(state.secrets.seal(secret.as_bytes(), &secret_aad(&id))?),
                last_tested_at: None,
                last_test_message: None,
                created_at: now,
                updated_at: now,
                instance_provider_id: None,
            };
            repo::connections::insert(&mut *tx, &row).await?;
            id
        }
    };
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: if existing.is_some() { "sso.settings.update" } else { "sso.settings.create" },
        target: Some(&id),
        outcome: Outcome::Success,
        detail: Some(format!(
            "provider={provider} issuer={} client_id={} secret_changed={} identities_unlinked={unlinked}",
            settings.issuer_url,
            settings.client_id,
            secret.is_some()
        )),
    })
    .await?;
    tx.commit().await?;
    super::oidc::forget_metadata(state, &id);
    get_sso(state, p, &a.org.id).await
}

pub fn provider_label(provider: &str) -> &'static str {
    match provider {
        "okta" => "Okta",
        "azure" => "Azure AD",
        "google" => "Google Workspace",
        _ => "Generic",
    }
}

pub async fn delete_sso(state: &AppState, p: &Principal, org_id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let c = repo::connections::primary(&state.db, &a.org.id, "oidc")
        .await?
        .ok_or_else(|| ServiceError::NotFound("This organization has no SSO configuration.".into()))?;
    super::policy::guard_connection_delete(state, &a.org.id, &c.id).await?;
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::connections::delete(&mut *tx, &c.id).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "sso.settings.delete",
        target: Some(&c.id),
        outcome: Outcome::Success,
        detail: None,
    })
    .await?;
    tx.commit().await?;
    super::oidc::forget_metadata(state, &c.id);
    Ok(())
}

/// Discovery against the saved issuer: the document must be JSON, name the same issuer, and list the
/// authorization, token and JWKS endpoints; the JWKS must load. The outcome is stored on the connection.
pub async fn test_sso(state: &AppState, p: &Principal, org_id: &str, meta: &RequestMeta) -> ServiceResult<SsoTestResult> {
    let a = super::orgs::authorize(state, p, org_id, Role::Owner).await?;
    let c = repo::connections::primary(&state.db, &a.org.id, "oidc")
        .await?
        .ok_or_else(|| ServiceError::NotFound("This organization has no SSO configuration to test. Save one first.".into()))?;
    let s: OidcSettings = serde_json::from_str(&c.settings).map_err(|e| ServiceError::internal("connection settings", e))?;
    let started = std::time::Instant::now();
    let outcome = discover_and_check(state, &s.issuer_url).await;
    let response_time_ms = started.elapsed().as_millis() as u64;
    let (success, message) = match outcome {
        Ok(n) => (true, format!("SSO configuration is valid: discovery answered, the issuer matches, and the JWKS has {n} key(s).")),
        Err(m) => (false, m),
    };
    let now = now_ms();
    let mut tx = crate::repo::begin(&state.db).await?;
    repo::connections::record_test(&mut *tx, &c.id, if success { "active" } else { "error" }, &message, now).await?;
    audit::record(&mut *tx, p, meta, Event {
        org_id: Some(&a.org.id),
        action: "sso.test",
        target: Some(&c.id),
        outcome: if success { Outcome::Success } else { Outcome::Failure },
        detail: Some(message.clone()),
    })
    .await?;
    tx.commit().await?;
    Ok(SsoTestResult { success, message, response_time_ms })
}

pub(crate) fn fetch_failure(what: &str, e: FetchError) -> String {
    match e {
        FetchError::Blocked(_) => format!("Refused to fetch the {what}: {e}."),
        FetchError::Dns(h) => format!("DNS: the name {h} of the {what} does not resolve. Check the issuer URL."),
        FetchError::Connect(h) => format!("Connect: nothing answered at {h} for the {what}. Is the identity provider up and the URL right?"),
        FetchError::Tls(h, why) => format!("TLS: the certificate of {h} was not accepted ({why})."),
        FetchError::Timeout(h) => format!("Timeout: {h} did not answer the {what} request within 10 seconds."),
        other => format!("Fetching the {what} failed: {other}."),
    }
}

pub(crate) async fn discover_and_check(state: &AppState, issuer: &str) -> Result<usize, String> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let (status, body) = state.sso.http.get(&url).await.map_err(|e| fetch_failure("discovery document", e))?;
    if status != 200 {
        return Err(format!("HTTP status: {url} answered {status}, not 200. Check the issuer URL."));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| format!("Not JSON: {url} did not return a JSON discovery document."))?;
    let said = doc.get("issuer").and_then(|v| v.as_str()).unwrap_or_default();
    if said != issuer {
        return Err(format!("Issuer mismatch: the discovery document names the issuer \"{said}\", but the saved issuer URL is \"{issuer}\". Use exactly the IdP's issuer."));
    }
    for key in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        if doc.get(key).and_then(|v| v.as_str()).is_none_or(str::is_empty) {
            return Err(format!("Missing endpoint: the discovery document has no {key}."));
        }
    }
    let jwks_uri = doc["jwks_uri"].as_str().unwrap_or_default();
    let (status, body) = state.sso.http.get(jwks_uri).await.map_err(|e| fetch_failure("JWKS", e))?;
    if status != 200 {
        return Err(format!("HTTP status: the JWKS at {jwks_uri} answered {status}."));
    }
    let jwks: serde_json::Value = serde_json::from_slice(&body).map_err(|_| format!("Not JSON: the JWKS at {jwks_uri} is not JSON."))?;
    match jwks.get("keys").and_then(|k| k.as_array()) {
        Some(keys) if !keys.is_empty() => Ok(keys.len()),
        _ => Err(format!("The JWKS at {jwks_uri} has no signing keys.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_rules() {
        assert!(parse_issuer("https://your-org.okta.com").is_ok());
        assert!(parse_issuer("https://login.microsoftonline.com/tenant/v2.0").is_ok());
        assert!(parse_issuer("http://127.0.0.1:9000").is_ok(), "http is fine on loopback");
        for bad in ["", "your-org.okta.com", "http://idp.example.com", "ftp://x", "https://x/.well-known/openid-configuration",
            "https://x/?a=b", "https://u:p@x/"] {
            assert!(parse_issuer(bad).is_err(), "{bad}");
        }
    }
}
