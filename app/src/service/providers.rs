//! Instance-level sign-in providers (issue 15, reference 004), operators only: "Continue with Google" or any
//! OpenID Provider for the whole instance. `google` uses Google's published endpoints (discovery of
//! https://accounts.google.com); `oidc` takes an `issuer` (discovery) and/or explicit `authUrl`, `tokenUrl` and
//! `userinfoUrl`. The client secret is sealed with the secret box; neither it nor the client id ever comes back.
use super::audit::{self, Event, Outcome};
use super::domain::{parse_id, parse_name};
use super::error::{ServiceError, ServiceResult};
use super::{new_id, now_ms, rfc3339, Principal, RequestMeta};
use crate::model::{ProviderInfo, SsoTestResult};
use crate::repo::{self, providers::ProviderRow};
use crate::state::AppState;

pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
pub const DEFAULT_SCOPES: &str = "openid email profile";
const MAX_ALLOWED_DOMAINS: usize = 50;

/// What an operator sends; `None` keeps the current value on update. `allowed_domains` is already split.
#[derive(Debug, Default, Clone)]
pub struct ProviderInput {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub kind: Option<String>,
    pub issuer: Option<String>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Option<String>,
    pub auto_register: Option<bool>,
    pub allowed_domains: Option<Vec<String>>,
}

fn aad(id: &str) -> String {
    format!("oauth_provider:{id}:client_secret")
}

/// A URL-safe, unique name in the instance's sign-in URLs: 2 to 48 of a-z, 0-9 and `-`, not starting with `-`.
fn parse_slug(raw: &str) -> ServiceResult<String> {
    let s = raw.trim();
    let ok = (2..=48).contains(&s.len()) && !s.starts_with('-') && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(ServiceError::validation("slug", "The slug is 2 to 48 of a-z, 0-9 and - (not starting with -), e.g. google or keycloak."));
    }
    Ok(s.to_string())
}

fn parse_kind(raw: &str) -> ServiceResult<&'static str> {
    match raw.trim() {
        "google" => Ok("google"),
        "oidc" => Ok("oidc"),
        _ => Err(ServiceError::validation("type", "type is google (Google's preset endpoints) or oidc (any OpenID Provider).")),
    }
}

/// An issuer or endpoint: absolute https (http only on a loopback host), no fragment or credentials. Empty clears.
fn parse_endpoint(field: &'static str, raw: &str) -> ServiceResult<Option<String>> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || ServiceError::validation(field, format!("{field} must be a full https:// URL (http only for 127.0.0.1, [::1] or localhost), without #fragment or credentials."));
    if s.len() > 2048 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let url = url::Url::parse(s).map_err(|_| bad())?;
    let loopback = super::domain::is_loopback_host(&url);
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad());
    }
    if field == "issuer" && (url.query().is_some() || url.path().contains("/.well-known/")) {
        return Err(ServiceError::validation(field, "Give the issuer itself, without a query or /.well-known/openid-configuration: Latchkey appends it."));
    }
    Ok(Some(s.to_string()))
}

/// Space-separated OAuth scope tokens (RFC 6749 §3.3).
fn parse_scopes(raw: &str) -> ServiceResult<String> {
    let tokens: Vec<&str> = raw.split_whitespace().collect();
    let token_ok = |t: &&str| t.len() <= 128 && t.chars().all(|c| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c));
    if tokens.is_empty() || tokens.len() > 30 || !tokens.iter().all(token_ok) {
        return Err(ServiceError::validation("scopes", "scopes are space-separated OAuth scopes, e.g. \"openid email profile\"."));
    }
    let mut out: Vec<&str> = Vec::new();
    for t in tokens {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out.join(" "))
}

