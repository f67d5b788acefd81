//! `/api/admin/oauth/providers`: the instance's sign-in providers (reference 004), operators only. Bodies take
//! camelCase like the rest of the API and reference 004's snake_case names too; `allowedDomains` is a list or
//! reference 004's comma-separated string. `clientId` and `clientSecret` are never returned.
use super::caller::Caller;
use super::envelope::{ok, ApiError, Json, Path};
use super::openapi::{Done, Envelope, IdPath};
use app::model::{ProviderInfo, SsoTestResult};
use app::service::providers::{self, ProviderInput};
use app::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

/// A list of domains, or one string of comma-separated domains (reference 004).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Domains {
    List(Vec<String>),
    Joined(String),
}

impl Domains {
    pub(super) fn split(self) -> Vec<String> {
        match self {
            Domains::List(v) => v,
            Domains::Joined(s) => s.split(',').map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect(),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    slug: Option<String>,
    /// `google` or `oidc`.
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default, alias = "auth_url")]
    auth_url: Option<String>,
    #[serde(default, alias = "token_url")]
    token_url: Option<String>,
    #[serde(default, alias = "userinfo_url")]
    userinfo_url: Option<String>,
    /// Write-only.
    #[serde(default, alias = "client_id")]
    client_id: Option<String>,
    /// Write-only: sealed at rest, never returned.
    #[serde(default, alias = "client_secret")]
    client_secret: Option<String>,
    /// Space-separated; default `openid email profile`.
    #[serde(default)]
    scopes: Option<String>,
    /// Create accounts for people who sign in for the first time (default true).
    #[serde(default, alias = "auto_register")]
    auto_register: Option<bool>,
    /// Only people at these email domains may sign in (empty: anyone the provider vouches for).
    #[serde(default, alias = "allowed_domains")]
    allowed_domains: Option<Domains>,
}

impl From<ProviderBody> for ProviderInput {
    fn from(b: ProviderBody) -> Self {
        ProviderInput {
            name: b.name,
            slug: b.slug,
            kind: b.kind,
            issuer: b.issuer,
            auth_url: b.auth_url,
            token_url: b.token_url,
            userinfo_url: b.userinfo_url,
            client_id: b.client_id,
            client_secret: b.client_secret,
            scopes: b.scopes,
            auto_register: b.auto_register,
            allowed_domains: b.allowed_domains.map(Domains::split),
        }
    }
}

#[utoipa::path(
    post, path = "/admin/oauth/providers", tag = "admin", operation_id = "provider_create", summary = "Add an instance sign-in provider: google (preset) or any OpenID Provider (operators only)",
    request_body = ProviderBody,
    responses((status = 201, description = "The provider (never its client id or secret)", body = Envelope<ProviderInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn create(State(state): State<AppState>, c: Caller, Json(b): Json<ProviderBody>) -> Result<Response, ApiError> {
    let created = providers::create(&state, &c.principal, &b.into(), &c.meta).await?;
    Ok(ok(StatusCode::CREATED, "Sign-in provider added. Register the callback URL at the provider.", created))
}

#[utoipa::path(
    get, path = "/admin/oauth/providers", tag = "admin", operation_id = "provider_list", summary = "The instance's sign-in providers (operators only)",
    responses((status = 200, description = "The providers", body = Envelope<Vec<ProviderInfo>>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn list(State(state): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", providers::list(&state, &c.principal).await?))
}

#[utoipa::path(
    get, path = "/admin/oauth/providers/{id}", tag = "admin", operation_id = "provider_get", summary = "One sign-in provider (operators only)",
    params(IdPath),
    responses((status = 200, description = "The provider", body = Envelope<ProviderInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn get(State(state): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", providers::get(&state, &c.principal, &id).await?))
}

#[utoipa::path(
    put, path = "/admin/oauth/providers/{id}", tag = "admin", operation_id = "provider_update", summary = "Change a sign-in provider: any subset of the fields (operators only)",
    params(IdPath), request_body = ProviderBody,
    responses((status = 200, description = "The provider", body = Envelope<ProviderInfo>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn update(State(state): State<AppState>, c: Caller, Path(id): Path<String>, Json(b): Json<ProviderBody>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "Sign-in provider updated", providers::update(&state, &c.principal, &id, &b.into(), &c.meta).await?))
}

#[utoipa::path(
    delete, path = "/admin/oauth/providers/{id}", tag = "admin", operation_id = "provider_delete", summary = "Delete a sign-in provider (operators only)",
    params(IdPath),
    responses((status = 200, description = "Deleted", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn delete(State(state): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    providers::delete(&state, &c.principal, &id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Sign-in provider deleted", ()))
}

#[utoipa::path(
    post, path = "/admin/oauth/providers/{id}/test", tag = "admin", operation_id = "provider_test",
    summary = "Test a sign-in provider: discovery and keys (with an issuer) or that its endpoints answer, timed (operators only)",
    params(IdPath),
    responses((status = 200, description = "The outcome (also when the test failed: see `success`)", body = Envelope<SsoTestResult>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn test(State(state): State<AppState>, c: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let r = providers::test(&state, &c.principal, &id, &c.meta).await?;
    let message = r.message.clone();
    Ok(ok(StatusCode::OK, &message, r))
}
