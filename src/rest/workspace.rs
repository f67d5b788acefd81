//! Instance providers from the sign-in side (issue 15): the public list of "Continue with …" buttons, the start of
//! such a sign-in (it ends at the shared callback), and an org's workspace SSO (owner only).
use super::caller::{Caller, Meta};
use super::envelope::{ok, ApiError, Json, Path};
use super::openapi::{Done, Envelope, OrgPath};
use super::providers::Domains;
use super::sso::{to_idp, LoginQuery};
use app::model::{ProviderButton, WorkspaceSso};
use app::service::signin;
use app::service::workspace_sso::{self, WorkspaceInput};
use app::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

#[utoipa::path(
    get, path = "/auth/oauth/providers", tag = "sign-in", summary = "The instance's sign-in providers, as the sign-in page's \"Continue with …\" buttons",
    responses((status = 200, description = "The providers (no credentials)", body = Envelope<Vec<ProviderButton>>)),
    security(())
)]
pub async fn buttons(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", workspace_sso::buttons(&state).await?))
}

#[utoipa::path(
    get, path = "/auth/oauth/{slug}/login", tag = "sign-in", summary = "Start a sign-in with an instance provider: redirects to it (or to the error page with a code)",
    params(("slug" = String, Path, description = "The provider's slug"), LoginQuery),
    responses((status = 303, description = "To the provider, or to /auth/error?code=…")),
    security(())
)]
pub async fn login(State(state): State<AppState>, Path(slug): Path<String>, q: Result<Query<LoginQuery>, QueryRejection>, Meta(meta): Meta) -> Response {
    let Ok(Query(q)) = q else {
        return super::sso::error_page("invalid_request");
    };
    let app = q.app();
    let start = signin::Start { return_to: q.return_to.as_deref(), login_hint: q.login_hint.as_deref(), connection_id: None, app: app.as_ref() };
    to_idp(&state, signin::provider::begin(&state, &slug, &start, &meta).await)
}

#[utoipa::path(
    get, path = "/user/organizations/{org_id}/sso/provider", tag = "connections", summary = "The organization's workspace SSO: the instance provider it uses",
    params(OrgPath),
    responses((status = 200, description = "The workspace SSO", body = Envelope<WorkspaceSso>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn get(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, "OK", workspace_sso::get(&state, &c.principal, &org_id).await?))
}

/// Reference 004's fields, camelCase or snake_case; any subset on a change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkspaceBody {
    #[serde(default, alias = "provider_id")]
    provider_id: Option<String>,
    #[serde(default, alias = "enforce_sso")]
    enforce_sso: Option<bool>,
    #[serde(default, alias = "auto_provision")]
    auto_provision: Option<bool>,
    #[serde(default, alias = "allowed_domains")]
    allowed_domains: Option<Domains>,
}

#[utoipa::path(
    put, path = "/user/organizations/{org_id}/sso/provider", tag = "connections", summary = "Adopt or change the organization's instance provider (enforceSso is the security policy's authRequired = sso)",
    params(OrgPath), request_body = WorkspaceBody,
    responses((status = 200, description = "The workspace SSO", body = Envelope<WorkspaceSso>)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn put(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>, Json(b): Json<WorkspaceBody>) -> Result<Response, ApiError> {
    let input = WorkspaceInput { provider_id: b.provider_id, enforce_sso: b.enforce_sso, auto_provision: b.auto_provision, allowed_domains: b.allowed_domains.map(Domains::split) };
    let w = workspace_sso::put(&state, &c.principal, &org_id, &input, &c.meta).await?;
    let message = if w.status == "active" { "Workspace SSO saved: the provider answered." } else { "Workspace SSO saved, but the provider did not answer: see lastTestMessage." };
    Ok(ok(StatusCode::OK, message, w))
}

#[utoipa::path(
    delete, path = "/user/organizations/{org_id}/sso/provider", tag = "connections", summary = "Stop using the instance provider (the lockout guard applies; its sessions end)",
    params(OrgPath),
    responses((status = 200, description = "Removed", body = Done)),
    security(("session" = []), ("apiKey" = []))
)]
pub async fn delete(State(state): State<AppState>, c: Caller, Path(org_id): Path<String>) -> Result<Response, ApiError> {
    workspace_sso::delete(&state, &c.principal, &org_id, &c.meta).await?;
    Ok(ok(StatusCode::OK, "Workspace SSO removed", ()))
}