fn parse_allowed_domains(raw: &[String]) -> ServiceResult<Vec<String>> {
    if raw.len() > MAX_ALLOWED_DOMAINS {
        return Err(ServiceError::validation("allowedDomains", format!("At most {MAX_ALLOWED_DOMAINS} allowed domains.")));
    }
    let mut out: Vec<String> = Vec::new();
    for d in raw.iter().map(|d| d.trim()).filter(|d| !d.is_empty()) {
        let d = super::domains::parse_domain(d).map_err(|e| match e {
            ServiceError::Validation { message, .. } => ServiceError::validation("allowedDomains", message),
            other => other,
        })?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Applies `input` over `row`, validating every field it sets, then the whole: a `google` provider uses the preset
/// (no custom endpoints); an `oidc` one needs an issuer or all three endpoints.
fn apply(state: &AppState, row: &mut ProviderRow, input: &ProviderInput) -> ServiceResult<()> {
    if let Some(v) = &input.name {
        row.name = parse_name("name", v, 100, true)?;
    }
    if let Some(v) = &input.slug {
        row.slug = parse_slug(v)?;
    }
    if let Some(v) = &input.kind {
        row.kind = parse_kind(v)?.into();
    }
    for (field, value, target) in [
        ("issuer", &input.issuer, &mut row.issuer),
        ("authUrl", &input.auth_url, &mut row.auth_url),
        ("tokenUrl", &input.token_url, &mut row.token_url),
        ("userinfoUrl", &input.userinfo_url, &mut row.userinfo_url),
    ] {
        if let Some(v) = value {
            *target = parse_endpoint(field, v)?;
        }
    }
    if let Some(v) = &input.client_id {
        row.client_id = super::connections::parse_client_id(v)?;
    }
    if let Some(v) = &input.client_secret {
        let v = v.trim();
        if v.is_empty() || v.len() > 1024 {
            return Err(ServiceError::validation("clientSecret", "Enter the client secret from the provider's application."));
        }
        row.client_secret = state.secrets.seal(v.as_bytes(), &aad(&row.id))?;
    }
    if let Some(v) = &input.scopes {
        row.scopes = parse_scopes(v)?;
    }
    if let Some(v) = input.auto_register {
        row.auto_register = i64::from(v);
    }
    if let Some(v) = &input.allowed_domains {
        row.allowed_domains = serde_json::to_string(&parse_allowed_domains(v)?).map_err(|e| ServiceError::internal("json", e))?;
    }
    if row.kind == "google" {
        if row.auth_url.is_some() || row.token_url.is_some() || row.userinfo_url.is_some() || row.issuer.as_deref().is_some_and(|i| i != GOOGLE_ISSUER) {
            return Err(ServiceError::validation("type", "A google provider uses Google's published endpoints: leave issuer, authUrl, tokenUrl and userinfoUrl empty."));
        }
        row.issuer = Some(GOOGLE_ISSUER.into());
    } else if row.issuer.is_none() && (row.auth_url.is_none() || row.token_url.is_none() || row.userinfo_url.is_none()) {
        return Err(ServiceError::validation(
            "issuer",
            "An oidc provider needs its issuer (Latchkey reads the rest from discovery), or all of authUrl, tokenUrl and userinfoUrl.",
        ));
    }
    Ok(())
}

fn info(state: &AppState, row: ProviderRow) -> ProviderInfo {
    ProviderInfo {
        allowed_domains: serde_json::from_str(&row.allowed_domains).unwrap_or_default(),
        id: row.id,
        name: row.name,
        slug: row.slug,
        kind: row.kind,
        issuer: row.issuer,
        auth_url: row.auth_url,
        token_url: row.token_url,
        userinfo_url: row.userinfo_url,
        scopes: row.scopes,
        auto_register: row.auto_register != 0,
        client_secret_set: !row.client_secret.is_empty(),
        callback_url: super::connections::callback_url(state),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("No sign-in provider with that id.".into())
}

async fn load(state: &AppState, id: &str) -> ServiceResult<ProviderRow> {
    let id = parse_id("id", id).map_err(|_| not_found())?;
    repo::providers::by_id(&state.db, &id).await?.ok_or_else(not_found)
}

fn conflict(e: sqlx::Error) -> ServiceError {
    super::error::on_conflict(e, "Another sign-in provider already uses this slug: choose another.")
}

/// What the audit log keeps of a provider: never the client id or secret.
fn detail(row: &ProviderRow) -> String {
    format!("slug={} type={} issuer={} auto_register={} allowed_domains={}", row.slug, row.kind, row.issuer.as_deref().unwrap_or("-"), row.auto_register != 0, row.allowed_domains)
}

async fn record(state: &AppState, p: &Principal, meta: &RequestMeta, action: &'static str, row: &ProviderRow) -> ServiceResult<()> {
    audit::record(&state.db, p, meta, Event { org_id: None, action, target: Some(&row.id), outcome: Outcome::Success, detail: Some(detail(row)) }).await?;
    Ok(())
}

pub async fn create(state: &AppState, p: &Principal, input: &ProviderInput, meta: &RequestMeta) -> ServiceResult<ProviderInfo> {
    super::operators::require(&state.db, p).await?;
    for (field, missing, what) in [
        ("name", input.name.is_none(), "Enter the provider's display name, e.g. Google."),
        ("slug", input.slug.is_none(), "Choose a slug, e.g. google."),
        ("type", input.kind.is_none(), "Choose the type: google or oidc."),
        ("clientId", input.client_id.is_none(), "Enter the client id of the application registered at the provider."),
        ("clientSecret", input.client_secret.is_none(), "Enter the client secret of the application registered at the provider."),
    ] {
        if missing {
            return Err(ServiceError::validation(field, what));
        }
    }
    let now = now_ms();
    let mut row = ProviderRow {
        id: new_id(),
        name: String::new(),
        slug: String::new(),
        kind: String::new(),
        issuer: None,
        auth_url: None,
        token_url: None,
        userinfo_url: None,
        client_id: String::new(),
        client_secret: Vec::new(),
        scopes: DEFAULT_SCOPES.into(),
        auto_register: 1,
        allowed_domains: "[]".into(),
        created_at: now,
        updated_at: now,
    };
    apply(state, &mut row, input)?;
    repo::providers::insert(&state.db, &row).await.map_err(conflict)?;
    record(state, p, meta, "provider.create", &row).await?;
    Ok(info(state, row))
}

pub async fn list(state: &AppState, p: &Principal) -> ServiceResult<Vec<ProviderInfo>> {
    super::operators::require(&state.db, p).await?;
    Ok(repo::providers::list(&state.db).await?.into_iter().map(|r| info(state, r)).collect())
}

pub async fn get(state: &AppState, p: &Principal, id: &str) -> ServiceResult<ProviderInfo> {
    super::operators::require(&state.db, p).await?;
    Ok(info(state, load(state, id).await?))
}

pub async fn update(state: &AppState, p: &Principal, id: &str, input: &ProviderInput, meta: &RequestMeta) -> ServiceResult<ProviderInfo> {
    super::operators::require(&state.db, p).await?;
    let mut row = load(state, id).await?;
    // Switching to google drops the custom endpoints rather than refusing the change.
    if input.kind.as_deref().map(str::trim) == Some("google") && row.kind != "google" {
        (row.issuer, row.auth_url, row.token_url, row.userinfo_url) = (None, None, None, None);
    }
    apply(state, &mut row, input)?;
    row.updated_at = now_ms();
    repo::providers::update(&state.db, &row).await.map_err(conflict)?;
    super::oidc::forget_metadata(state, &format!("provider:{}", row.id));
    record(state, p, meta, "provider.update", &row).await?;
    Ok(info(state, row))
}

pub async fn delete(state: &AppState, p: &Principal, id: &str, meta: &RequestMeta) -> ServiceResult<()> {
    super::operators::require(&state.db, p).await?;
    let row = load(state, id).await?;
    let users = repo::connections::orgs_using_provider(&state.db, &row.id).await?;
    if !users.is_empty() {
        return Err(ServiceError::Conflict(format!(
            "{} is the workspace SSO of {} organization(s): {}. Their owners must choose another way to sign in first.",
            row.name,
            users.len(),
            users.join(", ")
        )));
    }
    if !repo::providers::delete(&state.db, &row.id).await? {
        return Err(not_found());
    }
    super::oidc::forget_metadata(state, &format!("provider:{}", row.id));
    record(state, p, meta, "provider.delete", &row).await
}

/// Tests a provider the way its sign-in will use it, through the same SSRF guard: with an issuer, discovery (the
/// issuer must match) and the JWKS; with explicit endpoints only, that each endpoint answers at all (any HTTP status:
/// they expect a browser or credentials). Audited with the outcome.
pub async fn test(state: &AppState, p: &Principal, id: &str, meta: &RequestMeta) -> ServiceResult<SsoTestResult> {
    super::operators::require(&state.db, p).await?;
    let row = load(state, id).await?;
    let started = std::time::Instant::now();
    let outcome = check_reachable(state, &row).await;
    let response_time_ms = started.elapsed().as_millis() as u64;
    let (success, message) = match outcome {
        Ok(m) => (true, m),
        Err(m) => (false, m),
    };
    audit::record(&state.db, p, meta, Event {
        org_id: None,
        action: "provider.test",
        target: Some(&row.id),
        outcome: if success { Outcome::Success } else { Outcome::Failure },
        detail: Some(message.clone()),
    })
    .await?;
    Ok(SsoTestResult { success, message, response_time_ms })
}

/// Discovery (the issuer must match) and the JWKS, or, with explicit endpoints, that each answers; a `google`
/// provider is checked at the Google issuer this instance uses.
pub(crate) async fn check_reachable(state: &AppState, row: &ProviderRow) -> Result<String, String> {
    let issuer = if row.kind == "google" { Some(state.settings.google_issuer.as_str()) } else { row.issuer.as_deref() };
    match issuer {
        Some(issuer) => super::connections::discover_and_check(state, issuer)
            .await
            .map(|n| format!("The provider is reachable: discovery answered, the issuer matches, and the JWKS has {n} key(s).")),
        None => reach_endpoints(state, row).await,
    }
}

async fn reach_endpoints(state: &AppState, row: &ProviderRow) -> Result<String, String> {
    for (what, url) in [("authorization endpoint", &row.auth_url), ("token endpoint", &row.token_url), ("userinfo endpoint", &row.userinfo_url)] {
        let url = url.as_deref().ok_or_else(|| format!("The {what} is not set."))?;
        state.sso.http.get(url).await.map_err(|e| super::connections::fetch_failure(what, e))?;
    }
    Ok("The provider is reachable: its authorization, token and userinfo endpoints answer.".into())
}

/// The sealed client secret, opened (for the sign-in flow).
pub fn client_secret(state: &AppState, row: &ProviderRow) -> ServiceResult<String> {
    let plain = state.secrets.open(&row.client_secret, &aad(&row.id))?;
    String::from_utf8(plain).map_err(|e| ServiceError::internal("provider secret", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_scopes_and_endpoints_are_checked() {
        assert!(parse_slug("google").is_ok() && parse_slug("key-cloak2").is_ok());
        for bad in ["", "a", "-x", "Google", "a b", "a/b", &"x".repeat(49)] {
            assert!(parse_slug(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_scopes(" openid  email openid ").unwrap(), "openid email");
        assert!(parse_scopes("").is_err() && parse_scopes("open\"id").is_err());
        assert_eq!(parse_endpoint("issuer", "").unwrap(), None);
        assert!(parse_endpoint("issuer", "https://idp.example.com/realms/main").unwrap().is_some());
        assert!(parse_endpoint("authUrl", "http://127.0.0.1:8080/auth").unwrap().is_some());
        for bad in ["http://idp.example.com", "https://u:p@idp.example.com", "https://idp.example.com/#x", "ftp://idp.example.com", "idp.example.com"] {
            assert!(parse_endpoint("authUrl", bad).is_err(), "{bad}");
        }
        assert!(parse_endpoint("issuer", "https://idp.example.com/.well-known/openid-configuration").is_err());
    }
}
